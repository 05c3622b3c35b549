/// What belongs to a descriptor rather than to the protocol: the non-blocking flag and the
/// send and receive timeouts (Linux: `O_NONBLOCK` on the `struct file`, `sk_sndtimeo` and
/// `sk_rcvtimeo` on the `struct sock`). The blocking calls of `SharedStack` read them; the
/// non-blocking calls of `NetworkStack` never block whatever they say.
public struct FileState: Sendable, Equatable {
    /// `fcntl(F_SETFL, O_NONBLOCK)`.
    public var nonBlocking = false
    /// SO_RCVTIMEO; 0 waits for ever (Linux's meaning of a zero timeval).
    public var receiveTimeout: Nanoseconds = 0
    /// SO_SNDTIMEO; 0 waits for ever.
    public var sendTimeout: Nanoseconds = 0
    public init() {}
}

/// Options that live on the descriptor (see `FileState`).
public enum FileOption: Sendable, Equatable {
    case nonBlocking(Bool)
    case receiveTimeout(Nanoseconds)
    case sendTimeout(Nanoseconds)
}

extension NetworkStack {
    /// The descriptor flags of `fd`, or EBADF.
    public func fileState(_ fd: Int32) -> Result<FileState, Errno> {
        guard fd >= 0, Int(fd) < sockets.count else { return .failure(.EBADF) }
        if case .free = sockets[Int(fd)] { return .failure(.EBADF) }
        return .success(fileStates[Int(fd)])
    }

    /// Linux: `fcntl(F_SETFL)` for O_NONBLOCK, `setsockopt(SO_RCVTIMEO / SO_SNDTIMEO)`.
    public func setFileOption(_ fd: Int32, _ option: FileOption) -> Errno? {
        guard fd >= 0, Int(fd) < sockets.count else { return .EBADF }
        if case .free = sockets[Int(fd)] { return .EBADF }
        switch option {
        case let .nonBlocking(b): fileStates[Int(fd)].nonBlocking = b
        case let .receiveTimeout(t): fileStates[Int(fd)].receiveTimeout = t
        case let .sendTimeout(t): fileStates[Int(fd)].sendTimeout = t
        }
        return nil
    }
}
