/// CoDel state of one queue (RFC 8289 §5; Linux: `struct codel_vars`).
@usableFromInline
struct CodelVars {
    /// Drops since entering the dropping state; sets the drop rate (Linux: `count`).
    var count: UInt32 = 0
    /// `count` when the dropping state was last entered (Linux: `lastcount`).
    var lastCount: UInt32 = 0
    /// In the dropping state (Linux: `dropping`).
    var dropping = false
    /// When the next drop is due while dropping (Linux: `drop_next`).
    var dropNext: UInt64 = 0
    /// When the sojourn time, above target since then, will have been so for an interval;
    /// 0 = currently below target (Linux: `first_above_time`).
    var firstAboveTime: UInt64 = 0
    /// Sojourn time of the last packet looked at (Linux: `ldelay`).
    var lastDelay: UInt64 = 0
}

/// One flow queue of fq_codel (Linux: `struct fq_codel_flow`).
@usableFromInline
struct FqFlow {
    /// The flow's packets; `packets.bytes` is Linux's `q->backlogs[idx]`.
    var packets = PacketList()
    /// DRR deficit in bytes (Linux: `deficit`).
    var deficit: Int = 0
    /// Next flow in the new or old list (Linux: `flowchain`).
    var nextFlow: Int32 = PacketSlab.none
    /// On the new or the old list (Linux: `!list_empty(&flow->flowchain)`).
    var listed = false
    var codel = CodelVars()
}

/// A singly linked list of flow indices: fq_codel's `new_flows` or `old_flows`.
@usableFromInline
struct FlowChain {
    var head: Int32 = PacketSlab.none
    var tail: Int32 = PacketSlab.none

    var isEmpty: Bool { head == PacketSlab.none }

    /// Linux: `list_add_tail(&flow->flowchain, head)`.
    mutating func append(_ i: Int32, _ flows: UnsafeMutablePointer<FqFlow>) {
        flows[Int(i)].nextFlow = PacketSlab.none
        flows[Int(i)].listed = true
        if tail == PacketSlab.none { head = i } else { flows[Int(tail)].nextFlow = i }
        tail = i
    }

    /// Unlinks the first flow (Linux: `list_del_init()` of the first entry).
    mutating func removeFirst(_ flows: UnsafeMutablePointer<FqFlow>) {
        let i = head
        head = flows[Int(i)].nextFlow
        if head == PacketSlab.none { tail = PacketSlab.none }
        flows[Int(i)].nextFlow = PacketSlab.none
        flows[Int(i)].listed = false
    }
}

/// Fair queueing with per-flow CoDel: packets are hashed into flow queues served by deficit round
/// robin, with newly active ("sparse") flows served before the backlogged ones, and each queue's
/// standing delay kept near `target` by CoDel dropping at its head.
///
/// Linux: `net/sched/sch_fq_codel.c` + `include/net/codel_impl.h`. RFC 8290 (FQ-CoDel),
/// RFC 8289 (CoDel).
///
/// Differences from Linux: the flow is `meta.flowHash % flows` (Linux: `reciprocal_scale()`);
/// memory is counted in packet bytes rather than `skb->truesize`; the CoDel control law divides by
/// an exact square root instead of Linux's Newton-iterated reciprocal square root; no ECN, so
/// CoDel always drops.
public final class FqCodel {
    /// Number of flow queues (Linux: `flows`, default 1024).
    public let flowCount: Int
    /// Packets the qdisc holds at most (Linux: `limit`, default 10240).
    public let limit: Int
    /// DRR quantum in bytes (Linux: `quantum`, default the device MTU + 14 = 1514).
    public let quantum: Int
    /// CoDel target sojourn time, ns (Linux: `target`, default 5 ms).
    public let target: UInt64
    /// CoDel interval, ns (Linux: `interval`, default 100 ms).
    public let interval: UInt64
    /// Bytes the qdisc holds at most (Linux: `memory_limit`, default 32 MiB).
    public let memoryLimit: Int
    /// Most packets one overflow drops at once (Linux: `drop_batch`, default 64).
    public let dropBatch: Int
    /// Below this many queued bytes CoDel never drops (Linux: `cparams.mtu = psched_mtu(dev)`).
    public let mtu: Int

    static let requeueReserve = 16

    @exclusivity(unchecked) var slab: PacketSlab
    let flows: UnsafeMutablePointer<FqFlow>
    @exclusivity(unchecked) var newFlows = FlowChain()
    @exclusivity(unchecked) var oldFlows = FlowChain()
    /// Packets the device handed back (Linux: `Qdisc.gso_skb`).
    @exclusivity(unchecked) var requeued = PacketList()
    @exclusivity(unchecked) var memoryUsage = 0
    @exclusivity(unchecked) var stats = QdiscStatistics()

    /// Linux: `fq_codel_init()` with `tc qdisc add ... fq_codel flows F limit L quantum Q
    /// target T interval I memory_limit M drop_batch B`. Times are nanoseconds.
    public init(flows: Int = 1024, limit: Int = 10240, quantum: Int = 1514,
                target: UInt64 = 5_000_000, interval: UInt64 = 100_000_000,
                memoryLimit: Int = 32 << 20, dropBatch: Int = 64, mtu: Int = 1514) {
        precondition(flows > 0 && flows <= 65536 && limit > 0 && quantum > 0 && interval > 0 && dropBatch > 0)
        flowCount = flows
        self.limit = limit
        self.quantum = quantum
        self.target = target
        self.interval = interval
        self.memoryLimit = memoryLimit
        self.dropBatch = dropBatch
        self.mtu = mtu
        // One slot beyond the limit: a packet is queued before the overflow drop runs.
        slab = PacketSlab(capacity: limit + 1 + FqCodel.requeueReserve)
        self.flows = .allocate(capacity: flows)
        self.flows.initialize(repeating: FqFlow(), count: flows)
    }

    deinit {
        flows.deinitialize(count: flowCount)
        flows.deallocate()
        // The slab destroys any packet still queued.
    }

    /// The flow queue a packet belongs to (Linux: `fq_codel_classify()` / `fq_codel_hash()`).
    @inlinable
    public func flowIndex(for meta: PacketMeta) -> Int {
        Int(meta.flowHash % UInt32(flowCount))
    }

    // MARK: Enqueue

    /// Stamps the packet with `now`, appends it to its flow queue (making an idle flow a new
    /// flow with a full quantum), and when over `limit` or `memoryLimit` drops from the head of
    /// the fattest flow. Returns `.dropped` only when this very packet ended up dropped.
    ///
    /// Linux: `fq_codel_enqueue()`; RFC 8290 §4.1.
    public func enqueue(_ buffer: consuming PacketBuffer, now: UInt64) -> EnqueueResult {
        if slab.isFull {
            // Only possible when requeued packets fill the reserve.
            stats.drops &+= 1
            stats.dropOverlimit &+= 1
            return .dropped
        }
        let idx = flowIndex(for: buffer.meta)
        let f = flows + idx
        buffer.meta.timestamp = now  // Linux: codel_set_enqueue_time()
        let length = buffer.length
        slab.pushBack(buffer, onto: &f.pointee.packets)
        stats.backlogPackets += 1
        stats.backlogBytes += length
        memoryUsage += length
        if !f.pointee.listed {
            newFlows.append(Int32(idx), flows)
            stats.newFlowCount &+= 1
            f.pointee.deficit = quantum
        }
        if queuedPackets <= limit && memoryUsage <= memoryLimit { return .queued }

        let victim = dropFromFattestFlow()
        // Our packet is the tail of its flow; it is gone only if the victim flow is now empty.
        return victim == idx && f.pointee.packets.isEmpty ? .dropped : .queued
    }

    /// Packets in flow queues (not counting requeued ones).
    var queuedPackets: Int { stats.backlogPackets - requeued.count }

    /// Finds the flow with the most bytes and drops from its head until half its bytes are
    /// gone, at most `dropBatch` packets, but in any case until the qdisc is back under its
    /// limits. CoDel's count for the flow rises by the number dropped. Returns the flow.
    /// Linux: `fq_codel_drop()`.
    func dropFromFattestFlow() -> Int {
        var fattest = 0
        var most = 0
        for i in 0..<flowCount where flows[i].packets.bytes > most {
            most = flows[i].packets.bytes
            fattest = i
        }
        let f = flows + fattest
        let threshold = most >> 1
        var dropped = 0
        var bytes = 0
        repeat {
            guard let b = slab.popFront(&f.pointee.packets) else { break }
            bytes += b.length
            dropped += 1
            // `b` is destroyed here.
        } while (dropped < dropBatch && bytes < threshold)
            || queuedPackets - dropped > limit || memoryUsage - bytes > memoryLimit
        f.pointee.codel.count &+= UInt32(dropped)
        stats.drops &+= UInt64(dropped)
        stats.dropOverlimit &+= UInt64(dropped)
        stats.backlogPackets -= dropped
        stats.backlogBytes -= bytes
        memoryUsage -= bytes
        return fattest
    }

    // MARK: Dequeue

    /// The next packet by DRR over the new flows, then the old flows, each flow's head passing
    /// through CoDel (which may drop packets at that head first).
    ///
    /// A flow out of deficit gets another quantum and goes to the tail of the old list; a flow
    /// found empty leaves the new list for the tail of the old list (so that new flows cannot
    /// starve old ones) or, from the old list, is removed. As in Linux, an empty new flow is
    /// removed outright when the old list is empty, since there is nothing to starve.
    ///
    /// Linux: `fq_codel_dequeue()`; RFC 8290 §4.2.
    public func dequeue(now: UInt64) -> PacketBuffer? {
        if let b = slab.popFront(&requeued) {
            // Counted as sent when it was first dequeued (Linux: `gso_skb` path).
            stats.backlogPackets -= 1
            stats.backlogBytes -= b.length
            memoryUsage -= b.length
            return b
        }
        while true {
            var fromNew = true
            var idx = newFlows.head
            if idx == PacketSlab.none {
                fromNew = false
                idx = oldFlows.head
                if idx == PacketSlab.none { return nil }
            }
            let f = flows + Int(idx)
            if f.pointee.deficit <= 0 {
                f.pointee.deficit += quantum
                if fromNew { newFlows.removeFirst(flows) } else { oldFlows.removeFirst(flows) }
                oldFlows.append(idx, flows)
                continue
            }
            if let b = codelDequeue(f, now: now) {
                let length = b.length
                f.pointee.deficit -= length
                stats.sentPackets &+= 1
                stats.sentBytes &+= UInt64(length)
                return b
            }
            if fromNew {
                newFlows.removeFirst(flows)
                if !oldFlows.isEmpty { oldFlows.append(idx, flows) }
            } else {
                oldFlows.removeFirst(flows)
            }
        }
    }

    /// Takes the head packet of a flow, keeping the qdisc's counters (Linux: `dequeue_func()` /
    /// `dequeue_head()`).
    @inline(__always)
    func popHead(_ f: UnsafeMutablePointer<FqFlow>) -> PacketBuffer? {
        guard let b = slab.popFront(&f.pointee.packets) else { return nil }
        let length = b.length
        stats.backlogPackets -= 1
        stats.backlogBytes -= length
        memoryUsage -= length
        return b
    }

    /// Whether CoDel may drop a packet that waited since `enqueueTime`: its sojourn time must have
    /// stayed at or above `target` for more than `interval` while the qdisc held more than one
    /// MTU. A missing packet (`hasPacket == false`) resets the above-target timer.
    ///
    /// Linux: `codel_should_drop()`; RFC 8289 §5.4 (`dodequeue`).
    @inline(__always)
    func shouldDrop(_ v: inout CodelVars, hasPacket: Bool, enqueueTime: UInt64, now: UInt64) -> Bool {
        guard hasPacket else {
            v.firstAboveTime = 0
            return false
        }
        v.lastDelay = now &- enqueueTime
        if v.lastDelay < target || stats.backlogBytes <= mtu {
            // Went below: must stay above for a whole interval again before dropping.
            v.firstAboveTime = 0
            return false
        }
        if v.firstAboveTime == 0 {
            v.firstAboveTime = now &+ interval
            return false
        }
        return now > v.firstAboveTime
    }

    /// `t + interval / sqrt(count)`: drops come closer together the longer the queue stays bad.
    /// Linux: `codel_control_law()`; RFC 8289 §5.5.
    @inline(__always)
    func controlLaw(_ t: UInt64, count: UInt32) -> UInt64 {
        t &+ UInt64(Double(interval) / Double(max(count, 1)).squareRoot())
    }

    /// Dequeues the head of a flow through CoDel: outside the dropping state, a packet whose
    /// delay has been above target for an interval is dropped and the dropping state entered;
    /// inside it, packets are dropped at `drop_next`, spaced by the control law, until the
    /// delay falls below target.
    ///
    /// Linux: `codel_dequeue()`; RFC 8289 §5.5-5.6.
    func codelDequeue(_ f: UnsafeMutablePointer<FqFlow>, now: UInt64) -> PacketBuffer? {
        var packet = popHead(f)
        let (present, enqueueTime) = headInfo(packet)
        guard present else {
            f.pointee.codel.dropping = false
            return nil
        }
        let drop = shouldDrop(&f.pointee.codel, hasPacket: true, enqueueTime: enqueueTime, now: now)

        if f.pointee.codel.dropping {
            if !drop {
                // Sojourn time below target: leave the dropping state.
                f.pointee.codel.dropping = false
            } else if Int64(bitPattern: now &- f.pointee.codel.dropNext) >= 0 {
                // Time for the next drop; a long queue may make further drops due right away.
                while f.pointee.codel.dropping && Int64(bitPattern: now &- f.pointee.codel.dropNext) >= 0 {
                    f.pointee.codel.count &+= 1
                    packet = nil  // Linux: drop_func(), counted as a qdisc drop.
                    stats.drops &+= 1
                    packet = popHead(f)
                    let (has, ts) = headInfo(packet)
                    if !shouldDrop(&f.pointee.codel, hasPacket: has, enqueueTime: ts, now: now) {
                        f.pointee.codel.dropping = false
                    } else {
                        f.pointee.codel.dropNext = controlLaw(f.pointee.codel.dropNext, count: f.pointee.codel.count)
                    }
                }
            }
        } else if drop {
            packet = nil
            stats.drops &+= 1
            packet = popHead(f)
            let (has, ts) = headInfo(packet)
            _ = shouldDrop(&f.pointee.codel, hasPacket: has, enqueueTime: ts, now: now)
            f.pointee.codel.dropping = true
            // If we were dropping recently, start near the rate that controlled the queue then.
            let delta = f.pointee.codel.count &- f.pointee.codel.lastCount
            if delta > 1 && Int64(bitPattern: now &- f.pointee.codel.dropNext) < Int64(16 &* interval) {
                f.pointee.codel.count = delta
            } else {
                f.pointee.codel.count = 1
            }
            f.pointee.codel.lastCount = f.pointee.codel.count
            f.pointee.codel.dropNext = controlLaw(now, count: f.pointee.codel.count)
        }
        return packet
    }

    @inline(__always)
    func headInfo(_ packet: borrowing PacketBuffer?) -> (Bool, UInt64) {
        switch packet {
        case .some(let b): return (true, b.meta.timestamp)
        case .none: return (false, 0)
        }
    }

    // MARK: Requeue, state

    /// Puts back a packet the driver refused, to be dequeued before any flow.
    /// Linux: `dev_requeue_skb()` (the root qdisc's `gso_skb` list).
    public func requeue(_ buffer: consuming PacketBuffer) {
        guard let length = slab.requeue(buffer, onto: &requeued, statistics: &stats) else { return }
        memoryUsage += length
    }

    /// True when nothing is queued or requeued.
    public var isEmpty: Bool { stats.backlogPackets == 0 }

    /// Counters, as `tc -s qdisc` shows them.
    public var statistics: QdiscStatistics { stats }

    /// Packets and bytes queued in flow `flow` (Linux: `q->backlogs[idx]`, `tc -s class show`).
    public func flowBacklog(_ flow: Int) -> (packets: Int, bytes: Int) {
        precondition(flow >= 0 && flow < flowCount)
        return (flows[flow].packets.count, flows[flow].packets.bytes)
    }

    /// CoDel state of flow `flow`, for tests and `tc -s class show` (Linux: `tc_fq_codel_cl_stats`).
    public func codelState(_ flow: Int) -> (count: UInt32, dropping: Bool, dropNext: UInt64) {
        precondition(flow >= 0 && flow < flowCount)
        let v = flows[flow].codel
        return (v.count, v.dropping, v.dropNext)
    }

    /// Destroys every queued packet and forgets all flow state; counters other than the backlog
    /// stay. Linux: `fq_codel_reset()`.
    public func reset() {
        slab.removeAll(&requeued)
        for i in 0..<flowCount {
            slab.removeAll(&flows[i].packets)
            flows[i] = FqFlow()
        }
        newFlows = FlowChain()
        oldFlows = FlowChain()
        memoryUsage = 0
        stats.backlogPackets = 0
        stats.backlogBytes = 0
    }
}
