import Foundation
import Testing
@testable import Skiff
import SkiffSim
import SkiffWire

/// A fake device for `SharedStack.deviceSleep`: its "interrupt" (`raise`) ends a sleep with
/// frames, and its NAPI poll moves the simulated wire on by a millisecond and runs the receiving
/// stack, which is what a poll of a real port does (frames in, NET_RX, socket queues).
final class FakeSleepDevice: @unchecked Sendable {
    private let condition = NSCondition()
    private var pending = false
    private var woken = false
    private(set) var held = false
    /// What each poll reports having read.
    var framesPerPoll = 1
    private(set) var acquires = 0, releases = 0, sleeps = 0, polls = 0, wakes = 0
    let shared: SharedStack

    init(_ shared: SharedStack) { self.shared = shared }

    func locked<R>(_ body: () -> R) -> R { condition.lock(); defer { condition.unlock() }; return body() }

    /// The device has frames (its interrupt line).
    func raise() { locked { pending = true; condition.broadcast() } }

    var operations: DeviceSleep {
        DeviceSleep(
            acquire: { [self] in locked { if held { return false }; held = true; acquires += 1; return true } },
            sleep: { [self] _ in
                locked {
                    sleeps += 1
                    // Bounded: a sleep that nothing ends returns after two seconds of real time.
                    let limit = Date().addingTimeInterval(2)
                    while !pending && !woken && condition.wait(until: limit) {}
                    woken = false
                    return pending
                }
            },
            poll: { [self] in
                locked { pending = false; polls += 1 }
                shared.advance(to: shared.now + Time.millisecond)
                return locked { framesPerPoll }
            },
            release: { [self] in locked { held = false; releases += 1 } },
            wake: { [self] in locked { woken = true; wakes += 1; condition.broadcast() } })
    }
}

/// Blocked receives that sleep on the device and process its frames in their own thread
/// (`SharedStack.deviceSleep`, `skiff … --sleep-on-device`), on a simulated pair of hosts.
@Suite("Blocked receives sleeping on the device (SharedStack.deviceSleep)")
struct DeviceSleepTests {
    typealias P = Scenarios.SwitchedPair

    /// Host B's stack shared on the simulator's clock; a UDP socket bound on B at 5000, and a
    /// datagram A has sent towards it (still on the wire: only a poll or `advance` delivers it).
    func setUp() throws -> (SharedStack, Int32, FakeSleepDevice) {
        let (_, shared, fd) = try BusyPollTests.datagramOnTheWire()
        let device = FakeSleepDevice(shared)
        shared.withStack { _, _ in shared.deviceSleep = device.operations }
        return (shared, fd, device)
    }

    /// Runs `body` on a thread, after `delay`; the thread is joined by the returned function.
    func later(_ delay: TimeInterval, _ body: @escaping @Sendable () -> Void) -> () -> Void {
        let done = DispatchSemaphore(value: 0)
        Thread { Thread.sleep(forTimeInterval: delay); body(); done.signal() }.start()
        return { _ = done.wait(timeout: .now() + 10) }
    }

    /// Should the code under test never return, moves manual time past the receive timeout.
    func watchdog(_ shared: SharedStack, _ finished: Box<Bool>) -> () -> Void {
        later(0) {
            for _ in 0..<300 where !shared.lock.withLock({ finished.value }) { usleep(10_000) }
            if !shared.lock.withLock({ finished.value }) { shared.advance(to: shared.now + 10 * Time.second) }
        }
    }

    /// A UDP socket at 5002 that nothing is sent to, with a one-second receive timeout.
    func idleSocket(_ shared: SharedStack) throws -> Int32 {
        let idle = try shared.socket(.datagram).get()
        #expect(shared.bind(idle, SocketAddress(.any, 5002)) == nil)
        #expect(shared.setFileOption(idle, .receiveTimeout(Time.second)) == nil)
        return idle
    }

    func receive(_ shared: SharedStack, _ fd: Int32) -> (Result<Int, Errno>, [UInt8]) {
        var buf = [UInt8](repeating: 0, count: 16)
        let r = buf.withUnsafeMutableBytes { shared.receiveFrom(fd, into: $0) }
        return (r.map { $0.0 }, Array(buf.prefix(3)))
    }

    @Test("the device's interrupt wakes the blocked recvfrom, whose own poll brings the datagram in: no condition-variable sleep")
    func framesWakeTheCallerWhichPollsItself() throws {
        let (shared, fd, device) = try setUp()
        #expect(shared.setFileOption(fd, .receiveTimeout(5 * Time.second)) == nil)
        let finished = Box(false)
        let stopWatchdog = watchdog(shared, finished)
        let join = later(0.02) { device.raise() }
        let (r, bytes) = receive(shared, fd)
        shared.lock.withLock { finished.value = true }
        join(); stopWatchdog()
        #expect(r == .success(3) && bytes == [7, 8, 9])
        #expect(device.polls == 1 && shared.deviceSleepPolls == 1 && shared.deviceSleeps >= 1)
        #expect(shared.lock.wakeups == 0)
        #expect(device.acquires == 1 && device.releases == 1 && !device.held)
    }

    @Test("frames the engine processed end the device sleep through wakeAll: the caller returns without polling")
    func wakeAllEndsTheDeviceSleep() throws {
        let (shared, fd, device) = try setUp()
        #expect(shared.setFileOption(fd, .receiveTimeout(5 * Time.second)) == nil)
        // The "engine": once the caller sleeps on the device, moves the wire on (delivering the
        // datagram) from another thread.
        let join = later(0) {
            for _ in 0..<500 where device.locked({ device.sleeps }) == 0 { usleep(2_000) }
            shared.advance(to: shared.now + Time.millisecond)
        }
        let (r, bytes) = receive(shared, fd)
        join()
        #expect(r == .success(3) && bytes == [7, 8, 9])
        #expect(device.polls == 0 && device.wakes >= 1)
        #expect(shared.lock.wakeups == 0)
        #expect(device.acquires == 1 && device.releases == 1)
    }

    @Test("a caller that blocks later takes the device over; the first sleeps on the condition variable until its timeout")
    func newestBlockedCallerTakesTheDevice() throws {
        let (shared, fd, device) = try setUp()
        let idle = try idleSocket(shared)
        #expect(shared.setFileOption(fd, .receiveTimeout(5 * Time.second)) == nil)
        let first = Box<Result<Int, Errno>?>(nil)
        let joinFirst = later(0) { first.value = receive(shared, idle).0 }
        for _ in 0..<500 where device.locked({ device.sleeps }) == 0 { usleep(2_000) }
        #expect(device.locked { device.held })
        let finished = Box(false)
        let stopWatchdog = watchdog(shared, finished)
        // The interrupt comes once the second caller owns the device.
        let join = later(0) {
            for _ in 0..<500 where device.locked({ device.acquires }) < 2 { usleep(2_000) }
            device.raise()
        }
        let (r, bytes) = receive(shared, fd)
        shared.lock.withLock { finished.value = true }
        join(); stopWatchdog()
        #expect(r == .success(3) && bytes == [7, 8, 9])
        #expect(shared.deviceHandoffs == 1 && device.acquires == 2 && device.polls == 1)
        // The first caller is still blocked, now on the condition variable: its timeout ends it.
        shared.advance(to: shared.now + 2 * Time.second)
        joinFirst()
        #expect(first.value == .failure(.EAGAIN))
        #expect(shared.lock.wakeups >= 1)
        #expect(device.releases == 2 && !device.held)
    }

    @Test("when the host takes the device back, its sleeper gives it back and waits on the condition variable")
    func hostTakesTheDeviceBack() throws {
        let (shared, _, device) = try setUp()
        let idle = try idleSocket(shared)
        let result = Box<Result<Int, Errno>?>(nil)
        let join = later(0) { result.value = receive(shared, idle).0 }
        for _ in 0..<500 where device.locked({ device.sleeps }) == 0 { usleep(2_000) }
        shared.withStack { _, _ in shared.deviceSleep = nil; shared.lock.wakeAll() }
        for _ in 0..<500 where device.locked({ device.held }) { usleep(2_000) }
        #expect(device.releases == 1 && !device.held)
        shared.advance(to: shared.now + 2 * Time.second)
        join()
        #expect(result.value == .failure(.EAGAIN))
        #expect(device.acquires == 1)
    }

    @Test("a poll that reads a stream's worth of frames leaves the device to the engine for a while: the next blocked receive does not take it")
    func aStreamPausesDeviceSleep() throws {
        let (shared, fd, device) = try setUp()
        shared.deviceSleepPause = 60 * Time.second   // real time: outlasts the test
        device.locked { device.framesPerPoll = shared.deviceSleepStreamFrames }
        #expect(shared.setFileOption(fd, .receiveTimeout(5 * Time.second)) == nil)
        let join = later(0) {
            for _ in 0..<500 where device.locked({ device.sleeps }) == 0 { usleep(2_000) }
            device.raise()
        }
        let (r, _) = receive(shared, fd)
        join()
        #expect(r == .success(3))
        #expect(shared.deviceSleepPauses == 1 && device.acquires == 1 && device.releases == 1)
        // Paused: a blocked receive sleeps on the condition variable; its timeout ends it.
        let idle = try idleSocket(shared)
        let result = Box<Result<Int, Errno>?>(nil)
        let joinIdle = later(0) { result.value = receive(shared, idle).0 }
        for _ in 0..<500 where !shared.lock.withLock({ shared.lock.hasSleepers }) { usleep(2_000) }
        shared.advance(to: shared.now + 2 * Time.second)
        joinIdle()
        #expect(result.value == .failure(.EAGAIN))
        #expect(device.acquires == 1 && shared.deviceSleeps == 1)
    }

    @Test("non-blocking receives and sends never take the device")
    func onlyBlockingReceivesSleepOnTheDevice() throws {
        let (shared, fd, device) = try setUp()
        BusyPollTests.receiveNonBlockingThenSend(shared, fd)
        #expect(device.acquires == 0 && shared.deviceSleeps == 0)
    }
}
