#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// One TX queue's hand-over from the stack to the NIC's transmitter when the NIC puts frames on
/// its port outside the stack lock (`NICModel.deferredTransmit`).
///
/// At the doorbell, under the stack lock, the NIC reads the new descriptors and translates them
/// (one slot per descriptor index, as the hardware caches a fetched descriptor), then publishes
/// how many it has taken (`produced`). The transmitter, under the NIC's transmit lock and without
/// the stack lock, puts the frames on the port and publishes how many descriptors it has finished
/// (`transmitted`). Completion, back under the stack lock, sets the done bits up to that point
/// and raises the queue's interrupt; only then may the driver clean and reuse the descriptors, so
/// the slots and the buffers they point into stay untouched while the transmitter reads them.
final class DeferredTxQueue: @unchecked Sendable {
    struct Slot {
        var start: UnsafeRawPointer? = nil   // nil: the IOMMU refused the address
        var length = 0
        /// The ring descriptor this slot was taken from (its done bit is set at completion).
        var descriptor = 0
        var endOfPacket = false
        var offload = FrameOffload.none
    }

    let mask: Int
    let slots: UnsafeMutablePointer<Slot>
    /// Descriptors the NIC has taken from the ring (stack lock); read by the transmitter.
    let produced = Atomic<UInt64>(0)
    /// Descriptors whose frames are on the port (transmitter); read at completion.
    let transmitted = Atomic<UInt64>(0)
    /// Frames put on the port, bytes the port copied, frames the IOMMU refused (transmitter).
    let frames = Atomic<UInt64>(0)
    let copied = Atomic<UInt64>(0)
    let faults = Atomic<UInt64>(0)
    /// Monotonic time of the latest doorbell (the `now` the port is given).
    let doorbellTime = Atomic<UInt64>(0)
    /// Under the stack lock: descriptors completed, and the counters already accounted.
    var completed: UInt64 = 0
    var countedFrames: UInt64 = 0
    var countedCopied: UInt64 = 0
    var countedFaults: UInt64 = 0

    init(size: Int) {
        mask = size - 1
        slots = .allocate(capacity: size)
        slots.initialize(repeating: Slot(), count: size)
    }

    deinit { slots.deallocate() }

    /// Descriptors taken but not yet on the port.
    @inline(__always)
    var backlog: Bool {
        produced.load(ordering: .sequentiallyConsistent) != transmitted.load(ordering: .relaxed)
    }
}

extension NICModel {
    /// Runs `body` holding the transmit lock (to read what the transmitter writes, such as the
    /// port's transmit counters).
    public func withTransmitLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(transmitLock)
        defer { pthread_mutex_unlock(transmitLock) }
        return try body()
    }

    /// The doorbell in deferred mode (stack lock held): take every descriptor up to the tail
    /// into the hand-over slots; the frames go on the port in `transmitDeferred`.
    func takeDescriptors(queue q: Int, now: Nanoseconds) {
        let ring = txRings[q]
        let d = deferredQueues[q]
        var taken: UInt64 = 0
        let base = d.produced.load(ordering: .relaxed)   // only this side writes it
        while ring.hardwareHead != ring.tailRegister {
            let i = ring.hardwareHead
            let desc = ring.descriptors[i]
            // Slots go by the hand-over count, each naming its descriptor, so the two sides
            // never depend on the ring's indices lining up with the counters.
            d.slots[Int(base &+ taken) & d.mask] = DeferredTxQueue.Slot(
                start: iommu.translate(desc.address, length: Int(desc.length)).map { UnsafeRawPointer($0) },
                length: Int(desc.length), descriptor: i, endOfPacket: desc.endOfPacket, offload: desc.offload)
            ring.hardwareHead = (i + 1) & ring.mask
            taken &+= 1
        }
        guard taken > 0 else { return }
        d.doorbellTime.store(now, ordering: .relaxed)
        // Sequentially consistent: a transmitter that has just let go of the transmit lock
        // either sees these descriptors, or this thread's try of the lock succeeds.
        d.produced.wrappingAdd(taken, ordering: .sequentiallyConsistent)
        stack.transmitPending = true
    }

    /// The NIC's transmitter, run by any thread without the stack lock: if no other thread holds
    /// the transmit lock, puts every frame handed over on the port. Returns whether it put any
    /// (the caller then completes them under the stack lock). A thread that finds the lock
    /// taken leaves: the holder looks again after letting go and takes the new frames too.
    /// Linux: the qdisc-running owner calling `dev_hard_start_xmit()` under `HARD_TX_LOCK`
    /// with the qdisc lock dropped (`sch_direct_xmit()`); on real hardware, the NIC's DMA engine.
    public func transmitDeferred() -> Bool {
        var any = false
        for _ in 0..<8 {
            // Fences on both sides of the hand-over: a producer's count, then its try of the
            // lock; the holder's release of the lock, then its look at the count. One of the
            // two sees the other.
            atomicMemoryFence(ordering: .sequentiallyConsistent)
            guard pthread_mutex_trylock(transmitLock) == 0 else { return any }
            for d in deferredQueues where drain(d) { any = true }
            pthread_mutex_unlock(transmitLock)
            atomicMemoryFence(ordering: .sequentiallyConsistent)
            if !hasTransmitBacklog { return any }
        }
        return any
    }

    /// Frames handed over and not yet on the port (any thread).
    public var hasTransmitBacklog: Bool { deferredQueues.contains { $0.backlog } }

    /// Puts the handed-over frames of one queue on the port (transmit lock held); true when it
    /// put (or dropped) any.
    private func drain(_ d: DeferredTxQueue) -> Bool {
        var t = d.transmitted.load(ordering: .relaxed)
        let end = d.produced.load(ordering: .acquiring)
        guard t != end else { return false }
        let now = d.doorbellTime.load(ordering: .relaxed)
        var nseg = 0, length = 0, failed = false
        var offload = FrameOffload.none
        var any = false
        // A port that gathers frames writes them at its flush; until then their memory must stay
        // valid, so the frames count as transmitted (and may complete) only after it.
        let perFlush = port.framesPerFlush
        var gathered = 0, packetEnd = t
        while t != end {
            let s = d.slots[Int(t) & d.mask]
            if nseg == 0 { offload = s.offload }
            if let p = s.start, nseg < DataBlock.maxFragments + 2 {
                transmitSegments[nseg] = UnsafeRawBufferPointer(start: p, count: s.length)
                nseg += 1
                length += s.length
            } else {
                failed = true
            }
            t &+= 1
            if s.endOfPacket {
                if failed {
                    d.faults.wrappingAdd(1, ordering: .relaxed)
                } else {
                    let frame = UnsafeBufferPointer(start: transmitSegments, count: nseg)
                    let n = offload.isNone ? port.transmit(frame, length: length, now: now)
                        : port.transmit(frame, length: length, offload: offload, now: now)
                    d.copied.wrappingAdd(UInt64(max(n, 0)), ordering: .relaxed)
                    d.frames.wrappingAdd(1, ordering: .relaxed)
                    gathered += 1
                }
                nseg = 0; length = 0; failed = false
                packetEnd = t
                // Nothing gathered (only faulted frames since the last flush) publishes at once.
                if gathered == 0 || gathered >= perFlush || t == end {
                    if gathered > 0 { port.flush() }
                    gathered = 0
                    // After the frames' counters: whoever completes up to here counts them too.
                    d.transmitted.store(t, ordering: .releasing)
                }
                any = true
            }
        }
        if gathered > 0 {   // the last descriptors handed over do not end a packet yet
            port.flush()
            d.transmitted.store(packetEnd, ordering: .releasing)
        }
        return any
    }

    /// Completion, under the stack lock: the descriptors the transmitter finished get their done
    /// bits, the copies are counted, and the queue's interrupt is raised (NAPI then cleans the
    /// ring). Linux: the DD write-back and the TX-completion interrupt.
    func completeDeferred(now: Nanoseconds) {
        for (q, d) in deferredQueues.enumerated() {
            let t = d.transmitted.load(ordering: .acquiring)
            guard t != d.completed else { continue }
            let ring = txRings[q]
            while d.completed != t {
                ring.descriptors[d.slots[Int(d.completed) & d.mask].descriptor].done = true
                d.completed &+= 1
            }
            let f = d.frames.load(ordering: .relaxed), c = d.copied.load(ordering: .relaxed)
            let e = d.faults.load(ordering: .relaxed)
            txFrames &+= f &- d.countedFrames
            dmaErrors &+= e &- d.countedFaults
            if c != d.countedCopied { stack.pool.recordCopy(.portIO, bytes: Int(c &- d.countedCopied)) }
            d.countedFrames = f; d.countedCopied = c; d.countedFaults = e
            assertInterrupt(vector: q, now: now)
        }
    }
}

extension NetworkStack {
    /// Completes what the deferred transmitters finished and runs the interrupts and softirqs
    /// that follows (TX clean, a woken queue's qdisc), as the CPU that takes the completion
    /// interrupt does. Stack lock held.
    public func completeDeferredTransmits(now t: Nanoseconds) {
        if t > now { now = t }
        contexts.openSpan()   // one CPU-clock span for the interrupt and the softirqs after it
        defer { contexts.closeHeldSpan() }
        contexts.enter(.hardirq)
        for dev in devices where dev.nic.deferredTransmit { dev.nic.completeDeferred(now: now) }
        contexts.leave()
        _ = run(now: now)
    }

    /// A doorbell handed frames over since the last call (and clears the note).
    @inline(__always)
    public func takeTransmitPending() -> Bool {
        guard transmitPending else { return false }
        transmitPending = false
        return true
    }
}
