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
    private var stats = EngineStatistics()
    /// Busy-poll hits, counted by the loop outside the lock and copied into `stats` under it.
    private var busyHits: UInt64 = 0
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
        wake = try WakeSources(port: port.fileDescriptor(queue: queue))
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
        directBuffers.deallocate()
        directLengths.deallocate()
        directOffloads.deallocate()
    }

    /// Starts the thread.
    public func start() throws(PortError) {
        let box = Unmanaged.passRetained(self)
        let r = pthread_create(&thread, nil, { arg in
            let engine = Unmanaged<EngineThread>.fromOpaque(arg!).takeRetainedValue()
            engine.loop()
            return nil
        }, box.toOpaque())
        guard r == 0 else { box.release(); throw .system(operation: "pthread_create", device: port.name, errno: r) }
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
        var name = Array("skiff-eng/\(queue)".utf8.prefix(15)) + [0]
        _ = name.withUnsafeMutableBufferPointer { $0.withMemoryRebound(to: CChar.self) { skiff_pthread_setname_np(pthread_self(), $0.baseAddress!) } }
        var keepPolling = true
        var pending = 0
        defer { shared.withStack { _, _ in stats.cpuTime = threadCPUTime() } }
        while !stopFlag.load(ordering: .acquiring) {
            if !keepPolling {
                if busyPoll > 0 { pending = spin() }
                if pending == 0 { wake.sleep(timeoutMs: -1) }
            }
            let t0 = MonotonicClock.read()
            var n = 0
            var posted = -1   // ≥ 0: frames were read straight into that many posted buffers
            if pending > 0 {
                n = pending
            } else if let d = direct {
                // The buffers between the NIC's head and the tail are the NIC's: read into them
                // without the lock, complete them under it.
                let k = shared.withStack { _, _ in
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
            pending = 0
            let readTime = MonotonicClock.read() &- t0
            let frames = n, direct = posted >= 0
            let next: Nanoseconds? = shared.withStack { stack, now in
                stats.wakeups &+= keepPolling ? 0 : 1
                stats.busyPollHits = busyHits
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
                stack.run(now: now)
                stats.runs &+= 1
                let d = stack.nextDeadline()
                if ownsTimers {
                    shared.engineWakeAt = d ?? .max
                    wake.noteExpiry()
                    wake.arm(at: d)   // under the lock, as the hook arms it
                }
                return d
            }
            // Keep polling while the port fills whole batches or work is due now.
            let now = MonotonicClock.read()
            keepPolling = (n > 0 && (n == batch.capacity || n == posted)) || (next.map { $0 <= now } ?? false)
        }
    }

    /// Busy polling: reads the port without sleeping for up to `busyPoll` before the thread goes
    /// to sleep, so a frame that follows soon is taken without a wake-up's latency; returns the
    /// frames read (0: nothing came). Linux: `napi_busy_loop()` (`net.core.busy_poll`).
    private func spin() -> Int {
        let until = MonotonicClock.read() &+ busyPoll
        repeat {
            let n = port.receive(queue: queue, into: batch)
            if n > 0 { busyHits &+= 1; return n }
        } while MonotonicClock.read() < until && !stopFlag.load(ordering: .acquiring)
        return 0
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
