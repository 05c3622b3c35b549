import SkiffWire

extension NetworkStack {
    /// The Fast Open option of a SYN or SYN-ACK being built, if it fits in `room` option bytes.
    /// A SYN-ACK carries its cookie on its first transmission only (Linux: a retransmitted
    /// SYN-ACK is built without `foc`); a SYN carries the client's cookie or cookie request.
    /// Linux: `tcp_synack_options()`, `tcp_syn_options()`.
    func fastOpenSynOption(_ sock: TCPSocket, room: Int) -> TCPFastOpenOption? {
        if sock.state == .synReceived {
            guard let f = sock.fastOpen.synAckCookie else { return nil }
            sock.fastOpen.synAckCookie = nil
            return f.paddedLength <= room ? f : nil
        }
        return nil
    }
}
