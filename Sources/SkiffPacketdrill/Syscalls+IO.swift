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
        locked {
            let h: Int32
            switch socketHandle(fd) { case let .success(x): h = x; case let .failure(e): return .failure(e) }
            if flags & LinuxABI.MSG_OOB != 0 { return .failure(.EOPNOTSUPP) }
            if flags & LinuxABI.MSG_FASTOPEN != 0 { return .failure(.EOPNOTSUPP) }
            // MSG_ZEROCOPY: Linux pins the pages only on a SO_ZEROCOPY socket and ignores the flag
            // otherwise; Skiff copies either way (no completions on the error queue).
            var sf: SendFlags = []
            if flags & LinuxABI.MSG_MORE != 0 { sf.insert(.more) }
            if flags & LinuxABI.MSG_NOSIGNAL != 0 { sf.insert(.noSignal) }
            if flags & LinuxABI.MSG_EOR != 0 { sf.insert(.endOfRecord) }
            let file = fileState(h)
            let wait = !file.nonBlocking && flags & LinuxABI.MSG_DONTWAIT == 0
            if stack.tcpInfoSocket(h) == nil {
                let r: SyscallResult = blockingCall(wait: wait, timeout: file.sendTimeout) {
                    let r = stack.sendTo(h, data, to: to, flags: sf, now: now)
                    if case .failure(.EAGAIN) = r { return .wouldBlock(r) }
                    return .done(r)
                }
                quiesce()
                return r
            }
            // Linux (tcp_sendmsg): a destination address on a connected TCP socket is ignored.
            if data.count == 0 {
                return stack.tcpState(h).map { $0 == .established || $0 == .closeWait } == true
                    ? .success(0) : .failure(stack.tcpState(h) == .listen || stack.tcpState(h) == .closed ? .EPIPE : .EPIPE)
            }
            var sent = 0
            var blocked = false
            let r: SyscallResult = blockingCall(wait: wait, timeout: file.sendTimeout) {
                // A blocked writer sleeps until an ACK makes the socket writable again (Linux:
                // sk_stream_wait_memory(), woken by sk_stream_write_space()).
                if blocked && !stack.poll(h).contains(.writable) { return .wouldBlock(sent > 0 ? .success(sent) : .failure(.EAGAIN)) }
                blocked = true
                let rest = UnsafeRawBufferPointer(rebasing: data[sent...])
                switch stack.send(h, rest, flags: sf, now: now) {
                case let .success(n):
                    sent += n
                    return sent == data.count ? .done(.success(sent)) : .wouldBlock(.success(sent))
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

    /// Sends an I/O vector: gathered into one buffer first (one `tcp_sendmsg` call, as Linux
    /// makes for the whole vector).
    func send(_ fd: Int32, vector: UnsafePointer<iovec>?, count: Int, flags: Int32, to: SocketAddress? = nil) -> SyscallResult {
        guard count >= 0, count <= 1024 else { return .failure(.EINVAL) }
        guard let iov = IOVector(vector, count: count) else { return .failure(.EFAULT) }
        let staging = iov.gather()
        return staging.withUnsafeBytes { send(fd, $0, flags: flags, to: to) }
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

    func gather() -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(total)
        for p in parts { out.append(contentsOf: p) }
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
