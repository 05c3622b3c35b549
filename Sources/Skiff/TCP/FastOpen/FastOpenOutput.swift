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
        if sock.state == .synSent, let f = sock.fastOpen.synOption {
            sock.fastOpen.synOption = nil
            guard f.paddedLength <= room else { return nil }
            sock.fastOpen.synFastOpen = true
            sock.fastOpen.synFastOpenExperimental = f.experimental
            return f
        }
        return nil
    }
}
