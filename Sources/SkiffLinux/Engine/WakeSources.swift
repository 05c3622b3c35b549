#if canImport(Glibc)
import Glibc
#endif
import CSkiffLinux
import Skiff

/// The three things an engine thread sleeps on: its port descriptor, an eventfd other threads
/// write when the stack's next deadline moved earlier (the wake hook), and a timerfd armed at
/// that deadline. Linux counterparts: the queue's interrupt line, `raise_softirq()` waking
/// `ksoftirqd`, and the hrtimer that expires the timer wheel.
final class WakeSources: @unchecked Sendable {
    let epoll: Int32
    let event: Int32
    let timer: Int32
    let port: Int32
    /// The eventfd a blocked caller sleeping on the port also sleeps on (`callerSleep`).
    let callerEvent: Int32
    private var armedAt: Nanoseconds = .max
    /// The timer expired during the last sleep (the engine thread's own flag; it clears it with
    /// `noteExpiry()` under the stack lock).
    private var timerFired = false
    private let ready: UnsafeMutablePointer<Int32>
    static let capacity: Int32 = 8

    init(port: Int32) throws(PortError) {
        let ep = skiff_epoll_create()
        guard ep >= 0 else { throw .system(operation: "epoll_create1", device: "engine", errno: errno) }
        let ev = skiff_eventfd()
        let tf = skiff_timerfd()
        let ce = skiff_eventfd()
        guard ev >= 0, tf >= 0, ce >= 0 else {
            let e = errno
            for fd in [ep, ev, tf, ce] where fd >= 0 { Glibc.close(fd) }
            throw .system(operation: "eventfd/timerfd_create", device: "engine", errno: e)
        }
        epoll = ep; event = ev; timer = tf; callerEvent = ce; self.port = port
        ready = .allocate(capacity: Int(WakeSources.capacity))
        for fd in [port, ev, tf] where skiff_epoll_add(ep, fd) != 0 {
            let err = errno
            close()
            throw .system(operation: "epoll_ctl", device: "engine", errno: err)
        }
    }

    deinit { ready.deallocate() }

    /// Wakes the thread from any other thread (no allocation).
    @inline(__always)
    func wake() {
        var one: UInt64 = 1
        _ = write(event, &one, 8)
    }

    /// After a sleep, under the stack lock: a timer that expired is no longer armed.
    func noteExpiry() {
        if timerFired { timerFired = false; armedAt = .max }
    }

    /// Arms the timer at an absolute monotonic time; nil disarms it. Called under the stack lock
    /// (by the engine, or by the wake hook in another thread), which guards `armedAt`.
    func arm(at deadline: Nanoseconds?) {
        let d = deadline ?? .max
        // A later deadline keeps the earlier expiry: the engine then wakes once early, finds
        // nothing due and arms the timer again. Retransmission timers move later with every
        // ACK, and re-arming at each wake-up would cost a system call per wake-up (Linux's timer
        // wheel likewise lets a postponed timer fire early and requeue itself).
        if d >= armedAt { return }
        armedAt = d
        _ = skiff_timerfd_arm(timer, d == .max ? 0 : max(d, 1))
    }

    /// Sleeps until one source is ready or `timeoutMs` passes (-1: no limit). Drains the eventfd
    /// and timerfd; returns true when only the port descriptor woke it (no timer, no wake call,
    /// no timeout): then nothing but frames waits for the engine.
    @discardableResult
    func sleep(timeoutMs: Int32) -> Bool {
        let n = skiff_epoll_wait(epoll, ready, WakeSources.capacity, timeoutMs)
        var portReady = false, other = n <= 0
        var scratch: UInt64 = 0
        if n > 0 {
            for i in 0..<Int(n) {
                let fd = ready[i]
                if fd == port { portReady = true }
                else if fd == event { _ = read(event, &scratch, 8); other = true }
                else if fd == timer { _ = read(timer, &scratch, 8); timerFired = true; other = true }
            }
        }
        return portReady && !other
    }

    /// Stops or resumes watching the port (a blocked caller owns it meanwhile). Level-triggered:
    /// frames that came while it was not watched wake the engine as soon as it watches again.
    /// Linux: masking and unmasking the queue's interrupt (`napi_defer_hard_irqs`).
    func watchPort(_ on: Bool) { _ = skiff_epoll_watch(epoll, port, on ? 1 : 0) }

    /// Ends a caller's `callerSleep` from any thread (no allocation).
    @inline(__always)
    func wakeCaller() {
        var one: UInt64 = 1
        _ = write(callerEvent, &one, 8)
    }

    /// A blocked caller's sleep on the port: until it is readable, `wakeCaller` or the monotonic
    /// deadline (nil: no limit); true when the port has frames. Drains the caller eventfd.
    func callerSleep(until deadline: Nanoseconds?) -> Bool {
        var fds = (pollfd(fd: port, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: callerEvent, events: Int16(POLLIN), revents: 0))
        var timeoutMs: Int32 = -1
        if let d = deadline {
            let now = MonotonicClock.read()
            // Rounded up to a whole millisecond, as poll(2) counts.
            timeoutMs = d <= now ? 0 : Int32(clamping: (d &- now &+ Time.millisecond &- 1) / Time.millisecond)
        }
        let n = withUnsafeMutableBytes(of: &fds) { raw in
            Glibc.poll(raw.baseAddress!.assumingMemoryBound(to: pollfd.self), 2, timeoutMs)
        }
        guard n > 0 else { return false }
        if fds.1.revents != 0 {
            var scratch: UInt64 = 0
            _ = read(callerEvent, &scratch, 8)
        }
        return fds.0.revents & Int16(POLLIN) != 0
    }

    func close() {
        Glibc.close(epoll); Glibc.close(event); Glibc.close(timer); Glibc.close(callerEvent)
    }
}
