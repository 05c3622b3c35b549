import SkiffWire

extension NetworkStack {
    /// TCP_FASTOPEN, TCP_FASTOPEN_KEY, TCP_FASTOPEN_CONNECT, TCP_FASTOPEN_NO_COOKIE.
    /// Linux: `do_tcp_setsockopt()`.
    func setFastOpenOption(_ s: TCPSocket, _ option: SocketOption) -> Errno? {
        switch option {
        case let .fastOpen(length):
            guard length >= 0, s.state == .closed || s.state == .listen else { return .EINVAL }
            fastOpenQueueTune(s, length)
        case let .fastOpenKey(bytes):
            // The primary key, optionally followed by a backup key (not used here).
            guard bytes.count == 16 || bytes.count == 32,
                  let key = bytes.withUnsafeBytes({ FastOpenCookie.key(bytes: UnsafeRawBufferPointer(rebasing: $0[0..<16])) })
            else { return .EINVAL }
            s.fastOpen.key = key
        case let .fastOpenConnect(v):
            guard (0...1).contains(v) else { return .EINVAL }
            guard tcpConfig.fastOpen & FastOpenFlags.clientEnable != 0 else { return .EOPNOTSUPP }
            guard s.state == .closed else { return .EINVAL }
            s.fastOpen.connect = v != 0
        case let .fastOpenNoCookie(v):
            guard (0...1).contains(v), s.state == .closed || s.state == .listen else { return .EINVAL }
            s.fastOpen.noCookie = v != 0
        default:
            return .ENOPROTOOPT
        }
        return nil
    }

    /// Linux: `do_tcp_getsockopt()` for the Fast Open options.
    func fastOpenOption(_ s: TCPSocket, _ name: SocketOptionName) -> Result<SocketOptionValue, Errno> {
        switch name {
        case .fastOpen: return .success(.int(s.fastOpen.maxQueue))
        case .fastOpenConnect: return .success(.int(s.fastOpen.connect ? 1 : 0))
        case .fastOpenNoCookie: return .success(.int(s.fastOpen.noCookie ? 1 : 0))
        case .fastOpenKey: return .success(.bytes(FastOpenCookie.bytes(of: fastOpenKey(s))))
        default: return .failure(.ENOPROTOOPT)
        }
    }
}
