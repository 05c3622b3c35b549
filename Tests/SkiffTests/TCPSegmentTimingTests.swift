import Testing
@testable import Skiff
import SkiffWire

/// How a window of data is cut into transmissions and when they leave, as packetdrill's Linux
/// traces show it: segment traces against `TCPPeer` on a TSO port, in virtual time.
@Suite struct TCPSegmentTimingTests {
    static let ms = Time.millisecond
    static let mss = 1448

    /// A data segment as a packetdrill line shows it: offset of its first byte, length, PSH.
    struct Sent: Equatable, CustomStringConvertible {
        var offset: Int, length: Int, push: Bool
        var description: String { "\(push ? "P." : ".") \(offset):\(offset + length)(\(length))" }
    }

    /// Data segments sent since the last look, with offsets from `base`.
    static func data(_ segs: [WireSegment], from base: UInt32) -> [Sent] {
        segs.filter { $0.length > 0 }.map { Sent(offset: Int($0.seq &- base), length: $0.length, push: $0.flags.contains(.psh)) }
    }

    /// slow-start-after-idle.pkt: with TSO allowed ten segments (tcp_min_tso_segs 10), the
    /// initial window of ten still leaves as two packets of five: one transmission takes at
    /// most half of cwnd (Linux: `tcp_cwnd_test()`, "ensure we have at least 2 GSO packets
    /// in flight"). Each multi-segment packet carries PSH.
    @Test func oneTransmissionTakesAtMostHalfTheCongestionWindow() throws {
        let (p, fd, s) = TCPPeer.established(rtt: 100 * Self.ms, offloads: true) { $0.tcpConfig.minTSOSegments = 10 }
        let base = s.sndNxt
        #expect(s.window.cwnd == 10)
        p.write(fd, Lab.pattern(26 * Self.mss))
        #expect(Self.data(p.take(), from: base) == [Sent(offset: 0, length: 5 * Self.mss, push: true),
                                                    Sent(offset: 5 * Self.mss, length: 5 * Self.mss, push: true)])
        // All ten acknowledged: cwnd 20, nothing in flight, so two packets of ten.
        p.host.advance(by: 100 * Self.ms)
        p.ackTo(base &+ UInt32(10 * Self.mss))
        #expect(s.window.cwnd == 20)
        #expect(Self.data(p.take(), from: base) == [Sent(offset: 10 * Self.mss, length: 10 * Self.mss, push: true),
                                                    Sent(offset: 20 * Self.mss, length: 6 * Self.mss, push: true)])
    }

    /// cubic-rto-ss-ca-cwnd-bump.pkt: after an RTO cwnd is 2; half of it is one segment, so
    /// new data leaves one segment at a time (two packets without PSH), not as one 2-segment
    /// TSO packet.
    @Test func aCongestionWindowOfTwoSendsSingleSegments() throws {
        let (p, fd, s) = TCPPeer.established(rtt: 100 * Self.ms, offloads: true)
        let base = s.sndNxt
        s.window.cwnd = 2
        p.write(fd, Lab.pattern(20 * Self.mss))
        #expect(Self.data(p.take(), from: base) == [Sent(offset: 0, length: Self.mss, push: false),
                                                    Sent(offset: Self.mss, length: Self.mss, push: false)])
        // cwnd 4 with 2 out: a quota of two, one 2-segment packet with PSH.
        s.window.cwnd = 4
        p.write(fd, Lab.pattern(1))
        #expect(Self.data(p.take(), from: base) == [Sent(offset: 2 * Self.mss, length: 2 * Self.mss, push: true)])
    }

    /// sockopt_cork_nodelay.pkt: TCP_NODELAY set on a corked socket pushes what is queued at
    /// once (Linux: TCP_NAGLE_PUSH), though the cork stays: a later small write waits again.
    @Test func noDelayPushesPastTheCork() throws {
        let (p, fd, s) = TCPPeer.established(rtt: 10 * Self.ms)
        let base = s.sndNxt
        #expect(p.stack.setOption(fd, .cork(true)) == nil)
        p.write(fd, Lab.pattern(40))
        p.host.advance(by: 50 * Self.ms)
        p.write(fd, Lab.pattern(40))
        #expect(Self.data(p.take(), from: base).isEmpty)
        p.host.advance(by: 10 * Self.ms)
        #expect(p.stack.setOption(fd, .noDelay(true), now: p.now) == nil)
        #expect(Self.data(p.take(), from: base) == [Sent(offset: 0, length: 80, push: true)])
        p.ackTo(base &+ 80)
        p.write(fd, Lab.pattern(40))
        #expect(Self.data(p.take(), from: base).isEmpty)
    }

    /// Uncorking with Nagle on and data in flight: the partial segment still waits for the ACK
    /// (Linux: __tcp_sock_set_cork() pushes with the socket's own Nagle mode).
    @Test func uncorkingLeavesAPartialSegmentToNagle() throws {
        let (p, fd, s) = TCPPeer.established(rtt: 10 * Self.ms)
        let base = s.sndNxt
        p.write(fd, Lab.pattern(100))
        #expect(Self.data(p.take(), from: base) == [Sent(offset: 0, length: 100, push: true)])
        #expect(p.stack.setOption(fd, .cork(true)) == nil)
        p.write(fd, Lab.pattern(100))
        #expect(p.stack.setOption(fd, .cork(false), now: p.now) == nil)
        #expect(Self.data(p.take(), from: base).isEmpty)
        p.host.advance(by: 10 * Self.ms)
        p.ackTo(base &+ 100)
        #expect(Self.data(p.take(), from: base) == [Sent(offset: 100, length: 100, push: true)])
    }

    /// limited-transmit-sack.pkt: two duplicate ACKs SACK segments 2 and 3 and each lets one new
    /// segment out (limited transmit); the cumulative ACK of segments 1–3 then delivers only
    /// one new segment, so slow start grows cwnd from 10 to 11, not 13, and with 9 out two
    /// segments leave (Linux: tcp_cong_avoid() is given acked_sacked, the newly delivered).
    @Test func cwndGrowsByWhatIsNewlyDeliveredNotByWhatTheCumulativeAckCovers() throws {
        let (p, fd, s) = TCPPeer.established(rtt: 100 * Self.ms, offloads: true)
        let base = s.sndNxt
        func seq(_ n: Int) -> UInt32 { base &+ UInt32(n * Self.mss) }
        p.write(fd, Lab.pattern(15 * Self.mss))
        #expect(Self.data(p.take(), from: base).reduce(0) { $0 + $1.length } == 10 * Self.mss)
        p.host.advance(by: 110 * Self.ms)
        p.ackTo(base, sack: [SACKBlock(left: seq(1), right: seq(2))])
        #expect(Self.data(p.take(), from: base).map(\.offset) == [10 * Self.mss])
        p.host.advance(by: 10 * Self.ms)
        p.ackTo(base, sack: [SACKBlock(left: seq(1), right: seq(3))])
        #expect(Self.data(p.take(), from: base).map(\.offset) == [11 * Self.mss])
        p.host.advance(by: 10 * Self.ms)
        p.ackTo(seq(3))
        #expect(s.window.cwnd == 11)
        #expect(Self.data(p.take(), from: base) == [Sent(offset: 12 * Self.mss, length: 2 * Self.mss, push: true)])
    }

    /// cubic-rto-ss-ca-cwnd-bump.pkt: a long write marks PSH not on every full buffer but once
    /// more than half of the peer's largest window was written since the last mark, and on
    /// the write's last buffer (Linux: forced_push(), tcp_mark_push()). Peer window 32 896:
    /// buffers of 16 000 bytes (the size goal), PSH where the write passes 16 448 and at its end.
    @Test func pshMarksEachHalfOfThePeersLargestWindow() throws {
        let (p, fd, s) = TCPPeer.established(timestamps: false, mss: 1000, rtt: 100 * Self.ms, window: 257)
        #expect(s.maxWindow == 257 << 7)
        let base = s.sndNxt
        s.window.cwnd = 1
        p.write(fd, Lab.pattern(40_000))
        #expect(Self.data(p.take(), from: base) == [Sent(offset: 0, length: 1000, push: false)])
        var queued: [Sent] = []
        var slot = s.writeQueue.head
        while slot != PacketSlab.none {
            let m = p.stack.tcpSlab.meta(at: slot)
            queued.append(Sent(offset: Int(m.tcpSeq &- base), length: Int(m.tcpEndSeq &- m.tcpSeq),
                               push: m.tcpFlags & TCPFlag.psh != 0))
            slot = p.stack.tcpSlab.next(slot)
        }
        // The first buffer, full at 16 000 and at the head of the queue, goes out alone
        // (tcp_push_one: 1000 bytes at cwnd 1); the write then fills its rest to 16 000 again
        // (17 000 written: past half the window, PSH); 33 000 is not yet half a window past
        // 17 000; the write's last buffer gets PSH.
        #expect(queued == [Sent(offset: 1000, length: 16_000, push: true), Sent(offset: 17_000, length: 16_000, push: false),
                           Sent(offset: 33_000, length: 7000, push: true)])
    }
}
