import Testing
@testable import Skiff
import SkiffWire

/// Behaviours that packetdrill's Linux scripts pin down, as segment traces against `TCPPeer`.
@Suite struct TCPPacketdrillBehaviourTests {
    static let ms = Time.millisecond
    static let mss = 1448

    /// slow-start-app-limited.pkt: a write of exactly the initial window; each ACK of two segments
    /// grows cwnd by two up to twice the most segments that were out, though nothing more is
    /// sent (Linux: `tcp_is_cwnd_limited()` — in slow start, cwnd < 2 · max_packets_out).
    @Test func slowStartGrowsToTwiceWhatWasOutWhenApplicationLimited() throws {
        let (p, fd, s) = TCPPeer.established(rtt: 10 * Self.ms)
        let base = s.sndNxt
        p.write(fd, Lab.pattern(10 * Self.mss))
        #expect(p.take().filter { $0.length > 0 }.count == 10)
        #expect(s.window.cwnd == 10)
        var cwnds: [UInt32] = []
        for k in 1...5 {
            // 5 ms apart as in the script: farther apart than HyStart's ACK train (2 ms).
            p.host.advance(by: 5 * Self.ms)
            p.ackTo(base &+ UInt32(2 * k * Self.mss))
            cwnds.append(s.window.cwnd)
        }
        #expect(cwnds == [12, 14, 16, 18, 20])
        // Nothing was sent meanwhile: the application had nothing more.
        #expect(p.take().filter { $0.length > 0 }.isEmpty)
        // Once what was out is acknowledged, a new window starts from what is out now (nothing).
        p.write(fd, Lab.pattern(Self.mss))
        #expect(p.take().filter { $0.length > 0 }.count == 1)
    }

    /// tcp-info-last_data_recv.pkt: TCP_INFO's time since data arrived counts from the
    /// handshake until data comes, then from the data (Linux: `icsk_ack.lrcvtime`).
    @Test func timeSinceDataReceivedCountsFromEstablishmentThenFromData() throws {
        let (p, fd, _) = TCPPeer.established(rtt: 10 * Self.ms)
        p.host.advance(by: 1000 * Self.ms)
        let before = try p.stack.tcpInfo(fd).get()
        #expect(before.sinceDataReceived >= 1000 * Self.ms && before.sinceDataReceived < 1100 * Self.ms)
        p.send([.ack, .psh], payload: Lab.pattern(100))
        let after = try p.stack.tcpInfo(fd).get()
        #expect(after.sinceDataReceived < Self.ms)
    }

    /// sack-route-refresh-ip-tos.pkt: IP_TOS sets the TOS byte of the connection's data and
    /// ACKs; on a TCP socket the ECN bits are not the application's (Linux: `inet->tos`).
    @Test func ipTOSMarksTheConnectionsPackets() throws {
        let (p, fd, _) = TCPPeer.established(rtt: 10 * Self.ms)
        p.write(fd, Lab.pattern(100))
        #expect(p.take().allSatisfy { $0.tos == 0 })
        #expect(p.stack.setOption(fd, .typeOfService(0x13), now: p.now) == nil)
        #expect(try p.stack.option(fd, .typeOfService).get() == .int(0x10))
        p.write(fd, Lab.pattern(100))
        p.send([.ack, .psh], payload: Lab.pattern(100))
        p.host.advance(by: 100 * Self.ms)
        let out = p.take()
        #expect(!out.isEmpty && out.allSatisfy { $0.tos == 0x10 })
        #expect(p.stack.setOption(fd, .typeOfService(0), now: p.now) == nil)
        p.write(fd, Lab.pattern(100))
        #expect(p.take().allSatisfy { $0.tos == 0 })
    }

    /// sendmsg-empty-iov.pkt: a write of nothing returns 0, not EAGAIN (Linux: tcp_sendmsg).
    @Test func anEmptyWriteReturnsZero() throws {
        let (p, fd, _) = TCPPeer.established(rtt: 10 * Self.ms)
        #expect(p.write(fd, []) == .success(0))
        #expect(p.take().filter { $0.length > 0 }.isEmpty)
    }

    /// reset_tsval.pkt: closing with unread data resets the connection with a RST|ACK built like
    /// the connection's other segments: it carries a fresh timestamp (Linux:
    /// `tcp_send_active_reset()` → `tcp_transmit_skb()`).
    @Test func closeWithUnreadDataSendsARstWithTimestamps() throws {
        let (p, fd, s) = TCPPeer.established(rtt: 10 * Self.ms)
        p.send([.ack, .psh], payload: Lab.pattern(1000))
        _ = p.take()
        let next = s.sndNxt, rcv = s.rcvNxt
        p.host.advance(by: 1000 * Self.ms)
        #expect(p.stack.close(fd, now: p.now) == nil)
        let rst = try #require(p.take().first { $0.flags.contains(.rst) })
        #expect(rst.flags == [.rst, .ack] && rst.seq == next && rst.ack == rcv)
        #expect(rst.options.timestamp != nil && rst.payload.isEmpty)
    }

    /// eor/no-coalesce-small.pkt: data written after an MSG_EOR write never joins the buffer
    /// that ended the record, so the record's last bytes leave as a segment of their own (Linux:
    /// `TCP_SKB_CB(skb)->eor`, `tcp_skb_can_collapse_to()`).
    @Test func writesAfterMSGEORStartANewBuffer() throws {
        let (p, fd, s) = TCPPeer.established(rtt: 10 * Self.ms)
        let base = s.sndNxt
        #expect(p.write(fd, Lab.pattern(10 * Self.mss + 500)) == .success(10 * Self.mss + 500))
        #expect(p.write(fd, Lab.pattern(300), flags: .endOfRecord) == .success(300))
        #expect(p.write(fd, Lab.pattern(2000)) == .success(2000))
        #expect(p.take().filter { $0.length > 0 }.count == 10)
        p.host.advance(by: Self.ms)
        p.ackTo(base &+ UInt32(10 * Self.mss))
        let rest = p.take().filter { $0.length > 0 }
        // The 552-byte tail waits for Nagle (data in flight).
        #expect(rest.map(\.length) == [800, Self.mss])
        #expect(rest.first?.flags == [.ack, .psh])
    }

    /// gro-mss-option.pkt: right after the handshake a segment whose ACK field is one below
    /// snd_una (it acknowledges nothing new, e.g. ack 0) is an old ACK, not a blind injection: the
    /// SYN counts as acknowledged bytes, so its data is taken (Linux: `tcp_snd_una_update()`
    /// adds the SYN to `bytes_acked`; RFC 5961 §5.2 allows min(max_window, bytes_acked)).
    @Test func dataWithAnAckOneBelowSndUnaAfterTheHandshakeIsTaken() throws {
        let (p, fd, s) = TCPPeer.established(rtt: 10 * Self.ms)
        #expect(try p.stack.tcpInfo(fd).get().bytesAcked == 1)
        let rcv = s.rcvNxt
        p.send([.ack], ack: s.sndUna &- 1, payload: Lab.pattern(500))
        #expect(s.rcvNxt == rcv &+ 500)
    }

    /// fr-4pkt-fack-last-mss.pkt: when only the last of four segments is SACKed, RACK's
    /// reordering timer marks the first lost once its deadline (sent + RACK RTT + reordering
    /// window) passes, and it is retransmitted then — not at the RTO (Linux:
    /// `ICSK_TIME_REO_TIMEOUT`, `tcp_rack_reo_timeout()`).
    @Test func rackReorderingTimerRetransmitsBeforeTheRTO() throws {
        let (p, fd, s) = TCPPeer.established(rtt: 10 * Self.ms)
        let base = s.sndNxt
        p.write(fd, Lab.pattern(4 * Self.mss))
        let sent = p.take().filter { $0.length > 0 }
        #expect(sent.count == 4)
        let t0 = try #require(sent.first).time
        p.host.advance(by: 10 * Self.ms)
        p.ackTo(base, sack: [SACKBlock(left: base &+ UInt32(3 * Self.mss), right: base &+ UInt32(4 * Self.mss))])
        #expect(p.take().filter { $0.length > 0 }.isEmpty)
        let again = p.advanceToNextTimer().filter { $0.length > 0 }
        let first = try #require(again.first)
        #expect(first.seq == base)
        // Deadline: sent + RACK RTT (~10 ms) + min_rtt/4, then 2 ms of timer slack; the RTO
        // (at least 200 ms) is far later.
        #expect(first.time > t0 + 10 * Self.ms && first.time < t0 + 30 * Self.ms)
        #expect(s.caState == .recovery)
    }
}
