/// The window arithmetic every algorithm shares (Linux: `net/ipv4/tcp_cong.c`).
extension CongestionWindow {
    /// Slow start (RFC 5681 §3.1; Linux: `tcp_slow_start`): cwnd grows by one segment per segment
    /// acknowledged, but not past `ssthresh` (nor `clamp`). Returns the acknowledged segments left
    /// over once cwnd reached `ssthresh`, which the caller feeds to congestion avoidance.
    @inline(__always)
    public mutating func slowStart(acked: UInt32) -> UInt32 {
        let grown = min(UInt64(cwnd) + UInt64(acked), UInt64(ssthresh))
        let used = grown > UInt64(cwnd) ? UInt32(grown - UInt64(cwnd)) : 0
        cwnd = UInt32(min(grown, UInt64(clamp)))
        return acked - min(used, acked)
    }

    /// Additive increase (RFC 5681 §3.1; Linux: `tcp_cong_avoid_ai`): one segment more for every
    /// `w` segments acknowledged, counted in `cwndCount`. Credit accumulated while `w` was larger
    /// is spent first, one segment at a time.
    @inline(__always)
    public mutating func additiveIncrease(per w: UInt32, acked: UInt32) {
        let w = max(w, 1)
        if cwndCount >= w {
            cwndCount = 0
            cwnd &+= 1
        }
        cwndCount &+= acked
        if cwndCount >= w {
            let delta = cwndCount / w
            cwndCount -= delta * w
            cwnd = UInt32(min(UInt64(cwnd) + UInt64(delta), UInt64(UInt32.max)))
        }
        cwnd = min(cwnd, clamp)
    }
}

/// TCP Reno/NewReno window growth (RFC 5681; Linux: `tcp_reno_cong_avoid`, `tcp_reno_ssthresh`,
/// `tcp_reno_undo_cwnd` in `net/ipv4/tcp_cong.c`).
///
/// Slow start until `ssthresh`, then one segment per window of ACKed segments; on loss `ssthresh`
/// becomes half the window (at least 2). Growth happens only while the sender is cwnd-limited
/// (RFC 7661's spirit; Linux: `tcp_is_cwnd_limited`).
public struct Reno: Sendable, Equatable {
    /// The window when the last reduction began (Linux: `tp->prior_cwnd`), for undo.
    public private(set) var priorCwnd: UInt32 = 0

    public init() {}

    /// Window growth for one ACK (Linux: `tcp_reno_cong_avoid`).
    public mutating func congestionAvoid(_ s: AckSample, window: inout CongestionWindow) {
        guard s.cwndLimited else { return }
        var acked = s.ackedSegments
        if window.inSlowStart {
            acked = window.slowStart(acked: acked)
            if acked == 0 { return }
        }
        window.additiveIncrease(per: window.cwnd, acked: acked)
    }

    /// The slow-start threshold after a loss (RFC 5681 eq. 4 with FlightSize ≈ cwnd; Linux:
    /// `tcp_reno_ssthresh`): `max(cwnd / 2, 2)`. Records `priorCwnd` for undo.
    public mutating func ssthreshOnLoss(window: CongestionWindow) -> UInt32 {
        priorCwnd = window.cwnd
        return max(window.cwnd >> 1, 2)
    }

    /// The window to restore when a reduction proves spurious (Linux: `tcp_reno_undo_cwnd`).
    public func undoCwnd(window: CongestionWindow) -> UInt32 {
        max(window.cwnd, priorCwnd)
    }
}
