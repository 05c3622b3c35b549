import Skiff
import SkiffWire

/// What a system call returns: a count or descriptor, or an errno.
typealias SyscallResult = Result<Int, Errno>

/// socket, bind, listen, accept, connect, shutdown, close (Linux: `net/socket.c` →
/// `inet_stream_ops` / `inet_dgram_ops`).
extension PacketdrillHost {
    /// The stack handle of a socket descriptor: EBADF when not open, ENOTSOCK when not a socket.
    func socketHandle(_ fd: Int32) -> Result<Int32, Errno> {
        switch files[fd] {
        case let .socket(h)?: return .success(h)
        case .epoll?: return .failure(.ENOTSOCK)
        case nil: return .failure(.EBADF)
        }
    }

    /// The descriptor's non-blocking flag and timeouts.
    func fileState(_ handle: Int32) -> FileState { (try? stack.fileState(handle).get()) ?? FileState() }

    /// Linux: `socket()` → `inet_create()`. AF_INET only; SOCK_STREAM (TCP) or SOCK_DGRAM (UDP);
    /// SOCK_NONBLOCK sets O_NONBLOCK, SOCK_CLOEXEC is accepted.
    func socket(domain: Int32, type: Int32, protocol proto: Int32) -> SyscallResult {
        guard domain == LinuxABI.AF_INET else { return .failure(Errno(LinuxABI.EAFNOSUPPORT)) }
        let base = type & ~(LinuxABI.SOCK_NONBLOCK | LinuxABI.SOCK_CLOEXEC)
        let kind: SocketType
        switch base {
        case LinuxABI.SOCK_STREAM:
            guard proto == 0 || proto == LinuxABI.IPPROTO_TCP else { return .failure(Errno(LinuxABI.EPROTONOSUPPORT)) }
            kind = .stream
        case LinuxABI.SOCK_DGRAM:
            guard proto == 0 || proto == LinuxABI.IPPROTO_UDP else { return .failure(Errno(LinuxABI.EPROTONOSUPPORT)) }
            kind = .datagram
        default:
            return .failure(Errno(LinuxABI.ESOCKTNOSUPPORT))
        }
        return locked {
            // The script may have changed the host's sysctls since the last socket.
            if flags.followSysctls { LinuxSysctls.apply(to: &stack.tcpConfig) }
            let h: Int32
            switch stack.socket(kind) { case let .success(x): h = x; case let .failure(e): return .failure(e) }
            guard case let .success(fd) = files.open(.socket(h)) else { _ = stack.close(h, now: now); return .failure(.EMFILE) }
            if type & LinuxABI.SOCK_NONBLOCK != 0 { _ = stack.setFileOption(h, .nonBlocking(true)) }
            return .success(Int(fd))
        }
    }

    /// Linux: `bind()` → `inet_bind()`.
    func bind(_ fd: Int32, _ address: UnsafeRawPointer?, _ length: UInt32) -> SyscallResult {
        locked {
            socketHandle(fd).flatMap { h in
                SockaddrIn.read(address, length: length).flatMap { a in
                    stack.bind(h, a).map { .failure($0) } ?? .success(0)
                }
            }
        }
    }

    /// Linux: `listen()` → `inet_listen()`.
    func listen(_ fd: Int32, backlog: Int32) -> SyscallResult {
        locked {
            socketHandle(fd).flatMap { h in
                // Linux clamps the backlog to somaxconn (4096); a negative one means the maximum.
                let b = backlog < 0 ? 4096 : Int(min(backlog, 4096))
                return stack.listen(h, backlog: b).map { .failure($0) } ?? .success(0)
            }
        }
    }

    /// Linux: `accept()` → `inet_csk_accept()`: sleeps until a connection is ready unless the
    /// listener is non-blocking (EAGAIN) or its receive timeout passes (EAGAIN).
    func accept(_ fd: Int32, _ address: UnsafeMutableRawPointer?, _ length: UnsafeMutablePointer<UInt32>?) -> SyscallResult {
        locked {
            let h: Int32
            switch socketHandle(fd) { case let .success(x): h = x; case let .failure(e): return .failure(e) }
            let file = fileState(h)
            let r: Result<(Int32, SocketAddress), Errno> = blockingCall(wait: !file.nonBlocking, timeout: file.receiveTimeout) {
                let r = stack.accept(h)
                if case .failure(.EAGAIN) = r { return .wouldBlock(r) }
                return .done(r)
            }
            switch r {
            case let .failure(e): return .failure(e)
            case let .success((child, peer)):
                guard case let .success(cfd) = files.open(.socket(child)) else { _ = stack.close(child, now: now); return .failure(.EMFILE) }
                // The new socket inherits the timeouts, not O_NONBLOCK (Linux: sock_copy of sk_rcvtimeo).
                _ = stack.setFileOption(child, .receiveTimeout(file.receiveTimeout))
                _ = stack.setFileOption(child, .sendTimeout(file.sendTimeout))
                SockaddrIn.write(peer, to: address, length: length)
                quiesce()
                return .success(Int(cfd))
            }
        }
    }

    /// Linux: `connect()` → `inet_stream_connect()`: sends the SYN and, on a blocking socket,
    /// sleeps until the handshake ends (0 or its error: ECONNREFUSED, ETIMEDOUT…). Non-blocking:
    /// EINPROGRESS, then EALREADY while the handshake runs; the first call after it ended
    /// reports how it ended (0 or the error), later ones EISCONN.
    func connect(_ fd: Int32, _ address: UnsafeRawPointer?, _ length: UInt32) -> SyscallResult {
        locked {
            let h: Int32
            switch socketHandle(fd) { case let .success(x): h = x; case let .failure(e): return .failure(e) }
            let to: SocketAddress
            switch SockaddrIn.read(address, length: length) {
            case let .success(a): to = a
            case let .failure(e): return .failure(e)
            }
            if stack.tcpInfoSocket(h) == nil {
                // UDP: sets the default destination.
                return stack.connect(h, to, now: now).map { .failure($0) } ?? .success(0)
            }
            let file = fileState(h)
            var sent = false
            let e: Errno? = blockingCall(wait: !file.nonBlocking, timeout: file.sendTimeout) {
                if !sent {
                    sent = true
                    let e = stack.connect(h, to, now: now)
                    if e == .EISCONN, connectPending.remove(h) != nil { return .done(nil) }
                    if e == .EINPROGRESS { connectPending.insert(h) } else { return .done(e) }
                    return .wouldBlock(.EINPROGRESS)
                }
                let st = stack.tcpState(h)
                if st == .synSent || st == .synReceived { return .wouldBlock(.EINPROGRESS) }
                connectPending.remove(h)
                let e = stack.connect(h, to, now: now)
                return .done(e == .EISCONN ? nil : e)
            }
            quiesce()
            return e.map { .failure($0) } ?? .success(0)
        }
    }

    /// Linux: `shutdown()` → `inet_shutdown()` → `tcp_shutdown()`.
    func shutdown(_ fd: Int32, how: Int32) -> SyscallResult {
        locked {
            socketHandle(fd).flatMap { h in
                guard let mode = ShutdownHow(rawValue: how) else { return .failure(.EINVAL) }
                let e = stack.shutdown(h, mode, now: now)
                quiesce()
                return e.map { .failure($0) } ?? .success(0)
            }
        }
    }

    /// Linux: `close()`: frees the descriptor; the socket finishes on its own (`tcp_close`).
    func close(_ fd: Int32) -> SyscallResult {
        locked {
            guard let file = files.close(fd) else { return .failure(.EBADF) }
            let h: Int32
            switch file { case let .socket(x): h = x; case let .epoll(x): h = x }
            connectPending.remove(h)
            let e = stack.close(h, now: now)
            quiesce()
            return e.map { .failure($0) } ?? .success(0)
        }
    }
}
