import Skiff

/// fcntl, ioctl, pipe, splice (Linux: `do_fcntl`, `sock_ioctl` → `tcp_ioctl`).
extension PacketdrillHost {
    /// Linux: `fcntl()`. F_GETFL / F_SETFL (only O_NONBLOCK changes anything on a socket),
    /// F_GETFD / F_SETFD (close-on-exec: accepted, meaningless here). Others: EINVAL.
    func fcntl(_ fd: Int32, command: Int32, argument: Int) -> SyscallResult {
        locked {
            guard let file = files[fd] else { return .failure(.EBADF) }
            let h: Int32
            switch file { case let .socket(x): h = x; case let .epoll(x): h = x }
            switch command {
            case LinuxABI.F_GETFL:
                return .success(Int(LinuxABI.O_RDWR | (fileState(h).nonBlocking ? LinuxABI.O_NONBLOCK : 0)))
            case LinuxABI.F_SETFL:
                let flags = Int32(truncatingIfNeeded: argument)
                return stack.setFileOption(h, .nonBlocking(flags & LinuxABI.O_NONBLOCK != 0)).map { .failure($0) } ?? .success(0)
            case LinuxABI.F_GETFD: return .success(0)
            case LinuxABI.F_SETFD: return .success(0)
            default: return .failure(.EINVAL)
            }
        }
    }

    /// Linux: `ioctl()` on a socket: SIOCINQ (= FIONREAD), SIOCOUTQ, SIOCOUTQNSD write an int
    /// through `argument`; FIONBIO reads one. Others: ENOTTY, as Linux answers an unknown request.
    func ioctl(_ fd: Int32, request: UInt, argument: UnsafeMutableRawPointer?) -> SyscallResult {
        locked {
            let h: Int32
            switch socketHandle(fd) { case let .success(x): h = x; case let .failure(e): return .failure(e) }
            switch request {
            case LinuxABI.FIONBIO:
                guard let argument else { return .failure(.EFAULT) }
                let on = argument.loadUnaligned(as: Int32.self) != 0
                return stack.setFileOption(h, .nonBlocking(on)).map { .failure($0) } ?? .success(0)
            case LinuxABI.FIONREAD, LinuxABI.SIOCOUTQ, LinuxABI.SIOCOUTQNSD:
                guard let argument else { return .failure(.EFAULT) }
                guard stack.tcpInfoSocket(h) != nil else { return .failure(Errno(LinuxABI.ENOTTY)) }
                switch stack.queueSizes(h) {
                case let .failure(e): return .failure(e)
                case let .success(q):
                    let v = request == LinuxABI.FIONREAD ? q.readable : request == LinuxABI.SIOCOUTQ ? q.unacknowledged : q.notSent
                    argument.storeBytes(of: Int32(clamping: v), as: Int32.self)
                    return .success(0)
                }
            default:
                return .failure(Errno(LinuxABI.ENOTTY))
            }
        }
    }

    /// Pipes are not part of a network stack: ENOSYS (splice between a socket and a pipe is
    /// not supported either).
    func pipe(_ fds: UnsafeMutablePointer<Int32>?) -> SyscallResult {
        fds == nil ? .failure(.EFAULT) : .failure(Errno(LinuxABI.ENOSYS))
    }

    func splice() -> SyscallResult { .failure(Errno(LinuxABI.ENOSYS)) }
}
