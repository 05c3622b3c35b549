import Testing
@testable import Skiff
import SkiffWire

/// An ACK that arrives behind a later one (its ACK field below snd_una) still carries news in
/// its SACK blocks, as segment traces against `TCPPeer` (Linux: `tcp_ack()`'s
/// `before(ack, prior_snd_una)` branch).
@Suite struct TCPOldAckTests {
    static let ms = Time.millisecond

    /// prr-ss-ack-below-snd_una-cubic.pkt: segments 1, 5 and 8 of ten are lost; in recovery a
    /// reordered ACK below snd_una SACKs two more segments, and PRR lets two go out on it: the
    /// lost segment 8 and one new segment.
    @Test func anOldAckThatSacksNewDataDrivesRecovery() throws {
        let (p, fd, s) = TCPPeer.established(timestamps: false, mss: 1000, rtt: 10 * Self.ms)
        let base = s.sndNxt
        func seq(_ n: Int) -> UInt32 { base &+ UInt32(n * 1000) }
        func sent() -> [(Int, Int)] { p.take().filter { $0.length > 0 }.map { (Int($0.seq &- base), $0.length) } }
        p.write(fd, Lab.pattern(10_000))
        #expect(sent().reduce(0) { $0 + $1.1 } == 10_000)
        p.host.advance(by: 10 * Self.ms)
        p.ackTo(base, sack: [SACKBlock(left: seq(1), right: seq(2))])
        p.ackTo(base, sack: [SACKBlock(left: seq(1), right: seq(3))])
        p.ackTo(base, sack: [SACKBlock(left: seq(1), right: seq(3)), SACKBlock(left: seq(8), right: seq(9))])
        #expect(s.caState == .recovery)
        #expect(sent().first.map { $0.0 == 0 && $0.1 == 1000 } == true)
        p.host.advance(by: 12 * Self.ms)
        p.ackTo(seq(4), sack: [SACKBlock(left: seq(8), right: seq(9))])
        _ = sent()
        p.write(fd, Lab.pattern(10_000))
        #expect(sent().isEmpty)
        p.host.advance(by: 2 * Self.ms)
        // The reordered ACK: ack 3001, below snd_una 4001, SACKs 5001:7001.
        p.send(.ack, ack: seq(3), sack: [SACKBlock(left: seq(5), right: seq(7))])
        let out = sent()
        #expect(out.map(\.0) == [7000, 10_000])
        #expect(out.map(\.1) == [1000, 1000])
    }

    /// An old ACK without SACK blocks changes nothing and sends nothing.
    @Test func anOldAckWithoutSackIsIgnored() throws {
        let (p, fd, s) = TCPPeer.established(timestamps: false, mss: 1000, rtt: 10 * Self.ms)
        let base = s.sndNxt
        p.write(fd, Lab.pattern(10_000))
        _ = p.take()
        p.host.advance(by: 10 * Self.ms)
        p.ackTo(base &+ 4000)
        _ = p.take()
        let cwnd = s.window.cwnd
        p.send(.ack, ack: base &+ 2000)
        #expect(p.take().isEmpty)
        #expect(s.sndUna == base &+ 4000 && s.window.cwnd == cwnd && s.caState == .open)
    }
}
