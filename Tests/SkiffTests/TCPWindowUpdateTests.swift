import Testing
@testable import Skiff
import SkiffWire

/// When reading sends a window update, as segment traces against `TCPPeer` (Linux:
/// `tcp_cleanup_rbuf()`).
@Suite struct TCPWindowUpdateTests {
    static let ms = Time.millisecond

    /// ioctl-siocinq-fin.pkt: without window scaling the window can never exceed 65535, so
    /// reading 1000 bytes of a 64 KiB window sends nothing: twice the window the peer still has
    /// is above the clamp (`2 * rcv_window_now <= window_clamp` fails). The next ACK is the
    /// one for the peer's next data.
    @Test func readingSendsNoUpdateWhenTheWindowCannotDouble() throws {
        // packetdrill's tcp_rmem: a receive buffer far larger than an unscaled window.
        let (p, fd, _) = TCPPeer.established(timestamps: false, windowScale: nil, rtt: 100 * Self.ms) {
            $0.tcpConfig.receiveMemory = (4096, 540_000, 15_728_640)
        }
        p.send([.ack, .psh], payload: Lab.pattern(1000))
        let ack = p.take()
        #expect(ack.count == 1 && ack[0].isPureAck)
        p.host.advance(by: 10 * Self.ms)
        #expect(p.read(fd) == .success(Lab.pattern(1000)))
        #expect(p.take().isEmpty)
        p.host.advance(by: 70 * Self.ms)
        p.send([.ack, .psh, .fin], payload: Lab.pattern(1000))
        let fin = p.take().filter(\.isPureAck)
        #expect(fin.count == 1 && fin[0].ack == p.seq)
    }

    /// With window scaling the clamp is far above a 64 KiB window: reading a receive queue that
    /// had closed most of the window opens it by more than twice, and an update goes out.
    @Test func readingSendsAnUpdateWhenTheWindowMoreThanDoubles() throws {
        let (p, fd, s) = TCPPeer.established(rtt: 10 * Self.ms) { $0.tcpConfig.receiveMemory = (4096, 65536, 65536) }
        let mss = 1448
        var sent = 0
        while Int(s.rcvWnd &- (s.rcvNxt &- s.rcvWup)) >= mss && sent < 64 {
            p.send([.ack], payload: Lab.pattern(mss))
            sent += 1
        }
        _ = p.advance(by: 50 * Self.ms)
        let offered = s.rcvWnd &- (s.rcvNxt &- s.rcvWup)
        #expect(offered < UInt32(mss))
        _ = p.read(fd)
        let update = p.take().filter(\.isPureAck)
        #expect(update.count == 1)
        #expect(update.first.map { UInt32($0.window) << UInt32(s.receiveWindowScale) > 2 * offered } == true)
    }
}
