import Foundation
import Testing
@testable import Skiff
import SkiffSim
import SkiffWire

/// Busy polling from blocked receives (Linux: `sk_busy_loop()` under `net.core.busy_read`): the
/// waiting thread polls the device itself before it sleeps. Here the "device poll" moves the
/// simulated wire on by a millisecond and runs the receiving stack, which is what a NAPI poll of a
/// real port does: frames in, NET_RX, socket queues.
@Suite("Busy polling by blocked receives (SharedStack.busyRead)")
struct BusyPollTests {
    typealias P = Scenarios.SwitchedPair

    /// Host B's stack shared on the simulator's clock, where nothing moves the wire but the busy
    /// poll; a UDP socket bound on B, and a datagram A has sent towards it (still on the wire).
    func setUp() throws -> (P, SharedStack, Int32, Box<Int>) {
        let (p, shared, fd) = try Self.datagramOnTheWire()
        let polls = Box(0)
        shared.busyPollDevice = {
            shared.advance(to: shared.now + Time.millisecond)
            polls.value += 1
            return true
        }
        return (p, shared, fd, polls)
    }

    @Test("recvfrom with busy_read polls the device and returns the datagram the poll brought in, without ever sleeping")
    func busyReadTakesTheDatagramItself() throws {
        let (_, shared, fd, polls) = try setUp()
        shared.busyRead = 10 * Time.second
        // Should busy polling not happen, nothing would move the simulator's clock: a watchdog
        // then moves it past the receive timeout, so the test fails instead of hanging.
        #expect(shared.setFileOption(fd, .receiveTimeout(5 * Time.second)) == nil)
        let done = Box(false)
        let watchdog = Thread {
            for _ in 0..<300 where !shared.lock.withLock({ done.value }) { usleep(10_000) }
            if !shared.lock.withLock({ done.value }) { shared.advance(to: shared.now + 10 * Time.second) }
        }
        watchdog.start()
        var buf = [UInt8](repeating: 0, count: 16)
        let r = buf.withUnsafeMutableBytes { shared.receiveFrom(fd, into: $0) }
        shared.lock.withLock { done.value = true }
        #expect(r.map { $0.0 } == .success(3))
        #expect(Array(buf.prefix(3)) == [7, 8, 9])
        #expect(polls.value >= 1)
        #expect(shared.busyPollRounds >= 1 && shared.busyPollHits >= 1)
        // The caller never slept on the condition variable: the poll did the wake-up's work.
        #expect(shared.lock.wakeups == 0)
    }

    @Test("without busy_read the device is never polled by the caller: it sleeps until its timeout")
    func withoutBusyReadTheCallerSleeps() throws {
        let (shared, polls, r) = try Self.receiveAloneWithTimeout(20 * Time.millisecond, busyRead: 0)
        #expect(r.map { $0.0 } == .failure(.EAGAIN))
        #expect(polls.value == 0 && shared.busyPollRounds == 0)
        #expect(shared.lock.wakeups >= 1)
    }

    @Test("busy polling ends after busy_read: a poll that brings nothing leaves the caller to sleep until its timeout")
    func busyReadRunsOut() throws {
        let (shared, polls, r) = try Self.receiveAloneWithTimeout(30 * Time.millisecond, busyRead: Time.millisecond)
        #expect(r.map { $0.0 } == .failure(.EAGAIN))
        #expect(polls.value >= 1 && shared.busyPollRounds == UInt64(polls.value))
        #expect(shared.busyPollHits == 0)
        #expect(shared.lock.wakeups >= 1)
    }

    @Test("sends and non-blocking receives never busy-poll")
    func onlyBlockingReceivesPoll() throws {
        let (_, shared, fd, polls) = try setUp()
        shared.busyRead = Time.second
        Self.receiveNonBlockingThenSend(shared, fd)
        #expect(polls.value == 0 && shared.busyPollRounds == 0)
    }

    /// A switched pair with host B's stack shared on the simulator's clock; a UDP socket bound
    /// on B at 5000, and a datagram [7, 8, 9] A has sent towards it, still on the wire (only
    /// moving the simulator's time delivers it).
    static func datagramOnTheWire() throws -> (P, SharedStack, Int32) {
        let p = Scenarios.switchedPair()
        let world = Box(p.world)   // used under the stack lock only
        let shared = SharedStack(manual: p.b, clock: { world.value.now }, advance: { world.value.run(until: $0) })
        let fd = try shared.socket(.datagram).get()
        #expect(shared.bind(fd, SocketAddress(.any, 5000)) == nil)
        let tx = try p.a.socket(.datagram).get()
        let sent = p.a.sendTo(tx, [7, 8, 9], to: SocketAddress(P.bAddress, 5000), now: p.world.now)
        #expect(sent == .success(3))
        return (p, shared, fd)
    }

    /// A blocking recvfrom on a lone stack's UDP socket that nothing reaches, with a receive
    /// timeout and `busyRead`, whose device poll counts its calls and never finds a frame.
    static func receiveAloneWithTimeout(_ timeout: Nanoseconds, busyRead: Nanoseconds) throws
        -> (SharedStack, Box<Int>, Result<(Int, SocketAddress), Errno>) {
        let shared = SharedStack(stack: NetworkStack(name: "solo"))
        let fd = try shared.socket(.datagram).get()
        #expect(shared.bind(fd, SocketAddress(.any, 5001)) == nil)
        #expect(shared.setFileOption(fd, .receiveTimeout(timeout)) == nil)
        let polls = Box(0)
        shared.busyRead = busyRead
        shared.busyPollDevice = { polls.value += 1; return false }
        var buf = [UInt8](repeating: 0, count: 16)
        let r = buf.withUnsafeMutableBytes { shared.receiveFrom(fd, into: $0) }
        return (shared, polls, r)
    }

    /// A MSG_DONTWAIT receive on `fd` finds nothing (EAGAIN); a 4-byte datagram to host A goes out.
    static func receiveNonBlockingThenSend(_ shared: SharedStack, _ fd: Int32) {
        var buf = [UInt8](repeating: 0, count: 16)
        let r = buf.withUnsafeMutableBytes { shared.receiveFrom(fd, into: $0, flags: .dontWait) }
        #expect(r.map { $0.0 } == .failure(.EAGAIN))
        let sent = [UInt8](repeating: 1, count: 4).withUnsafeBytes {
            shared.sendTo(fd, $0, to: SocketAddress(P.aAddress, 9))
        }
        #expect(sent == .success(4))
    }
}
