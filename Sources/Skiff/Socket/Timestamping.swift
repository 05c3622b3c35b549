/// SO_TIMESTAMPING flags (Linux: `SOF_TIMESTAMPING_*` in `<linux/net_tstamp.h>`, as of 6.18).
public enum TimestampingFlag {
    public static let txHardware: UInt32 = 1 << 0
    public static let txSoftware: UInt32 = 1 << 1
    public static let rxHardware: UInt32 = 1 << 2
    public static let rxSoftware: UInt32 = 1 << 3
    /// Report software timestamps (the `SCM_TIMESTAMPING` control message).
    public static let software: UInt32 = 1 << 4
    public static let sysHardware: UInt32 = 1 << 5
    public static let rawHardware: UInt32 = 1 << 6
    /// Number each timestamped byte: `ee_data` is its key.
    public static let optID: UInt32 = 1 << 7
    public static let txSched: UInt32 = 1 << 8
    public static let txAck: UInt32 = 1 << 9
    public static let optCmsg: UInt32 = 1 << 10
    /// The message carries no copy of the packet.
    public static let optTSOnly: UInt32 = 1 << 11
    public static let optStats: UInt32 = 1 << 12
    public static let optPktinfo: UInt32 = 1 << 13
    public static let optTxSwHw: UInt32 = 1 << 14
    public static let bindPHC: UInt32 = 1 << 15
    /// With OPT_ID on TCP: keys count from `write_seq` instead of `snd_una`.
    public static let optIDTCP: UInt32 = 1 << 16
    public static let optRxFilter: UInt32 = 1 << 17
    public static let txCompletion: UInt32 = 1 << 18
    /// Every flag Linux knows (Linux: `SOF_TIMESTAMPING_MASK`).
    public static let mask: UInt32 = (1 << 19) - 1
    /// The flags that ask for a transmit timestamp (Linux: `SOF_TIMESTAMPING_TX_RECORD_MASK`).
    public static let txRecord: UInt32 = txHardware | txSoftware | txSched | txAck
}

/// The timestamps a packet asks for, in `PacketMeta.txTimestamps`.
enum TxTimestamp {
    /// Linux: `SKBTX_SCHED_TSTAMP`.
    static let scheduled: UInt8 = 1
    /// Linux: `SKBTX_SW_TSTAMP`.
    static let software: UInt8 = 2
    /// Linux: `TCP_SKB_CB(skb)->txstamp_ack`.
    static let acknowledged: UInt8 = 4
}

/// A socket's SO_TIMESTAMPING setting (Linux: `sk->sk_tsflags`, `sk->sk_tskey`).
struct TimestampingState {
    var flags: UInt32 = 0
    /// OPT_ID's origin: keys are reported relative to it (Linux: `sk_tskey`, for TCP the
    /// `snd_una` when OPT_ID was turned on).
    var key: UInt32 = 0
    /// Set with SO_TIMESTAMPING_NEW: the control message is `SCM_TIMESTAMPING_NEW`.
    var newLayout = false
}

extension NetworkStack {
    /// SO_TIMESTAMPING on a TCP socket, with Linux's checks: unknown bits, OPT_ID_TCP without
    /// OPT_ID, OPT_STATS without OPT_TSONLY and BIND_PHC (no PTP clock here) are EINVAL, as is
    /// turning OPT_ID on before the connection exists. Linux: `sock_set_timestamping()`.
    func setTimestamping(_ s: TCPSocket, flags: UInt32, newLayout: Bool) -> Errno? {
        if flags & ~TimestampingFlag.mask != 0 { return .EINVAL }
        if flags & TimestampingFlag.optIDTCP != 0 && flags & TimestampingFlag.optID == 0 { return .EINVAL }
        if flags & TimestampingFlag.optID != 0 && s.timestamping.flags & TimestampingFlag.optID == 0 {
            if s.state == .closed || s.state == .listen { return .EINVAL }
            s.timestamping.key = flags & TimestampingFlag.optIDTCP != 0 ? s.writeSeq : s.sndUna
        }
        if flags & TimestampingFlag.optStats != 0 && flags & TimestampingFlag.optTSOnly == 0 { return .EINVAL }
        if flags & TimestampingFlag.bindPHC != 0 { return .EINVAL }
        s.timestamping.flags = flags
        s.timestamping.newLayout = newLayout
        return nil
    }

    /// Marks the buffer holding the last byte of a write for the transmit timestamps the socket
    /// asks for. Linux: `tcp_tx_timestamp()` at the end of `tcp_sendmsg_locked()`.
    func tcpTxTimestamp(_ s: TCPSocket) {
        let f = s.timestamping.flags
        guard f & TimestampingFlag.txRecord != 0, s.writeQueue.tail != PacketSlab.none else { return }
        var bits: UInt8 = 0
        if f & TimestampingFlag.txSched != 0 { bits |= TxTimestamp.scheduled }
        if f & TimestampingFlag.txSoftware != 0 { bits |= TxTimestamp.software }
        if f & TimestampingFlag.txAck != 0 { bits |= TxTimestamp.acknowledged }
        let cookie = s.cookie
        tcpSlab.updateMeta(at: s.writeQueue.tail) { m in
            m.txTimestamps |= bits
            m.txTimestampKey = m.tcpEndSeq &- 1
            m.ownerHandle = s.handle
            m.ownerCookie = cookie
        }
    }

    /// Takes a transmit timestamp of `packet` at `stage` (a `TimestampStage`) for the socket that
    /// asked, now, on the stack's clock: a message on its error queue, with a clone of the packet
    /// unless OPT_TSONLY. A socket closed since is skipped. Linux: `__skb_tstamp_tx()` →
    /// `__skb_complete_tx_timestamp()`.
    func txTimestamp(_ packet: borrowing PacketBuffer, stage: UInt32) {
        let h = packet.meta.ownerHandle
        guard let s = tcpSocket(h), s.cookie == packet.meta.ownerCookie, !s.orphaned else { return }
        let f = s.timestamping.flags
        var m = SocketErrorMessage(errno: 42, origin: ErrorOrigin.timestamping, info: stage, timestamp: now)   // ENOMSG
        if f & TimestampingFlag.optID != 0 { m.data = packet.meta.txTimestampKey &- s.timestamping.key }
        if f & TimestampingFlag.optTSOnly != 0 {
            queueError(s, m, payload: nil)
        } else {
            var c = packet.clone()
            // A packet on its way out shares its header area with the queued original, where a
            // retransmission writes its own headers: the message keeps a private copy of the
            // linear part (Linux: tcp_transmit_skb() copies a still-cloned skb instead).
            if stage != TimestampStage.acknowledged { guard c.makeHeaderWritable(headroom: 0) else { return } }
            m.payloadLength = c.length
            queueError(s, m, payload: c)
        }
    }

    /// The acknowledgment timestamp: once the key byte of a buffer that asked for one is
    /// cumulatively acknowledged (by this ACK: from `priorUna` up to `una`). Linux: `tcp_ack_tstamp()`.
    @inline(__always)
    func tcpAckTimestamp(_ s: TCPSocket, slot: Int32, priorUna: UInt32, una: UInt32) {
        let m = tcpSlab.meta(at: slot)
        guard m.txTimestamps & TxTimestamp.acknowledged != 0,
              seqGE(m.txTimestampKey, priorUna), seqLT(m.txTimestampKey, una) else { return }
        let c = tcpSlab.clone(at: slot)
        txTimestamp(c, stage: TimestampStage.acknowledged)
    }
}
