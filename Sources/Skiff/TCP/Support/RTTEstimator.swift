/// Round-trip time estimation and the retransmission timeout (RFC 6298; Linux:
/// `tcp_rtt_estimator`, `tcp_set_rto`, `tcp_bound_rto`, `inet_csk_rto_backoff`).
///
/// - First sample R: SRTT = R, RTTVAR = R/2 (RFC 6298 §2.2; Linux sets `mdev` = 2R, the same).
/// - Later samples R': RTTVAR = ¾·RTTVAR + ¼·|SRTT − R'|, then SRTT = ⅞·SRTT + ⅛·R' (RFC 6298
///   §2.3). Linux tracks the same quantities (scaled `srtt_us`, `mdev_us`) but damps `mdev` when
///   the RTT falls and lets the variance term decay only once per flight (`mdev_max_us`,
///   `rtt_seq`); this estimator keeps the plain RFC gains, which need no sequence numbers.
/// - RTO = SRTT + max(4·RTTVAR, 200 ms), at most 120 s. The floor sits on the variance term as in
///   Linux (`rttvar_us ≥ tcp_rto_min`, `TCP_RTO_MIN`), not on the whole RTO as RFC 6298's 1 s
///   minimum would; `TCP_RTO_MAX` is 120 s.
/// - Before any sample RTO is 1 s (RFC 6298 §2.1; Linux `TCP_TIMEOUT_INIT`).
/// - `backoff()` doubles the RTO up to the maximum (RFC 6298 §5.5); a new sample ends the backoff
///   (Linux clears `icsk_backoff` in `tcp_ack_update_rtt`).
/// - `minRTT` is a windowed minimum over the last 5 minutes (Linux: `tcp_min_rtt_wlen` 300 s,
///   `minmax_running_min`, Kathleen Nichols' three-sample windowed filter) when samples come with
///   their time; with `now` left at 0 it is the all-time minimum.
public struct RTTEstimator: Sendable, Equatable {
    /// Linux `TCP_RTO_MIN`.
    public static let defaultMinRTO: Nanoseconds = 200 * Time.millisecond
    /// Linux `TCP_RTO_MAX`.
    public static let defaultMaxRTO: Nanoseconds = 120 * Time.second
    /// RFC 6298 §2.1, Linux `TCP_TIMEOUT_INIT`.
    public static let defaultInitialRTO: Nanoseconds = Time.second
    /// RFC 6298 §5.7, Linux `TCP_TIMEOUT_FALLBACK`: the RTO once the connection is established
    /// when the SYN or SYN-ACK had to be retransmitted and no RTT was measured.
    public static let fallbackRTO: Nanoseconds = 3 * Time.second
    /// Linux `sysctl_tcp_min_rtt_wlen` (300 s).
    public static let defaultMinRTTWindow: Nanoseconds = 300 * Time.second

    public let minRTO: Nanoseconds
    public let maxRTO: Nanoseconds
    public let minRTTWindow: Nanoseconds

    /// Smoothed RTT, nil before the first sample.
    public private(set) var srtt: Nanoseconds?
    /// RTT variation (RFC 6298 RTTVAR; Linux `mdev_us / 4`).
    public private(set) var rttvar: Nanoseconds = 0
    /// The timeout before backoff (Linux: what `tcp_set_rto` computes).
    public private(set) var baseRTO: Nanoseconds
    /// Timeouts since the last sample (Linux: `icsk_backoff`).
    public private(set) var backoffCount: UInt32 = 0
    /// The windowed minimum RTT.
    private var minFilter = WindowedMinimum()

    public init(minRTO: Nanoseconds = RTTEstimator.defaultMinRTO, maxRTO: Nanoseconds = RTTEstimator.defaultMaxRTO,
                initialRTO: Nanoseconds = RTTEstimator.defaultInitialRTO,
                minRTTWindow: Nanoseconds = RTTEstimator.defaultMinRTTWindow) {
        self.minRTO = minRTO
        self.maxRTO = maxRTO
        self.minRTTWindow = minRTTWindow
        self.baseRTO = min(initialRTO, maxRTO)
    }

    /// The current retransmission timeout, backoff included (Linux: `icsk_rto`).
    public var rto: Nanoseconds {
        var r = baseRTO
        var n = backoffCount
        while n > 0, r < maxRTO {
            r = r > maxRTO / 2 ? maxRTO : r * 2
            n -= 1
        }
        return min(r, maxRTO)
    }

    /// The smallest RTT in the window, nil before the first sample (Linux: `tcp_min_rtt`).
    public var minRTT: Nanoseconds? { minFilter.value }

    /// Takes one RTT measurement (Karn's rule already applied by the caller). `now` feeds the
    /// minimum-RTT window.
    public mutating func sample(_ rtt: Nanoseconds, now: Nanoseconds = 0) {
        let r = max(rtt, 1)
        minFilter.update(r, now: now, window: minRTTWindow)
        if let s = srtt {
            let err = s > r ? s - r : r - s
            rttvar = (3 * rttvar + err) / 4
            srtt = max((7 * s + r) / 8, 1)
        } else {
            srtt = r
            rttvar = r / 2
        }
        let variance = rttvar > (UInt64.max / 8) ? UInt64.max / 8 : 4 * rttvar
        baseRTO = min(srtt! + max(variance, minRTO), maxRTO)
        backoffCount = 0
    }

    /// A retransmission timer expired: double the RTO, capped at the maximum (RFC 6298 §5.5;
    /// Linux `icsk_backoff++`, `inet_csk_rto_backoff`).
    public mutating func backoff() {
        if backoffCount < .max { backoffCount += 1 }
    }

    /// Ends the backoff without a new sample (Linux: `icsk_backoff = 0`, e.g. after a window probe
    /// is answered).
    public mutating func resetBackoff() { backoffCount = 0 }

    /// Uses the 3 s fallback timeout when the handshake needed retransmissions and produced no
    /// RTT sample (RFC 6298 §5.7; Linux `tcp_init_transfer`).
    public mutating func useFallbackTimeout() {
        if srtt == nil { baseRTO = min(RTTEstimator.fallbackRTO, maxRTO) }
    }
}

/// A running minimum over a sliding time window, kept as the best, second-best and third-best
/// candidates from successive parts of the window (Kathleen Nichols' algorithm; Linux:
/// `lib/minmax.c`, `minmax_running_min`). Fixed size, no allocation.
public struct WindowedMinimum: Sendable, Equatable {
    private var t0: Nanoseconds = 0, v0: Nanoseconds = .max
    private var t1: Nanoseconds = 0, v1: Nanoseconds = .max
    private var t2: Nanoseconds = 0, v2: Nanoseconds = .max

    public init() {}

    /// The minimum, nil before any measurement.
    public var value: Nanoseconds? { v0 == .max ? nil : v0 }

    private mutating func reset(_ v: Nanoseconds, _ t: Nanoseconds) {
        (t0, v0, t1, v1, t2, v2) = (t, v, t, v, t, v)
    }

    /// Adds measurement `v` taken at `now`; measurements older than `window` expire.
    public mutating func update(_ v: Nanoseconds, now t: Nanoseconds, window: Nanoseconds) {
        // A new minimum, or every candidate expired: start over.
        if v <= v0 || t &- t2 > window {
            reset(v, t)
            return
        }
        if v <= v1 {
            (t1, v1, t2, v2) = (t, v, t, v)
        } else if v <= v2 {
            (t2, v2) = (t, v)
        }
        let age = t &- t0
        if age > window {
            // The best expired: promote the others, the new measurement becoming the third.
            (t0, v0, t1, v1, t2, v2) = (t1, v1, t2, v2, t, v)
            if t &- t0 > window {
                (t0, v0, t1, v1, t2, v2) = (t1, v1, t2, v2, t, v)
            }
        } else if t1 == t0, age > window / 4 {
            // A quarter window without a second choice: take one from the second quarter.
            (t1, v1, t2, v2) = (t, v, t, v)
        } else if t2 == t1, age > window / 2 {
            // Half a window without a third choice: take one from the second half.
            (t2, v2) = (t, v)
        }
    }
}
