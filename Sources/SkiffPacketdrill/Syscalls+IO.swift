#if canImport(Glibc)
import Glibc
#endif
import Skiff
import SkiffWire

/// read, readv, recv, recvfrom, recvmsg, write, writev, send, sendto, sendmsg (Linux:
/// `sock_read_iter` / `sock_recvmsg` → `tcp_recvmsg` or `udp_recvmsg`; `sock_sendmsg` →
/// `tcp_sendmsg` or `udp_sendmsg`).
extension PacketdrillHost {
    // MARK: Receiving

    /// Receives into `buffer`, blocking as Linux does: until some data, end of stream or an
    /// error, unless the socket is non-blocking or `MSG_DONTWAIT` (EAGAIN), or until SO_RCVTIMEO
    /// passes (EAGAIN). MSG_WAITALL waits for the whole buffer.
    func receive(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, flags: Int32,
                 from: (UnsafeMutableRawPointer?, UnsafeMutablePointer<UInt32>?) = (nil, nil)) -> SyscallResult {
        locked {
            let h: Int32
            switch socketHandle(fd) { case let .success(x): h = x; case let .failure(e): return .failure(e) }
            let known = LinuxABI.MSG_PEEK | LinuxABI.MSG_DONTWAIT | LinuxABI.MSG_WAITALL | LinuxABI.MSG_NOSIGNAL
            if flags & LinuxABI.MSG_ERRQUEUE != 0 {
                // No control buffer: the control messages are cut (Linux: MSG_CTRUNC).
                return stack.recvmsg(h, into: buffer, control: UnsafeMutableRawBufferPointer(start: nil, count: 0),
                                     flags: [.errorQueue], now: now).map { $0.bytes }
            }
            if flags & LinuxABI.MSG_OOB != 0 { return .failure(.EINVAL) }
            _ = known
            var rf: ReceiveFlags = []
            if flags & LinuxABI.MSG_PEEK != 0 { rf.insert(.peek) }
            let file = fileState(h)
            let wait = !file.nonBlocking && flags & LinuxABI.MSG_DONTWAIT == 0
            if stack.tcpInfoSocket(h) == nil {
                // UDP: one datagram.
                let r: Result<(Int, SocketAddress), Errno> = blockingCall(wait: wait, timeout: file.receiveTimeout) {
                    let r = stack.receiveFrom(h, into: buffer, flags: rf, now: now)
                    if case .failure(.EAGAIN) = r { return .wouldBlock(r) }
                    return .done(r)
                }
                quiesce()
                return r.map { n, a in SockaddrIn.write(a, to: from.0, length: from.1); return n }
            }
            if buffer.count == 0 { return stack.tcpState(h) == .listen ? .failure(.ENOTCONN) : .success(0) }
            let accumulate = flags & LinuxABI.MSG_WAITALL != 0 && !rf.contains(.peek)
            var got = 0
            let r: SyscallResult = blockingCall(wait: wait, timeout: file.receiveTimeout) {
                let rest = UnsafeMutableRawBufferPointer(rebasing: buffer[got...])
                switch stack.recv(h, into: rest, flags: rf, now: now) {
                case let .success(n):
                    if n == 0 || !accumulate { return .done(.success(got + n)) }
                    got += n
                    return got == buffer.count ? .done(.success(got)) : .wouldBlock(.success(got))
                case .failure(.EAGAIN):
                    return .wouldBlock(got > 0 ? .success(got) : .failure(.EAGAIN))
                case let .failure(e):
                    return .done(got > 0 ? .success(got) : .failure(e))
                }
            }
            // Reading opens the window: the stack may have sent a window update.
            quiesce()
            if case .success = r, let peer = try? stack.peerAddress(h).get() { SockaddrIn.write(peer, to: from.0, length: from.1) }
            return r
        }
    }

    /// Receives into an I/O vector: through one contiguous buffer, then scattered.
    func receive(_ fd: Int32, vector: UnsafePointer<iovec>?, count: Int, flags: Int32,
                 from: (UnsafeMutableRawPointer?, UnsafeMutablePointer<UInt32>?) = (nil, nil)) -> SyscallResult {
        guard count >= 0, count <= 1024 else { return .failure(.EINVAL) }
        guard let iov = IOVector(vector, count: count) else { return .failure(.EFAULT) }
        var staging = [UInt8](repeating: 0, count: iov.total)
        let r = staging.withUnsafeMutableBytes { receive(fd, $0, flags: flags, from: from) }
        if case let .success(n) = r { staging.withUnsafeBytes { iov.scatter(UnsafeRawBufferPointer(rebasing: $0[0..<n])) } }
        return r
    }

    // MARK: Sending

    /// Sends `data`, blocking as Linux's `tcp_sendmsg` does: everything is copied, sleeping while
    /// the send buffer is full, unless the socket is non-blocking or `MSG_DONTWAIT` (a short count
    /// or EAGAIN) or SO_SNDTIMEO passes (the bytes copied so far, or EAGAIN).
    func send(_ fd: Int32, _ data: UnsafeRawBufferPointer, flags: Int32, to: SocketAddress? = nil) -> SyscallResult {
        send(fd, parts: [data], flags: flags, to: to)
    }

    /// The same over the parts of an I/O vector: one `tcp_sendmsg` for the whole vector, as Linux
    /// makes (MSG_ZEROCOPY lays each part out as its own pages); a UDP datagram is gathered first.
    func send(_ fd: Int32, parts: [UnsafeRawBufferPointer], flags: Int32, to: SocketAddress? = nil) -> SyscallResult {
        locked {
            let h: Int32
            switch socketHandle(fd) { case let .success(x): h = x; case let .failure(e): return .failure(e) }
            if flags & LinuxABI.MSG_OOB != 0 { return .failure(.EOPNOTSUPP) }
            var sf: SendFlags = []
            if flags & LinuxABI.MSG_MORE != 0 { sf.insert(.more) }
            if flags & LinuxABI.MSG_NOSIGNAL != 0 { sf.insert(.noSignal) }
            if flags & LinuxABI.MSG_EOR != 0 { sf.insert(.endOfRecord) }
            if flags & LinuxABI.MSG_ZEROCOPY != 0 { sf.insert(.zerocopy) }
            let file = fileState(h)
            let wait = !file.nonBlocking && flags & LinuxABI.MSG_DONTWAIT == 0
            let total = parts.reduce(0) { $0 + $1.count }
            if stack.tcpInfoSocket(h) == nil {
                sf.remove(.zerocopy)   // UDP: no SO_ZEROCOPY here, so Linux ignores the flag
                let r: SyscallResult = IOVector.gather(parts).withUnsafeBytes { data in
                    blockingCall(wait: wait, timeout: file.sendTimeout) {
                        let r = stack.sendTo(h, data, to: to, flags: sf, now: now)
                        if case .failure(.EAGAIN) = r { return .wouldBlock(r) }
                        return .done(r)
                    }
                }
                quiesce()
                return r
            }
            var sent = 0
            if flags & LinuxABI.MSG_FASTOPEN != 0 && self.flags.followSysctls { LinuxSysctls.applyFastOpen(to: &stack.tcpConfig) }
            // Fast Open takes the SYN's data from one contiguous buffer (a vector is gathered).
            let fastOpen: (UnsafeRawBufferPointer) -> Result<Int, Errno>? = { data in
                self.stack.fastOpenSend(h, data, to: to, explicit: flags & LinuxABI.MSG_FASTOPEN != 0, blocking: wait, now: self.now)
            }
            let attempt: Result<Int, Errno>?
            if parts.count == 1 {
                attempt = fastOpen(parts[0])
            } else {
                attempt = IOVector.gather(parts).withUnsafeBytes { fastOpen($0) }
            }
            if let r = attempt {
                // TCP Fast Open (Linux: tcp_sendmsg_fastopen): what the SYN took; a blocking
                // caller then waits for the handshake and sends the rest as any write.
                quiesce()
                switch r {
                case let .failure(e) where e != .EINPROGRESS || !wait: return .failure(e)
                case let .success(n) where !wait: return .success(n)
                case let .success(n): sent = n
                default: break
                }
                let _: SyscallResult = blockingCall(wait: true, timeout: file.sendTimeout) {
                    switch stack.tcpState(h) {
                    case .synSent?, .synReceived?: return .wouldBlock(.success(sent))
                    default: return .done(.success(sent))
                    }
                }
                // A failed handshake frees the request: the SYN's bytes do not count, the error
                // does (Linux: tcp_done → tcp_free_fastopen_req before tcp_sendmsg_fastopen reads it).
                if stack.tcpState(h) == .closed { sent = 0 }
                else if sent == total { return .success(sent) }
            }
            // Linux (tcp_sendmsg): a destination address on a connected TCP socket is ignored.
            if total == 0 {
                return stack.tcpState(h).map { $0 == .established || $0 == .closeWait } == true ? .success(0) : .failure(.EPIPE)
            }
            var blocked = false
            let r: SyscallResult = blockingCall(wait: wait, timeout: file.sendTimeout) {
                // A blocked writer sleeps until an ACK makes the socket writable again (Linux:
                // sk_stream_wait_memory(), woken by sk_stream_write_space()).
                if blocked && !stack.poll(h).contains(.writable) { return .wouldBlock(sent > 0 ? .success(sent) : .failure(.EAGAIN)) }
                blocked = true
                let rest = IOVector.parts(parts, after: sent)
                let r = rest.withUnsafeBufferPointer { stack.sendmsg(h, $0, flags: sf, now: now) }
                switch r {
                case let .success(n):
                    sent += n
                    return sent == total ? .done(.success(sent)) : .wouldBlock(.success(sent))
                case .failure(.EAGAIN):
                    return .wouldBlock(sent > 0 ? .success(sent) : .failure(.EAGAIN))
                case let .failure(e):
                    return .done(sent > 0 ? .success(sent) : .failure(e))
                }
            }
            quiesce()
            return r
        }
    }

    /// Sends an I/O vector (one `tcp_sendmsg` call for the whole vector, as Linux makes).
    func send(_ fd: Int32, vector: UnsafePointer<iovec>?, count: Int, flags: Int32, to: SocketAddress? = nil) -> SyscallResult {
        guard count >= 0, count <= 1024 else { return .failure(.EINVAL) }
        guard let iov = IOVector(vector, count: count) else { return .failure(.EFAULT) }
        return send(fd, parts: iov.parts.map { UnsafeRawBufferPointer($0) }, flags: flags, to: to)
    }

    // MARK: The error queue

    /// recvmsg / recv with MSG_ERRQUEUE: one message of the error queue, its packet scattered
    /// into the vector and its control messages into `msg_control`; never blocks (Linux:
    /// `tcp_recvmsg()` → `inet_recv_error()` → `ip_recv_error()`).
    func receiveError(_ fd: Int32, vector: UnsafePointer<iovec>?, count: Int, flags: Int32,
                      control: UnsafeMutableRawPointer?, controlLength: Int) -> Result<(Int, ReceivedMessage), Errno> {
        guard count >= 0, count <= 1024 else { return .failure(.EINVAL) }
        guard let iov = IOVector(vector, count: count) else { return .failure(.EFAULT) }
        return locked {
            let h: Int32
            switch socketHandle(fd) { case let .success(x): h = x; case let .failure(e): return .failure(e) }
            var staging = [UInt8](repeating: 0, count: iov.total)
            let ctl = UnsafeMutableRawBufferPointer(start: control, count: control == nil ? 0 : max(0, controlLength))
            let r = staging.withUnsafeMutableBytes { stack.recvmsg(h, into: $0, control: ctl, flags: [.errorQueue], now: now) }
            guard case let .success(m) = r else { return r.map { (0, $0) } }
            staging.withUnsafeBytes { iov.scatter(UnsafeRawBufferPointer(rebasing: $0[0..<m.bytes])) }
            return .success((m.bytes, m))
        }
    }
}

/// A caller's `struct iovec` array, checked: NULL bases only with zero lengths.
struct IOVector {
    var parts: [UnsafeMutableRawBufferPointer] = []
    var total = 0

    init?(_ vector: UnsafePointer<iovec>?, count: Int) {
        if count == 0 { return }
        guard let vector else { return nil }
        for i in 0..<count {
            let v = vector[i]
            if v.iov_len == 0 { continue }
            guard let base = v.iov_base, v.iov_len <= Int.max / 2 else { return nil }
            parts.append(UnsafeMutableRawBufferPointer(start: base, count: v.iov_len))
            total += v.iov_len
            if total > 1 << 30 { return nil }
        }
    }

    /// The parts in one contiguous copy (a datagram, or the data of a Fast Open SYN).
    static func gather(_ parts: [UnsafeRawBufferPointer]) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(parts.reduce(0) { $0 + $1.count })
        for p in parts { out.append(contentsOf: p) }
        return out
    }

    /// The parts that remain once `sent` bytes of `parts` have gone.
    static func parts(_ parts: [UnsafeRawBufferPointer], after sent: Int) -> [UnsafeRawBufferPointer] {
        if sent == 0 { return parts }
        var skip = sent
        var out: [UnsafeRawBufferPointer] = []
        for p in parts {
            if skip >= p.count { skip -= p.count; continue }
            out.append(UnsafeRawBufferPointer(rebasing: p[skip...]))
            skip = 0
        }
        return out
    }

    func scatter(_ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        for p in parts where offset < bytes.count {
            let n = min(p.count, bytes.count - offset)
            p.baseAddress!.copyMemory(from: bytes.baseAddress! + offset, byteCount: n)
            offset += n
        }
    }
}

extension PacketdrillHost {
    /// The control messages of a TCP `recvmsg` that read data: TCP_CM_INQ with the bytes left
    /// to read when TCP_INQ is on (Linux: `tcp_recvmsg()` → `put_cmsg(SOL_TCP, TCP_CM_INQ,
    /// tcp_inq_hint())`).
    func putControlMessages(_ fd: Int32, _ msg: UnsafeMutablePointer<msghdr>, capacity: Int) {
        locked {
            guard case let .success(h) = socketHandle(fd), let inq = stack.receiveQueueHint(h) else { return }
            let r = ControlMessages.putInt(level: LinuxABI.SOL_TCP, type: LinuxABI.TCP_CM_INQ, value: Int32(clamping: inq),
                                           into: msg.pointee.msg_control, capacity: capacity)
            msg.pointee.msg_controllen = Int(r.used)
            if r.truncated { msg.pointee.msg_flags |= LinuxABI.MSG_CTRUNC }
        }
    }
}
