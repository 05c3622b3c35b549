import Testing
@testable import Skiff
import SkiffWire

/// Where a write's segments carry PSH (Linux: `tcp_sendmsg_locked()`'s `forced_push()` and
/// `tcp_push()` → `tcp_mark_push()`), as segment traces.
@Suite struct TCPPushTests {
    /// timestamping/partial.pkt's trace: with a 2000-byte window the buffers hold one 988-byte
    /// segment; the first is not pushed (the write is not yet half the window past the last
    /// push), the second is, and so is the write's last.
    @Test func fullBuffersArePushedOnlyHalfAWindowApart() throws {
        let (p, fd, s) = TCPPeer.established(windowScale: nil, mss: 1000, rtt: 10 * Time.millisecond, window: 2000)
        let base = s.sndNxt
        #expect(p.write(fd, Lab.pattern(3 * 988)) == .success(3 * 988))
        let first = p.take()
        #expect(first.map(\.length) == [988, 988])
        #expect(first.map { $0.flags.contains(.psh) } == [false, true])
        p.ackTo(base &+ 2 * 988)
        let last = p.take()
        #expect(last.map(\.length) == [988] && last[0].flags.contains(.psh))
    }
}
