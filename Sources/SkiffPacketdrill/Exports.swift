#if canImport(Glibc)
import Glibc
#endif
import CSkiffPacketdrill
import Skiff

/// The C entry points: `packetdrill_interface_init` (in C, `entry.c`) calls `skiff_pd_fill`,
/// which makes a host and fills the table with these callbacks. Each turns the C arguments
/// into a host call and its result into C's convention: the value, or -1 with `errno` set.

@inline(__always)
private func host(_ userdata: UnsafeMutableRawPointer?) -> PacketdrillHost? {
    guard let userdata else { return nil }
    return Unmanaged<PacketdrillHost>.fromOpaque(userdata).takeUnretainedValue()
}

@inline(__always)
private func cResult(_ r: SyscallResult) -> Int {
    switch r {
    case let .success(n): return n
    case let .failure(e): skiff_pd_set_errno(e.rawValue); return -1
    }
}

@inline(__always)
private func call(_ userdata: UnsafeMutableRawPointer?, _ body: (PacketdrillHost) -> SyscallResult) -> Int {
    guard let h = host(userdata) else { skiff_pd_set_errno(Errno.EINVAL.rawValue); return -1 }
    return cResult(body(h))
}

/// The real wall clock, in nanoseconds since the epoch: where virtual time starts.
private func wallClockNow() -> Nanoseconds {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return UInt64(ts.tv_sec) &* Time.second &+ UInt64(ts.tv_nsec)
}

@_cdecl("skiff_pd_fcntl")
public func skiffPacketdrillFcntl(_ userdata: UnsafeMutableRawPointer?, _ fd: Int32, _ command: Int32, _ argument: Int) -> Int32 {
    Int32(call(userdata) { $0.fcntl(fd, command: command, argument: argument) })
}

@_cdecl("skiff_pd_ioctl")
public func skiffPacketdrillIoctl(_ userdata: UnsafeMutableRawPointer?, _ fd: Int32, _ request: UInt,
                                  _ argument: UnsafeMutableRawPointer?) -> Int32 {
    Int32(call(userdata) { $0.ioctl(fd, request: request, argument: argument) })
}

/// getsockopt(2) called by the process on a placeholder descriptor (packetdrill's code events
/// read TCP_INFO, TCP_CC_INFO and SO_MEMINFO so, see `skiff_pd_live_getsockopt`): this host's
/// answer, or -2 if `fd` is not one of its descriptors.
@_cdecl("skiff_pd_host_live_getsockopt")
public func skiffPacketdrillLiveGetsockopt(_ userdata: UnsafeMutableRawPointer?, _ fd: Int32, _ level: Int32, _ name: Int32,
                                           _ value: UnsafeMutableRawPointer?, _ length: UnsafeMutablePointer<UInt32>?) -> Int32 {
    guard let h = host(userdata), h.locked({ h.files[fd] != nil }) else { return -2 }
    return Int32(cResult(h.getsockopt(fd, level: level, name: name, value: value, length: length)))
}

/// sendfile(2)'s bytes, read by the preload shim, for this host's descriptor `fd` (see
/// `skiff_pd_live_send`): `send` as `write` makes it, or -2 if `fd` is not one of its descriptors.
@_cdecl("skiff_pd_host_live_send")
public func skiffPacketdrillLiveSend(_ userdata: UnsafeMutableRawPointer?, _ fd: Int32, _ buffer: UnsafeRawPointer?,
                                     _ length: Int) -> Int {
    guard let h = host(userdata), h.locked({ h.files[fd] != nil }) else { return -2 }
    if buffer == nil && length > 0 { skiff_pd_set_errno(Errno.EFAULT.rawValue); return -1 }
    return cResult(h.send(fd, UnsafeRawBufferPointer(start: buffer, count: length), flags: 0))
}

@_cdecl("skiff_pd_fill")
public func skiffPacketdrillFill(_ flags: UnsafePointer<CChar>?, _ table: UnsafeMutablePointer<skiff_pd_table>?) {
    guard let table else { return }
    let parsed = PacketdrillFlags(parsing: flags.map { String(cString: $0) })
    for p in parsed.problems {
        let line = Array("skiff packetdrill: \(p)\n".utf8)
        _ = line.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }
    let h = PacketdrillHost(flags: parsed, start: wallClockNow())
    var t = skiff_pd_table()
    t.userdata = Unmanaged.passRetained(h).toOpaque()
    skiff_pd_register_host(t.userdata)
    t.free = { ud in
        guard let ud else { return }
        skiff_pd_unregister_host(ud)
        let h = Unmanaged<PacketdrillHost>.fromOpaque(ud)
        h.takeUnretainedValue().shutdown()
        h.release()
    }
    t.socket = { ud, domain, type, proto in Int32(call(ud) { $0.socket(domain: domain, type: type, protocol: proto) }) }
    t.bind = { ud, fd, a, n in Int32(call(ud) { $0.bind(fd, a, n) }) }
    t.listen = { ud, fd, backlog in Int32(call(ud) { $0.listen(fd, backlog: backlog) }) }
    t.accept = { ud, fd, a, n in Int32(call(ud) { $0.accept(fd, a, n) }) }
    t.connect = { ud, fd, a, n in Int32(call(ud) { $0.connect(fd, a, n) }) }
    t.read = { ud, fd, buf, n in
        call(ud) { h in buf == nil && n > 0 ? .failure(.EFAULT) : h.receive(fd, UnsafeMutableRawBufferPointer(start: buf, count: n), flags: 0) }
    }
    t.readv = { ud, fd, iov, n in call(ud) { $0.receive(fd, vector: iov, count: Int(n), flags: 0) } }
    t.recv = { ud, fd, buf, n, flags in
        call(ud) { h in buf == nil && n > 0 ? .failure(.EFAULT) : h.receive(fd, UnsafeMutableRawBufferPointer(start: buf, count: n), flags: flags) }
    }
    t.recvfrom = { ud, fd, buf, n, flags, a, alen in
        call(ud) { h in
            buf == nil && n > 0 ? .failure(.EFAULT)
                : h.receive(fd, UnsafeMutableRawBufferPointer(start: buf, count: n), flags: flags, from: (UnsafeMutableRawPointer(a), alen))
        }
    }
    t.recvmsg = { ud, fd, msg, flags in
        call(ud) { h in
            guard let msg else { return .failure(.EFAULT) }
            // Linux: __copy_msghdr() refuses more than UIO_MAXIOV elements.
            if msg.pointee.msg_iovlen > 1024 { return .failure(.EMSGSIZE) }
            if flags & LinuxABI.MSG_ERRQUEUE != 0 {
                let r = h.receiveError(fd, vector: msg.pointee.msg_iov, count: Int(msg.pointee.msg_iovlen), flags: flags,
                                       control: msg.pointee.msg_control, controlLength: Int(msg.pointee.msg_controllen))
                return r.map { n, m in
                    msg.pointee.msg_flags = m.flags.rawValue
                    msg.pointee.msg_controllen = m.controlLength
                    msg.pointee.msg_namelen = 0   // Linux: no address for a timestamp or zerocopy message
                    return n
                }
            }
            let r = h.receive(fd, vector: msg.pointee.msg_iov, count: Int(msg.pointee.msg_iovlen), flags: flags,
                              from: (msg.pointee.msg_name, nil))
            if case .success = r {
                let capacity = Int(msg.pointee.msg_controllen)
                msg.pointee.msg_flags = 0
                msg.pointee.msg_controllen = 0
                if msg.pointee.msg_name != nil { msg.pointee.msg_namelen = UInt32(SockaddrIn.size) }
                h.putControlMessages(fd, msg, capacity: capacity)
            }
            return r
        }
    }
    t.write = { ud, fd, buf, n in
        call(ud) { h in buf == nil && n > 0 ? .failure(.EFAULT) : h.send(fd, UnsafeRawBufferPointer(start: buf, count: n), flags: 0) }
    }
    t.writev = { ud, fd, iov, n in call(ud) { $0.send(fd, vector: iov, count: Int(n), flags: 0) } }
    t.send = { ud, fd, buf, n, flags in
        call(ud) { h in buf == nil && n > 0 ? .failure(.EFAULT) : h.send(fd, UnsafeRawBufferPointer(start: buf, count: n), flags: flags) }
    }
    t.sendto = { ud, fd, buf, n, flags, a, alen in
        call(ud) { h in
            if buf == nil && n > 0 { return .failure(.EFAULT) }
            var to: SocketAddress? = nil
            // Linux (tcp_sendmsg_fastopen): MSG_FASTOPEN to AF_UNSPEC is not supported.
            if flags & LinuxABI.MSG_FASTOPEN != 0 && SockaddrIn.isUnspecified(UnsafeRawPointer(a), length: alen) {
                return .failure(.EOPNOTSUPP)
            }
            if a != nil {
                switch SockaddrIn.read(UnsafeRawPointer(a), length: alen) {
                case let .success(x): to = x
                case let .failure(e): return .failure(e)
                }
            }
            return h.send(fd, UnsafeRawBufferPointer(start: buf, count: n), flags: flags, to: to)
        }
    }
    t.sendmsg = { ud, fd, msg, flags in
        call(ud) { h in
            guard let msg else { return .failure(.EFAULT) }
            if msg.pointee.msg_iovlen > 1024 { return .failure(.EMSGSIZE) }   // Linux: __copy_msghdr()
            var to: SocketAddress? = nil
            if flags & LinuxABI.MSG_FASTOPEN != 0
                && SockaddrIn.isUnspecified(UnsafeRawPointer(msg.pointee.msg_name), length: msg.pointee.msg_namelen) {
                return .failure(.EOPNOTSUPP)
            }
            if let name = msg.pointee.msg_name {
                switch SockaddrIn.read(UnsafeRawPointer(name), length: msg.pointee.msg_namelen) {
                case let .success(x): to = x
                case let .failure(e): return .failure(e)
                }
            }
            return h.send(fd, vector: msg.pointee.msg_iov, count: Int(msg.pointee.msg_iovlen), flags: flags, to: to)
        }
    }
    t.close = { ud, fd in Int32(call(ud) { $0.close(fd) }) }
    t.shutdown = { ud, fd, how in Int32(call(ud) { $0.shutdown(fd, how: how) }) }
    t.getsockopt = { ud, fd, level, name, v, n in
        Int32(call(ud) { $0.getsockopt(fd, level: level, name: name, value: v, length: n) })
    }
    t.setsockopt = { ud, fd, level, name, v, n in
        Int32(call(ud) { $0.setsockopt(fd, level: level, name: name, value: v, length: n) })
    }
    t.poll = { ud, fds, n, timeout in Int32(call(ud) { $0.poll(fds, count: Int(n), timeoutMs: timeout) }) }
    t.netdev_send = { ud, buf, n in
        Int32(call(ud) { h in
            guard let buf else { return .failure(.EFAULT) }
            return h.netdevSend(UnsafeRawBufferPointer(start: buf, count: n)).map { 0 }
        })
    }
    t.netdev_receive = { ud, buf, n, time in
        Int32(call(ud) { h in
            guard let buf, let n, let time else { return .failure(.EFAULT) }
            guard let p = h.netdevReceive() else { n.pointee = 0; return .success(0) }
            let len = min(n.pointee, p.bytes.count)
            p.bytes.withUnsafeBytes { buf.copyMemory(from: $0.baseAddress!, byteCount: len) }
            n.pointee = len
            time.pointee = Int64(p.time / Time.microsecond)
            return .success(0)
        })
    }
    t.usleep = { ud, usec in
        Int32(call(ud) { h in h.sleep(microseconds: UInt64(usec)); return .success(0) })
    }
    t.gettimeofday = { ud, tv, tz in
        Int32(call(ud) { h in
            let t = h.readClock()
            if let tv {
                tv.pointee.tv_sec = Int(t / Time.second)
                tv.pointee.tv_usec = Int(t % Time.second / Time.microsecond)
            }
            if let tz { tz.pointee.tz_minuteswest = 0; tz.pointee.tz_dsttime = 0 }
            return .success(0)
        })
    }
    t.epoll_create = { ud, size in Int32(call(ud) { $0.epollCreate(size: size) }) }
    t.epoll_ctl = { ud, epfd, op, fd, ev in Int32(call(ud) { $0.epollControl(epfd, op: op, fd: fd, event: UnsafeRawPointer(ev)) }) }
    t.epoll_wait = { ud, epfd, ev, n, timeout in
        Int32(call(ud) { $0.epollWait(epfd, events: UnsafeMutableRawPointer(ev), maxEvents: n, timeoutMs: timeout) })
    }
    t.pipe = { ud, fds in Int32(call(ud) { $0.pipe(fds) }) }
    t.splice = { ud, _, _, _, _, _, _ in Int32(call(ud) { $0.splice() }) }
    table.pointee = t
}
