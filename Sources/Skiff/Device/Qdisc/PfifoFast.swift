/// The classic three-band priority FIFO: band 0 is always emptied before band 1, band 1 before
/// band 2, and the band comes from the packet's priority through `prio2band`.
///
/// Linux: `net/sched/sch_generic.c`, `pfifo_fast_ops`.
///
/// Limit: `limit` packets across all bands (Linux before 4.16 checked `q.qlen < tx_queue_len`
/// over the whole qdisc; the lockless version since then gives each band its own ring of
/// `tx_queue_len`). Requeued packets wait apart, ahead of every band, as in Linux's `gso_skb`
/// list, and count in the backlog.
public final class PfifoFast {
    /// Linux: `prio2band[TC_PRIO_MAX + 1]` in `sch_generic.c`, indexed by `priority & 15`
    /// (`TC_PRIO_MAX`). Priorities 6 and 7 (interactive, control) go to band 0; bulk (2),
    /// filler (1) and the unnamed 3 and 5 to band 2; everything else to band 1.
    public static let prio2band: [UInt8] = [1, 2, 2, 2, 1, 2, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]

    /// Linux: `TC_PRIO_*` in `include/uapi/linux/pkt_sched.h`.
    public static let priorityBestEffort: UInt8 = 0
    public static let priorityFiller: UInt8 = 1
    public static let priorityBulk: UInt8 = 2
    public static let priorityInteractiveBulk: UInt8 = 4
    public static let priorityInteractive: UInt8 = 6
    public static let priorityControl: UInt8 = 7

    /// Maps the IPv4 TOS byte to a packet priority, so IP output can set `meta.priority`.
    ///
    /// Linux: `rt_tos2priority()` = `ip_tos2prio[IPTOS_TOS(tos) >> 1]` (`net/ipv4/route.c`),
    /// where `IPTOS_TOS(tos)` keeps the four RFC 1349 TOS bits (`tos & 0x1E`). The index is those
    /// bits: 8 = low delay (0x10), 4 = throughput (0x08), 2 = reliability (0x04), 1 = low cost
    /// (0x02); with low delay and throughput both set the packet is interactive bulk.
    @inlinable
    public static func rtTosToPriority(tos: UInt8) -> UInt8 {
        switch (tos & 0x1E) >> 1 {
        case 1: return priorityFiller                   // low cost only
        case 0, 2, 3: return priorityBestEffort         // none, reliability (+ low cost)
        case 4...7: return priorityBulk                 // throughput
        case 8...11: return priorityInteractive         // low delay
        default: return priorityInteractiveBulk         // low delay + throughput (12...15)
        }
    }

    /// The band a priority maps to (Linux: `prio2band[skb->priority & TC_PRIO_MAX]`).
    @inlinable
    public static func band(forPriority priority: UInt8) -> Int {
        Int(prio2band[Int(priority & 15)])
    }

    /// Packets the qdisc holds at most (Linux: `dev->tx_queue_len`, `txqueuelen`).
    public let limit: Int

    /// Packets handed back by the device, ahead of every band (Linux: `Qdisc.gso_skb`) get this
    /// many slots beyond `limit`.
    static let requeueReserve = 16
    static let bands = 3

    @exclusivity(unchecked) var slab: PacketSlab
    /// Lists 0, 1, 2 are the bands; list 3 holds requeued packets.
    let lists: UnsafeMutablePointer<PacketList>
    @exclusivity(unchecked) var stats = QdiscStatistics()

    /// Linux: `pfifo_fast_init()`; `limit` is the device's `txqueuelen` (default 1000).
    public init(limit: Int = 1000) {
        precondition(limit > 0)
        self.limit = limit
        slab = PacketSlab(capacity: limit + PfifoFast.requeueReserve)
        lists = .allocate(capacity: PfifoFast.bands + 1)
        lists.initialize(repeating: PacketList(), count: PfifoFast.bands + 1)
    }

    deinit {
        lists.deinitialize(count: PfifoFast.bands + 1)
        lists.deallocate()
        // The slab destroys any packet still queued.
    }

    /// Queues a packet in the band of its priority, or drops it when `limit` packets are queued.
    /// Linux: `pfifo_fast_enqueue()` (`qdisc_drop()` when full).
    public func enqueue(_ buffer: consuming PacketBuffer, now: UInt64) -> EnqueueResult {
        if stats.backlogPackets >= limit || slab.isFull {
            stats.drops &+= 1
            return .dropped  // `buffer` is destroyed here.
        }
        let band = PfifoFast.band(forPriority: buffer.meta.priority)
        let length = buffer.length
        slab.pushBack(buffer, onto: &lists[band])
        stats.backlogPackets += 1
        stats.backlogBytes += length
        return .queued
    }

    /// The head of the first non-empty band, after any requeued packet.
    /// Linux: `dequeue_skb()` (the `gso_skb` list first) then `pfifo_fast_dequeue()`.
    public func dequeue(now: UInt64) -> PacketBuffer? {
        if let b = slab.popFront(&lists[PfifoFast.bands]) {
            // Already counted as sent when first dequeued (Linux skips bstats for gso_skb).
            stats.backlogPackets -= 1
            stats.backlogBytes -= b.length
            return b
        }
        for band in 0..<PfifoFast.bands {
            if let b = slab.popFront(&lists[band]) {
                let length = b.length
                stats.backlogPackets -= 1
                stats.backlogBytes -= length
                stats.sentPackets &+= 1
                stats.sentBytes &+= UInt64(length)
                return b
            }
        }
        return nil
    }

    /// Puts back a packet the driver refused so it is the next one dequeued, ahead of all bands.
    /// Linux: `dev_requeue_skb()` (counts `requeues`, adds to the backlog, ignores the limit).
    /// Dropped (and counted) only if the requeue reserve is exhausted as well.
    public func requeue(_ buffer: consuming PacketBuffer) {
        _ = slab.requeue(buffer, onto: &lists[PfifoFast.bands], statistics: &stats)
    }

    /// Counts a packet that bypassed the empty queue straight to the driver as sent
    /// (Linux: `qdisc_bstats_update()` in the `TCQ_F_CAN_BYPASS` branch of `__dev_xmit_skb()`).
    public func recordBypass(length: Int) {
        stats.sentPackets &+= 1
        stats.sentBytes &+= UInt64(length)
    }

    /// True when nothing is queued or requeued (Linux: `qdisc_qlen(q) == 0`).
    public var isEmpty: Bool { stats.backlogPackets == 0 }

    /// Counters, as `tc -s qdisc` shows them.
    public var statistics: QdiscStatistics { stats }

    /// Packets queued in `band` (0...2), excluding requeued ones.
    public func backlog(band: Int) -> (packets: Int, bytes: Int) {
        precondition(band >= 0 && band < PfifoFast.bands)
        return (lists[band].count, lists[band].bytes)
    }

    /// Destroys every queued packet; sent/drop counters stay. Linux: `pfifo_fast_reset()` +
    /// `qdisc_reset()`.
    public func reset() {
        for i in 0...PfifoFast.bands { slab.removeAll(&lists[i]) }
        stats.backlogPackets = 0
        stats.backlogBytes = 0
    }
}
