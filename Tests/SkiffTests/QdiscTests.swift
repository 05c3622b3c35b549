import Testing
@testable import Skiff

/// Packet traces through the queueing disciplines. Every packet carries an id in `meta.mark`;
/// a test enqueues a trace of packets at virtual times and checks the order, the drops and the
/// `tc -s qdisc` counters that come out, and that every buffer went back to the pool.
struct QdiscTests {
    static let ms: UInt64 = 1_000_000

    static func packet(_ pool: BufferPool, bytes: Int, id: UInt32,
                       priority: UInt8 = 0, flow: UInt32 = 0) -> PacketBuffer {
        var b = pool.allocate(size: bytes)!
        b.put(bytes)
        b.meta.mark = id
        b.meta.priority = priority
        b.meta.flowHash = flow
        return b
    }

    /// The id of a packet, or nil for no packet (keeps noncopyable values out of `#expect`).
    static func mark(_ b: consuming PacketBuffer?) -> UInt32? {
        b?.meta.mark
    }

    /// Dequeues until the qdisc returns nil, listing the ids in order.
    static func drain(_ q: Qdisc, now: UInt64) -> [UInt32] {
        var ids: [UInt32] = []
        while let b = q.dequeue(now: now) { ids.append(b.meta.mark) }
        return ids
    }

    // MARK: PacketSlab

    @Test func slabKeepsSeveralFifoListsInOneStorage() {
        let pool = BufferPool()
        do {
            var slab = PacketSlab(capacity: 4)
            var a = PacketList(), b = PacketList()
            slab.pushBack(Self.packet(pool, bytes: 10, id: 1), onto: &a)
            slab.pushBack(Self.packet(pool, bytes: 20, id: 2), onto: &b)
            slab.pushBack(Self.packet(pool, bytes: 30, id: 3), onto: &a)
            slab.pushFront(Self.packet(pool, bytes: 40, id: 4), onto: &a)
            let full = slab.isFull, used = slab.count
            #expect(full && used == 4)
            #expect(a.count == 3 && a.bytes == 80)
            #expect(b.count == 1 && b.bytes == 20)
            let headMark = slab.meta(at: a.head).mark, tailLength = slab.length(at: a.tail)
            #expect(headMark == 4 && tailLength == 30)

            var popped = [Self.mark(slab.popFront(&a)), Self.mark(slab.popFront(&a))]
            // A freed slot is reused.
            slab.pushBack(Self.packet(pool, bytes: 50, id: 5), onto: &b)
            popped += [Self.mark(slab.popFront(&b)), Self.mark(slab.popFront(&b)), Self.mark(slab.popFront(&b))]
            #expect(popped == [4, 1, 2, 5, nil])
            #expect(b.isEmpty && b.head == PacketSlab.none && b.tail == PacketSlab.none && b.bytes == 0)
            #expect(a.count == 1 && a.bytes == 30)
            #expect(pool.statistics.inUse == 1)
            // The slab goes out of scope holding packet 3.
        }
        #expect(pool.statistics.inUse == 0)
    }

    // MARK: pfifo_fast

    @Test func tosToPriorityFollowsLinuxTable() {
        #expect(PfifoFast.rtTosToPriority(tos: 0x00) == 0)  // best effort
        #expect(PfifoFast.rtTosToPriority(tos: 0x02) == 1)  // min cost -> filler
        #expect(PfifoFast.rtTosToPriority(tos: 0x04) == 0)  // reliability -> best effort
        #expect(PfifoFast.rtTosToPriority(tos: 0x08) == 2)  // throughput -> bulk
        #expect(PfifoFast.rtTosToPriority(tos: 0x10) == 6)  // low delay -> interactive
        #expect(PfifoFast.rtTosToPriority(tos: 0x18) == 4)  // interactive bulk
        #expect(PfifoFast.rtTosToPriority(tos: 0xB8) == 4)  // DSCP EF: only TOS bits 0x18 count
        #expect(PfifoFast.rtTosToPriority(tos: 0x11) == 6)  // ECN bit ignored
        #expect(PfifoFast.band(forPriority: 6) == 0)
        #expect(PfifoFast.band(forPriority: 7) == 0)
        #expect(PfifoFast.band(forPriority: 0) == 1)
        #expect(PfifoFast.band(forPriority: 1) == 2)
        #expect(PfifoFast.band(forPriority: 2) == 2)
        #expect(PfifoFast.band(forPriority: 4) == 1)
        #expect(PfifoFast.band(forPriority: 0x16) == 0)  // priority & 15 = 6
    }

    @Test func pfifoFastServesLowDelayFirstAndBulkLast() {
        let pool = BufferPool()
        let pf = PfifoFast()
        let q = Qdisc.pfifoFast(pf)
        let be = PfifoFast.rtTosToPriority(tos: 0x00)
        let bulk = PfifoFast.rtTosToPriority(tos: 0x08)
        let lowDelay = PfifoFast.rtTosToPriority(tos: 0x10)
        // t=0: a bulk transfer, a web request and an ssh keystroke arrive interleaved.
        #expect(q.enqueue(Self.packet(pool, bytes: 1000, id: 1, priority: be), now: 0) == .queued)
        #expect(q.enqueue(Self.packet(pool, bytes: 1500, id: 2, priority: bulk), now: 0) == .queued)
        #expect(q.enqueue(Self.packet(pool, bytes: 100, id: 3, priority: lowDelay), now: 0) == .queued)
        #expect(q.enqueue(Self.packet(pool, bytes: 1000, id: 4, priority: be), now: 0) == .queued)
        #expect(q.enqueue(Self.packet(pool, bytes: 1500, id: 5, priority: bulk), now: 0) == .queued)
        #expect(q.enqueue(Self.packet(pool, bytes: 100, id: 6, priority: lowDelay), now: 0) == .queued)
        #expect(pf.backlog(band: 0) == (2, 200))
        #expect(pf.backlog(band: 1) == (2, 2000))
        #expect(pf.backlog(band: 2) == (2, 3000))
        #expect(q.statistics.backlogPackets == 6 && q.statistics.backlogBytes == 5200)
        #expect(!q.canBypass)

        #expect(Self.drain(q, now: 1) == [3, 6, 1, 4, 2, 5])
        let s = q.statistics
        #expect(s.sentPackets == 6 && s.sentBytes == 5200 && s.drops == 0)
        #expect(s.backlogPackets == 0 && s.backlogBytes == 0)
        #expect(q.canBypass)
        #expect(pool.statistics.inUse == 0)
    }

    @Test func pfifoFastDropsThe1001stPacket() {
        let pool = BufferPool()
        let q = Qdisc.pfifoFast(PfifoFast())  // txqueuelen 1000
        for i in 1...1000 {
            #expect(q.enqueue(Self.packet(pool, bytes: 100, id: UInt32(i), priority: UInt8(i % 16)), now: 0) == .queued)
        }
        #expect(q.enqueue(Self.packet(pool, bytes: 100, id: 1001), now: 0) == .dropped)
        var s = q.statistics
        #expect(s.drops == 1)
        #expect(s.backlogPackets == 1000 && s.backlogBytes == 100_000)
        #expect(pool.statistics.inUse == 1000)  // the dropped buffer is already back

        // One out, one more fits.
        #expect(Self.mark(q.dequeue(now: 1)) != nil)
        #expect(q.enqueue(Self.packet(pool, bytes: 100, id: 1002), now: 1) == .queued)
        #expect(q.enqueue(Self.packet(pool, bytes: 100, id: 1003), now: 1) == .dropped)

        #expect(Self.drain(q, now: 2).count == 1000)
        s = q.statistics
        #expect(s.sentPackets == 1001 && s.sentBytes == 100_100 && s.drops == 2)
        #expect(pool.statistics.inUse == 0)
    }

    @Test func requeuedPacketIsSentNextEvenBeforeBandZero() {
        let pool = BufferPool()
        let q = Qdisc.pfifoFast(PfifoFast())
        let bulk = PfifoFast.rtTosToPriority(tos: 0x08)
        let lowDelay = PfifoFast.rtTosToPriority(tos: 0x10)
        _ = q.enqueue(Self.packet(pool, bytes: 1500, id: 1, priority: bulk), now: 0)
        _ = q.enqueue(Self.packet(pool, bytes: 1500, id: 2, priority: bulk), now: 0)
        // The driver takes packet 1 off the queue, but its ring is full: it hands it back.
        let first = q.dequeue(now: 0)!
        #expect(first.meta.mark == 1)
        q.requeue(first)
        // Meanwhile an interactive packet arrives.
        _ = q.enqueue(Self.packet(pool, bytes: 60, id: 3, priority: lowDelay), now: 1)
        #expect(q.statistics.requeues == 1)
        #expect(q.statistics.backlogPackets == 3 && q.statistics.backlogBytes == 3060)
        #expect(!q.canBypass)

        #expect(Self.drain(q, now: 2) == [1, 3, 2])
        let s = q.statistics
        // Packet 1 counts as sent once, as in Linux (bstats skip the gso_skb path).
        #expect(s.sentPackets == 3 && s.sentBytes == 3060 && s.requeues == 1)
        #expect(pool.statistics.inUse == 0)
    }

    @Test func qdiscEnumKindsBypassAndNoqueue() {
        let pool = BufferPool()
        #expect(Qdisc.noqueue.kind == "noqueue")
        #expect(Qdisc.pfifoFast(PfifoFast()).kind == "pfifo_fast")
        #expect(Qdisc.fqCodel(FqCodel()).kind == "fq_codel")
        #expect(Qdisc.tbf(TokenBucket(rate: 1000, burst: 1500, limit: 3000)).kind == "tbf")

        #expect(!Qdisc.noqueue.canBypass && !Qdisc.noqueue.hasQueue)
        #expect(!Qdisc.fqCodel(FqCodel()).canBypass)
        let bypass = Qdisc.pfifoFast(PfifoFast())
        #expect(bypass.canBypass)
        bypass.recordBypass(length: 1514)  // sent straight to the driver, still counted
        #expect(bypass.statistics.sentPackets == 1 && bypass.statistics.sentBytes == 1514)
        #expect(bypass.isEmpty && bypass.statistics.backlogPackets == 0)

        // noqueue never queues: the device transmits directly; a packet handed to it is dropped.
        #expect(Qdisc.noqueue.enqueue(Self.packet(pool, bytes: 64, id: 1), now: 0) == .dropped)
        Qdisc.noqueue.requeue(Self.packet(pool, bytes: 64, id: 2))
        #expect(Self.mark(Qdisc.noqueue.dequeue(now: 0)) == nil)
        #expect(Qdisc.noqueue.isEmpty)
        #expect(Qdisc.noqueue.nextDequeueTime == nil)

        let q = Qdisc.pfifoFast(PfifoFast(limit: 4))
        _ = q.enqueue(Self.packet(pool, bytes: 64, id: 3), now: 0)
        #expect(q.nextDequeueTime == nil)
        q.reset()
        #expect(q.isEmpty && q.statistics.backlogBytes == 0)
        #expect(pool.statistics.inUse == 0)
    }

    // MARK: fq_codel

    @Test func twoBulkFlowsInterleaveByQuantum() {
        let pool = BufferPool()
        let q = Qdisc.fqCodel(FqCodel())  // quantum 1514
        // Flow A (hash 1) and flow B (hash 2) each queue four 1000-byte packets at t=0.
        for i in 1...4 { _ = q.enqueue(Self.packet(pool, bytes: 1000, id: UInt32(100 + i), flow: 1), now: 0) }
        for i in 1...4 { _ = q.enqueue(Self.packet(pool, bytes: 1000, id: UInt32(200 + i), flow: 2), now: 0) }
        #expect(q.statistics.newFlowCount == 2)
        // A quantum of 1514 bytes covers two packets per round (deficit 1514 -> 514 -> -486).
        #expect(Self.drain(q, now: 0) == [101, 102, 201, 202, 103, 104, 203, 204])
        let s = q.statistics
        #expect(s.sentPackets == 8 && s.sentBytes == 8000 && s.drops == 0)
        #expect(q.isEmpty)
        #expect(pool.statistics.inUse == 0)
    }

    @Test func aDeficitOfExactlyZeroEndsTheTurn() {
        let pool = BufferPool()
        let q = Qdisc.fqCodel(FqCodel(quantum: 1000))
        for i in 1...3 { _ = q.enqueue(Self.packet(pool, bytes: 500, id: UInt32(100 + i), flow: 1), now: 0) }
        for i in 1...3 { _ = q.enqueue(Self.packet(pool, bytes: 500, id: UInt32(200 + i), flow: 2), now: 0) }
        // 1000 - 500 - 500 = 0: no credit left, the other flow's turn (Linux: `deficit <= 0`).
        #expect(Self.drain(q, now: 0) == [101, 102, 201, 202, 103, 203])
        #expect(pool.statistics.inUse == 0)
    }

    @Test func sparseFlowIsServedBeforeBulkFlow() {
        let pool = BufferPool()
        let fq = FqCodel()
        let q = Qdisc.fqCodel(fq)
        // A bulk flow (hash 7) has ten 1000-byte packets waiting.
        for i in 1...10 { _ = q.enqueue(Self.packet(pool, bytes: 1000, id: UInt32(100 + i), flow: 7), now: 0) }
        var trace: [UInt32] = []
        for _ in 0..<3 { trace.append(q.dequeue(now: 0)!.meta.mark) }
        // A DNS query (hash 9) arrives: a new flow, served ahead of the old bulk flow.
        _ = q.enqueue(Self.packet(pool, bytes: 100, id: 901, flow: 9), now: 1)
        #expect(q.statistics.newFlowCount == 2)
        trace.append(q.dequeue(now: 1)!.meta.mark)  // 901
        trace.append(q.dequeue(now: 1)!.meta.mark)  // the emptied new flow went to the old list
        // Its answer-triggered second packet finds the flow still on the old list: not new again.
        _ = q.enqueue(Self.packet(pool, bytes: 100, id: 902, flow: 9), now: 2)
        #expect(q.statistics.newFlowCount == 2)
        trace.append(q.dequeue(now: 2)!.meta.mark)  // bulk out of deficit, goes behind flow 9
        trace.append(q.dequeue(now: 2)!.meta.mark)  // flow 9 found empty on the old list: removed
        // Now idle, flow 9 becomes a new flow again.
        _ = q.enqueue(Self.packet(pool, bytes: 100, id: 903, flow: 9), now: 3)
        #expect(q.statistics.newFlowCount == 3)
        trace.append(q.dequeue(now: 3)!.meta.mark)
        #expect(trace == [101, 102, 103, 901, 104, 902, 105, 903])
        #expect(Self.drain(q, now: 4) == [106, 107, 108, 109, 110])
        #expect(q.statistics.sentPackets == 13 && q.statistics.drops == 0)
        #expect(pool.statistics.inUse == 0)
    }

    @Test func codelDropsAfterAnIntervalAboveTargetAndStopsBelowIt() {
        let pool = BufferPool()
        let fq = FqCodel()  // target 5 ms, interval 100 ms
        let q = Qdisc.fqCodel(fq)
        let base: UInt64 = 1_000_000_000
        // A standing queue: ten packets, then each millisecond one arrives and one leaves, so
        // every packet waits 10 ms (id = arrival time in ms).
        for t in 0..<10 {
            _ = q.enqueue(Self.packet(pool, bytes: 1000, id: UInt32(t), flow: 5), now: base + UInt64(t) * Self.ms)
        }
        var dropTimes: [UInt64] = []
        var sojourn: [UInt64: UInt64] = [:]
        for t in UInt64(10)...1000 {
            let now = base + t * Self.ms
            _ = q.enqueue(Self.packet(pool, bytes: 1000, id: UInt32(t), flow: 5), now: now)
            let drops = q.statistics.drops
            let b = q.dequeue(now: now)!
            if q.statistics.drops != drops {
                #expect(q.statistics.drops == drops + 1)
                dropTimes.append(t)
            }
            sojourn[t] = t - UInt64(b.meta.mark)
        }
        // Above target since t=10; the first drop comes when that has lasted more than 100 ms.
        // Then drops at drop_next = t + 100ms/sqrt(count): +100, +70.7, +57.7, +50, +44.7 ms.
        // Each drop shortens the standing queue by one packet (1 ms); once the delay is 4 ms,
        // below target, CoDel leaves the dropping state for good.
        #expect(dropTimes == [111, 211, 282, 340, 390, 435])
        #expect(sojourn[110] == 10 && sojourn[111] == 9 && sojourn[434] == 5 && sojourn[435] == 4)
        #expect(sojourn[1000] == 4)
        let state = fq.codelState(5)
        #expect(state.count == 6 && !state.dropping)
        let s = q.statistics
        #expect(s.drops == 6 && s.dropOverlimit == 0 && s.ecnMarks == 0)
        #expect(s.sentPackets == 991)
        #expect(s.backlogPackets == 4)
        #expect(Self.drain(q, now: base + 1001 * Self.ms) == [997, 998, 999, 1000])
        #expect(pool.statistics.inUse == 0)
    }

    @Test func codelDoesNotDropWhenDelayFallsBelowTargetWithinInterval() {
        let pool = BufferPool()
        let q = Qdisc.fqCodel(FqCodel())
        let base: UInt64 = 1_000_000_000
        for t in 0..<10 {
            _ = q.enqueue(Self.packet(pool, bytes: 1000, id: UInt32(t), flow: 5), now: base + UInt64(t) * Self.ms)
        }
        // 10 ms of delay from t=10 to t=99: not yet an interval.
        for t in UInt64(10)..<100 {
            _ = q.enqueue(Self.packet(pool, bytes: 1000, id: UInt32(t), flow: 5), now: base + t * Self.ms)
            _ = q.dequeue(now: base + t * Self.ms)
        }
        // At t=100 the link drains seven packets at once; the last waited only 4 ms.
        for _ in 0..<7 { _ = q.dequeue(now: base + 100 * Self.ms) }
        // From then on a 3-packet queue: 3 ms of delay, far below target.
        for t in UInt64(100)..<400 {
            _ = q.enqueue(Self.packet(pool, bytes: 1000, id: UInt32(t), flow: 5), now: base + t * Self.ms)
            _ = q.dequeue(now: base + t * Self.ms)
        }
        #expect(q.statistics.drops == 0)
        #expect(q.statistics.sentPackets == 90 + 7 + 300)
        #expect(Self.drain(q, now: base + 400 * Self.ms) == [397, 398, 399])
        #expect(pool.statistics.inUse == 0)
    }

    @Test func overlimitDropsComeFromTheFattestFlow() {
        let pool = BufferPool()
        let fq = FqCodel(limit: 10)
        let q = Qdisc.fqCodel(fq)
        for i in 1...6 { _ = q.enqueue(Self.packet(pool, bytes: 1000, id: UInt32(100 + i), flow: 1), now: 0) }
        for i in 1...4 { _ = q.enqueue(Self.packet(pool, bytes: 500, id: UInt32(200 + i), flow: 2), now: 0) }
        #expect(q.statistics.drops == 0)
        // The 11th packet, a small one of a third flow, pushes the qdisc over its limit: half of
        // the fattest flow's bytes (flow 1: 6000 -> 3000) go, from its head.
        #expect(q.enqueue(Self.packet(pool, bytes: 100, id: 301, flow: 3), now: 0) == .queued)
        let s = q.statistics
        #expect(s.drops == 3 && s.dropOverlimit == 3)
        #expect(s.backlogPackets == 8 && s.backlogBytes == 3000 + 2000 + 100)
        #expect(fq.flowBacklog(1) == (3, 3000))
        #expect(fq.flowBacklog(2) == (4, 2000))
        #expect(fq.flowBacklog(3) == (1, 100))
        #expect(fq.codelState(1).count == 3)  // CoDel is told to signal harder
        #expect(Self.drain(q, now: 0) == [104, 105, 201, 202, 203, 204, 301, 106])
        #expect(pool.statistics.inUse == 0)
    }

    @Test func overlimitCanDropTheArrivingPacketOfTheFattestFlow() {
        let pool = BufferPool()
        let q = Qdisc.fqCodel(FqCodel(limit: 1))
        #expect(q.enqueue(Self.packet(pool, bytes: 100, id: 1, flow: 1), now: 0) == .queued)
        // Flow 1 now holds 5100 bytes; dropping half of it takes both packets.
        #expect(q.enqueue(Self.packet(pool, bytes: 5000, id: 2, flow: 1), now: 0) == .dropped)
        #expect(q.statistics.drops == 2 && q.statistics.dropOverlimit == 2)
        #expect(q.isEmpty && q.statistics.backlogBytes == 0)
        #expect(pool.statistics.inUse == 0)
    }

    @Test func memoryLimitDropsFromTheFattestFlow() {
        let pool = BufferPool()
        let fq = FqCodel(memoryLimit: 3000)
        let q = Qdisc.fqCodel(fq)
        _ = q.enqueue(Self.packet(pool, bytes: 1000, id: 1, flow: 1), now: 0)
        _ = q.enqueue(Self.packet(pool, bytes: 1000, id: 2, flow: 1), now: 0)
        #expect(q.enqueue(Self.packet(pool, bytes: 1500, id: 3, flow: 2), now: 0) == .queued)
        #expect(q.statistics.drops == 1 && q.statistics.dropOverlimit == 1)
        #expect(fq.flowBacklog(1) == (1, 1000))
        #expect(Self.drain(q, now: 0) == [2, 3])
        #expect(pool.statistics.inUse == 0)
    }

    @Test func fqCodelRequeueAndReset() {
        let pool = BufferPool()
        let q = Qdisc.fqCodel(FqCodel())
        _ = q.enqueue(Self.packet(pool, bytes: 1000, id: 1, flow: 1), now: 0)
        _ = q.enqueue(Self.packet(pool, bytes: 1000, id: 2, flow: 2), now: 0)
        let b = q.dequeue(now: 0)!
        #expect(b.meta.mark == 1)
        q.requeue(b)
        #expect(q.statistics.requeues == 1 && q.statistics.backlogPackets == 2)
        #expect(Self.mark(q.dequeue(now: 0)) == 1)
        #expect(q.statistics.sentPackets == 1)
        _ = q.enqueue(Self.packet(pool, bytes: 1000, id: 3, flow: 3), now: 0)
        q.reset()
        #expect(q.isEmpty && q.statistics.backlogBytes == 0 && Self.mark(q.dequeue(now: 0)) == nil)
        #expect(pool.statistics.inUse == 0)
    }

    // MARK: tbf

    @Test func tokenBucketSendsTheBurstThenPacesAtRate() {
        let pool = BufferPool()
        // 1 MB/s: a 1000-byte packet costs 1 ms of tokens; the bucket holds 10 packets' worth.
        let tbf = TokenBucket(rate: 1_000_000, burst: 10_000, limit: 100_000)
        let q = Qdisc.tbf(tbf)
        for i in 1...15 {
            #expect(q.enqueue(Self.packet(pool, bytes: 1000, id: UInt32(i)), now: 0) == .queued)
        }
        // The full bucket lets ten packets go at once.
        var sent: [UInt32] = []
        for _ in 0..<10 { sent.append(q.dequeue(now: 0)!.meta.mark) }
        #expect(sent == Array(1...10))
        #expect(q.nextDequeueTime == nil)
        // The bucket is empty: packet 11 needs 1000 bytes = 1 ms of tokens.
        #expect(Self.mark(q.dequeue(now: 0)) == nil)
        #expect(q.nextDequeueTime == 1_000_000)
        #expect(q.statistics.overlimits == 1)
        #expect(Self.mark(q.dequeue(now: 999_999)) == nil)  // 1 ns short
        #expect(q.nextDequeueTime == 1_000_000)
        #expect(q.statistics.overlimits == 2)
        #expect(Self.mark(q.dequeue(now: 1_000_000)) == 11)
        #expect(q.nextDequeueTime == nil)
        #expect(Self.mark(q.dequeue(now: 1_000_000)) == nil)
        #expect(q.nextDequeueTime == 2_000_000)
        // The device's watchdog fires late, at 5 ms: 4 ms of tokens, four packets.
        #expect(Self.drain(q, now: 5_000_000) == [12, 13, 14, 15])
        #expect(q.nextDequeueTime == nil)
        let s = q.statistics
        #expect(s.sentPackets == 15 && s.sentBytes == 15_000 && s.overlimits == 3 && s.drops == 0)
        #expect(pool.statistics.inUse == 0)
    }

    @Test func tokenBucketCapsTokensAtBurstAfterIdle() {
        let pool = BufferPool()
        let q = Qdisc.tbf(TokenBucket(rate: 1_000_000, burst: 10_000, limit: 100_000))
        for i in 1...12 { _ = q.enqueue(Self.packet(pool, bytes: 1000, id: UInt32(i)), now: 0) }
        // One second idle would be 1 MB of tokens, but the bucket holds 10 KB.
        #expect(Self.drain(q, now: 1_000_000_000) == Array(1...10))
        #expect(q.nextDequeueTime == 1_001_000_000)
        #expect(Self.drain(q, now: 1_002_000_000) == [11, 12])
        #expect(pool.statistics.inUse == 0)
    }

    @Test func tokenBucketDropsOversizedAndOverLimitPackets() {
        let pool = BufferPool()
        let tbf = TokenBucket(rate: 1_000_000, burst: 1500, limit: 3000)
        let q = Qdisc.tbf(tbf)
        // Longer than the bucket: could never be sent.
        #expect(q.enqueue(Self.packet(pool, bytes: 1501, id: 1), now: 0) == .dropped)
        #expect(q.enqueue(Self.packet(pool, bytes: 1500, id: 2), now: 0) == .queued)
        #expect(q.enqueue(Self.packet(pool, bytes: 1500, id: 3), now: 0) == .queued)
        // The byte limit (bfifo) is full.
        #expect(q.enqueue(Self.packet(pool, bytes: 1, id: 4), now: 0) == .dropped)
        #expect(q.statistics.drops == 2 && q.statistics.backlogBytes == 3000)
        // Requeued packets go first and do not pay twice.
        let b = q.dequeue(now: 0)!
        q.requeue(b)
        #expect(Self.mark(q.dequeue(now: 0)) == 2)
        #expect(Self.mark(q.dequeue(now: 0)) == nil)
        #expect(q.nextDequeueTime == 1_500_000)
        #expect(Self.mark(q.dequeue(now: 1_500_000)) == 3)
        #expect(q.statistics.requeues == 1 && q.statistics.sentPackets == 2)
        #expect(pool.statistics.inUse == 0)
    }
}
