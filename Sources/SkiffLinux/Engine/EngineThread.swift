#if canImport(Glibc)
import Glibc
#endif
import CSkiffLinux
import Skiff
import Synchronization

/// Counters of one engine thread (Linux: a CPU's line in `/proc/net/softnet_stat` and its
/// `ksoftirqd` thread's CPU time).
public struct EngineStatistics: Sendable {
    /// Wake-ups from epoll.
    public var wakeups: UInt64 = 0
    /// Non-empty batches read from the port.
    public var batches: UInt64 = 0
    /// Frames handed to the NIC (after GSO frames were cut into segments).
    public var framesToNIC: UInt64 = 0
    /// Times the engine ran the stack (`run(now:)`).
    public var runs: UInt64 = 0
    /// The thread's own CPU time (its `CLOCK_THREAD_CPUTIME_ID`), and the time spent outside the
    /// stack lock in port reads.
    public var cpuTime: Nanoseconds = 0
    public var portReadTime: Nanoseconds = 0
    /// Busy-poll rounds that found a frame (Linux: `LINUX_MIB_BUSYPOLLRXPACKETS`-like).
    public var busyPollHits: UInt64 = 0
    /// NAPI polls that blocked application threads ran themselves (`busyPollFromCaller`).
    public var callerBusyPolls: UInt64 = 0
    public init() {}
}

/// One engine thread per queue: the softirq daemon and NAPI poll loop of a real host.
///
/// It sleeps in `epoll_wait` on its queue's port descriptor, the wake eventfd and a timerfd
/// armed at the stack's next deadline. On a wake-up it reads a batch of frames without the
/// lock, then under the lock hands them to the NIC (hard-IRQ context: the NIC's DMA and its
/// interrupt), runs the stack (`run(now:)`: interrupts, NET_RX with NAPI, NET_TX, timers) every
/// NAPI weight of frames and once at the end, and re-arms the timer. While the port keeps
/// filling whole batches it does not sleep (Linux: NAPI staying in polling mode / `ksoftirqd`
/// looping). Queue 0's thread owns the stack's timers and the wake hook.
/// Linux: `net_rx_action()` run from `ksoftirqd/N` (or threaded NAPI, `napi_threaded_poll`).
public final class EngineThread: @unchecked Sendable {
    public let queue: Int
    let shared: SharedStack
    let port: any LinuxPort
    let device: NetDevice
    let batch: FrameBatch
    let wake: WakeSources
    let ownsTimers: Bool
    /// How long to busy-poll the port before sleeping (0: never). Set before `start()`.
    public var busyPoll: Nanoseconds = 0
    private var thread = pthread_t()
    private var started = false
    /// Set by `stop()` from another thread, read by the loop (the eventfd write that follows
    /// wakes it).
    private let stopFlag = Atomic<Bool>(false)
    /// Under the stack lock (no runtime exclusivity checks, like the stack's own state).
    @exclusivity(unchecked) private var stats = EngineStatistics()
    /// Busy-poll hits, counted by the loop outside the locks and copied into `stats` under the
    /// stack lock (possibly by a busy-polling caller's thread).
    private let busyHits = Atomic<UInt64>(0)
    /// Caller busy polls, counted under `pollLock` and copied into `stats` under the stack lock.
    @exclusivity(unchecked) private var callerPolls: UInt64 = 0
    /// Held by whoever reads the port and feeds the NIC: the engine's loop or a blocked
    /// caller's busy poll (Linux: NAPI ownership, `NAPI_STATE_SCHED`). Taken before the stack
    /// lock, never while holding it.
    private let pollLock: UnsafeMutablePointer<pthread_mutex_t>
    private let portDescriptor: Int32
    /// The port, when it reads frames straight into the NIC's posted buffers (TAP with a
    /// virtio-net header on a device with TSO, whose buffers hold a whole 64 KiB frame).
    private let direct: (any DirectReceivePort)?
    private let directBuffers: UnsafeMutablePointer<UnsafeMutableRawBufferPointer>
    private let directLengths: UnsafeMutablePointer<Int>
    private let directOffloads: UnsafeMutablePointer<FrameOffload>

    public init(shared: SharedStack, port: any LinuxPort, device: NetDevice, queue: Int,
                batchCapacity: Int = 64) throws(PortError) {
        self.shared = shared
        self.port = port
        self.device = device
        self.queue = queue
        ownsTimers = queue == 0
        batch = FrameBatch(capacity: batchCapacity)
        // The NIC spreads a GSO frame over a head buffer and up to 17 fragments (Linux:
        // MAX_SKB_FRAGS for virtio's mergeable buffers); 16 buffers leave a spare.
        batch.maxReceiveFrame = 16 * max(device.nic.receiveBufferSize, 1536)
        portDescriptor = port.fileDescriptor(queue: queue)
        wake = try WakeSources(port: portDescriptor)
        pollLock = .allocate(capacity: 1)
        pthread_mutex_init(pollLock, nil)
        // Only one engine may feed the ring it reads into without the lock: a single queue.
        if let d = port as? any DirectReceivePort, d.receivesDirectly, device.features.contains(.tso),
           port.queueCount == 1, device.rxQueues.count == 1 {
            direct = d
        } else {
            direct = nil
        }
        directBuffers = .allocate(capacity: batchCapacity)
        directBuffers.initialize(repeating: UnsafeMutableRawBufferPointer(start: nil, count: 0), count: batchCapacity)
        directLengths = .allocate(capacity: batchCapacity)
        directLengths.initialize(repeating: 0, count: batchCapacity)
        directOffloads = .allocate(capacity: batchCapacity)
        directOffloads.initialize(repeating: .none, count: batchCapacity)
        if ownsTimers {
            let w = wake
            // The hook runs under the stack lock in the thread whose call moved the next
            // deadline earlier: it re-arms the engine's timerfd there (a system call, no wake-up
            // of the engine thread, which sleeps on in epoll until the timer or the port fires).
            let s = shared
            shared.withStack { _, _ in shared.wakeEngine = { w.arm(at: s.engineWakeAt) } }
        }
    }

    deinit {
        wake.close()
        pthread_mutex_destroy(pollLock)
        pollLock.deallocate()
        directBuffers.deallocate()
        directLengths.deallocate()
        directOffloads.deallocate()
    }

    /// Starts the thread.
    public func start() throws(PortError) {
        thread = try startNamedThread("skiff-eng/\(queue)") { [self] in loop() }.get()
        started = true
    }

    /// Stops the thread and waits for it.
    public func stop() {
        guard started else { return }
        started = false
        stopFlag.store(true, ordering: .releasing)
        wake.wake()
        pthread_join(thread, nil)
        if ownsTimers { shared.withStack { _, _ in shared.wakeEngine = nil } }
    }

    /// The thread's counters (read under the stack lock, where the loop writes them), with its
    /// CPU time read from its own CPU clock (`pthread_getcpuclockid`).
    public var statistics: EngineStatistics {
        var s = shared.withStack { _, _ in stats }
        if started {
            var clock = clockid_t()
            var ts = timespec()
            if pthread_getcpuclockid(thread, &clock) == 0, clock_gettime(clock, &ts) == 0 {
                s.cpuTime = Nanoseconds(ts.tv_sec) &* 1_000_000_000 &+ Nanoseconds(ts.tv_nsec)
            }
        }
        return s
    }
    /// The receive batch's counters (port reads), for `stat`.
    public var receiveBatch: FrameBatch { batch }

    private func loop() {
        var keepPolling = true
        defer { shared.withStack { _, _ in stats.cpuTime = threadCPUTime() } }
        while !stopFlag.load(ordering: .acquiring) {
            let woken = !keepPolling
            // Frames are the only news when the port alone woke the engine (or busy polling saw
            // one); a timer or a wake call needs the engine to run the stack itself.
            var framesOnly = false
            if woken { framesOnly = (busyPoll > 0 && spin()) || wake.sleep(timeoutMs: -1) }
            if framesOnly {
                // A blocked caller busy-polling the port owns it for a moment and takes the
                // frames itself (Linux: a busy poller holding the NAPI instance): step aside.
                guard pthread_mutex_trylock(pollLock) == 0 else {
                    keepPolling = false
                    sched_yield()
                    continue
                }
            } else if pthread_mutex_trylock(pollLock) != 0 {
                // A blocked caller owns the port (it sleeps on it, or busy-polls it): the engine
                // keeps the timers and the softirqs that were raised, and leaves the port alone.
                keepPolling = runWithoutPort(woken: woken)
                continue
            }
            let r = pollOnce(woken: woken, onlyFrames: false)
            pthread_mutex_unlock(pollLock)
            // Keep polling while the port fills whole batches or work is due now.
            let now = MonotonicClock.read()
            keepPolling = (r.frames > 0 && (r.frames == batch.capacity || r.frames == r.posted))
                || (r.next.map { $0 <= now } ?? false)
        }
    }

    /// One NAPI poll of the port: reads a batch without the stack lock, then under it hands the
    /// frames to the NIC (hard-IRQ context) and runs the stack (NET_RX, NET_TX, timers). The
    /// caller holds `pollLock`, which makes it the port's only reader (Linux: owning the NAPI
    /// instance, `NAPI_STATE_SCHED`). With `onlyFrames` (a blocked caller's busy poll) a read
    /// that finds nothing returns without taking the stack lock. Returns the frames read, how
    /// many buffers were posted for a direct read (-1: none) and the stack's next deadline.
    private func pollOnce(woken: Bool, onlyFrames: Bool) -> (frames: Int, posted: Int, next: Nanoseconds?) {
        let t0 = MonotonicClock.read()
        var n = 0
        var posted = -1   // ≥ 0: frames were read straight into that many posted buffers
        if let d = direct {
            // The buffers between the NIC's head and the tail are the NIC's: read into them
            // without the lock, complete them under it.
            // Only reads the ring: the plain lock, not a call (no wake-ups, no transmitting).
            let k = shared.lock.withLock {
                device.nic.postedReceiveBuffers(queue: queue, max: batch.capacity, into: directBuffers)
            }
            if k > 0 {
                posted = k
                n = d.receiveDirect(queue: queue, buffers: directBuffers, count: k, lengths: directLengths,
                                    offloads: directOffloads, batch: batch)
            } else {
                n = port.receive(queue: queue, into: batch)
            }
        } else {
            n = port.receive(queue: queue, into: batch)
        }
        if onlyFrames && n == 0 { return (0, posted, nil) }
        let readTime = MonotonicClock.read() &- t0
        let frames = n, direct = posted >= 0
        // The engine leaves the frames its work sends to the transmitter; a caller's busy poll
        // puts them on the port itself (its reply follows at once).
        let next: Nanoseconds? = onlyFrames ? shared.withStack { stack, now in step(stack, now) }
            : shared.withStackLeavingTransmits { stack, now in step(stack, now) }
        func step(_ stack: NetworkStack, _ now: Nanoseconds) -> Nanoseconds? {
            // One CPU-clock span for the whole batch, not one per frame's hard IRQ.
            stack.contexts.openSpan()
            defer { stack.contexts.closeHeldSpan() }
            stats.wakeups &+= woken ? 1 : 0
            stats.busyPollHits = busyHits.load(ordering: .relaxed)
            stats.callerBusyPolls = callerPolls
            stats.portReadTime &+= readTime
            if frames > 0 && direct {
                stats.batches &+= 1
                stats.framesToNIC &+= UInt64(frames)
                stack.contexts.enter(.hardirq)
                device.nic.completeDirectReceive(queue: queue, lengths: directLengths, offloads: directOffloads,
                                                 count: frames, now: now)
                stack.contexts.leave()
            } else if frames > 0 {
                stats.batches &+= 1
                deliver(frames, stack: stack, now: now)
            }
            // The engine's own sleep drained the timer; a caller's poll did not.
            return runStack(stack, now: now, timerDrained: !onlyFrames)
        }
        return (frames, posted, next)
    }

    /// The engine's turn while a caller owns the port: runs the stack (timers, softirqs) under
    /// the lock without reading the port, re-arms the timer; true when work is due again now.
    private func runWithoutPort(woken: Bool) -> Bool {
        let next: Nanoseconds? = shared.withStackLeavingTransmits { stack, now in
            stats.wakeups &+= woken ? 1 : 0
            return runStack(stack, now: now, timerDrained: true)
        }
        return next.map { $0 <= MonotonicClock.read() } ?? false
    }

    /// Runs the stack (interrupts, softirqs, timers) under the lock and returns its next
    /// deadline; queue 0's engine re-arms its timerfd for it there, as the wake hook does.
    private func runStack(_ stack: NetworkStack, now: Nanoseconds, timerDrained: Bool) -> Nanoseconds? {
        stack.run(now: now)
        stats.runs &+= 1
        let d = stack.nextDeadline()
        if ownsTimers {
            shared.engineWakeAt = d ?? .max
            if timerDrained { wake.noteExpiry() }
            wake.arm(at: d)
        }
        return d
    }

    /// Whether the port has a frame to read now (`poll` with no timeout).
    private func portReadable() -> Bool {
        var p = pollfd(fd: portDescriptor, events: Int16(POLLIN), revents: 0)
        return Glibc.poll(&p, 1, 0) == 1 && (p.revents & Int16(POLLIN)) != 0
    }

    /// Busy polling by the engine: looks at the port without sleeping for up to `busyPoll`
    /// before the thread goes to sleep, so a frame that follows soon is taken without a
    /// wake-up's latency; true when one came. Linux: `napi_busy_loop()` (`net.core.busy_poll`).
    private func spin() -> Bool {
        let until = MonotonicClock.read() &+ busyPoll
        repeat {
            if portReadable() { busyHits.wrappingAdd(1, ordering: .relaxed); return true }
        } while MonotonicClock.read() < until && !stopFlag.load(ordering: .acquiring)
        return false
    }

    /// Busy polling by a blocked application thread (`SharedStack.busyPollDevice`): if the port
    /// has a frame and no one else is polling it, runs one NAPI poll in the caller's thread, so
    /// the frame it waits for is processed without waking the engine or the caller; true when
    /// frames were read. Called without the stack lock. Linux: `sk_busy_loop()` →
    /// `napi_busy_loop()` from `tcp_recvmsg()` (`net.core.busy_read`, SO_BUSY_POLL).
    public func busyPollFromCaller() -> Bool {
        guard portReadable() else { return false }
        guard pthread_mutex_trylock(pollLock) == 0 else { return false }
        defer { pthread_mutex_unlock(pollLock) }
        callerPolls &+= 1
        return pollOnce(woken: false, onlyFrames: true).frames > 0
    }

    /// The operations a blocked caller uses to sleep on this engine's port and poll it itself
    /// (`SharedStack.deviceSleep`): owning the port masks the engine's wake-ups from it.
    public var deviceSleep: DeviceSleep {
        DeviceSleep(
            acquire: { [self] in
                guard pthread_mutex_trylock(pollLock) == 0 else { return false }
                wake.watchPort(false)
                return true
            },
            sleep: { [self] deadline in wake.callerSleep(until: deadline) },
            poll: { [self] in
                callerPolls &+= 1
                return pollOnce(woken: false, onlyFrames: true).frames
            },
            release: { [self] in
                wake.watchPort(true)
                pthread_mutex_unlock(pollLock)
            },
            // Weak: the stack's lock keeps this hook after the host let go of the device.
            wake: { [weak self] in self?.wake.wakeCaller() })
    }

    /// Hands the batch to the NIC in hard-IRQ context, running the stack every NAPI weight of
    /// frames or quarter ring of buffers, so the RX ring does not overflow (a 64 KiB GSO frame
    /// fills many receive buffers).
    private func deliver(_ n: Int, stack: NetworkStack, now: Nanoseconds) {
        let nic = device.nic
        let bufferBytes = max(device.nic.receiveBufferSize, 1536)
        let budget = device.rxQueues[0].ring.size / 4
        var sinceRun = 0
        for i in 0..<n {
            stack.contexts.enter(.hardirq)
            port.deliver(batch, index: i) { frame, offload in
                nic.receive(frame: frame, offload: offload, now: now)
                sinceRun += (frame.count + bufferBytes - 1) / bufferBytes
                stats.framesToNIC &+= 1
                if sinceRun >= budget {
                    stack.contexts.leave()
                    stack.run(now: now)
                    stats.runs &+= 1
                    sinceRun = 0
                    stack.contexts.enter(.hardirq)
                }
            }
            stack.contexts.leave()
        }
    }
}
