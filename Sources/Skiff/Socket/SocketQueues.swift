/// How much a TCP socket holds in its queues, as `ioctl` reports it (Linux: `tcp_ioctl()`).
public struct SocketQueueSizes: Sendable, Equatable {
    /// SIOCINQ / FIONREAD: bytes ready to read (Linux: `tcp_inq()`; the FIN is not a byte).
    public var readable: Int
    /// SIOCOUTQ: bytes not yet acknowledged, sent or not (Linux: `write_seq - snd_una`).
    public var unacknowledged: Int
    /// SIOCOUTQNSD: bytes not yet sent (Linux: `write_seq - snd_nxt`).
    public var notSent: Int
}

extension NetworkStack {
    /// The queue sizes of a TCP socket. EINVAL for a listener (Linux answers so), EBADF when
    /// `fd` is not a TCP socket. During the handshake every size is 0.
    public func queueSizes(_ fd: Int32) -> Result<SocketQueueSizes, Errno> {
        guard let s = tcpSocket(fd) else { return .failure(.EBADF) }
        if s.state == .listen { return .failure(.EINVAL) }
        if s.state == .synSent || s.state == .synReceived {
            return .success(SocketQueueSizes(readable: 0, unacknowledged: 0, notSent: 0))
        }
        return .success(SocketQueueSizes(readable: s.receiveQueueBytes,
                                         unacknowledged: Int(s.writeSeq &- s.sndUna),
                                         notSent: Int(s.writeSeq &- s.sndNxt)))
    }
}

extension NetworkStack {
    /// What TCP_CM_INQ reports after a read: the bytes still to read, or 1 when none are left but
    /// the peer's FIN has come, so that the reader goes on to see end of stream; nil unless
    /// TCP_INQ is on. Linux: `tcp_inq_hint()` (rcv_nxt − copied_seq, the FIN counting as one).
    public func receiveQueueHint(_ fd: Int32) -> Int? {
        guard let s = tcpSocket(fd), s.options.receiveQueueHint else { return nil }
        if s.state == .synSent || s.state == .synReceived || s.state == .listen { return 0 }
        let inq = Int(Int32(bitPattern: s.rcvNxt &- s.copiedSeq))
        return inq == 0 && s.finReceived ? 1 : max(inq, 0)
    }

    /// The not-sent low-water mark in force: the socket's TCP_NOTSENT_LOWAT, else the sysctl
    /// (Linux: `tcp_notsent_lowat()`).
    func notSentLowat(_ s: TCPSocket) -> Int {
        s.options.notSentLowat > 0 ? s.options.notSentLowat : tcpConfig.notSentLowat
    }
}
