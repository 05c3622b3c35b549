/// Counters of one queueing discipline, as `tc -s qdisc show` prints them:
///
/// ```
/// qdisc fq_codel 0: root refcnt 2 limit 10240p flows 1024 quantum 1514 target 5ms interval 100ms
///  Sent 5292 bytes 58 pkt (dropped 0, overlimits 0 requeues 0)
///  backlog 0b 0p requeues 0
///   maxpacket 0 drop_overlimit 0 new_flow_count 0 ecn_mark 0
/// ```
///
/// Linux: `struct gnet_stats_basic_sync` (bytes, packets) + `struct gnet_stats_queue` (qlen,
/// backlog, drops, requeues, overlimits) + `struct tc_fq_codel_qd_stats` for fq_codel.
public struct QdiscStatistics: Sendable, Equatable {
    /// Packets handed to the device (Linux: `bstats.packets`, counted at dequeue).
    public var sentPackets: UInt64 = 0
    /// Bytes handed to the device (Linux: `bstats.bytes`).
    public var sentBytes: UInt64 = 0
    /// Packets the qdisc destroyed: queue full, CoDel, too big (Linux: `qstats.drops`).
    public var drops: UInt64 = 0
    /// Times a packet was held back by a rate limit (Linux: `qstats.overlimits`).
    public var overlimits: UInt64 = 0
    /// Packets the device gave back to be sent again (Linux: `qstats.requeues`).
    public var requeues: UInt64 = 0
    /// Packets queued now (Linux: `q.qlen`).
    public var backlogPackets: Int = 0
    /// Bytes queued now (Linux: `qstats.backlog`).
    public var backlogBytes: Int = 0
    /// fq_codel: packets CE-marked instead of dropped (Linux: `ecn_mark`). Always 0: no ECN yet.
    public var ecnMarks: UInt64 = 0
    /// fq_codel: times an idle flow became a new flow (Linux: `new_flow_count`).
    public var newFlowCount: UInt64 = 0
    /// fq_codel: packets dropped because the qdisc was over its packet or memory limit
    /// (Linux: `drop_overlimit`); also counted in `drops`.
    public var dropOverlimit: UInt64 = 0

    public init() {}
}

extension QdiscStatistics: CustomStringConvertible {
    /// The two lines `tc -s qdisc` prints for every qdisc.
    public var description: String {
        "Sent \(sentBytes) bytes \(sentPackets) pkt (dropped \(drops), overlimits \(overlimits) requeues \(requeues))\n"
            + "backlog \(backlogBytes)b \(backlogPackets)p requeues \(requeues)"
    }
}

/// What happened to a packet handed to a qdisc.
///
/// Linux: `NET_XMIT_SUCCESS` / `NET_XMIT_DROP`. (`NET_XMIT_CN`, "queued, but another packet of
/// this flow was dropped", is reported as `.queued`; the drop shows in the statistics.)
public enum EnqueueResult: Sendable, Equatable {
    /// The packet is in the queue.
    case queued
    /// The packet was destroyed by the qdisc and counted in `drops`.
    case dropped
}

/// The queueing discipline attached to a device's transmit queue.
///
/// Linux: `struct Qdisc` with its `Qdisc_ops` (`enqueue`, `dequeue`, `peek`, `reset`); the
/// device layer calls `enqueue` from `__dev_xmit_skb()` and `dequeue` from `qdisc_restart()`.
///
/// Threading: a qdisc belongs to the engine that owns the device; it is not thread-safe.
public enum Qdisc {
    /// No queue at all: the device layer transmits directly and drops when the driver is busy
    /// (Linux: `noqueue_qdisc_ops`, whose `enqueue` is NULL; the default on virtual devices).
    case noqueue
    /// Linux: `pfifo_fast_ops`, the classic default.
    case pfifoFast(PfifoFast)
    /// Linux: `fq_codel_qdisc_ops` (RFC 8290), the default of most distributions.
    case fqCodel(FqCodel)
    /// Linux: `tbf_qdisc_ops`, token bucket shaper.
    case tbf(TokenBucket)

    /// The name `tc qdisc show` prints (Linux: `Qdisc_ops.id`).
    public var kind: String {
        switch self {
        case .noqueue: "noqueue"
        case .pfifoFast: "pfifo_fast"
        case .fqCodel: "fq_codel"
        case .tbf: "tbf"
        }
    }

    /// True when the qdisc has a queue at all (Linux: `q->enqueue != NULL`).
    public var hasQueue: Bool {
        if case .noqueue = self { return false }
        return true
    }

    /// True when a packet may skip the queue and go straight to the driver because the qdisc is
    /// empty and work-conserving FIFO (Linux: `TCQ_F_CAN_BYPASS` tested in `__dev_xmit_skb()`
    /// together with `!qdisc_qlen(q)`). Only pfifo_fast sets the flag. `noqueue` answers false:
    /// it has no queue to bypass; callers test `hasQueue` and transmit directly.
    public var canBypass: Bool {
        if case .pfifoFast(let q) = self { return q.isEmpty }
        return false
    }

    /// Counts a packet sent through the bypass (see `canBypass`) in `sentPackets`/`sentBytes`,
    /// as Linux does with `qdisc_bstats_update()` in `__dev_xmit_skb()`. Call it with the length
    /// before handing the packet to the driver; a packet the driver then refuses is `requeue`d
    /// and not counted again.
    public func recordBypass(length: Int) {
        if case .pfifoFast(let q) = self { q.recordBypass(length: length) }
    }

    /// Hands a packet to the qdisc. On `.noqueue` the packet is dropped (the caller should have
    /// transmitted it directly). Linux: `q->enqueue()` via `dev_qdisc_enqueue()`.
    @inlinable
    public func enqueue(_ buffer: consuming PacketBuffer, now: UInt64) -> EnqueueResult {
        switch self {
        case .noqueue: return .dropped
        case .pfifoFast(let q): return q.enqueue(buffer, now: now)
        case .fqCodel(let q): return q.enqueue(buffer, now: now)
        case .tbf(let q): return q.enqueue(buffer, now: now)
        }
    }

    /// The next packet to transmit, or nil (empty, or held back by a shaper).
    /// Linux: `dequeue_skb()` -> `q->dequeue()`.
    @inlinable
    public func dequeue(now: UInt64) -> PacketBuffer? {
        switch self {
        case .noqueue: return nil
        case .pfifoFast(let q): return q.dequeue(now: now)
        case .fqCodel(let q): return q.dequeue(now: now)
        case .tbf(let q): return q.dequeue(now: now)
        }
    }

    /// Gives back a packet the driver could not take, to be sent before anything else.
    /// Linux: `dev_requeue_skb()`. On `.noqueue` the packet is dropped.
    @inlinable
    public func requeue(_ buffer: consuming PacketBuffer) {
        switch self {
        case .noqueue: return
        case .pfifoFast(let q): q.requeue(buffer)
        case .fqCodel(let q): q.requeue(buffer)
        case .tbf(let q): q.requeue(buffer)
        }
    }

    /// True when no packet is queued (Linux: `qdisc_qlen(q) == 0`).
    public var isEmpty: Bool {
        switch self {
        case .noqueue: true
        case .pfifoFast(let q): q.isEmpty
        case .fqCodel(let q): q.isEmpty
        case .tbf(let q): q.isEmpty
        }
    }

    /// Counters (all zero for `.noqueue`).
    public var statistics: QdiscStatistics {
        switch self {
        case .noqueue: QdiscStatistics()
        case .pfifoFast(let q): q.statistics
        case .fqCodel(let q): q.statistics
        case .tbf(let q): q.statistics
        }
    }

    /// When a shaper holding packets it may not send yet can send its head packet; the device
    /// arms a timer for it and runs the queue again then (Linux: `qdisc_watchdog_schedule_ns()`).
    /// Nil for work-conserving qdiscs and whenever nothing is held back.
    public var nextDequeueTime: UInt64? {
        if case .tbf(let q) = self { return q.nextDequeueTime }
        return nil
    }

    /// Destroys every queued packet (Linux: `qdisc_reset()`); counters other than the backlog stay.
    public func reset() {
        switch self {
        case .noqueue: break
        case .pfifoFast(let q): q.reset()
        case .fqCodel(let q): q.reset()
        case .tbf(let q): q.reset()
        }
    }
}

extension PacketSlab {
    /// Puts back a packet the driver refused at the head of `list`, counting it as Linux does in
    /// `dev_requeue_skb()` (requeues up, backlog up, the limit ignored). Returns the packet's
    /// length, or nil when no slot was left and the packet was dropped (and counted).
    mutating func requeue(_ buffer: consuming PacketBuffer, onto list: inout PacketList,
                          statistics stats: inout QdiscStatistics) -> Int? {
        if isFull {
            stats.drops &+= 1
            return nil
        }
        let length = buffer.length
        pushBack(buffer, onto: &list)
        stats.requeues &+= 1
        stats.backlogPackets += 1
        stats.backlogBytes += length
        return length
    }
}
