/// CUBIC congestion control (RFC 9438; Linux: `net/ipv4/tcp_cubic.c`, the default since 2.6.19).
///
/// After a loss the window follows `W(t) = C·(t − K)³ + W_max`, with `K = ∛((W_max − cwnd)/C)`,
/// the time the curve takes to climb back to `W_max`; `t` is measured from the start of the
/// congestion-avoidance epoch plus one minimum RTT (Linux aims at the window one RTT ahead).
/// The Reno-friendly estimate (RFC 9438 §4.3; Linux: `tcp_friendliness`) takes over when Reno
/// with β = 0.7 would grow faster, which it does at small RTTs. On loss `ssthresh = 0.7·cwnd`,
/// and with fast convergence (RFC 9438 §4.7) `W_max` is lowered further when the loss came
/// below the previous `W_max`.
///
/// HyStart (Ha & Rhee, "Taming the elephants", 2011; Linux: `hystart_update`) ends slow start
/// early, setting `ssthresh = cwnd`, when either
/// - ACK train: ACKs spaced ≤ 2 ms apart have kept arriving for more than half the minimum RTT
///   since the round began (`HYSTART_ACK_TRAIN`), or
/// - delay: the smallest RTT among a round's samples after its first 8 exceeds the minimum RTT by
///   `clamp(minRTT/8, 4 ms, 16 ms)` (`HYSTART_DELAY`).
///
/// Both start checking only once cwnd ≥ 16 (`hystart_low_window`); below it HyStart does nothing
/// at all, rounds included.
///
/// Rounds: a round ends when `snd_una` passes the `snd_nxt` recorded at its start, so every
/// `AckSample` must carry the sender's `sndUna` (after the ACK) and `sndNxt`. The first ACK with
/// cwnd ≥ 16 after `init` or after a retransmission timeout (without `sndNxt`) starts a round;
/// Linux starts it at that moment with the then `snd_nxt`, which ends at the same ACK in the
/// usual case.
///
/// Differences from Linux, kept small on purpose:
/// - time is in nanoseconds; Linux's jiffies only show up in the "recompute at most once per
///   1 ms tick, and not again within 31 ms unless cwnd moved" rules, which use a 1 ms tick (HZ=1000);
/// - `C` is 0.4 exactly (Linux: `bic_scale` 41 → 410/1024) and the cube root is computed in
///   floating point (Linux: a table plus one Newton step); the curve's offset is truncated to
///   whole segments as Linux does.
/// - the HyStart ACK-train threshold gets no pacing cushion (Linux adds `hystart_ack_delay()`,
///   0 without a pacing rate) and is halved unless `configuration.pacing` says the flow is paced.
public struct Cubic: Sendable, Equatable {
    /// Tunables (Linux: module parameters of `tcp_cubic`).
    public struct Configuration: Sendable, Equatable {
        /// Multiplicative decrease factor in 1/1024 (`beta`, 717 ≈ 0.7; RFC 9438 β_cubic).
        public var beta: UInt32 = 717
        /// Cubic scaling constant C (RFC 9438 §4.2; Linux `bic_scale` 41/102.4 ≈ 0.4).
        public var c: Double = 0.4
        /// `fast_convergence` (RFC 9438 §4.7).
        public var fastConvergence = true
        /// `tcp_friendliness`: the Reno-friendly region (RFC 9438 §4.3).
        public var tcpFriendliness = true
        /// `hystart`.
        public var hystart = true
        /// `hystart_detect & HYSTART_ACK_TRAIN`.
        public var hystartAckTrain = true
        /// `hystart_detect & HYSTART_DELAY`.
        public var hystartDelay = true
        /// `hystart_low_window`: HyStart looks only at windows at least this large.
        public var hystartLowWindow: UInt32 = 16
        /// `hystart_ack_delta_us`: ACKs closer than this belong to one train.
        public var hystartAckDelta: Nanoseconds = 2 * Time.millisecond
        /// Whether the flow is paced (Linux: `sk_pacing_status != SK_PACING_NONE`); unpaced flows
        /// use half the minimum RTT as the ACK-train threshold.
        public var pacing = false

        public init() {}
    }

    /// `HYSTART_MIN_SAMPLES`: RTT samples a round takes before the delay test.
    public static let hystartMinSamples: UInt8 = 8
    /// `HYSTART_DELAY_MIN`, `HYSTART_DELAY_MAX`: bounds of the delay-increase threshold.
    public static let hystartDelayMin: Nanoseconds = 4 * Time.millisecond
    public static let hystartDelayMax: Nanoseconds = 16 * Time.millisecond
    /// Linux's jiffy at HZ=1000.
    static let tick: Nanoseconds = Time.millisecond

    public var configuration: Configuration

    // Linux `struct bictcp`.
    /// Increase cwnd by one after this many ACKed segments (`cnt`).
    public private(set) var cnt: UInt32 = 0
    /// W_max: the window before the last reduction, after fast convergence (`last_max_cwnd`).
    public private(set) var wMax: UInt32 = 0
    /// cwnd when `cnt` was last computed (`last_cwnd`) and the time (`last_time`).
    private var lastCwnd: UInt32 = 0
    private var lastTime: Nanoseconds = 0
    /// The curve's plateau (`bic_origin_point`).
    public private(set) var originPoint: UInt32 = 0
    /// K in seconds (`bic_K`).
    public private(set) var k: Double = 0
    /// Minimum RTT seen, 0 for none (`delay_min`).
    public private(set) var delayMin: Nanoseconds = 0
    /// Start of the congestion-avoidance epoch, nil before it starts (`epoch_start == 0`).
    public private(set) var epochStart: Nanoseconds? = nil
    /// Segments ACKed in this epoch not yet credited to the Reno estimate (`ack_cnt`).
    private var ackCount: UInt32 = 0
    /// The Reno-friendly window estimate W_est (`tcp_cwnd`).
    public private(set) var renoCwnd: UInt32 = 0
    /// HyStart found the exit point (`found`).
    public private(set) var hystartFound = false
    // HyStart round.
    private var roundStart: Nanoseconds = 0
    private var endSeq: UInt32 = 0
    private var roundPending = true
    private var lastAck: Nanoseconds = 0
    private var currRTT: Nanoseconds = .max
    private var sampleCount: UInt8 = 0
    /// The window when the last reduction began (Linux: `tp->prior_cwnd`), for undo.
    public private(set) var priorCwnd: UInt32 = 0
    /// Time of the last ACK seen: the idle-time fallback for `.transmitStart`.
    private var lastAckTime: Nanoseconds? = nil

    /// Linux: `cubictcp_init`. HyStart's first round starts at the first ACK.
    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    // MARK: Linux tcp_congestion_ops

    /// Both halves of ACK processing in Linux's order: `pkts_acked` then `cong_avoid`.
    public mutating func onAck(_ s: AckSample, window: inout CongestionWindow) {
        packetsAcked(s, window: &window)
        congestionAvoid(s, window: &window)
    }

    /// RTT bookkeeping and HyStart for one ACK (Linux: `cubictcp_acked`). Call for every ACK
    /// that acknowledged data, also during recovery, when the sender does not grow cwnd.
    public mutating func packetsAcked(_ s: AckSample, window: inout CongestionWindow) {
        lastAckTime = s.now
        guard let rtt = s.rtt else { return }
        // Delay samples right after a reduction are discarded (the queue is still draining).
        if let e = epochStart, s.now >= e, s.now - e < Time.second { return }
        let delay = max(rtt, 1)
        if delayMin == 0 || delayMin > delay { delayMin = delay }
        if !hystartFound, window.inSlowStart, configuration.hystart {
            hystartUpdate(delay: delay, sample: s, window: &window)
        }
    }

    /// Window growth for one ACK (Linux: `cubictcp_cong_avoid`). The sender calls it only when it
    /// may raise cwnd (Linux: `tcp_may_raise_cwnd`, not during a cwnd reduction).
    public mutating func congestionAvoid(_ s: AckSample, window: inout CongestionWindow) {
        guard s.cwndLimited else { return }
        var acked = s.ackedSegments
        if window.inSlowStart {
            acked = window.slowStart(acked: acked)
            if acked == 0 { return }
        }
        update(cwnd: window.cwnd, acked: acked, now: s.now)
        window.additiveIncrease(per: cnt, acked: acked)
    }

    /// The slow-start threshold after a loss, ending the epoch and setting W_max (Linux:
    /// `cubictcp_recalc_ssthresh`): `max(cwnd·β, 2)`. Records `priorCwnd` for undo.
    public mutating func ssthreshOnLoss(window: CongestionWindow) -> UInt32 {
        let cwnd = window.cwnd
        priorCwnd = cwnd
        epochStart = nil
        if cwnd < wMax, configuration.fastConvergence {
            wMax = UInt32((UInt64(cwnd) * UInt64(1024 + configuration.beta)) / 2048)
        } else {
            wMax = cwnd
        }
        return max(UInt32((UInt64(cwnd) * UInt64(configuration.beta)) / 1024), 2)
    }

    /// Entering the Loss state after a retransmission timeout (Linux: `cubictcp_state(TCP_CA_Loss)`):
    /// forgets everything, W_max and the minimum RTT included, and restarts HyStart. With `sndNxt`
    /// the new round ends when it is acknowledged (Linux); without, it starts at the next ACK.
    public mutating func enterLoss(now: Nanoseconds, sndNxt: UInt32? = nil) {
        let keepConfig = configuration, keepPrior = priorCwnd, keepLastAck = lastAckTime
        self = Cubic(configuration: keepConfig)
        priorCwnd = keepPrior
        lastAckTime = keepLastAck
        if let n = sndNxt { startRound(endSeq: n, now: now) }
    }

    /// Transmission restarts after the application left the connection idle (Linux:
    /// `cubictcp_cwnd_event(CA_EVENT_TX_START)`): the epoch moves forward by the idle time, so
    /// the curve resumes where it stopped instead of jumping ahead. `lastSend` is when data was
    /// last sent (Linux: `tp->lsndtime`); without it the last ACK's time is used.
    public mutating func transmitStart(now: Nanoseconds, lastSend: Nanoseconds? = nil) {
        guard let e = epochStart, let last = lastSend ?? lastAckTime, now > last else { return }
        let shifted = e &+ (now - last)
        epochStart = min(shifted, now)
    }

    /// The window to restore when a reduction proves spurious (Linux: `tcp_reno_undo_cwnd`, which
    /// CUBIC uses too).
    public func undoCwnd(window: CongestionWindow) -> UInt32 {
        max(window.cwnd, priorCwnd)
    }

    /// Starts a HyStart round now, ending when `snd_una` passes `endSeq` (Linux:
    /// `bictcp_hystart_reset`; pass the sender's `snd_nxt`).
    public mutating func startRound(endSeq: UInt32, now: Nanoseconds) {
        roundStart = now
        lastAck = now
        self.endSeq = endSeq
        roundPending = false
        currRTT = .max
        sampleCount = 0
    }

    // MARK: The curve

    /// W_cubic(t) for `t` seconds into the current epoch, in segments, before truncation.
    public func cubicWindow(at t: Double) -> Double {
        let d = t - k
        return Double(originPoint) + configuration.c * d * d * d
    }

    /// Linux: `bictcp_update`: sets `cnt`, the ACKs per one-segment increase.
    private mutating func update(cwnd: UInt32, acked: UInt32, now: Nanoseconds) {
        ackCount &+= acked
        let nowTick = now / Cubic.tick, lastTick = lastTime / Cubic.tick
        if lastCwnd == cwnd, nowTick >= lastTick, nowTick - lastTick <= 1000 / 32 { return }

        // The cubic part is recomputed at most once per tick; a reduction clears epochStart.
        if !(epochStart != nil && nowTick == lastTick) {
            lastCwnd = cwnd
            lastTime = now
            if epochStart == nil {
                epochStart = now
                ackCount = acked
                renoCwnd = cwnd
                if wMax <= cwnd {
                    k = 0
                    originPoint = cwnd
                } else {
                    k = Cubic.cubeRoot(Double(wMax - cwnd) / configuration.c)
                    originPoint = wMax
                }
            }
            // Aim at the window one minimum RTT from now.
            let epoch = epochStart ?? now
            let t = Double((now >= epoch ? now - epoch : 0) + delayMin) / Double(Time.second)
            let offs = t < k ? k - t : t - k
            let rise = configuration.c * offs * offs * offs
            let delta = rise < 4e9 ? Int64(rise) : Int64(4e9)
            let target = t < k ? max(Int64(originPoint) - delta, 0) : Int64(originPoint) + delta
            if target > Int64(cwnd) {
                cnt = UInt32(clamping: Int64(cwnd) / (target - Int64(cwnd)))
            } else {
                cnt = cwnd &* 100  // very small increase
            }
            // Before the first loss the available bandwidth is unknown: at least 5% per RTT.
            if wMax == 0, cnt > 20 { cnt = 20 }
        }

        if configuration.tcpFriendliness {
            // W_est grows by 3(1−β)/(1+β) ≈ 8/15 segment per window of ACKs (RFC 9438 §4.3).
            let b = configuration.beta
            let betaScale = 8 * (1024 + b) / 3 / (1024 - b)
            let perSegment = max(UInt32(clamping: (UInt64(cwnd) * UInt64(betaScale)) >> 3), 1)
            if ackCount > perSegment {
                let n = ackCount / perSegment
                // Linux subtracts while greater-than: an exact multiple keeps one window's worth.
                let steps = ackCount % perSegment == 0 ? n - 1 : n
                ackCount -= steps * perSegment
                renoCwnd &+= steps
            }
            if renoCwnd > cwnd {
                let maxCnt = cwnd / (renoCwnd - cwnd)
                if cnt > maxCnt { cnt = maxCnt }
            }
        }
        // At most one segment per two ACKed: 1.5× per RTT.
        cnt = max(cnt, 2)
    }

    /// Cube root by Newton's method (no libm needed); exact enough for K in seconds.
    static func cubeRoot(_ x: Double) -> Double {
        guard x > 0 else { return 0 }
        var y = Double(sign: .plus, exponent: x.exponent / 3, significand: 1)
        for _ in 0..<100 {
            let next = y - (y * y * y - x) / (3 * y * y)
            if abs(next - y) <= 1e-12 * next { return next }
            y = next
        }
        return y
    }

    // MARK: HyStart

    /// Linux: `hystart_update`.
    private mutating func hystartUpdate(delay: Nanoseconds, sample s: AckSample, window: inout CongestionWindow) {
        // Linux (cubictcp_acked): HyStart runs only from hystart_low_window on, and only then
        // may a round start, so the first round begins at the first ACK with cwnd that large.
        if window.cwnd < configuration.hystartLowWindow { return }
        if roundPending || Int32(bitPattern: s.sndUna &- endSeq) > 0 {
            startRound(endSeq: s.sndNxt, now: s.now)
        }

        if configuration.hystartAckTrain, s.now >= lastAck, s.now - lastAck <= configuration.hystartAckDelta {
            lastAck = s.now
            let threshold = configuration.pacing ? delayMin : delayMin / 2
            if s.now >= roundStart, s.now - roundStart > threshold {
                hystartFound = true
                window.ssthresh = window.cwnd
            }
        }

        if configuration.hystartDelay {
            if currRTT > delay { currRTT = delay }
            if sampleCount < Cubic.hystartMinSamples {
                sampleCount += 1
            } else {
                let margin = min(max(delayMin >> 3, Cubic.hystartDelayMin), Cubic.hystartDelayMax)
                if currRTT > delayMin + margin {
                    hystartFound = true
                    window.ssthresh = window.cwnd
                }
            }
        }
    }
}
