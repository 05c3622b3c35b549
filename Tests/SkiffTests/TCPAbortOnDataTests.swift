import Testing
@testable import Skiff
import SkiffWire

/// Data that arrives after the application stopped reading, as segment traces against
/// `TCPPeer` (Linux: `tcp_rcv_state_process()` step 7, TCPAbortOnData; RFC 1122 §4.2.2.13).
@Suite struct TCPAbortOnDataTests {
    static let ms = Time.millisecond

    /// user_timeout.pkt: after close() the FIN is out (FIN-WAIT-1); new data from the peer is
    /// answered with a RST whose sequence is the segment's ACK field (no ACK flag), and the
    /// orphan is gone: a further segment finds no connection.
    @Test func dataAfterCloseResetsTheOrphan() throws {
        let (p, fd, s) = TCPPeer.established(rtt: 100 * Self.ms)
        let fin = s.sndNxt
        #expect(p.stack.close(fd, now: p.now) == nil)
        let out = p.take()
        #expect(out.count == 1 && out[0].flags == [.fin, .ack] && out[0].seq == fin)
        let resetsBefore = p.stack.tcpCounters.abortOnData
        p.host.advance(by: 300 * Self.ms)
        _ = p.take()
        // The peer has not seen the FIN: it acknowledges only up to it.
        p.send([.ack], ack: fin, payload: Lab.pattern(1))
        let rst = p.take()
        #expect(rst.count == 1)
        #expect(rst.first?.flags == .rst && rst.first?.seq == fin && rst.first?.payload.isEmpty == true)
        #expect(p.stack.tcpCounters.abortOnData == resetsBefore + 1)
        #expect(p.stack.tcpInfoSocket(fd) == nil)
    }

    /// shutdown(SHUT_RD) also closes reading: data in FIN-WAIT-2 resets the connection, and the
    /// application sees ECONNRESET.
    @Test func dataAfterShutdownOfBothDirectionsResets() throws {
        let (p, fd, s) = TCPPeer.established(rtt: 10 * Self.ms)
        #expect(p.stack.shutdown(fd, .both, now: p.now) == nil)
        let fin = try #require(p.take().first { $0.flags.contains(.fin) })
        p.ackTo(fin.endSeq)
        #expect(s.state == .finWait2)
        p.send([.ack, .psh], payload: Lab.pattern(100))
        let out = p.take()
        #expect(out.count == 1 && out.first?.flags == .rst && out.first?.seq == fin.endSeq)
        #expect(s.state == .closed)
        #expect(p.read(fd) == .failure(.ECONNRESET))
    }

    /// Without a close of reading, data in FIN-WAIT is taken as usual (a half-close).
    @Test func dataAfterAHalfCloseIsReceived() throws {
        let (p, fd, s) = TCPPeer.established(rtt: 10 * Self.ms)
        #expect(p.stack.shutdown(fd, .write, now: p.now) == nil)
        _ = p.take()
        p.send([.ack, .psh], payload: Lab.pattern(100))
        #expect(p.take().allSatisfy { !$0.flags.contains(.rst) })
        #expect(s.state == .finWait1 || s.state == .finWait2)
        #expect(p.read(fd) == .success(Lab.pattern(100)))
    }
}
