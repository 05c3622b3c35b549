import Testing
@testable import Skiff
import SkiffSim
import SkiffWire

/// Loss recovery as segment traces against a scripted peer: RTO timing and backoff, fast
/// retransmit on three duplicate ACKs (NewReno) and by SACK (RFC 6675 / RACK), several holes
/// in one window, and the tail loss probe (RFC 8985).
@Suite struct TCPRecoveryTests {
    static let ms = Time.millisecond
    static let mss = 1448

    /// Data segments in `segs`.
    static func data(_ segs: [WireSegment]) -> [WireSegment] { segs.filter { $0.length > 0 } }

    /// A SACK block covering segments `from..<to` (indices from `base`, full-sized).
    static func block(_ base: UInt32, _ from: Int, _ to: Int) -> SACKBlock {
        SACKBlock(left: base &+ UInt32(from * mss), right: base &+ UInt32(to * mss))
    }

    static func seq(_ base: UInt32, _ i: Int) -> UInt32 { base &+ UInt32(i * mss) }

    // MARK: RTO

    @Test func synIsRetransmittedAt1_3_7_15_31_63SecondsThenConnectTimesOut() throws {
        let p = TCPPeer()
        let fd = try p.stack.socket().get()
        #expect(p.stack.connect(fd, SocketAddress(Lab.aIP, 40_000), now: p.now) == .EINPROGRESS)
        let syn = try #require(p.take().first)
        var times: [Nanoseconds] = []
        for _ in 0..<10 {
            for s in p.advanceToNextTimer() {
                #expect(s.flags == .syn && s.seq == syn.seq && s.optionBytes.count == 20)
                times.append(s.time)
            }
            if p.stack.tcpState(fd) == .closed { break }
        }
        // tcp_syn_retries = 6, initial RTO 1 s doubling; the attempt fails at 127 s.
        #expect(times == [1, 3, 7, 15, 31, 63].map { $0 * Time.second })
        #expect(p.stack.tcpState(fd) == .closed)
        #expect(p.now == 127 * Time.second)
        #expect(p.stack.connect(fd, SocketAddress(Lab.aIP, 40_000), now: p.now) == .ETIMEDOUT)
        #expect(p.stack.tcpCounters.attemptFails == 1)
    }

    @Test func rtoIs200msPlusSRTTAndDoublesUntilRetries2ThenTheConnectionTimesOut() throws {
        let (p, fd, s) = TCPPeer.established(sack: false)
        #expect(s.rtt.srtt == 10 * Self.ms && s.rtt.rto == 210 * Self.ms)
        let base = s.sndNxt
        let t0 = p.now
        p.write(fd, Lab.pattern(1000))
        #expect(Self.data(p.take()).map(\.seq) == [base])
        var times: [Nanoseconds] = []
        for _ in 0..<40 {
            for seg in Self.data(p.advanceToNextTimer()) {
                #expect(seg.seq == base && seg.length == 1000)
                times.append(seg.time - t0)
            }
            if s.state == .closed { break }
        }
        var expected: [Nanoseconds] = []
        var at: Nanoseconds = 0, rto = 210 * Self.ms
        for _ in 0..<15 {
            at += rto
            expected.append(at)
            rto = min(rto * 2, 120 * Time.second)
        }
        // tcp_retries2 = 15 retransmissions (Linux: ~924.6 s from a 200 ms RTO), then ETIMEDOUT.
        #expect(times == expected)
        #expect(s.state == .closed)
        #expect(p.now - t0 == at + rto)
        #expect(p.read(fd) == .failure(.ETIMEDOUT))
        #expect(p.stack.tcpCounters.timeouts == 15 && p.stack.tcpCounters.retransSegs == 15)
    }

    @Test func afterAnRTOTheWindowIsOneAndSlowStartResumesOnTheAck() throws {
        let (p, fd, s) = TCPPeer.established(sack: false)
        let base = s.sndNxt
        p.write(fd, Lab.pattern(4 * Self.mss))
        #expect(Self.data(p.take()).count == 4)
        let rtx = Self.data(p.advance(by: 210 * Self.ms))
        // Only the first segment is retransmitted (cwnd 1, RFC 5681 §3.1).
        #expect(rtx.map(\.seq) == [base])
        #expect(s.caState == .loss && s.window.cwnd == 1)
        #expect(s.window.ssthresh == 7)   // CUBIC: 10 × 0.7
        // Its ACK: cwnd 2, the next two go (slow start); Karn: no RTT sample from it.
        p.host.advance(by: 10 * Self.ms)
        p.ackTo(Self.seq(base, 1))
        let next = Self.data(p.take())
        #expect(next.map(\.seq) == [Self.seq(base, 1), Self.seq(base, 2)])
        #expect(s.rtt.rto == 210 * Self.ms)
        p.ackTo(Self.seq(base, 4))
        #expect(s.caState == .open && s.sndUna == Self.seq(base, 4))
    }

    @Test func withoutTimestampsTheBackedOffRTOStaysUntilAFreshSample() throws {
        let (p, fd, s) = TCPPeer.established(sack: false, timestamps: false)
        let base = s.sndNxt
        p.write(fd, Lab.pattern(1000))
        _ = p.take()
        #expect(Self.data(p.advance(by: 210 * Self.ms)).map(\.seq) == [base])
        #expect(s.rtt.rto == 420 * Self.ms)
        p.host.advance(by: 10 * Self.ms)
        p.ackTo(base &+ 1000)
        // Karn: the ACK of a retransmission is no sample, so the doubled RTO stays (RFC 6298 §5.7).
        #expect(s.rtt.rto == 420 * Self.ms && s.caState == .open && s.packetsOut == 0)
        let t = p.now
        p.write(fd, Lab.pattern(500))
        _ = p.take()
        let again = Self.data(p.advanceToNextTimer())
        #expect(again.map(\.seq) == [base &+ 1000] && again.first?.time == t + 420 * Self.ms)
    }

    // MARK: Fast retransmit

    @Test func threeDuplicateAcksWithoutSACKTriggerFastRetransmitAndNewRenoRecovery() throws {
        let (p, fd, s) = TCPPeer.established(sack: false)
        let base = s.sndNxt
        p.write(fd, Lab.pattern(10 * Self.mss))
        #expect(Self.data(p.take()).count == 10)
        p.host.advance(by: 10 * Self.ms)
        // Segment 0 lost; 1, 2, 3 arrive: three duplicate ACKs.
        p.ackTo(base)
        p.ackTo(base)
        #expect(Self.data(p.take()).isEmpty)
        #expect(s.caState == .disorder)
        p.ackTo(base)
        let fr = Self.data(p.take())
        #expect(fr.map(\.seq) == [base])
        #expect(s.caState == .recovery && s.fastRetransmits == 1)
        #expect(p.stack.tcpCounters.fastRetrans == 1)
        // More duplicates (4…9 arrived): PRR sends new data as the pipe drains.
        for _ in 4..<10 { p.ackTo(base) }
        let during = Self.data(p.take())
        #expect(during.allSatisfy { Int32(bitPattern: $0.seq &- Self.seq(base, 10)) >= 0 })
        // The retransmission fills the hole: everything up to 10 is acknowledged, recovery ends.
        p.ackTo(Self.seq(base, 10))
        #expect(s.caState == .open)
        #expect(s.window.cwnd == 7 && s.window.ssthresh == 7)
        #expect(s.timeouts == 0)
    }

    @Test func newRenoPartialAckRetransmitsTheNextHole() throws {
        let (p, fd, s) = TCPPeer.established(sack: false)
        let base = s.sndNxt
        p.write(fd, Lab.pattern(10 * Self.mss))
        _ = p.take()
        p.host.advance(by: 10 * Self.ms)
        // Segments 0 and 5 lost.
        for _ in 0..<3 { p.ackTo(base) }
        #expect(Self.data(p.take()).map(\.seq) == [base])
        for _ in 0..<5 { p.ackTo(base) }
        _ = p.take()
        // The retransmitted 0 arrives: ACK up to 5, a partial ACK (RFC 6582): 5 goes at once.
        p.ackTo(Self.seq(base, 5))
        let partial = Self.data(p.take())
        #expect(partial.first?.seq == Self.seq(base, 5))
        #expect(s.caState == .recovery)
        p.ackTo(s.sndNxt)
        #expect(s.caState == .open && s.timeouts == 0)
    }

    @Test func withSACKThreeSackedSegmentsAboveAHoleMarkItLost() throws {
        let (p, fd, s) = TCPPeer.established(sack: true)
        let base = s.sndNxt
        p.write(fd, Lab.pattern(10 * Self.mss))
        #expect(Self.data(p.take()).count == 10)
        p.host.advance(by: 10 * Self.ms)
        // Segment 0 lost; SACKs for 1, then 1–2: not yet (RACK's reordering window has not passed).
        p.ackTo(base, sack: [Self.block(base, 1, 2)])
        p.ackTo(base, sack: [Self.block(base, 1, 3)])
        // The third SACKed segment: RFC 6675 IsLost(0) → fast retransmit.
        p.ackTo(base, sack: [Self.block(base, 1, 4)])
        let fr = Self.data(p.take())
        #expect(fr.first?.seq == base)
        #expect(s.caState == .recovery && s.sackedOut == 3)
        p.ackTo(Self.seq(base, 10))
        #expect(s.caState == .open && s.sackedOut == 0 && s.lostOut == 0 && s.retransOut == 0)
    }

    @Test func sackRecoveryRepairsThreeHolesInOneWindowWithoutAnRTO() throws {
        let (p, fd, s) = TCPPeer.established(sack: true)
        let base = s.sndNxt
        p.write(fd, Lab.pattern(20 * Self.mss))
        // Initial window: 10 segments.
        #expect(Self.data(p.take()).count == 10)
        p.host.advance(by: 10 * Self.ms)
        // Holes at 2, 5 and 7; everything else arrives. The peer ACKs per segment with SACK blocks
        // (most recent first, at most 3 with timestamps).
        p.ackTo(Self.seq(base, 1))
        p.ackTo(Self.seq(base, 2))
        var retransmitted: [UInt32] = []
        var newData: [UInt32] = []
        func collect() {
            for seg in Self.data(p.take()) {
                if Int32(bitPattern: seg.seq &- Self.seq(base, 10)) < 0 { retransmitted.append(seg.seq) } else { newData.append(seg.seq) }
            }
        }
        collect()
        p.ackTo(Self.seq(base, 2), sack: [Self.block(base, 3, 4)]); collect()
        p.ackTo(Self.seq(base, 2), sack: [Self.block(base, 3, 5)]); collect()
        p.ackTo(Self.seq(base, 2), sack: [Self.block(base, 6, 7), Self.block(base, 3, 5)]); collect()
        p.ackTo(Self.seq(base, 2), sack: [Self.block(base, 8, 9), Self.block(base, 6, 7), Self.block(base, 3, 5)]); collect()
        p.ackTo(Self.seq(base, 2), sack: [Self.block(base, 8, 10), Self.block(base, 6, 7), Self.block(base, 3, 5)]); collect()
        #expect(s.caState == .recovery)
        // RACK (no reordering window in recovery) marks 2 and 5 lost at once; PRR lets one
        // retransmission go per delivered segment, pipe being at ssthresh (12 × 0.7 = 8).
        #expect(retransmitted == [Self.seq(base, 2), Self.seq(base, 5)])
        #expect(s.window.ssthresh == 8 && s.priorCwnd == 12)
        // The retransmissions arrive; 7 goes on the next ACK.
        p.host.advance(by: 10 * Self.ms)
        p.ackTo(Self.seq(base, 5), sack: [Self.block(base, 6, 7), Self.block(base, 8, 10)]); collect()
        p.ackTo(Self.seq(base, 7), sack: [Self.block(base, 8, 10)]); collect()
        p.ackTo(Self.seq(base, 10)); collect()
        // All three holes were retransmitted, each once, lowest first.
        #expect(retransmitted == [Self.seq(base, 2), Self.seq(base, 5), Self.seq(base, 7)])
        p.ackTo(s.sndNxt)
        #expect(s.caState == .open && s.timeouts == 0 && s.totalRetransmits == 3)
        #expect(s.window.cwnd >= 8 && s.window.ssthresh == 8)
        #expect(p.stack.tcpCounters.fastRetrans == 1)
    }

    // MARK: Tail loss probe

    @Test func aLostLastSegmentIsRepairedByATailLossProbeBeforeTheRTO() throws {
        let (p, fd, s) = TCPPeer.established(sack: true)
        let base = s.sndNxt
        p.write(fd, Lab.pattern(10 * Self.mss))
        #expect(Self.data(p.take()).count == 10)
        p.host.advance(by: 10 * Self.ms)
        // 0…8 arrive; the last is lost. One segment out: PTO = 2·SRTT + 200 ms, but never after
        // the RTO (210 ms from now): the probe goes at 210 ms.
        p.ackTo(Self.seq(base, 9))
        let t1 = p.now
        #expect(s.pendingTimer == .lossProbe)
        let probe = Self.data(p.advanceToNextTimer())
        #expect(probe.map(\.seq) == [Self.seq(base, 9)])
        #expect(probe.first?.time == t1 + 210 * Self.ms)
        #expect(s.tailLossProbes == 1 && s.timeouts == 0 && s.caState == .open)
        p.host.advance(by: 10 * Self.ms)
        p.ackTo(Self.seq(base, 10))
        #expect(s.packetsOut == 0 && s.timeouts == 0 && s.caState == .open)
    }

    @Test func tailLossOfSeveralSegmentsIsProbedAfterTwoRTTsAndRecoveredBySACK() throws {
        let (p, fd, s) = TCPPeer.established(sack: true)
        let base = s.sndNxt
        p.write(fd, Lab.pattern(10 * Self.mss))
        _ = p.take()
        p.host.advance(by: 10 * Self.ms)
        // 7, 8, 9 lost. Three out: PTO = 2·SRTT + 2 ms = 22 ms.
        p.ackTo(Self.seq(base, 7))
        let t1 = p.now
        let probe = Self.data(p.advanceToNextTimer())
        #expect(probe.map(\.seq) == [Self.seq(base, 9)])
        #expect(probe.first?.time == t1 + 22 * Self.ms)
        // The probe's SACK shows 7 and 8 missing; RACK marks them lost (sent an RTT before).
        p.host.advance(by: 10 * Self.ms)
        p.ackTo(Self.seq(base, 7), sack: [Self.block(base, 9, 10)])
        var rtx = Self.data(p.take())
        #expect(s.caState == .recovery)
        // PRR: one now (delivered 1), the other on the next ACK.
        #expect(rtx.map(\.seq) == [Self.seq(base, 7)])
        p.host.advance(by: 10 * Self.ms)
        p.ackTo(Self.seq(base, 8), sack: [Self.block(base, 9, 10)])
        rtx = Self.data(p.take())
        #expect(rtx.map(\.seq) == [Self.seq(base, 8)])
        p.ackTo(Self.seq(base, 10))
        #expect(s.caState == .open && s.timeouts == 0 && s.tailLossProbes == 1 && s.totalRetransmits == 3)
    }

    @Test func withSACKTheFirstTimeoutIsATailLossProbeAndThenRTOsDouble() throws {
        let (p, fd, s) = TCPPeer.established(sack: true)
        let base = s.sndNxt
        let t0 = p.now
        p.write(fd, Lab.pattern(1000))
        _ = p.take()
        var times: [Nanoseconds] = []
        for _ in 0..<4 {
            for seg in Self.data(p.advanceToNextTimer()) {
                #expect(seg.seq == base)
                times.append(seg.time - t0)
            }
        }
        // TLP at min(PTO 220 ms, RTO 210 ms); then RTO 210 ms after it, then 420, 840.
        #expect(times == [210, 420, 840, 1680].map { $0 * Self.ms })
        #expect(s.tailLossProbes == 1 && s.timeouts == 3)
    }
}
