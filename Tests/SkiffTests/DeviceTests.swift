import Testing
@testable import Skiff
import SkiffSim
import SkiffWire

/// The device layer: qdisc bypass and quota, NET_TX, ring stop/wake, TX queue selection,
/// fq_codel and tbf on a real path, software GSO, NAPI budgets and softirq accounting.
@Suite struct DeviceTests {
    typealias P = Scenarios.SwitchedPair
    static let ms = Time.millisecond

    /// Host A on a capturing port that knows B permanently (no ARP in the way).
    static func hostA(configure: (inout DeviceConfiguration) -> Void = { _ in }) -> Lab.Host {
        let h = Lab.Host(name: "A", address: Lab.aIP, mac: Lab.aMAC, configure: configure)
        h.stack.addPermanentNeighbour(Lab.bIP, mac: Lab.bMAC, device: h.dev)
        return h
    }

    /// Sends `count` datagrams in one system call; datagram i carries i in its first 4 bytes.
    static func burst(_ s: NetworkStack, to: IPv4Address, count: Int, now: Nanoseconds, sourcePort: UInt16 = 4000,
                      destinationPort: UInt16 = 7, payload: Int = 64) -> Int {
        var cache = RouteCache()
        return s.processContext(now: now) {
            var ok = 0
            for i in 0..<count {
                let e = s.udpSend(to: to, sourcePort: sourcePort, destinationPort: destinationPort, payloadLength: payload,
                                  route: &cache) { b in
                    for k in 0..<b.count { b[k] = 0 }
                    withUnsafeBytes(of: UInt32(i).bigEndian) { for k in 0..<4 { b[k] = $0[k] } }
                }
                if e == nil { ok += 1 }
            }
            return ok
        }
    }

    /// The index a burst datagram carries.
    static func index(_ f: [UInt8]) -> Int? {
        guard let ip = Lab.ipPacket(f), ip.header.protocol == IPProtocol.udp, ip.payload.count >= 12 else { return nil }
        let p = ip.payload
        return Int(p[8]) << 24 | Int(p[9]) << 16 | Int(p[10]) << 8 | Int(p[11])
    }

    static func resolvedPair(qdisc: QdiscKind = .pfifoFast, lineRate: UInt64 = 10_000_000_000) -> Scenarios.SwitchedPair {
        let s = Scenarios.switchedPair(qdisc: qdisc, lineRate: lineRate)
        s.b.udpListeners.insert(7)
        _ = s.a.ping(P.bAddress, identifier: 1, sequence: 1, now: s.world.now)
        s.world.run(until: s.world.now + 10 * ms)
        return s
    }

    @Test func oneSystemCallBypassesUntilTheRingStopsThenTheQdiscDrainsByQuota() {
        // An infinitely fast wire: the NIC completes at once, so the whole story happens
        // inside the one system call (with a line rate it continues on the completion timer).
        let s = Self.resolvedPair(lineRate: 0)
        let txq = s.aDevice.txQueues[0]
        let bypassed = txq.bypassed, netTX = s.a.softirq.count(.netTX)
        let sentBefore = txq.qdisc.statistics.sentPackets
        #expect(txq.ring.unused == 255)
        #expect(Self.burst(s.a, to: P.bAddress, count: 400, now: s.world.now) == 400)
        // Empty qdisc: each datagram went straight to the driver until the ring was nearly
        // full (255 - 235 = 20 < 21 descriptors free), then the rest queued.
        #expect(txq.bypassed - bypassed == 235)
        #expect(txq.ring.stops == 1)
        // On the way out of the system call NAPI cleaned the ring, woke the queue, and NET_TX
        // drained the qdisc 64 packets per run.
        #expect(txq.ring.wakes >= 1)
        // All 400 count as sent by the qdisc (Linux counts bypassed packets too); 165 of them
        // were dequeued, at most 64 per run.
        #expect(txq.qdisc.statistics.sentPackets - sentBefore == 400)
        #expect(txq.quotaDeferrals >= 2)
        #expect(s.a.softirq.count(.netTX) > netTX)
        #expect(txq.qdisc.isEmpty && !txq.stopped)
        s.world.run(until: s.world.now + 10 * Self.ms)
        #expect(s.b.udpDelivered == 400)
        #expect(s.a.drops.total == 0 && s.b.drops.total == 0)
    }

    @Test func fullRingStopsTheQueueAndCompletionWakesItWithoutLoss() {
        let h = Self.hostA()
        let txq = h.dev.txQueues[0]
        #expect(Self.burst(h.stack, to: Lab.bIP, count: 300, now: h.now) == 300)
        #expect(txq.ring.stops >= 1 && txq.ring.wakes >= 1)
        let frames = h.port.take()
        // Every datagram left, once, in the order it was sent.
        #expect(frames.count == 300)
        #expect(frames.compactMap { Self.index($0.bytes) } == Array(0..<300))
        #expect(h.dev.stats.txPackets == 300 && h.dev.stats.txDropped == 0)
        #expect(h.stack.drops.total == 0)
        #expect(txq.ring.unused == 255)
        #expect(h.shutdownIsClean())
    }

    @Test func aQueueRunningElsewhereOnlyEnqueuesUntilNetTX() {
        let h = Self.hostA()
        let txq = h.dev.txQueues[0]
        txq.running = true   // another CPU owns the qdisc
        #expect(h.udpSend(to: Lab.bIP, destinationPort: 7, payload: 10) == nil)
        #expect(h.port.frames.isEmpty)
        #expect(txq.qdisc.statistics.backlogPackets == 1)
        #expect(txq.bypassed == 0)
        // The owner lets go; NET_TX sends what waited.
        txq.running = false
        let netTX = h.stack.softirq.count(.netTX)
        h.stack.processContext(now: h.now) { h.stack.netifSchedule(txq) }
        #expect(h.stack.softirq.count(.netTX) == netTX + 1)
        #expect(h.port.take().count == 1)
        #expect(txq.qdisc.statistics.backlogPackets == 0)
        #expect(h.shutdownIsClean())
    }

    @Test func flowsStayOnOneTxQueueAndSpreadAcrossQueues() {
        let h = Self.hostA { $0.txQueues = 4 }
        let rings = h.dev.txQueues.map(\.ring)
        func counts() -> [UInt64] { rings.map(\.packets) }
        // One flow, ten datagrams: all on one queue.
        var before = counts()
        _ = Self.burst(h.stack, to: Lab.bIP, count: 10, now: h.now, sourcePort: 1111, destinationPort: 2222)
        var delta = zip(counts(), before).map { $0 - $1 }
        #expect(delta.sorted() == [0, 0, 0, 10])
        let firstQueue = delta.firstIndex(of: 10)
        // 32 flows of 3: each flow on one queue, the flows spread.
        var used = Set<Int>()
        for port in UInt16(1000)..<1032 {
            before = counts()
            _ = Self.burst(h.stack, to: Lab.bIP, count: 3, now: h.now, sourcePort: port)
            delta = zip(counts(), before).map { $0 - $1 }
            #expect(delta.sorted() == [0, 0, 0, 3])
            if let q = delta.firstIndex(of: 3) { used.insert(q) }
        }
        #expect(used.count >= 3)
        // The same flow again lands where it did before.
        before = counts()
        _ = Self.burst(h.stack, to: Lab.bIP, count: 5, now: h.now, sourcePort: 1111, destinationPort: 2222)
        let again = zip(counts(), before).map { $0 - $1 }
        #expect(again.sorted() == [0, 0, 0, 5])
        #expect(again.firstIndex(of: 5) == firstQueue)
        #expect(h.port.frames.count == 10 + 96 + 5)
        #expect(h.shutdownIsClean())
    }

    @Test func fqCodelDeliversTraffic() {
        let s = Self.resolvedPair(qdisc: .fqCodel)
        #expect(s.aDevice.txQueues[0].qdisc.kind == "fq_codel")
        #expect(Self.burst(s.a, to: P.bAddress, count: 50, now: s.world.now) == 50)
        s.world.run(until: s.world.now + 10 * Self.ms)
        #expect(s.b.udpDelivered == 50)
        #expect(s.a.echoReplies.count == 1)
        let st = s.aDevice.txQueues[0].qdisc.statistics
        #expect(st.sentPackets == 52)   // ARP request, echo request, 50 datagrams
        #expect(st.drops == 0 && st.backlogPackets == 0)
        #expect(s.aDevice.txQueues[0].bypassed == 0)
    }

    @Test func tokenBucketHoldsPacketsUntilTheWatchdogReleasesThem() {
        // 125 kB/s, 3000-byte bucket: two 1042-byte frames go at once, then one every 8.3 ms.
        let s = Self.resolvedPair(qdisc: .tbf(rate: 125_000, burst: 3000, limit: 100_000))
        // Let the bucket fill again after the ARP exchange.
        s.world.run(until: s.world.now + 100 * Self.ms)
        let t0 = s.world.now
        let timers = s.a.softirq.count(.timer)
        #expect(Self.burst(s.a, to: P.bAddress, count: 20, now: t0, payload: 1000) == 20)
        // (The wire takes ~0.8 µs per frame at 10 Gb/s; the bucket refills in ms.)
        s.world.run(until: t0 + 100 * Time.microsecond)
        #expect(s.b.udpDelivered == 2)
        let q = s.aDevice.txQueues[0].qdisc
        #expect(q.statistics.backlogPackets == 18)
        #expect(q.nextDequeueTime != nil)
        // 100 ms later: 12 more (916 + 12500 bytes of tokens, 1042 per frame).
        s.world.run(until: t0 + 100 * Self.ms)
        #expect(s.b.udpDelivered == 14)
        s.world.run(until: t0 + Time.second)
        #expect(s.b.udpDelivered == 20)
        #expect(q.statistics.backlogPackets == 0 && q.statistics.drops == 0)
        #expect(q.statistics.overlimits > 0)
        #expect(s.a.softirq.count(.timer) > timers)
    }

    /// Builds a UDP packet larger than the MTU with `gso` bytes per segment and sends it.
    static func sendGSO(_ s: NetworkStack, to: IPv4Address, payload: Int, gso: Int, now: Nanoseconds) -> SendError? {
        s.processContext(now: now) {
            var b = s.pool.allocate(size: 8 + payload)!
            let p = b.put(8 + payload)
            p.storeBytes(of: UInt16(5555).bigEndian, as: UInt16.self)
            p.storeBytes(of: UInt16(7).bigEndian, toByteOffset: 2, as: UInt16.self)
            p.storeBytes(of: UInt16(truncatingIfNeeded: 8 + payload).bigEndian, toByteOffset: 4, as: UInt16.self)
            p.storeBytes(of: UInt16(0), toByteOffset: 6, as: UInt16.self)
            for i in 0..<payload { (p + 8 + i).storeBytes(of: UInt8(truncatingIfNeeded: i / gso), as: UInt8.self) }
            b.meta.gsoSize = UInt16(gso)
            var cache = RouteCache()
            return s.ipQueueXmit(b, destination: to, protocol: IPProtocol.udp, route: &cache)
        }
    }

    @Test("a partial checksum on a device without checksum offload is finished in software (skb_checksum_help)")
    func partialChecksumIsFinishedInSoftware() throws {
        let h = Self.hostA()
        #expect(!h.dev.features.contains(.txChecksum))
        let payload = 301   // odd, so the sum crosses a byte boundary
        let err: SendError? = h.stack.processContext(now: h.now) {
            var b = h.stack.pool.allocate(size: 8 + payload)!
            let p = b.put(8 + payload)
            p.storeBytes(of: UInt16(5555).bigEndian, as: UInt16.self)
            p.storeBytes(of: UInt16(7).bigEndian, toByteOffset: 2, as: UInt16.self)
            p.storeBytes(of: UInt16(8 + payload).bigEndian, toByteOffset: 4, as: UInt16.self)
            for i in 0..<payload { (p + 8 + i).storeBytes(of: UInt8(truncatingIfNeeded: i &* 13), as: UInt8.self) }
            // CHECKSUM_PARTIAL: the field holds the pseudo-header sum only.
            let ps = InternetChecksum.pseudoHeaderSum(source: Lab.aIP, destination: Lab.bIP, protocol: IPProtocol.udp,
                                                      length: UInt16(8 + payload))
            p.storeBytes(of: (~InternetChecksum.fold(ps)).bigEndian, toByteOffset: 6, as: UInt16.self)
            b.meta.checksumPartial = true
            var cache = RouteCache()
            return h.stack.ipQueueXmit(b, destination: Lab.bIP, protocol: IPProtocol.udp, route: &cache)
        }
        #expect(err == nil)
        let frames = h.port.take()
        #expect(frames.count == 1)
        let frame = try #require(frames.first)
        let ip = try #require(Lab.ipPacket(frame.bytes))
        let ok = ip.payload.withUnsafeBytes { UDPHeader.verifyChecksum(datagram: $0, source: Lab.aIP, destination: Lab.bIP) }
        #expect(ok)
    }

    @Test func softwareGSOSegmentsUDPOnADeviceWithoutTSO() throws {
        let h = Self.hostA()
        #expect(!h.dev.features.contains(.tso))
        #expect(Self.sendGSO(h.stack, to: Lab.bIP, payload: 4000, gso: 1000, now: h.now) == nil)
        let frames = h.port.take()
        #expect(frames.count == 4)
        var ids: [UInt16] = []
        for (n, f) in frames.enumerated() {
            #expect(f.bytes.count == 14 + 20 + 8 + 1000)
            let ip = try #require(Lab.ipPacket(f.bytes))
            #expect(ip.header.totalLength == 1028 && !ip.header.isFragment)
            ids.append(ip.header.identification)
            let ok = ip.payload.withUnsafeBytes { UDPHeader.verifyChecksum(datagram: $0, source: Lab.aIP, destination: Lab.bIP) }
            #expect(ok)
            #expect(ip.payload[4] == 0x03 && ip.payload[5] == 0xF0)   // UDP length 1008
            #expect(ip.payload[8...].allSatisfy { $0 == UInt8(n) })
        }
        #expect(ids == [ids[0], ids[0] &+ 1, ids[0] &+ 2, ids[0] &+ 3])
        // Only the 42 header bytes are copied per segment; the payload is referenced (fragments).
        #expect(h.stack.pool.ledger.bytes(.segmentation) == 4 * 42)
        #expect(h.stack.pool.ledger.operations(.segmentation) == 4)
        #expect(h.dev.stats.txPackets == 4)
        #expect(h.shutdownIsClean())
    }

    @Test func gsoSegmentsArriveAsSeparateDatagrams() {
        let s = Self.resolvedPair()
        #expect(Self.sendGSO(s.a, to: P.bAddress, payload: 4000, gso: 1000, now: s.world.now) == nil)
        #expect(Self.sendGSO(s.a, to: P.bAddress, payload: 2500, gso: 1000, now: s.world.now) == nil)
        s.world.run(until: s.world.now + 10 * Self.ms)
        #expect(s.b.udpDelivered == 4 + 3)
        #expect(s.b.udpDeliveredBytes == 6500)
        #expect(s.b.drops.total == 0)
    }

    @Test func gsoPacketWithMoreSegmentsThanTheRingStillGoes() {
        let h = Self.hostA()
        // 8000 bytes in 16-byte segments: 500 frames, twice the ring.
        #expect(Self.sendGSO(h.stack, to: Lab.bIP, payload: 8000, gso: 16, now: h.now) == nil)
        h.advance(by: Self.ms)
        // And traffic behind it is not stuck.
        #expect(h.udpSend(to: Lab.bIP, destinationPort: 9, payload: 10) == nil)
        h.advance(by: Self.ms)
        let frames = h.port.take()
        #expect(frames.count == 501)
        let segments = frames.prefix(500).compactMap { Lab.ipPacket($0.bytes) }
        #expect(segments.count == 500)
        #expect(segments.allSatisfy { $0.header.totalLength == 20 + 8 + 16 })
        let ids = segments.map(\.header.identification)
        #expect(ids == (0..<500).map { ids[0] &+ UInt16($0) })
        #expect(segments.enumerated().allSatisfy { n, ip in ip.payload[8...].allSatisfy { $0 == UInt8(truncatingIfNeeded: n) } })
        #expect(h.stack.drops.total == 0)
        #expect(h.shutdownIsClean())
    }

    /// A GSO packet whose payload lies in fragments (as a TCP transmission's does when its headers
    /// get a buffer of their own) takes a descriptor for each segment's headers and one for each
    /// piece of payload: two per segment, three for the one that crosses from the first fragment
    /// into the second. 31 segments of 100 bytes need 63 descriptors, more than a 64-entry ring
    /// gives one packet; counted as one per segment they were let onto the ring and the segments
    /// it could not take were dropped (and TCP had to retransmit them out of order).
    @Test func gsoOfAFragmentedPacketCountsTheDescriptorsOfEachSegment() throws {
        let h = Self.hostA { $0.ringSize = 64 }
        let packets = 4, payload = 3100, gso = 100
        for n in 0..<packets {
            let err: SendError? = h.stack.processContext(now: h.now) {
                func part(_ base: Int, _ size: Int) -> PacketBuffer {
                    var part = h.stack.pool.allocate(size: size)!
                    let q = part.put(size)
                    for i in 0..<size { (q + i).storeBytes(of: UInt8(truncatingIfNeeded: n &* 31 &+ (base + i) / gso), as: UInt8.self) }
                    return part
                }
                let first = part(0, 1550), second = part(1550, 1550)
                var b = h.stack.pool.allocate(size: 8)!
                let p = b.put(8)
                p.storeBytes(of: UInt16(5555).bigEndian, as: UInt16.self)
                p.storeBytes(of: UInt16(7).bigEndian, toByteOffset: 2, as: UInt16.self)
                p.storeBytes(of: UInt16(8 + payload).bigEndian, toByteOffset: 4, as: UInt16.self)
                p.storeBytes(of: UInt16(0), toByteOffset: 6, as: UInt16.self)
                let added = b.addFragments(of: first, offset: 0, length: 1550)
                    && b.addFragments(of: second, offset: 0, length: 1550)
                #expect(added)
                b.meta.gsoSize = UInt16(gso)
                var cache = RouteCache()
                return h.stack.ipQueueXmit(b, destination: Lab.bIP, protocol: IPProtocol.udp, route: &cache)
            }
            #expect(err == nil)
            h.advance(by: Self.ms)
        }
        h.advance(by: Self.ms)
        let frames = h.port.take()
        #expect(h.stack.drops.total == 0)
        #expect(frames.count == packets * payload / gso)
        // In order: packet by packet, segment by segment.
        let marks = frames.compactMap { Lab.ipPacket($0.bytes) }.map { $0.payload[8] }
        #expect(marks == (0..<packets).flatMap { n in (0..<(payload / gso)).map { UInt8(truncatingIfNeeded: n &* 31 &+ $0) } })
        #expect(h.shutdownIsClean())
    }

    @Test func smallRingsStillWakeTheirQueue() {
        for size in [16, 32, 64] {
            let h = Self.hostA { $0.ringSize = size }
            #expect(Self.burst(h.stack, to: Lab.bIP, count: 100, now: h.now) == 100)
            h.advance(by: Self.ms)
            #expect(h.port.take().compactMap { Self.index($0.bytes) } == Array(0..<100), "ring \(size)")
            #expect(h.dev.txQueues[0].qdisc.isEmpty, "ring \(size)")
            #expect(h.shutdownIsClean())
        }
    }

    @Test func napiPollsABurstInWeightSizedBitesAndDeliversEverything() {
        let h = Lab.Host(name: "B") { $0.ringSize = 1024 }
        h.stack.udpListeners.insert(7)
        let frames = (0..<400).map { i in
            Lab.ethernet(Lab.ipv4(Lab.udp(Lab.pattern(20, seed: i), destinationPort: 7), protocol: IPProtocol.udp,
                                  id: UInt16(i)))
        }
        h.injectBurst(frames)
        #expect(h.stack.udpDelivered == 400)
        #expect(h.dev.rxQueues[0].ring.missed == 0)
        let napi = h.dev.rxQueues[0].napi
        // 400 frames at weight 64: seven polls, six of them full and put back on the list.
        #expect(napi.polls == 7)
        #expect(napi.fullPolls == 6)
        // One interrupt for the whole burst: the vector stayed masked while NAPI polled.
        #expect(h.dev.nic.vectors[0].count == 1)
        #expect(h.shutdownIsClean())
    }

    @Test func netRxBudgetSqueezesSeveralQueues() {
        let h = Lab.Host(name: "B") { $0.ringSize = 1024; $0.rxQueues = 4; $0.txQueues = 4 }
        h.stack.udpListeners.insert(7)
        h.stack.netdevBudget = 100
        // 800 datagrams over 40 flows, spread by RSS.
        let frames = (0..<800).map { i in
            Lab.ethernet(Lab.ipv4(Lab.udp(Lab.pattern(20), sourcePort: UInt16(3000 + i % 40), destinationPort: 7),
                                  protocol: IPProtocol.udp, id: UInt16(i)))
        }
        let perQueue = (0..<4).map { q in frames.filter { f in f.withUnsafeBytes { Int(h.dev.nic.receiveHash($0) % 4) } == q }.count }
        #expect(perQueue.allSatisfy { $0 >= 64 })
        h.injectBurst(frames)
        #expect(h.stack.udpDelivered == 800)
        #expect(h.stack.timeSqueeze > 0)
        #expect(h.dev.rxQueues.allSatisfy { $0.napi.fullPolls > 0 })
        #expect(h.dev.rxQueues.map { Int($0.ring.packets) } == perQueue)
        #expect(h.shutdownIsClean())
    }

    @Test func aPingingSenderRunsNetRXMoreThanNetTX() {
        let s = Scenarios.switchedPair()
        for seq in 1...10 {
            _ = s.a.ping(P.bAddress, identifier: 4, sequence: UInt16(seq), now: s.world.now)
            s.world.run(until: s.world.now + Self.ms)
        }
        #expect(s.a.echoReplies.count == 10)
        // Completions and replies both arrive through NET_RX; the pings went out in process context.
        let rx = s.a.softirq.count(.netRX), tx = s.a.softirq.count(.netTX)
        #expect(rx >= 10)
        #expect(rx > tx)
        #expect(s.a.contexts.entries[ExecutionContext.process.rawValue] >= 10)
    }
}
