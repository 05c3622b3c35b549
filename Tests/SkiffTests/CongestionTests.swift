import Testing
@testable import Skiff

/// Reno, CUBIC (curve, fast convergence, Reno-friendly region, HyStart) and the dispatch enum,
/// driven with ACKs on virtual time.
struct CongestionTests {
    static let ms = Time.millisecond

    static func ack(_ n: UInt32 = 1, rtt: Nanoseconds? = nil, limited: Bool = true, now: Nanoseconds,
                    una: UInt32 = 0, nxt: UInt32 = 0) -> AckSample {
        AckSample(ackedSegments: n, rtt: rtt, inFlight: 0, cwndLimited: limited, now: now, sndUna: una, sndNxt: nxt)
    }

    // MARK: Reno

    @Test func renoSlowStartDoublesPerRTT() {
        var r = Reno()
        var w = CongestionWindow()
        for i in 0..<10 { r.congestionAvoid(Self.ack(now: UInt64(i)), window: &w) }
        #expect(w.cwnd == 20)
        #expect(w.cwndCount == 0)
        for i in 0..<20 { r.congestionAvoid(Self.ack(now: UInt64(i)), window: &w) }
        #expect(w.cwnd == 40)
    }

    @Test func renoSlowStartLeftoverGoesToCongestionAvoidance() {
        var r = Reno()
        var w = CongestionWindow(cwnd: 10, ssthresh: 12)
        // 5 acked: 2 take cwnd to ssthresh, 3 count towards the next increase.
        r.congestionAvoid(Self.ack(5, now: 0), window: &w)
        #expect(w.cwnd == 12)
        #expect(w.cwndCount == 3)
        #expect(!w.inSlowStart)
    }

    @Test func renoCongestionAvoidanceOnePerWindow() {
        var r = Reno()
        var w = CongestionWindow(cwnd: 20, ssthresh: 20)
        for i in 0..<19 { r.congestionAvoid(Self.ack(now: UInt64(i)), window: &w) }
        #expect(w.cwnd == 20)
        #expect(w.cwndCount == 19)
        r.congestionAvoid(Self.ack(now: 19), window: &w)
        #expect(w.cwnd == 21)
        #expect(w.cwndCount == 0)
        // A stretch ACK of 43 at cwnd 21: two increases, one left.
        r.congestionAvoid(Self.ack(43, now: 20), window: &w)
        #expect(w.cwnd == 23)
        #expect(w.cwndCount == 1)
    }

    @Test func renoNoGrowthWhenApplicationLimited() {
        var r = Reno()
        var w = CongestionWindow()
        for i in 0..<50 { r.congestionAvoid(Self.ack(limited: false, now: UInt64(i)), window: &w) }
        #expect(w == CongestionWindow())
        var ca = CongestionWindow(cwnd: 30, ssthresh: 20)
        for i in 0..<100 { r.congestionAvoid(Self.ack(limited: false, now: UInt64(i)), window: &ca) }
        #expect(ca.cwnd == 30)
        #expect(ca.cwndCount == 0)
    }

    @Test func renoClamp() {
        var r = Reno()
        var w = CongestionWindow(cwnd: 10, clamp: 15)
        r.congestionAvoid(Self.ack(10, now: 0), window: &w)
        #expect(w.cwnd == 15)
    }

    @Test func renoSSThreshAndUndo() {
        var cc = CongestionControl(.reno)
        #expect(cc.name == .reno)
        var w = CongestionWindow(cwnd: 41, ssthresh: 100)
        cc.onEvent(.enterRecovery, window: &w, now: 0)
        #expect(w.ssthresh == 20)
        #expect(w.cwnd == 41)  // PRR's job
        w.cwnd = 20
        #expect(cc.undoCwnd(window: w) == 41)
        var small = CongestionWindow(cwnd: 3)
        #expect(cc.ssthreshOnLoss(window: small) == 2)
        cc.onEvent(.retransmitTimeout, window: &small, now: 0)
        #expect(small.cwnd == 1)
        #expect(small.ssthresh == 2)
    }

    // MARK: Restart after idle

    @Test func restartWindowHalvesPerRTO() {
        let rto = 300 * Self.ms
        var w = CongestionWindow(cwnd: 100, ssthresh: 50)
        // Idle not longer than one RTO: nothing.
        #expect(!CongestionControl.restartWindow(window: &w, idle: rto, rto: rto))
        #expect(w.cwnd == 100)
        // 2.5 RTOs idle: two halvings (idle − RTO and idle − 2·RTO are > 0), ssthresh ≥ ¾ cwnd.
        #expect(CongestionControl.restartWindow(window: &w, idle: rto * 5 / 2, rto: rto))
        #expect(w.cwnd == 25)
        #expect(w.ssthresh == 75)
        // Long idle: down to the initial window, no further.
        var v = CongestionWindow(cwnd: 100, ssthresh: 50)
        CongestionControl.restartWindow(window: &v, idle: 100 * rto, rto: rto)
        #expect(v.cwnd == 10)
        // A window already below the initial window stays.
        var s = CongestionWindow(cwnd: 4, ssthresh: 50)
        CongestionControl.restartWindow(window: &s, idle: 100 * rto, rto: rto)
        #expect(s.cwnd == 4)
    }

    // MARK: CUBIC

    /// Drives a cwnd-limited CUBIC flow: every RTT the whole window is ACKed, one segment per ACK,
    /// spread evenly. Returns the window after `duration`.
    static func run(_ cc: inout CongestionControl, _ w: inout CongestionWindow, from start: Nanoseconds,
                    duration: Nanoseconds, rtt: Nanoseconds,
                    observe: (Nanoseconds, CongestionWindow) -> Void = { _, _ in }) -> Nanoseconds {
        var t = start
        while t < start + duration {
            let n = w.cwnd
            for i in 0..<n {
                let now = t + rtt * UInt64(i) / UInt64(n)
                cc.onAck(ack(rtt: rtt, now: now), window: &w)
            }
            t += rtt
            observe(t, w)
        }
        return t
    }

    @Test func cubicSSThreshAndCurve() {
        var cc = CongestionControl(.cubic)
        var w = CongestionWindow(cwnd: 100, ssthresh: 1000)
        cc.onEvent(.enterRecovery, window: &w, now: 0)
        #expect(w.ssthresh == 70)  // 100·717/1024
        guard case .cubic(let c0) = cc else { Issue.record("not cubic"); return }
        #expect(c0.wMax == 100)
        w.cwnd = w.ssthresh  // recovery over

        let rtt = 100 * Self.ms
        let start = 10 * Time.second
        let k = Cubic.cubeRoot(100.0 * (1 - 0.7) / 0.4)  // ∛75 s
        #expect(abs(k - 4.217163) < 1e-5)
        var worst = 0.0
        var atK: UInt32 = 0
        _ = Self.run(&cc, &w, from: start, duration: 8 * Time.second, rtt: rtt) { t, w in
            // Linux aims one minimum RTT ahead: compare with W(t + RTT) of the continuous curve.
            let since = Double(t - start) / 1e9
            let model = 0.4 * Self.pow3(since + 0.1 - k) + 100
            if since > 1.5 { worst = max(worst, abs(Double(w.cwnd) - model)) }
            if atK == 0, since >= k { atK = w.cwnd }
        }
        guard case .cubic(let c) = cc else { return }
        #expect(abs(c.k - k) < 1e-9)
        #expect(c.originPoint == 100)
        #expect(atK >= 99 && atK <= 101)
        // Within two segments of the curve all the way (concave and convex regions).
        #expect(worst <= 2.0)
        // 8 s in: W(8.1) = 0.4·(8.1 − 4.217)³ + 100 ≈ 123.4.
        #expect(w.cwnd >= 122 && w.cwnd <= 124)
    }

    static func pow3(_ x: Double) -> Double { x * x * x }

    @Test func cubicFastConvergence() {
        var c = Cubic()
        var w = CongestionWindow(cwnd: 100)
        #expect(c.ssthreshOnLoss(window: w) == 70)
        #expect(c.wMax == 100)
        // Loss again below the previous W_max: W_max = 90·(1 + 0.7)/2 = 76 (1741/2048).
        w.cwnd = 90
        #expect(c.ssthreshOnLoss(window: w) == 63)
        #expect(c.wMax == 76)
        // Above it: W_max is the window.
        w.cwnd = 120
        #expect(c.ssthreshOnLoss(window: w) == 84)
        #expect(c.wMax == 120)
        // Without fast convergence.
        var cfg = Cubic.Configuration()
        cfg.fastConvergence = false
        var d = Cubic(configuration: cfg)
        _ = d.ssthreshOnLoss(window: CongestionWindow(cwnd: 100))
        _ = d.ssthreshOnLoss(window: CongestionWindow(cwnd: 90))
        #expect(d.wMax == 90)
    }

    @Test func cubicRenoFriendlyAtSmallRTT() {
        var cc = CongestionControl(.cubic)
        var w = CongestionWindow(cwnd: 100, ssthresh: 1000)
        cc.onEvent(.enterRecovery, window: &w, now: 0)
        w.cwnd = w.ssthresh
        let rtt = Self.ms
        _ = Self.run(&cc, &w, from: Time.second, duration: Time.second, rtt: rtt)
        // The cubic curve alone: W(1.001 s) = 0.4·(1.001 − 4.217)³ + 100 ≈ 86.7. Reno with
        // β = 0.7 gains 8/15 segment per RTT: 70 + 1000·8/15 ≈ 603.
        guard case .cubic(let c) = cc else { Issue.record("not cubic"); return }
        #expect(c.renoCwnd >= 595 && c.renoCwnd <= 604)
        #expect(w.cwnd >= 595 && w.cwnd <= 604)
        #expect(Double(w.cwnd) > c.cubicWindow(at: 1.001) + 400)

        // Without the Reno-friendly region the window stays near the curve.
        var cfg = Cubic.Configuration()
        cfg.tcpFriendliness = false
        var plain = CongestionControl.cubic(Cubic(configuration: cfg))
        var v = CongestionWindow(cwnd: 100, ssthresh: 1000)
        plain.onEvent(.enterRecovery, window: &v, now: 0)
        v.cwnd = v.ssthresh
        _ = Self.run(&plain, &v, from: Time.second, duration: Time.second, rtt: rtt)
        #expect(v.cwnd >= 86 && v.cwnd <= 88)
    }

    @Test func cubicNoGrowthWhenApplicationLimited() {
        var c = Cubic()
        var w = CongestionWindow(cwnd: 50, ssthresh: 40)
        for i in 0..<500 { c.onAck(Self.ack(rtt: 10 * Self.ms, limited: false, now: UInt64(i) * Self.ms), window: &w) }
        #expect(w.cwnd == 50)
        #expect(c.epochStart == nil)
    }

    @Test func cubicEpochShiftAfterIdle() {
        var cc = CongestionControl(.cubic)
        var w = CongestionWindow(cwnd: 100, ssthresh: 1000)
        cc.onEvent(.enterRecovery, window: &w, now: 0)
        w.cwnd = w.ssthresh
        let t = Self.run(&cc, &w, from: Time.second, duration: Time.second, rtt: 100 * Self.ms)
        guard case .cubic(let before) = cc, let e = before.epochStart else { Issue.record("no epoch"); return }
        #expect(e == Time.second)
        // 5 s idle since the last send: the epoch moves 5 s later, no further than now.
        cc.onEvent(.transmitStart, window: &w, now: t + 5 * Time.second, lastSend: t)
        guard case .cubic(let after) = cc else { return }
        #expect(after.epochStart == e + 5 * Time.second)
        // A transmit start without an epoch (slow start) changes nothing.
        var fresh = CongestionControl(.cubic)
        var v = CongestionWindow()
        fresh.onEvent(.transmitStart, window: &v, now: 9 * Time.second, lastSend: Time.second)
        #expect(fresh == CongestionControl(.cubic))
        #expect(v == CongestionWindow())
    }

    @Test func cubicRetransmitTimeoutResets() {
        var cc = CongestionControl(.cubic)
        var w = CongestionWindow(cwnd: 100, ssthresh: 1000)
        cc.onEvent(.retransmitTimeout, window: &w, now: 0, sndNxt: 5000)
        #expect(w.ssthresh == 70)
        #expect(w.cwnd == 1)
        guard case .cubic(let c) = cc else { Issue.record("not cubic"); return }
        // Linux: TCP_CA_Loss wipes W_max and the epoch (bictcp_reset).
        #expect(c.wMax == 0)
        #expect(c.epochStart == nil)
        #expect(c.priorCwnd == 100)
        #expect(cc.undoCwnd(window: w) == 100)
        // A second timeout in the same episode keeps ssthresh.
        cc.onEvent(.retransmitTimeout, window: &w, now: 1, repeatedTimeout: true)
        #expect(w.ssthresh == 70)
        #expect(w.cwnd == 1)
    }

    // MARK: HyStart

    /// Slow start at cwnd 16 with RTTs rising from 100 ms to 120 ms in the second round: the
    /// delay test (threshold clamp(100/8, 4, 16) = 12.5 ms) fires on the round's ninth sample.
    @Test func hystartDelayExit() {
        var c = Cubic()
        var w = CongestionWindow(cwnd: 16)
        let base = 100 * Self.ms
        var now: Nanoseconds = Time.second
        var una: UInt32 = 1000, nxt: UInt32 = 1000 + 16
        // Round 1: 16 ACKs 5 ms apart (no ACK train), RTT 100 ms.
        for _ in 0..<16 {
            una += 1; nxt += 2
            c.onAck(Self.ack(rtt: base, now: now, una: una, nxt: nxt), window: &w)
            now += 5 * Self.ms
        }
        #expect(!c.hystartFound)
        #expect(c.delayMin == base)
        #expect(w.cwnd == 32)
        #expect(w.inSlowStart)
        // Round 2: snd_una passes the first round's end (the snd_nxt of its first ACK, 1018);
        // RTT 120 ms.
        una = 1018
        var exitCwnd: UInt32 = 0
        for i in 0..<20 {
            una += 1; nxt += 2
            let before = w.cwnd
            c.onAck(Self.ack(rtt: base + 20 * Self.ms, now: now, una: una, nxt: nxt), window: &w)
            now += 5 * Self.ms
            if c.hystartFound { exitCwnd = before; #expect(i == 8); break }
        }
        #expect(c.hystartFound)
        #expect(w.ssthresh == exitCwnd)
        #expect(exitCwnd == 40)  // 32 + 8 ACKs before the ninth sample
        #expect(!w.inSlowStart)
    }

    /// RTT samples within the threshold do not end slow start.
    @Test func hystartDelayBelowThreshold() {
        var c = Cubic()
        var w = CongestionWindow(cwnd: 16)
        var now: Nanoseconds = Time.second
        var una: UInt32 = 0, nxt: UInt32 = 16
        for round in 0..<3 {
            let end = nxt + 2  // the round's end: snd_nxt at its first ACK
            for _ in 0..<Int(w.cwnd) {
                una += 1; nxt += 2
                let rtt = (100 + 12 * UInt64(min(round, 1))) * Self.ms  // +12 ms < 12.5 ms
                c.onAck(Self.ack(rtt: rtt, now: now, una: una, nxt: nxt), window: &w)
                now += 5 * Self.ms
            }
            una = end
        }
        #expect(!c.hystartFound)
        #expect(w.ssthresh == CongestionWindow.infiniteSSThresh)
    }

    /// ACKs 1 ms apart for longer than half the minimum RTT (10 ms) after the round began.
    @Test func hystartAckTrainExit() {
        var c = Cubic()
        var w = CongestionWindow(cwnd: 20)
        let start = Time.second
        var una: UInt32 = 0, nxt: UInt32 = 20
        var exitAt: Nanoseconds = 0
        for i in 0..<20 {
            una += 1; nxt += 2
            let now = start + UInt64(i) * Self.ms
            c.onAck(Self.ack(rtt: 20 * Self.ms, now: now, una: una, nxt: nxt), window: &w)
            if c.hystartFound { exitAt = now; break }
        }
        #expect(c.hystartFound)
        // The round started at the first ACK; the train is past 10 ms at the ACK 11 ms later.
        #expect(exitAt == start + 11 * Self.ms)
        // 11 ACKs of slow start before: ssthresh = cwnd = 31, and no CA growth on this ACK.
        #expect(w.ssthresh == 31)
        #expect(w.cwnd == 31)
    }

    /// cubic-bulk-166k.pkt: ACKs of two segments every 100 ms to a sender that starts with cwnd
    /// 10, so RTTs grow by 100 ms every other ACK. HyStart's first round starts only at the first
    /// ACK with cwnd ≥ 16 (ACK 4); that round ends at ACK 12 before its ninth sample, and the
    /// second round's ninth sample (ACK 20) ends slow start at cwnd 48, as Linux does. (Rounds
    /// counted from the first ACK would end it at 36.)
    @Test func hystartRoundsStartAtTheLowWindow() {
        var c = Cubic()
        var w = CongestionWindow(cwnd: 10)
        // Segment j (1-based) leaves at 0 if j <= 10, else with the ACK that let it go.
        func sent(_ j: Int) -> Nanoseconds { j <= 10 ? 0 : UInt64((j - 10 + 3) / 4) * 100 * Self.ms }
        var exit: UInt32 = 0
        for k in 1...30 {
            let now = UInt64(k) * 100 * Self.ms
            let before = w.cwnd
            c.onAck(Self.ack(2, rtt: now - sent(2 * k - 1), now: now,
                             una: UInt32(2 * k), nxt: UInt32(10 + 4 * (k - 1))), window: &w)
            if c.hystartFound { exit = before; #expect(k == 20); break }
        }
        #expect(c.hystartFound)
        #expect(exit == 48 && w.ssthresh == 48 && w.cwnd == 48)
    }

    /// Below hystart_low_window HyStart does nothing.
    @Test func hystartLowWindow() {
        var c = Cubic()
        var w = CongestionWindow(cwnd: 2, clamp: 15)
        var una: UInt32 = 0
        for i in 0..<40 {
            una += 1
            c.onAck(Self.ack(rtt: (20 + UInt64(i) * 5) * Self.ms, now: Time.second + UInt64(i) * Self.ms,
                             una: una, nxt: una + 100), window: &w)
        }
        #expect(!c.hystartFound)
        #expect(w.cwnd == 15)
    }

    @Test func dispatchNames() {
        for n in CongestionAlgorithmName.allCases { #expect(CongestionControl(n).name == n) }
    }
}
