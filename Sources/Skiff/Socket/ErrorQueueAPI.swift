/// Flags a received message comes back with (Linux: `msg_flags`).
public struct MessageFlags: OptionSet, Sendable, Hashable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    /// MSG_CTRUNC: a control message did not fit.
    public static let controlTruncated = MessageFlags(rawValue: 0x8)
    /// MSG_TRUNC: the data was longer than the buffer.
    public static let truncated = MessageFlags(rawValue: 0x20)
    /// MSG_ERRQUEUE: the message came from the error queue.
    public static let errorQueue = MessageFlags(rawValue: 0x2000)
}

/// What `recvmsg` received (Linux: the return value, `msg_flags` and `msg_controllen`).
public struct ReceivedMessage: Sendable, Equatable {
    public var bytes: Int
    public var flags: MessageFlags
    /// Bytes of control messages written (Linux: `msg_controllen` on return).
    public var controlLength: Int
}

extension NetworkStack {
    /// Linux: `recvmsg()`. With MSG_ERRQUEUE, one message from the socket's error queue
    /// (`ip_recv_error()`): the packet it carries into `data` (MSG_TRUNC when longer), then the
    /// control messages into `control` (SCM_TIMESTAMPING when the message has a timestamp and
    /// the socket reports software timestamps, then IP_RECVERR), MSG_ERRQUEUE set. It never
    /// waits: EAGAIN when the queue is empty, whatever the flags (MSG_PEEK and MSG_WAITALL are
    /// ignored, as Linux ignores them there). Without MSG_ERRQUEUE, data as `recv` and no control
    /// messages. EBADF for a free handle, ENOTSOCK for an epoll handle.
    public func recvmsg(_ fd: Int32, into data: UnsafeMutableRawBufferPointer, control: UnsafeMutableRawBufferPointer,
                        flags: ReceiveFlags = [], now t: Nanoseconds) -> Result<ReceivedMessage, Errno> {
        guard fd >= 0, Int(fd) < sockets.count else { return .failure(.EBADF) }
        switch sockets[Int(fd)] {
        case .free: return .failure(.EBADF)
        case .epoll: return .failure(.ENOTSOCK)
        case .udp:
            // UDP sockets keep no error queue yet (no IP_RECVERR): always empty.
            if flags.contains(.errorQueue) { return .failure(.EAGAIN) }
        case .tcp: break
        }
        guard flags.contains(.errorQueue) else {
            return recv(fd, into: data, flags: flags, now: t).map { ReceivedMessage(bytes: $0, flags: [], controlLength: 0) }
        }
        guard let s = tcpSocket(fd) else { return .failure(.EBADF) }
        guard let (m, copied) = dequeueError(s, copyingInto: data) else { return .failure(.EAGAIN) }
        var out: MessageFlags = .errorQueue
        if m.payloadLength > data.count { out.insert(.truncated) }
        var w = ControlMessageWriter(control)
        if m.timestamp != 0 && s.timestamping.flags & TimestampingFlag.software != 0 {
            w.putTimestamping(m.timestamp, newLayout: s.timestamping.newLayout)
        }
        w.putExtendedError(m)
        if w.truncated { out.insert(.controlTruncated) }
        return .success(ReceivedMessage(bytes: copied, flags: out, controlLength: w.used))
    }

    /// The oldest message of a TCP socket's error queue, removed, for Swift callers that want it
    /// typed rather than as control messages (the packet it carries is dropped). EAGAIN when
    /// the queue is empty, EBADF when `fd` is not a TCP socket.
    public func nextErrorMessage(_ fd: Int32) -> Result<SocketErrorMessage, Errno> {
        guard let s = tcpSocket(fd) else { return .failure(.EBADF) }
        guard let (m, _) = dequeueError(s, copyingInto: UnsafeMutableRawBufferPointer(start: nil, count: 0)) else {
            return .failure(.EAGAIN)
        }
        return .success(m)
    }

    /// Messages waiting on a TCP socket's error queue (0 for anything else).
    public func errorQueueLength(_ fd: Int32) -> Int { tcpSocket(fd)?.errorQueue.count ?? 0 }
}
