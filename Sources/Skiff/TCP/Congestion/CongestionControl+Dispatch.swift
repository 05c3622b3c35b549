/// A connection's congestion control (Linux: `icsk->icsk_ca_ops` plus the private area
/// `inet_csk_ca(sk)`), chosen by name (Linux: `TCP_CONGESTION`, `tcp_congestion_control`).
///
/// An enum rather than a protocol existential so that dispatch is a switch and no ACK allocates.
///
/// How a sender drives it (Linux `tcp_ack`, `tcp_enter_loss`, `tcp_init_cwnd_reduction`):
/// - every ACK that acknowledges data: `onAck` when cwnd may grow (state Open/Disorder, or Loss
///   after the retransmission), otherwise only `packetsAcked` (during PRR in Recovery/CWR);
/// - fast retransmit: `onEvent(.enterRecovery)`, then PRR reduces cwnd towards `ssthresh`;
/// - RTO: `onEvent(.retransmitTimeout)`; for a further timeout in the same Loss episode pass
///   `repeatedTimeout: true` (Linux keeps the first ssthresh then);
/// - sending with nothing in flight: `onEvent(.transmitStart, lastSend:)`;
/// - recovery ends: the sender sets cwnd = ssthresh itself (Linux `tcp_end_cwnd_reduction`);
///   `onEvent(.recoveryComplete)` changes nothing in Reno or CUBIC.
public enum CongestionControl: Sendable, Equatable {
    case reno(Reno)
    case cubic(Cubic)

    /// Linux: `tcp_assign_congestion_control` + the algorithm's `init`.
    public init(_ name: CongestionAlgorithmName) {
        switch name {
        case .reno: self = .reno(Reno())
        case .cubic: self = .cubic(Cubic())
        }
    }

    /// Linux: `tcp_congestion_ops.name`.
    public var name: CongestionAlgorithmName {
        switch self {
        case .reno: .reno
        case .cubic: .cubic
        }
    }

    /// One ACK: `pkts_acked` then `cong_avoid` (Linux order in `tcp_ack`).
    public mutating func onAck(_ s: AckSample, window: inout CongestionWindow) {
        switch self {
        case .reno(var r):
            r.congestionAvoid(s, window: &window)
            self = .reno(r)
        case .cubic(var c):
            c.onAck(s, window: &window)
            self = .cubic(c)
        }
    }

    /// Only the RTT/HyStart half of ACK processing (Linux: `pkts_acked`), for ACKs during a cwnd
    /// reduction.
    public mutating func packetsAcked(_ s: AckSample, window: inout CongestionWindow) {
        switch self {
        case .reno: break
        case .cubic(var c):
            c.packetsAcked(s, window: &window)
            self = .cubic(c)
        }
    }

    /// The new slow-start threshold for a loss (Linux: `tcp_congestion_ops.ssthresh`).
    public mutating func ssthreshOnLoss(window: CongestionWindow) -> UInt32 {
        switch self {
        case .reno(var r):
            let t = r.ssthreshOnLoss(window: window)
            self = .reno(r)
            return t
        case .cubic(var c):
            let t = c.ssthreshOnLoss(window: window)
            self = .cubic(c)
            return t
        }
    }

    /// A sender event (Linux: `cwnd_event`, `set_state`, and the window changes of
    /// `tcp_enter_loss` / `tcp_init_cwnd_reduction`):
    /// - `.retransmitTimeout`: ssthresh from `ssthreshOnLoss` (unless `repeatedTimeout`), cwnd = 1
    ///   (RFC 5681 loss window; Linux: packets in flight + 1, which is 1 once everything is marked
    ///   lost), `cwndCount` = 0; CUBIC forgets its state (Linux `TCP_CA_Loss`), and HyStart's next
    ///   round ends at `sndNxt` when given;
    /// - `.enterRecovery`: ssthresh from `ssthreshOnLoss`, `cwndCount` = 0; cwnd is left to PRR;
    /// - `.transmitStart`: CUBIC's epoch moves by the idle time since `lastSend`
    ///   (Linux `tp->lsndtime`; default: the last ACK's time);
    /// - `.recoveryComplete`: nothing.
    public mutating func onEvent(_ e: CongestionEvent, window: inout CongestionWindow, now: Nanoseconds,
                                 lastSend: Nanoseconds? = nil, sndNxt: UInt32? = nil,
                                 repeatedTimeout: Bool = false) {
        switch e {
        case .retransmitTimeout:
            if !repeatedTimeout { window.ssthresh = ssthreshOnLoss(window: window) }
            window.cwnd = 1
            window.cwndCount = 0
            if case .cubic(var c) = self {
                c.enterLoss(now: now, sndNxt: sndNxt)
                self = .cubic(c)
            }
        case .enterRecovery:
            window.ssthresh = ssthreshOnLoss(window: window)
            window.cwndCount = 0
        case .transmitStart:
            if case .cubic(var c) = self {
                c.transmitStart(now: now, lastSend: lastSend)
                self = .cubic(c)
            }
        case .recoveryComplete:
            break
        }
    }

    /// The window to restore after a spurious reduction (Linux: `undo_cwnd`).
    public func undoCwnd(window: CongestionWindow) -> UInt32 {
        switch self {
        case .reno(let r): r.undoCwnd(window: window)
        case .cubic(let c): c.undoCwnd(window: window)
        }
    }

    /// Slow start after idle (RFC 5681 §4.1, RFC 2861; Linux: `tcp_slow_start_after_idle_check` +
    /// `tcp_cwnd_restart`, when `net.ipv4.tcp_slow_start_after_idle` is 1 and nothing is in
    /// flight). If the connection sat idle for more than one RTO, ssthresh is raised to at least
    /// ¾ cwnd (Linux `tcp_current_ssthresh` in the Open state) and cwnd is halved for each RTO of
    /// idle time beyond the first, but not below the restart window `min(initialWindow, cwnd)`.
    /// Returns whether the window was restarted.
    @discardableResult
    public static func restartWindow(window: inout CongestionWindow, idle: Nanoseconds, rto: Nanoseconds,
                                     initialWindow: UInt32 = 10) -> Bool {
        guard rto > 0, idle > rto else { return false }
        window.ssthresh = max(window.ssthresh, (window.cwnd >> 1) + (window.cwnd >> 2))
        let restart = min(initialWindow, window.cwnd)
        var cwnd = window.cwnd
        var remaining = idle - rto
        while remaining > 0, cwnd > restart {
            cwnd >>= 1
            remaining = remaining > rto ? remaining - rto : 0
        }
        window.cwnd = max(cwnd, restart)
        return true
    }
}
