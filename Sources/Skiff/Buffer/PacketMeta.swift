/// Metadata a buffer carries down (or up) the path. Copied by a clone; never shared.
/// Linux: the control fields of `struct sk_buff` (`protocol`, `priority`, `queue_mapping`,
/// `hash`, `network_header`, `gso_size`, `mark`, `tstamp`, `dev`).
public struct PacketMeta: Sendable {
    /// EtherType of the network-layer payload (Linux: `skb->protocol`).
    public var protocolType: UInt16 = 0
    /// Interface the packet goes out of or came in on (Linux: `skb->dev`).
    public var interfaceIndex: UInt16 = 0
    /// TX or RX queue on that interface (Linux: `skb->queue_mapping`).
    public var queue: UInt16 = 0
    /// Qdisc band priority, derived from TOS (Linux: `skb->priority`).
    public var priority: UInt8 = 0
    /// IP protocol of the transport payload, for taps and GSO.
    public var ipProtocol: UInt8 = 0
    /// Flow hash over addresses and ports (Linux: `skb->hash`); 0 = not computed.
    public var flowHash: UInt32 = 0
    /// Nonzero when the packet is traced; indexes the trace recorder.
    public var traceID: UInt32 = 0
    /// Offset of the network header from `data` when it was set (Linux: `network_header`).
    public var networkOffset: Int16 = -1
    /// Offset of the transport header from `data` when it was set (Linux: `transport_header`).
    public var transportOffset: Int16 = -1
    /// Segment payload size for GSO packets; 0 = not a GSO packet (Linux: `gso_size`).
    public var gsoSize: UInt16 = 0
    /// Next-hop address chosen by routing (Linux: `rt_nexthop`).
    public var nextHop: UInt32 = 0
    /// Firewall mark (Linux: `skb->mark`).
    public var mark: UInt32 = 0
    /// Time the packet was queued or received, nanoseconds on the stack's clock (Linux: `tstamp`).
    public var timestamp: UInt64 = 0
    /// Set when the transport checksum is still to be filled in by the device or GSO
    /// (Linux: `CHECKSUM_PARTIAL`).
    public var checksumPartial: Bool = false
    /// Set on receive when the device vouched for the transport checksum, so it is not verified
    /// again (Linux: `CHECKSUM_UNNECESSARY`).
    public var checksumValid: Bool = false
    /// TCP control block (Linux: `TCP_SKB_CB(skb)`): the first sequence number of the segment.
    public var tcpSeq: UInt32 = 0
    /// Sequence number after the segment (SYN and FIN count one).
    public var tcpEndSeq: UInt32 = 0
    /// TCP flags of the segment.
    public var tcpFlags: UInt8 = 0
    /// Scoreboard bits (Linux: `TCPCB_SACKED_ACKED` 1, `TCPCB_SACKED_RETRANS` 2, `TCPCB_LOST` 4,
    /// `TCPCB_EVER_RETRANS` 0x10).
    public var tcpSacked: UInt8 = 0
    /// Segments this buffer counts for once sent: its payload in MSS-sized pieces, at least one
    /// (Linux: `tcp_skb_pcount()`, `tcp_gso_segs`).
    public var tcpSegments: UInt16 = 1
    /// The application ended a record here (MSG_EOR): later writes start a new buffer
    /// (Linux: `TCP_SKB_CB(skb)->eor`, `tcp_skb_can_collapse_to()`).
    public var tcpEndOfRecord: Bool = false
    /// The bytes in front of `data` belong to another buffer (this one was split off or
    /// trimmed at the front), so headers must not be pushed there: a transmission builds its
    /// headers in a buffer of its own and references this one's bytes.
    public var sharedHeadroom: Bool = false
    /// Transmit timestamps this packet asks for, `TxTimestamp` bits (Linux: the SKBTX_SCHED_TSTAMP
    /// and SKBTX_SW_TSTAMP bits of `skb_shinfo(skb)->tx_flags`, and `TCP_SKB_CB(skb)->txstamp_ack`);
    /// 0 for nearly every packet.
    public var txTimestamps: UInt8 = 0
    /// The sequence number of the byte the timestamps are for (Linux: `skb_shinfo(skb)->tskey`).
    public var txTimestampKey: UInt32 = 0
    /// The socket a timestamp goes to: its handle and the cookie that tells it from a later socket
    /// on the same handle (Linux: `skb->sk`). Meaningful only with `txTimestamps`.
    public var ownerHandle: Int32 = -1
    public var ownerCookie: UInt32 = 0
    /// Fragments the bytes of MSG_ZEROCOPY sends would take in this write-queue buffer (user
    /// pages, Linux: `skb_shinfo(skb)->nr_frags` of a zerocopy skb); 0 when it has none.
    public var tcpZerocopyFragments: UInt8 = 0

    public init() {}
}
