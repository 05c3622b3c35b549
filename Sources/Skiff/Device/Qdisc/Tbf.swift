/// Token bucket filter: a byte-limited FIFO whose head leaves only when the bucket holds enough
/// tokens for it. Tokens accrue at `rate` and the bucket holds at most `burst` bytes' worth, so
/// after an idle spell up to `burst` bytes go back to back, then the output settles at `rate`.
///
/// Linux: `net/sched/sch_tbf.c` with its default inner `bfifo` (`fifo_create_dflt()`).
/// As in Linux, tokens are kept as transmission time in nanoseconds (`tokens`, `buffer`,
/// `psched_l2t_ns()`), so "enough tokens for a packet" is "its time at `rate` is covered".
/// When the head cannot go, `dequeue` returns nil, counts an overlimit and records in
/// `nextDequeueTime` when it can; the device arms a timer for that moment
/// (Linux: `qdisc_watchdog_schedule_ns()`). No peak rate.
public final class TokenBucket {
    /// Bytes per second.
    public let rate: UInt64
    /// Bucket size in bytes; also the largest packet accepted (Linux: `max_size`).
    public let burst: Int
    /// Bytes the FIFO holds at most (Linux: the inner `bfifo`'s `limit`).
    public let limit: Int
    /// When the head packet, held back now, becomes sendable (ns); nil when nothing is held back.
    @exclusivity(unchecked) public private(set) var nextDequeueTime: UInt64?

    static let requeueReserve = 16

    /// The bucket size as transmission time, ns (Linux: `q->buffer`).
    let bucketTime: Int64
    /// Tokens as transmission time, ns, at `lastUpdate` (Linux: `q->tokens`).
    @exclusivity(unchecked) var tokens: Int64
    /// When `tokens` was last brought up to date (Linux: `q->t_c`).
    @exclusivity(unchecked) var lastUpdate: Int64 = 0
    @exclusivity(unchecked) var slab: PacketSlab
    @exclusivity(unchecked) var fifo = PacketList()
    @exclusivity(unchecked) var requeued = PacketList()
    @exclusivity(unchecked) var stats = QdiscStatistics()

    /// Linux: `tc qdisc add ... tbf rate R burst B limit L` (`tbf_change()`); the bucket starts
    /// full.
    /// - Parameters:
    ///   - rate: bytes per second.
    ///   - burst: bucket size in bytes.
    ///   - limit: bytes the queue holds at most.
    ///   - packetCapacity: packets the queue can hold; by default enough for `limit` bytes of
    ///     64-byte packets. A packet arriving when all are taken is dropped.
    public init(rate bytesPerSecond: UInt64, burst bytes: Int, limit: Int, packetCapacity: Int? = nil) {
        precondition(bytesPerSecond > 0 && bytes > 0 && limit >= 0)
        rate = bytesPerSecond
        burst = bytes
        self.limit = limit
        let perPacket = packetCapacity ?? max(16, limit / 64 + 1)
        precondition(perPacket > 0)
        slab = PacketSlab(capacity: perPacket + TokenBucket.requeueReserve)
        bucketTime = TokenBucket.transmissionTime(bytes: bytes, rate: bytesPerSecond)
        tokens = bucketTime
    }

    /// Nanoseconds `bytes` take at `rate` (Linux: `psched_l2t_ns()`).
    @inline(__always)
    static func transmissionTime(bytes: Int, rate: UInt64) -> Int64 {
        let full = UInt64(bytes).multipliedFullWidth(by: 1_000_000_000)
        let (q, _) = rate.dividingFullWidth(full)
        return Int64(clamping: q)
    }

    /// Queues the packet unless it is longer than `burst` (it could never be sent) or the FIFO
    /// would exceed `limit` bytes. Linux: `tbf_enqueue()` -> `bfifo_enqueue()`.
    public func enqueue(_ buffer: consuming PacketBuffer, now: UInt64) -> EnqueueResult {
        let length = buffer.length
        if length > burst || stats.backlogBytes + length > limit || slab.isFull {
            stats.drops &+= 1
            return .dropped  // `buffer` is destroyed here.
        }
        slab.pushBack(buffer, onto: &fifo)
        stats.backlogPackets += 1
        stats.backlogBytes += length
        return .queued
    }

    /// The head packet if the bucket covers it (spending its tokens), else nil with
    /// `nextDequeueTime` set and `overlimits` counted. A requeued packet goes first and costs
    /// nothing: it paid when it was first dequeued.
    ///
    /// Linux: `tbf_dequeue()`.
    public func dequeue(now: UInt64) -> PacketBuffer? {
        if let b = slab.popFront(&requeued) {
            stats.backlogPackets -= 1
            stats.backlogBytes -= b.length
            return b
        }
        let head = fifo.head
        if head == PacketSlab.none {
            nextDequeueTime = nil
            return nil
        }
        let t = Int64(bitPattern: now)
        var toks = min(t &- lastUpdate, bucketTime) &+ tokens
        if toks > bucketTime { toks = bucketTime }
        toks -= TokenBucket.transmissionTime(bytes: slab.length(at: head), rate: rate)
        if toks >= 0 {
            guard let b = slab.popFront(&fifo) else { return nil }
            lastUpdate = t
            tokens = toks
            let length = b.length
            stats.backlogPackets -= 1
            stats.backlogBytes -= length
            stats.sentPackets &+= 1
            stats.sentBytes &+= UInt64(length)
            nextDequeueTime = nil
            return b
        }
        nextDequeueTime = now &+ UInt64(-toks)
        stats.overlimits &+= 1
        return nil
    }

    /// Puts back a packet the driver refused, to go first without paying again.
    /// Linux: `dev_requeue_skb()`.
    public func requeue(_ buffer: consuming PacketBuffer) {
        _ = slab.requeue(buffer, onto: &requeued, statistics: &stats)
    }

    /// True when nothing is queued or requeued.
    public var isEmpty: Bool { stats.backlogPackets == 0 }

    /// Counters, as `tc -s qdisc` shows them.
    public var statistics: QdiscStatistics { stats }

    /// Destroys every queued packet and fills the bucket. Linux: `tbf_reset()`.
    public func reset() {
        slab.removeAll(&requeued)
        slab.removeAll(&fifo)
        stats.backlogPackets = 0
        stats.backlogBytes = 0
        tokens = bucketTime
        lastUpdate = 0
        nextDequeueTime = nil
    }
}
