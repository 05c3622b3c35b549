import Testing
@testable import Skiff
import SkiffWire

/// Hostile input on the offload paths: frames whose offload claims lie (a segment size on a tiny
/// frame, "checksum valid" on garbage, lengths past 64 KiB), and GRO fed segments of many flows
/// with random sequence numbers, flags and options. Nothing may trap, every frame is accounted
/// for, every buffer comes back, and the host still answers afterwards.
@Suite struct OffloadInputTests {
    /// A TCP/IPv4 frame to host B with random fields (valid checksums unless `damage`).
    static func tcpFrame(_ g: inout SplitMix64, flows: Int, damage: Bool) -> [UInt8] {
        let flow = UInt16(g.next() % UInt64(max(flows, 1)))
        var opts = TCPOptions()
        if g.next() % 2 == 0 { opts.timestamp = TCPTimestamp(value: UInt32(g.next() % 4), echo: 0) }
        let flagChoices: [TCPFlags] = [.ack, [.ack, .psh], [.ack, .fin], .syn, [.ack, .rst], [.ack, .urg], []]
        let flags = flagChoices[Int(g.next() % UInt64(flagChoices.count))]
        let payload = (0..<Int(g.next() % 1400)).map { _ in UInt8(truncatingIfNeeded: g.next()) }
        var tcp = TCPPeer.tcpBytes(sourcePort: 40_000 + flow, destinationPort: 80,
                                   seq: UInt32(g.next() % 8) * 1000, ack: UInt32(g.next() % 2), flags: flags,
                                   window: 1000, options: opts, payload: payload)
        if damage && !tcp.isEmpty { tcp[Int(g.next() % UInt64(tcp.count))] ^= 0x10 }
        return TCPPeer.frame(tcp: tcp)
    }

    @Test("3 000 frames with lying offload claims reach a TSO device: no trap, all accounted, all buffers back")
    func lyingOffloadClaims() throws {
        let h = Lab.Host(name: "B", offloads: [.checksum, .tcpSegmentation]) { $0.features.formUnion([.tso, .txChecksum]) }
        #expect(h.dev.features.contains(.tso))
        var g = SplitMix64(seed: 0x0FF1_0AD5)
        let nic = h.dev.nic
        let ring = h.dev.rxQueues[0].ring
        var offered = 0
        for round in 0..<300 {
            for _ in 0..<10 {
                var frame: [UInt8]
                switch g.next() % 4 {
                case 0: frame = (0..<Int(g.next() % 128)).map { _ in UInt8(truncatingIfNeeded: g.next()) }
                case 1: frame = [UInt8](repeating: UInt8(round & 0xFF), count: 65_536 + Int(g.next() % 8192))
                default: frame = Self.tcpFrame(&g, flows: 4, damage: g.next() % 2 == 0)
                }
                let offload = FrameOffload(segmentSize: UInt16(truncatingIfNeeded: g.next() % 3 == 0 ? 0 : g.next()),
                                           headerLength: UInt16(truncatingIfNeeded: g.next()),
                                           checksumStart: UInt16(truncatingIfNeeded: g.next()),
                                           checksumOffset: UInt16(truncatingIfNeeded: g.next()),
                                           needsChecksum: g.next() % 2 == 0, checksumValid: g.next() % 2 == 0)
                frame.withUnsafeBytes { nic.receive(frame: $0, offload: offload, now: h.now) }
                offered += 1
            }
            h.settle()
            h.port.frames.removeAll()
        }
        h.advance(by: 120 * Time.second)
        // Every frame went to the stack, or was refused by the NIC for its length or for room.
        #expect(Int(nic.rxFrames + nic.rxLengthErrors + ring.missed) == offered)
        #expect(nic.rxLengthErrors > 0)
        #expect(h.dev.stats.rxPackets == nic.rxFrames)
        #expect(h.stack.drops.total > 0)
        // Still alive: it answers a ping from a known neighbour.
        h.stack.addPermanentNeighbour(Lab.aIP, mac: Lab.aMAC, device: h.dev)
        #expect(h.ping(Lab.aIP, sequence: 1).isSuccess)
        #expect(h.shutdownIsClean())
    }

    @Test("GRO fed bursts of 16 flows with random sequence numbers, flags, options and damage: no trap, all buffers back")
    func groUnderHostileBursts() throws {
        let h = Lab.Host(name: "B")
        #expect(h.dev.features.contains(.gro))
        var g = SplitMix64(seed: 0x6120_BAD5)
        let rxq = h.dev.rxQueues[0]
        var injected = 0
        for _ in 0..<100 {
            let burst = (0..<48).map { _ in Self.tcpFrame(&g, flows: 16, damage: g.next() % 5 == 0) }
            h.injectBurst(burst)
            injected += burst.count
            h.port.frames.removeAll()
        }
        #expect(h.dev.stats.rxPackets == UInt64(injected))
        // Everything GRO held was passed up: merged segments plus packets flushed account for
        // at most what arrived.
        #expect(rxq.groMerged + rxq.groFlushed <= UInt64(injected))
        #expect(rxq.gro.count == 0)
        #expect(h.stack.tcpCounters.inSegs > 0)
        #expect(h.shutdownIsClean())
    }

    @Test("addFragments refuses ranges outside the source and never overflows the fragment table")
    func addFragmentsBounds() throws {
        let pool = BufferPool()
        guard var src = pool.allocate(size: 1000, headroom: 0), var dst = pool.allocate(size: 0, headroom: 64) else {
            Issue.record("pool empty"); return
        }
        _ = src.put(1000)
        var ok = dst.addFragments(of: src, offset: -1, length: 10)
        #expect(!ok)
        ok = dst.addFragments(of: src, offset: 990, length: 11)
        #expect(!ok)
        ok = dst.addFragments(of: src, offset: 0, length: -5)
        #expect(!ok)
        #expect(dst.fragmentCount == 0 && dst.length == 0)
        var added = 0
        for i in 0..<DataBlock.maxFragments where dst.addFragments(of: src, offset: i, length: 1) { added += 1 }
        #expect(added == DataBlock.maxFragments)
        ok = dst.addFragments(of: src, offset: 0, length: 1)
        #expect(!ok)
        #expect(dst.fragmentCount == DataBlock.maxFragments && dst.length == DataBlock.maxFragments)
        // A shared buffer takes no fragments.
        let clone = dst.clone()
        ok = dst.addFragments(of: src, offset: 0, length: 1)
        #expect(!ok)
        _ = consume clone
    }

    @Test("direct receive: frames written into posted buffers are completed in ring order; a bad length is an empty, counted buffer")
    func directReceiveIntoPostedBuffers() throws {
        let h = Lab.Host(name: "B", offloads: [.checksum, .tcpSegmentation]) { $0.features.formUnion([.tso, .txChecksum]) }
        h.stack.addPermanentNeighbour(Lab.aIP, mac: Lab.aMAC, device: h.dev)
        let nic = h.dev.nic
        let slots = UnsafeMutablePointer<UnsafeMutableRawBufferPointer>.allocate(capacity: 4)
        defer { slots.deallocate() }
        #expect(nic.postedReceiveBuffers(queue: 7, max: 4, into: slots) == 0)   // no such queue
        let k = nic.postedReceiveBuffers(queue: 0, max: 4, into: slots)
        #expect(k == 4 && slots[0].count >= 65_536)
        // Buffer 0: an echo request; buffer 1: a length the port reported as unusable; buffer 2:
        // longer than a buffer; buffer 3: another echo request.
        let ping = Lab.ethernet(Lab.ipv4(Lab.echoRequest(sequence: 1), protocol: IPProtocol.icmp))
        let ping2 = Lab.ethernet(Lab.ipv4(Lab.echoRequest(sequence: 2), protocol: IPProtocol.icmp))
        ping.withUnsafeBytes { slots[0].copyMemory(from: $0) }
        ping2.withUnsafeBytes { slots[3].copyMemory(from: $0) }
        var lengths = [ping.count, -1, slots[2].count + 1, ping2.count]
        var offloads = [FrameOffload](repeating: .none, count: 4)
        let frames = nic.rxFrames, errors = nic.rxLengthErrors
        lengths.withUnsafeMutableBufferPointer { l in
            offloads.withUnsafeMutableBufferPointer { o in
                nic.completeDirectReceive(queue: 0, lengths: l.baseAddress!, offloads: o.baseAddress!, count: 4, now: h.now)
            }
        }
        h.settle()
        #expect(nic.rxFrames - frames == 2 && nic.rxLengthErrors - errors == 2)
        let replies = h.port.take().compactMap { Lab.icmpMessage($0.bytes) }.filter { $0.type == 0 }
        #expect(replies.count == 2)
        #expect(h.stack.drops[.frameTooShort] == 2)
        #expect(h.shutdownIsClean())
    }
}
