/// What the sender learned from one ACK, for congestion control (Linux: `struct ack_sample` and
/// `struct rate_sample`, plus the arguments of `cong_avoid`).
public struct AckSample: Sendable {
    /// Segments newly acknowledged (cumulatively or by SACK) by this ACK.
    public var ackedSegments: UInt32
    /// RTT measured from this ACK, if any (Karn's rule already applied).
    public var rtt: Nanoseconds?
    /// Segments in flight before this ACK was processed (Linux: `tcp_packets_in_flight`).
    public var inFlight: UInt32
    /// True when the sender was limited by cwnd, not by the application (Linux: `tcp_is_cwnd_limited`).
    public var cwndLimited: Bool
    /// The time the ACK was processed.
    public var now: Nanoseconds
    /// The sender's `snd_una` after this ACK was processed (Linux: `tp->snd_una`). Cubic's HyStart
    /// ends a round when this passes the `snd_nxt` recorded at the round's start.
    public var sndUna: UInt32
    /// The sender's `snd_nxt` when this ACK was processed (Linux: `tp->snd_nxt`): the end of the
    /// next HyStart round.
    public var sndNxt: UInt32

    /// `sndUna` and `sndNxt` only matter to Cubic's HyStart; a sender using Cubic must pass them
    /// (left at 0, a HyStart round never ends after the first ACK).
    public init(ackedSegments: UInt32, rtt: Nanoseconds?, inFlight: UInt32, cwndLimited: Bool, now: Nanoseconds,
                sndUna: UInt32 = 0, sndNxt: UInt32 = 0) {
        self.ackedSegments = ackedSegments; self.rtt = rtt; self.inFlight = inFlight
        self.cwndLimited = cwndLimited; self.now = now; self.sndUna = sndUna; self.sndNxt = sndNxt
    }
}

/// The window state congestion control reads and changes (Linux: fields of `struct tcp_sock`).
public struct CongestionWindow: Sendable, Equatable {
    /// Congestion window in segments (Linux: `snd_cwnd`).
    public var cwnd: UInt32
    /// Slow-start threshold in segments (Linux: `snd_ssthresh`); starts "infinite".
    public var ssthresh: UInt32
    /// ACKed segments counted towards the next cwnd increase in congestion avoidance
    /// (Linux: `snd_cwnd_cnt`).
    public var cwndCount: UInt32
    /// Upper clamp (Linux: `snd_cwnd_clamp`).
    public var clamp: UInt32

    /// Linux: `TCP_INFINITE_SSTHRESH`.
    public static let infiniteSSThresh: UInt32 = 0x7fff_ffff

    /// Initial window 10 (RFC 6928, Linux `TCP_INIT_CWND`).
    public init(cwnd: UInt32 = 10, ssthresh: UInt32 = CongestionWindow.infiniteSSThresh, clamp: UInt32 = 0xffff_ffff) {
        self.cwnd = cwnd; self.ssthresh = ssthresh; self.cwndCount = 0; self.clamp = clamp
    }

    public var inSlowStart: Bool { cwnd < ssthresh }
}

/// Events the sender reports to congestion control (Linux: `enum tcp_ca_event` and `set_state`).
public enum CongestionEvent: Sendable, Equatable {
    /// Transmission starts after an idle period (Linux: `CA_EVENT_TX_START`).
    case transmitStart
    /// Entering loss recovery (fast retransmit) (Linux: `TCP_CA_Recovery`).
    case enterRecovery
    /// Retransmission timeout (Linux: `TCP_CA_Loss`).
    case retransmitTimeout
    /// Recovery or loss state left: back to `TCP_CA_Open`.
    case recoveryComplete
}

/// The congestion control algorithms (Linux: a `tcp_congestion_ops` each, chosen by name with
/// `TCP_CONGESTION`).
public enum CongestionAlgorithmName: String, Sendable, CaseIterable {
    case reno, cubic
}
