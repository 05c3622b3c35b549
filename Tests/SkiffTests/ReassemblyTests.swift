import Testing
@testable import Skiff
import SkiffWire

/// IP reassembly driven by hand-built fragments injected into host B's NIC (10.0.0.2). B knows
/// A (10.0.0.1) permanently, so anything B answers shows up on the capture port at once.
@Suite struct ReassemblyTests {
    static let s = Time.second
    static let port: UInt16 = 5000

    static func hostB() -> Lab.Host {
        let h = Lab.Host(name: "B")
        h.stack.addPermanentNeighbour(Lab.aIP, mac: Lab.aMAC, device: h.dev)
        h.stack.udpListeners.insert(port)
        return h
    }

    /// A UDP datagram of `payload` bytes to B's listener: 8 + payload bytes of IP payload.
    static func datagram(_ payload: Int, seed: Int = 0) -> [UInt8] {
        Lab.udp(Lab.pattern(payload, seed: seed), destinationPort: port)
    }

    static func memory(_ h: Lab.Host) -> Int { h.stack.reassembly.memory }

    @Test func outOfOrderFragmentsComplete() {
        let h = Self.hostB()
        let d = Self.datagram(2992)   // 3000 bytes of IP payload
        let f = Lab.fragments(d, pieces: [(0, 1480), (1480, 1480), (2960, 40)], id: 1)
        h.inject(f[2])
        h.inject(f[0])
        #expect(h.stack.udpDelivered == 0)
        #expect(Self.memory(h) == Reassembly.queueOverhead + 1520)
        h.inject(f[1])
        #expect(h.stack.udpDelivered == 1)
        #expect(h.stack.udpDeliveredBytes == 2992)
        #expect(h.stack.counters.ipReasmReqds == 3)
        #expect(h.stack.counters.ipReasmOKs == 1)
        #expect(h.stack.counters.ipReasmFails == 0)
        #expect(h.stack.pool.ledger.bytes(.reassembly) == 3000)
        #expect(Self.memory(h) == 0)
        // The queue's timer was cancelled: nothing happens 30 s later.
        h.advance(by: 31 * Self.s)
        #expect(h.stack.counters.ipReasmTimeout == 0)
        #expect(h.port.frames.isEmpty)
        #expect(h.stack.drops.total == 0)
        #expect(h.shutdownIsClean())
    }

    @Test func overlappingFragmentKillsTheDatagram() {
        let h = Self.hostB()
        let d = Self.datagram(2992)
        h.inject(Lab.fragments(d, pieces: [(0, 1480)], id: 2)[0])
        // Starts 8 bytes inside the first fragment.
        h.inject(Lab.fragments(d, pieces: [(1472, 1480)], id: 2)[0])
        #expect(h.stack.counters.ipReasmFails == 1)
        #expect(h.stack.drops[.reassemblyOverlap] == 1)
        #expect(Self.memory(h) == 0)
        // The rest arrives: it starts a new queue that can never complete (the first fragment is gone).
        for f in Lab.fragments(d, pieces: [(1480, 1480), (2960, 40)], id: 2) { h.inject(f) }
        #expect(h.stack.udpDelivered == 0)
        #expect(h.stack.counters.ipReasmOKs == 0)
        h.advance(by: 30 * Self.s)
        #expect(h.stack.counters.ipReasmTimeout == 1)
        // No first fragment, so no ICMP time exceeded.
        #expect(h.port.frames.isEmpty)
        #expect(Self.memory(h) == 0)
        #expect(h.shutdownIsClean())
    }

    @Test func exactDuplicateIsDroppedAloneAndTheDatagramCompletes() {
        let h = Self.hostB()
        let d = Self.datagram(1992)   // 2000 bytes
        let f = Lab.fragments(d, pieces: [(0, 1480), (1480, 520)], id: 3)
        h.inject(f[0])
        h.inject(f[0])
        #expect(h.stack.drops[.reassemblyOverlap] == 1)
        #expect(h.stack.counters.ipReasmFails == 0)
        #expect(Self.memory(h) == Reassembly.queueOverhead + 1480)
        h.inject(f[1])
        #expect(h.stack.udpDelivered == 1 && h.stack.udpDeliveredBytes == 1992)
        #expect(h.stack.counters.ipReasmOKs == 1)
        #expect(h.stack.pool.ledger.bytes(.reassembly) == 2000)
        #expect(h.shutdownIsClean())
    }

    @Test func timeoutWithTheFirstFragmentSendsTimeExceeded() throws {
        let h = Self.hostB()
        let d = Self.datagram(2992)
        let first = Lab.fragments(d, pieces: [(0, 1480)], id: 0x4242)[0]
        h.inject(first)
        h.advance(to: 30 * Self.s - 1)
        #expect(h.stack.counters.ipReasmTimeout == 0)
        h.advance(to: 30 * Self.s)
        #expect(h.stack.counters.ipReasmTimeout == 1)
        #expect(h.stack.counters.ipReasmFails == 1)
        #expect(h.stack.drops[.reassemblyTimeout] == 1)
        #expect(h.stack.counters.icmpOutTimeExcds == 1)
        let out = h.port.take()
        #expect(out.count == 1)
        let f = try #require(out.first?.bytes)
        #expect(Lab.destinationMAC(f) == Lab.aMAC)
        let ip = try #require(Lab.ipPacket(f))
        #expect(ip.header.source == Lab.bIP && ip.header.destination == Lab.aIP)
        let icmp = try #require(Lab.icmpMessage(f))
        #expect(icmp.type == 11 && icmp.code == 1 && icmp.rest == 0)
        // The quote: the first fragment's IP header, then the first 8 bytes of its payload.
        #expect(icmp.body.count == 28)
        #expect(Array(icmp.body[0..<20]) == Array(first[14..<34]))
        #expect(Array(icmp.body[20..<28]) == Array(d[0..<8]))
        #expect(Self.memory(h) == 0)
        #expect(h.shutdownIsClean())
    }

    @Test func memoryLimitRefusesNewDatagrams() {
        let h = Self.hostB()
        h.stack.ipConfig.reassemblyMemoryLimit = 3000
        let d1 = Self.datagram(792, seed: 1)     // 800 bytes: two 400-byte fragments
        let d2 = Self.datagram(2992, seed: 2)
        let f1 = Lab.fragments(d1, pieces: [(0, 400), (400, 400)], id: 10)
        let f2 = Lab.fragments(d2, pieces: [(0, 1480), (1480, 1480), (2960, 40)], id: 11)
        h.inject(f1[0])
        #expect(Self.memory(h) == Reassembly.queueOverhead + 400)
        // A second queue of 1024 + 1480 would pass 3000.
        h.inject(f2[0])
        #expect(h.stack.drops[.reassemblyMemory] == 1)
        #expect(h.stack.counters.ipReasmFails == 1)
        #expect(Self.memory(h) == Reassembly.queueOverhead + 400)
        // The first datagram still fits and completes.
        h.inject(f1[1])
        #expect(h.stack.udpDelivered == 1 && h.stack.udpDeliveredBytes == 792)
        #expect(Self.memory(h) == 0)
        // The refused datagram's other fragments cannot make it whole.
        h.inject(f2[1]); h.inject(f2[2])
        #expect(h.stack.udpDelivered == 1)
        h.advance(by: 30 * Self.s)
        #expect(h.stack.counters.ipReasmTimeout == 1)
        #expect(h.port.frames.isEmpty)
        #expect(h.shutdownIsClean())
    }

    @Test func middleFragmentNotAMultipleOfEightIsRejected() {
        let h = Self.hostB()
        let d = Self.datagram(2992)
        h.inject(Lab.fragments(d, pieces: [(0, 1001)], id: 20)[0])
        #expect(h.stack.drops[.reassemblyInvalid] == 1)
        #expect(h.stack.counters.ipReasmFails == 1)
        #expect(Self.memory(h) == 0)
        // An empty non-final fragment is no better.
        h.inject(Lab.ethernet(Lab.ipv4([], protocol: IPProtocol.udp, id: 21, more: true, offset: 8)))
        #expect(h.stack.drops[.reassemblyInvalid] == 2)
        #expect(h.shutdownIsClean())
    }

    @Test func fragmentsBeyond65535AreRejected() {
        let h = Self.hostB()
        // Offset 65528 + 16 bytes + a 20-byte header.
        h.inject(Lab.ethernet(Lab.ipv4(Lab.pattern(16), protocol: IPProtocol.udp, id: 30, offset: 65528)))
        #expect(h.stack.drops[.reassemblyInvalid] == 1)
        #expect(h.stack.counters.ipReasmFails == 1)
        #expect(Self.memory(h) == 0)
        #expect(h.shutdownIsClean())
    }

    /// Each fragment fits in 65535 with its own 20-byte header, but the first carries 40 bytes
    /// of options: the reassembled datagram (60 + 65515) would not fit in an IPv4 total length.
    /// Linux: `ip_frag_reasm()` → "Oversized IP packet", IPSTATS_MIB_REASMFAILS.
    @Test func reassembledDatagramLargerThan65535IsRejected() {
        let h = Self.hostB()
        let message = Lab.pattern(65515)
        var pieces: [(Int, Int)] = [(0, 1440)]
        var off = 1440
        while off < message.count {
            let n = min(1480, message.count - off)
            pieces.append((off, n))
            off += n
        }
        #expect(pieces.count == 45 && pieces.last! == (65080, 435))
        let nops = [UInt8](repeating: 1, count: 40)
        let frames = Lab.fragments(message, pieces: pieces, id: 40, firstOptions: nops)
        #expect(frames.allSatisfy { $0.count <= 1514 })
        for f in frames { h.inject(f) }
        #expect(h.stack.counters.ipReasmReqds == 45)
        #expect(h.stack.counters.ipReasmOKs == 0)
        #expect(h.stack.counters.ipReasmFails == 1)
        #expect(h.stack.drops[.reassemblyInvalid] == 1)
        #expect(h.stack.counters.ipInDelivers == 0)
        #expect(Self.memory(h) == 0)
        #expect(h.port.frames.isEmpty)
        #expect(h.shutdownIsClean())
    }

    @Test func largestLegalDatagramReassembles() {
        let h = Self.hostB()
        // 65535 - 20 = 65515 bytes of UDP: the biggest datagram IPv4 can carry.
        let d = Self.datagram(65515 - 8)
        var pieces: [(Int, Int)] = []
        var off = 0
        while off < d.count {
            let n = min(1480, d.count - off)
            pieces.append((off, n))
            off += n
        }
        // Delivered in reverse order.
        for f in Lab.fragments(d, pieces: pieces, id: 50).reversed() { h.inject(f) }
        #expect(h.stack.counters.ipReasmOKs == 1)
        #expect(h.stack.udpDelivered == 1 && h.stack.udpDeliveredBytes == 65507)
        #expect(h.stack.drops.total == 0)
        #expect(h.shutdownIsClean())
    }
}
