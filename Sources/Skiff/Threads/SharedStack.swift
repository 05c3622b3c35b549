#if canImport(Glibc)
import Glibc
#endif

/// A `NetworkStack` that many threads share, with the blocking socket calls.
///
/// Every call takes the stack's `StackLock`, so the socket API is safe from any thread. An
/// application thread's `send` runs the transmit path itself, in process context, down to the
/// driver's doorbell (and the softirqs it raised on the way out, as `local_bh_enable()` does);
/// an engine thread runs timers, interrupts and port I/O in between. A call that must wait sleeps
/// (`StackLock.wait`) until a change concerns it — one on a socket until that socket's wake-up
/// marks move — until its timeout (SO_RCVTIMEO / SO_SNDTIMEO) passes, or for ever; with
/// O_NONBLOCK or MSG_DONTWAIT it returns EAGAIN / EINPROGRESS at once, as the plain
/// `NetworkStack` calls do.
///
/// Time comes from the monotonic clock (real hosts: an engine thread keeps the stack running) or
/// is manual (packetdrill, tests): then it moves only when `advance(to:)` is called, which runs
/// every timer and softirq that falls due on the way, in order.
///
/// Linux: `sock_recvmsg` / `sock_sendmsg` with `lock_sock`, `sk_wait_event`, `sock_rcvtimeo`.
public final class SharedStack: @unchecked Sendable {
    public enum TimeSource: Sendable {
        /// `CLOCK_MONOTONIC`: timeouts are real time.
        case monotonic
        /// Virtual time that moves only through `advance(to:)`.
        case manual
    }

    public let stack: NetworkStack
    public let lock: StackLock
    public let timeSource: TimeSource
    let readClock: () -> Nanoseconds
    let advanceClock: (Nanoseconds) -> Void

    /// When the engine thread plans to wake next (read and written under the lock).
    public var engineWakeAt: Nanoseconds = .max
    /// Called under the lock when the stack's next deadline moves earlier than `engineWakeAt`,
    /// so a sleeping engine thread recomputes its sleep (it typically writes an eventfd).
    public var wakeEngine: (@Sendable () -> Void)?

    /// How long a blocked receive (recv, recvfrom, accept) polls the device itself before it
    /// sleeps, in real time (it is time spent spinning, whatever the stack's clock); 0 (the
    /// default, as on Linux) never. Needs a `busyPollDevice`. Linux: `net.core.busy_read`,
    /// `sk_busy_loop()`.
    public var busyRead: Nanoseconds = 0
    /// Polls the device once from the calling thread, with the stack unlocked, and returns
    /// whether it read frames (set by the host that owns the port). Linux: `napi_busy_loop()`.
    public var busyPollDevice: (@Sendable () -> Bool)?
    /// Busy-poll rounds run by blocked callers, and the ones that read frames.
    public private(set) var busyPollRounds: UInt64 = 0
    public private(set) var busyPollHits: UInt64 = 0

    /// When set (by the host that owns the port, on the monotonic clock), a blocked receive
    /// sleeps on the device and runs its NAPI poll itself (see `DeviceSleep`); nil: blocked
    /// callers sleep on the condition variable and the engine alone polls the device. Set under
    /// the lock.
    public var deviceSleep: DeviceSleep? {
        // The wake hook outlives the setting: a caller may still sleep on the device when the
        // host takes it back (it is woken, finds `deviceSleep` nil and gives the device back).
        didSet { if let d = deviceSleep { lock.wakeDeviceSleepers = d.wake } }
    }
    /// Sleeps blocked callers took on the device, the polls after them that read frames, and
    /// the times a newly blocked caller took the device over from an older sleeper.
    public private(set) var deviceSleeps: UInt64 = 0
    public private(set) var deviceSleepPolls: UInt64 = 0
    public private(set) var deviceHandoffs: UInt64 = 0
    /// A blocked caller wants the device that another caller sleeps on (under the lock).
    var deviceWanted = false
    /// A poll after a device sleep that reads this many frames or more means a stream is
    /// flowing: callers then leave the device to the engine for `deviceSleepPause`, so that the
    /// engine's NET_RX work runs beside the application's copying instead of in its thread.
    public var deviceSleepStreamFrames = 16
    public var deviceSleepPause: Nanoseconds = 10 * Time.millisecond
    /// Until when callers leave the device to the engine (monotonic), and how often that began.
    var deviceSleepPausedUntil: Nanoseconds = 0
    public private(set) var deviceSleepPauses: UInt64 = 0
    /// Device sleeping is paused (a stream was flowing a moment ago).
    var deviceSleepPaused: Bool { deviceSleepPausedUntil != 0 && MonotonicClock.read() < deviceSleepPausedUntil }

    /// A stack on the monotonic clock; an engine thread must run it.
    public init(stack: NetworkStack, lock: StackLock = StackLock()) {
        self.stack = stack
        self.lock = lock
        timeSource = .monotonic
        readClock = { MonotonicClock.read() }
        advanceClock = { _ in }
    }

    /// A stack on manual time. By default the clock is the stack's own `now` and `advance(to:)`
    /// runs the stack alone; a simulation that drives several stacks passes its own clock and
    /// advance function (and one lock for all of them).
    public init(manual stack: NetworkStack, lock: StackLock = StackLock(),
                clock: (() -> Nanoseconds)? = nil, advance: ((Nanoseconds) -> Void)? = nil) {
        self.stack = stack
        self.lock = lock
        timeSource = .manual
        readClock = clock ?? { [unowned stack] in stack.now }
        advanceClock = advance ?? { [unowned stack] t in SharedStack.runStack(stack, until: t) }
    }

    /// The current time on this stack's time source.
    public var now: Nanoseconds { readClock() }

    // MARK: Locking

    /// Runs `body` with the stack locked, then wakes sleepers and, if needed, the engine.
    @inline(__always)
    public func withStack<R>(_ body: (NetworkStack, Nanoseconds) throws -> R) rethrows -> R {
        enterCall()
        defer { leaveCall() }
        return try body(stack, readClock())
    }

    /// NICs that put frames on their port outside the lock (`NICModel.deferredTransmit`); set
    /// under the lock by `deferTransmits(on:)` before traffic flows.
    private var deferredNICs: [NICModel] = []

    /// Makes `nic` transmit outside the stack lock: the doorbell hands the frames over and the
    /// thread that next leaves the lock puts them on the port while other threads use the stack.
    public func deferTransmits(on nic: NICModel) {
        withStack { _, _ in
            nic.deferredTransmit = true
            if !deferredNICs.contains(where: { $0 === nic }) { deferredNICs.append(nic) }
        }
    }

    /// Application threads inside a call (under the lock or sleeping in it, read under the
    /// lock). Each leaves through `leaveCall`, which puts handed-over frames on the port; while
    /// there is one, an engine leaves its frames to it instead of waking the transmitter, and
    /// the transmitter leaves them to it too (a sleeping caller is woken by `settle` or
    /// `wakeAll` and takes them on its way back to sleep).
    private var callersInside = 0

    /// Takes the lock for an application thread's call.
    @inline(__always)
    func enterCall() {
        lock.lock()
        callersInside += 1
    }

    /// Ends a call: wakes sleepers, leaves the lock and puts handed-over frames on the port.
    @inline(__always)
    func leaveCall() {
        settle(leaving: true)
        callersInside -= 1
        unlockAndTransmit()
    }

    /// Leaves the lock; then, if a doorbell handed frames to a deferred transmitter meanwhile,
    /// puts them on the port in this thread (unless another thread already is).
    @inline(__always)
    func unlockAndTransmit() {
        let pending = stack.takeTransmitPending()
        lock.unlock()
        if pending { transmitDeferred() }
    }

    /// Puts handed-over frames on their ports (lock not held), then completes them under the
    /// lock, which runs the TX-clean interrupt and whatever it sends in turn; bounded rounds
    /// (what is left then is the next lock holder's). With `yieldingToCallers` (the transmit
    /// thread) it stops after a round when an application thread has come in, and leaves it
    /// what is left.
    @discardableResult
    func transmitDeferred(yieldingToCallers: Bool = false) -> Bool {
        let nics = deferredNICs   // written once before traffic; an array copy is a retain
        var any = false
        for _ in 0..<64 {
            var sent = false
            for nic in nics where nic.transmitDeferred() { sent = true }
            if sent {
                any = true
                lock.lock()
                stack.completeDeferredTransmits(now: readClock())
                _ = stack.takeTransmitPending()   // this thread looks again below
                settle()
                if yieldingToCallers && callersInside > 0 {
                    // The transmitter: an application thread came in meanwhile; what the
                    // completion sent is its to put on the port as it leaves (a sleeping one
                    // is woken for it).
                    if nics.contains(where: { $0.hasTransmitBacklog }) {
                        stack.transmitPending = true
                        lock.wakeOneCaller(of: ObjectIdentifier(self))
                    }
                    lock.unlock()
                    return any
                }
                lock.unlock()
            }
            // Done when nothing waits. When another thread held the transmit lock, it looks
            // again after letting go (and so takes what this thread handed over): leave it.
            if !sent || !nics.contains(where: { $0.hasTransmitBacklog }) { return any }
        }
        // Still more after many rounds (other threads keep sending): leave the rest to the
        // transmitter, or to the next thread that leaves the lock.
        lock.lock()
        stack.transmitPending = true
        let kick = transmitKick
        lock.unlock()
        kick?()
        return any
    }

    /// Sleeps (lock held), unless frames wait to be put on a port: then transmits them and
    /// returns at once, as a spurious wake-up (callers re-check). With a `key` only that
    /// descriptor's wake-ups (or `wakeAll`) end the sleep; returns whether one did.
    /// `marks` are the key's marks from before the try that failed: if they moved since, it
    /// returns at once.
    @inline(__always)
    @discardableResult
    func sleep(untilMonotonic deadline: Nanoseconds?, key: Int32 = -1, marks: StackLock.Marks = (0, 0, 0)) -> Bool {
        if stack.transmitPending {
            unlockAndTransmit()
            lock.lock()
            return true
        }
        if key >= 0 {
            let now = stack.wakeMarks(key)
            if now.data != marks.data || now.state != marks.state || now.write != marks.write { return true }
        }
        return lock.wait(untilMonotonic: deadline, key: key, marks: marks, stack: key >= 0 ? stack : nil,
                         owner: ObjectIdentifier(self))
    }

    /// The longest a caller sleeps on one socket's wake-ups before it looks again by itself: a
    /// net under the marks. A look that then finds its call can go on counts as a missed wake-up
    /// (`missedWakeups`), which the tests require to stay 0.
    public var keyedSleepLimit: Nanoseconds = 200 * Time.millisecond
    /// Keyed sleeps that ended at `keyedSleepLimit` and whose next try made progress: a change
    /// the socket's marks did not show (read under the lock).
    public internal(set) var missedWakeups: UInt64 = 0

    /// `withStack` for a thread that must not spend its time putting frames on ports (an engine
    /// thread): frames its work handed over are left to the transmitter (`transmitKick`) or to
    /// the next thread that leaves the lock. Without a transmitter it puts them on the port itself.
    @inline(__always)
    public func withStackLeavingTransmits<R>(_ body: (NetworkStack, Nanoseconds) throws -> R) rethrows -> R {
        lock.lock()
        defer {
            settle()
            if stack.transmitPending && callersInside > 0 {
                lock.unlock()   // a caller's leaveCall (or its next sleep) takes them
            } else if let kick = transmitKick, stack.transmitPending {
                lock.unlock()
                kick()
            } else {
                unlockAndTransmit()
            }
        }
        return try body(stack, readClock())
    }
    /// Wakes the transmitter (called without the lock) when frames were handed over and left
    /// for it. Set under the lock by the host that runs one.
    public var transmitKick: (@Sendable () -> Void)?

    /// The transmitter's turn (lock not held): puts every handed-over frame on its port and
    /// completes them; true when there were some. While an application thread is inside a call
    /// the frames are left to it (it takes them when it leaves the lock or goes to sleep), unless
    /// `leavingToCallers` is false: a transmitter that took over whenever a sending thread was
    /// between two calls would keep the transmissions (completion runs the qdisc again, which
    /// hands it more), and the two threads would split one stream's writes between them.
    public func transmitHandedOver(leavingToCallers: Bool = true) -> Bool {
        if leavingToCallers {
            lock.lock()
            let inside = callersInside > 0
            // A caller asleep since before the frames were handed over has not seen them: wake
            // it to take them (it transmits before it sleeps again).
            if inside && stack.transmitPending { lock.wakeOneCaller(of: ObjectIdentifier(self)) }
            lock.unlock()
            if inside { return false }
        }
        return transmitDeferred(yieldingToCallers: leavingToCallers)
    }

    /// After a change: wake the blocked callers it concerns, and the engine if its sleep is now
    /// too long. `leaving`: the calling thread is a caller on its way out, which puts handed-over
    /// frames on the port itself.
    @inline(__always)
    func settle(leaving: Bool = false) {
        // Frames handed over while a caller is inside are that caller's to put on the port
        // (see `withStackLeavingTransmits`): one sleeper at least must wake to take them.
        let frames = !leaving && stack.transmitPending && callersInside > 0
        lock.wakeChanged(oneAtLeastFor: frames ? ObjectIdentifier(self) : nil)
        wakeEngineIfNeeded()
    }

    /// Tells a sleeping engine thread that the stack's next deadline moved earlier.
    @inline(__always)
    func wakeEngineIfNeeded() {
        if let wake = wakeEngine, let d = stack.nextDeadline(), d < engineWakeAt {
            engineWakeAt = d
            wake()
        }
    }

    /// Manual time: moves the clock to `t`, running every timer, interrupt and softirq due on the
    /// way in time order, then wakes blocked callers (who re-check their condition and timeout).
    /// Time stops at each blocked caller's timeout on the way, and moves on once the callers due
    /// then have returned, so a timeout ends at its own time, not at `t`.
    public func advance(to t: Nanoseconds) {
        precondition(timeSource == .manual, "advance(to:) is for manual time")
        enterCall()
        defer {
            lock.wakeAll()   // every blocked caller looks at the new time (its timeout may be due)
            leaveCall()
        }
        var rounds = 0
        while rounds < 100_000 {
            rounds += 1
            let target = min(t, lock.earliestDeadline(after: readClock()) ?? t)
            advanceClock(target)
            if target >= t { break }
            // Let the callers whose timeout is now run before time moves on (bounded: a caller
            // that does not get to run within about a second of real time is left behind).
            lock.wakeAll()
            var waits = 0
            while lock.hasDeadline(atOrBefore: target) && waits < 1000 {
                sleep(untilMonotonic: MonotonicClock.read() &+ Time.millisecond)
                waits += 1
            }
        }
    }

    /// Registers a timeout so that manual time stops there (nil on the monotonic clock).
    @inline(__always)
    func registerTimeout(_ deadline: Nanoseconds?) -> UInt64? {
        guard timeSource == .manual, let d = deadline else { return nil }
        return lock.registerDeadline(d)
    }

    /// Runs one stack alone up to `t`: each due deadline in order, then `t` itself.
    static func runStack(_ stack: NetworkStack, until t: Nanoseconds) {
        var steps = 0
        while let d = stack.nextDeadline(), d <= t, steps < 10_000_000 {
            stack.run(now: max(d, stack.now))
            steps += 1
        }
        stack.run(now: t)
    }

    // MARK: The blocking loop

    /// One busy-poll round of a blocked caller (the lock held on entry and on return): polls
    /// the device with the lock released, unless the `busyRead` time, started at the first
    /// round, has run out; false when it has (the caller then sleeps). Linux: `sk_busy_loop()`.
    func busyPoll(_ poll: @Sendable () -> Bool, until: inout Nanoseconds) -> Bool {
        let t = MonotonicClock.read()
        if until == 0 { until = t &+ busyRead }
        guard t < until else { return false }
        busyPollRounds &+= 1
        unlockAndTransmit()
        let hit = poll()
        lock.lock()
        if hit { busyPollHits &+= 1 }
        return true
    }

    /// One try of a call: finished, or it would block (with what to return if we stop waiting);
    /// `progressed` when the try changed the stack (copied some bytes, sent a SYN) although it
    /// must wait for the rest — only then are other sleepers woken.
    enum Attempt<R> {
        case done(R)
        case wouldBlock(R)
        case progressed(R)
    }

    /// Tries `attempt` until it finishes; sleeps in between unless the descriptor is
    /// non-blocking or `dontWait`, and gives up after the send or receive timeout. Linux:
    /// `sk_wait_event()` under `lock_sock()`.
    func blocking<R>(_ fd: Int32, sending: Bool, dontWait: Bool,
                     _ attempt: (NetworkStack, Nanoseconds) -> Attempt<R>) -> R {
        enterCall()
        defer { leaveCall() }
        let file = (try? stack.fileState(fd).get()) ?? FileState()
        let wait = !dontWait && !file.nonBlocking
        let timeout = sending ? file.sendTimeout : file.receiveTimeout
        let deadline: Nanoseconds? = timeout > 0 ? readClock() &+ timeout : nil
        let token = wait ? registerTimeout(deadline) : nil
        defer { if let token { lock.removeDeadline(token) } }
        // Busy polling: a blocked receive first polls the device itself for up to `busyRead`.
        let poller = !sending && wait && busyRead > 0 ? busyPollDevice : nil
        var busyUntil: Nanoseconds = 0
        // The device, while this caller owns it to sleep on (given back when the call ends).
        var owned: DeviceSleep? = nil
        defer { owned?.release() }
        var handedOver = false
        // The last sleep on this socket's wake-ups ended at the limit, not by a wake-up.
        var lookedByItself = false
        while true {
            let t = readClock()
            // The marks before the try: a wake-up during it (softirq work it ran) ends the sleep
            // after it (Linux: prepare_to_wait before the condition is checked).
            let marks = stack.wakeMarks(fd)
            if lookedByItself && sending && !stack.sendWakeCondition(fd) && deadline.map({ t < $0 }) ?? true {
                // A writer sleeps until a third of its send buffer is free, as Linux's
                // sk_stream_write_space wakes it: looking by itself changes nothing of that.
                lookedByItself = keyedSleep(fd, marks: marks, deadline: deadline)
                continue
            }
            let result = attempt(stack, t)
            if lookedByItself {
                lookedByItself = false
                if case .wouldBlock = result {} else { missedWakeups &+= 1 }
            }
            switch result {
            case let .done(r):
                return r
            case let .wouldBlock(r):
                if !wait { return r }
                if let d = deadline, t >= d { return r }
                // The try ran softirq work that may have served other sockets' sleepers (not
                // the unkeyed ones: two sleepers must not wake each other for ever).
                lock.wakeChanged(unkeyed: false)
            case let .progressed(r):
                if !wait { return r }
                if let d = deadline, t >= d { return r }
                // Others may be waiting for what this try did (a blocked reader for our bytes).
                lock.wakeChanged()
            }
            // The engine learns of new deadlines the try set.
            wakeEngineIfNeeded()
            if let poll = poller, busyPoll(poll, until: &busyUntil) { continue }
            if wait, !sending, !handedOver, let device = owned ?? deviceSleep {
                let paused = deviceSleepPaused
                if owned != nil && (deviceSleep == nil || deviceWanted || paused) {
                    // The host took the device back, a caller that blocked after this one wants
                    // it, or a stream is flowing: give it back, and sleep on the condition
                    // variable (for this call, unless only paused).
                    device.release()
                    owned = nil
                    if deviceWanted { deviceWanted = false; deviceHandoffs &+= 1; handedOver = true }
                    lock.wakeAll()
                } else if paused {
                    // A stream is flowing: the engine polls the device meanwhile.
                } else if owned != nil || device.acquire() {
                    if owned == nil { owned = device; deviceWanted = false }
                    sleepOnDevice(device, until: timeSource == .monotonic ? deadline : nil)
                    continue
                } else if lock.deviceSleepers > 0 {
                    // The newest blocked caller is the likeliest to be answered next (request and
                    // response): ask the one sleeping on the device to hand it over.
                    deviceWanted = true
                    device.wake()
                }
            }
            lookedByItself = keyedSleep(fd, marks: marks, deadline: deadline)
        }
    }

    /// Sleeps on descriptor `fd`'s wake-ups (lock held), at most `keyedSleepLimit`; true when
    /// the sleep ended at that limit rather than by a wake-up or at the caller's deadline.
    private func keyedSleep(_ fd: Int32, marks: StackLock.Marks, deadline: Nanoseconds?) -> Bool {
        let limit = MonotonicClock.read() &+ keyedSleepLimit
        let until = timeSource == .monotonic ? min(deadline ?? limit, limit) : limit
        let woken = sleep(untilMonotonic: until, key: fd, marks: marks)
        return !woken && until == limit && (timeSource != .monotonic || deadline.map { limit < $0 } ?? true)
    }

    /// One sleep of a blocked caller on the device it owns (the lock held on entry and on
    /// return): sleeps unlocked until frames, a `wakeAll` or the deadline, then runs the NAPI
    /// poll the frames need in this thread. The caller counts among the device sleepers only
    /// while it sleeps, so that its own poll's wake-ups do not come back to it.
    func sleepOnDevice(_ device: DeviceSleep, until deadline: Nanoseconds?) {
        if stack.transmitPending {
            // Frames wait to be put on the port: that first, then look again (no sleep).
            unlockAndTransmit()
            lock.lock()
            return
        }
        deviceSleeps &+= 1
        lock.deviceSleepers += 1
        lock.unlock()
        let frames = device.sleep(deadline)
        lock.lock()
        lock.deviceSleepers -= 1
        guard frames else { return }
        unlockAndTransmit()
        let read = device.poll()
        lock.lock()
        if read > 0 { deviceSleepPolls &+= 1 }
        if read >= deviceSleepStreamFrames {
            deviceSleepPausedUntil = MonotonicClock.read() &+ deviceSleepPause
            deviceSleepPauses &+= 1
        }
    }
}
