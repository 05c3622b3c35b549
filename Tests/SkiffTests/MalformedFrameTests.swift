import Testing
@testable import Skiff
import SkiffWire

/// A seeded generator throws tens of thousands of broken frames of every kind at host B's NIC.
/// The stack must not trap, must account for every frame in its counters, must give every
/// buffer back, and must still answer a normal ping afterwards.
@Suite struct MalformedFrameTests {
    /// Frame kinds the generator makes, in equal shares.
    enum Kind: Int, CaseIterable {
        case truncatedEthernet, badVLAN, unknownEtherType, badARP, badIPVersion, badIHL, badTotalLength
        case badIPChecksum, badOptions, absurdFragment, badICMP, badUDP, randomBytes, bitFlip, valid, otherProtocol
    }

    struct Generator {
        var rng: SplitMix64
        let listener: UInt16 = 7
        /// The second half of a fragmented datagram, sent as the next valid frame.
        var pendingFragment: [UInt8]? = nil
        var datagramID: UInt16 = 0x8000

        mutating func int(_ n: Int) -> Int { n <= 1 ? 0 : Int(rng.next() % UInt64(n)) }
        mutating func chance(_ percent: Int) -> Bool { int(100) < percent }
        mutating func byte() -> UInt8 { UInt8(truncatingIfNeeded: rng.next()) }
        mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in byte() } }

        mutating func destinationMAC() -> MACAddress {
            switch int(10) {
            case 0: .broadcast
            case 1: MACAddress(rng.next() & 0xFFFF_FFFF_FFFF)
            default: Lab.bMAC
            }
        }

        mutating func sourceIP() -> IPv4Address {
            switch int(10) {
            case 0: IPv4Address(UInt32(truncatingIfNeeded: rng.next()))
            case 1: [IPv4Address.any, .broadcast, IPv4Address(10, 0, 0, 255), IPv4Address(224, 0, 0, 1), Lab.bIP][int(5)]
            default: IPv4Address(10, 0, 0, UInt8(1 + int(254)))
            }
        }

        mutating func destinationIP() -> IPv4Address {
            switch int(10) {
            case 0: IPv4Address(UInt32(truncatingIfNeeded: rng.next()))
            case 1: [IPv4Address.any, .broadcast, IPv4Address(10, 0, 0, 255), IPv4Address(224, 0, 0, 1)][int(4)]
            default: Lab.bIP
            }
        }

        mutating func ethernet(_ payload: [UInt8], type: UInt16 = EtherType.ipv4) -> [UInt8] {
            Lab.ethernet(payload, to: destinationMAC(), from: MACAddress(rng.next() & 0xFEFF_FFFF_FFFF), type: type)
        }

        /// A well-formed frame: echo request, UDP to the listener or a closed port, an ARP
        /// request for us, or a fragment.
        mutating func valid() -> [UInt8] {
            if let f = pendingFragment {
                pendingFragment = nil
                return f
            }
            let src = sourceIP(), dst = chance(80) ? Lab.bIP : destinationIP()
            switch int(5) {
            case 0:
                return ethernet(Lab.ipv4(Lab.echoRequest(sequence: UInt16(int(65536)), payload: int(200)), from: src, to: dst,
                                         protocol: IPProtocol.icmp, id: UInt16(int(65536))))
            case 1:
                let port = chance(50) ? listener : UInt16(1 + int(65535))
                return ethernet(Lab.ipv4(Lab.udp(bytes(int(300)), from: src, to: dst, destinationPort: port), from: src,
                                         to: dst, protocol: IPProtocol.udp, id: UInt16(int(65536))))
            case 2:
                let mac = MACAddress(rng.next() & 0xFEFF_FFFF_FFFF)
                return Lab.ethernet(Lab.arp(chance(80) ? .request : .reply, senderMAC: mac, senderIP: src,
                                            targetMAC: chance(50) ? .zero : Lab.bMAC, targetIP: chance(80) ? Lab.bIP : dst),
                                    to: chance(50) ? .broadcast : Lab.bMAC, from: mac, type: EtherType.arp)
            case 3 where chance(50):
                // A whole datagram in two fragments: this one, and the rest next time.
                let d = Lab.udp(bytes(100 + int(500)), from: Lab.aIP, destinationPort: listener)
                let cut = 8 * (1 + int((d.count - 1) / 8))
                datagramID &+= 1
                let f = Lab.fragments(d, pieces: [(0, cut), (cut, d.count - cut)], id: datagramID)
                pendingFragment = f[1]
                return f[0]
            case 3:
                // A piece of a datagram: some complete, most never do.
                let off = 8 * int(20)
                return ethernet(Lab.ipv4(bytes(8 * (1 + int(40))), from: IPv4Address(10, 0, 0, UInt8(1 + int(3))), to: Lab.bIP,
                                         protocol: IPProtocol.udp, id: UInt16(int(8)), more: chance(70), offset: off))
            default:
                let opts: [UInt8] = chance(50) ? [] : [1, 1, 1, 0]   // NOP NOP NOP EOL
                return ethernet(Lab.ipv4(Lab.udp(bytes(int(64)), from: src, to: dst, destinationPort: listener), from: src,
                                         to: dst, protocol: IPProtocol.udp, options: opts))
            }
        }

        /// Rewrites the IP header checksum of a frame after a field was broken on purpose.
        static func reseal(_ f: inout [UInt8]) {
            guard f.count >= 34 else { return }
            let hl = min(Int(f[14] & 0x0F) * 4, f.count - 14)
            guard hl >= 20 else { return }
            f[24] = 0; f[25] = 0
            let c = Lab.checksum(f[14..<(14 + hl)])
            f[24] = UInt8(c >> 8); f[25] = UInt8(c & 0xFF)
        }

        mutating func frame(_ kind: Kind) -> [UInt8] {
            switch kind {
            case .truncatedEthernet:
                return bytes(1 + int(13))
            case .badVLAN:
                var f = [UInt8](repeating: 0, count: 12) + [0x81, 0x00]
                Lab.bMAC.write(to: &f)
                if chance(50) { return f + bytes(int(4)) }   // the tag is cut off
                return f + bytes(2) + [0x08, 0x00] + Array(valid().dropFirst(14))
            case .unknownEtherType:
                var type = UInt16(truncatingIfNeeded: rng.next())
                if type == EtherType.ipv4 || type == EtherType.arp || type == EtherType.vlan { type = 0x86DD }
                return ethernet(bytes(int(100)), type: type)
            case .badARP:
                if chance(40) { return ethernet(bytes(int(40)), type: EtherType.arp) }
                var a = Lab.arp(.request, senderMAC: Lab.aMAC, senderIP: sourceIP(), targetIP: Lab.bIP)
                a[int(8)] = byte()   // hardware/protocol type, lengths or operation
                if chance(30) { a = Array(a.prefix(int(28))) }
                return ethernet(a, type: EtherType.arp)
            case .badIPVersion:
                var f = valid()
                guard Lab.etherType(f) == EtherType.ipv4 else { return f }
                f[14] = (f[14] & 0x0F) | UInt8(int(16)) << 4
                if f[14] >> 4 == 4 { f[14] = 0x65 }
                Self.reseal(&f)
                return f
            case .badIHL:
                var f = valid()
                guard Lab.etherType(f) == EtherType.ipv4 else { return f }
                f[14] = 0x40 | UInt8(chance(50) ? int(5) : 5 + int(11))
                Self.reseal(&f)
                return f
            case .badTotalLength:
                var f = valid()
                guard Lab.etherType(f) == EtherType.ipv4 else { return f }
                let total = chance(50) ? int(20) : f.count - 14 + 1 + int(2000)
                f[16] = UInt8(truncatingIfNeeded: total >> 8); f[17] = UInt8(truncatingIfNeeded: total)
                Self.reseal(&f)
                return f
            case .badIPChecksum:
                var f = valid()
                guard Lab.etherType(f) == EtherType.ipv4 else { return f }
                f[24] ^= 1 << UInt8(int(8))
                return f
            case .badOptions:
                let n = 4 * (1 + int(10))
                var opts = bytes(n)
                if chance(50) { opts[0] = UInt8([7, 68, 131, 137, 148][int(5)]); opts[1] = UInt8(int(3) == 0 ? 1 : n + 1 + int(8)) }
                return ethernet(Lab.ipv4(Lab.udp(bytes(int(32)), destinationPort: listener), to: destinationIP(),
                                         protocol: IPProtocol.udp, options: opts))
            case .absurdFragment:
                let offset = 8 * int(8192)
                return ethernet(Lab.ipv4(bytes(int(1480)), from: sourceIP(), to: Lab.bIP,
                                         protocol: [IPProtocol.udp, IPProtocol.icmp, IPProtocol.tcp][int(3)],
                                         id: UInt16(int(65536)), more: chance(50), offset: offset))
            case .badICMP:
                var m: [UInt8]
                switch int(4) {
                case 0: m = bytes(int(8))                                             // shorter than a header
                case 1: m = Lab.echoRequest(sequence: 1, payload: int(64)); m[2] ^= 0x55  // bad checksum
                case 2: m = Lab.icmp(type: byte(), code: byte(), rest: UInt32(truncatingIfNeeded: rng.next()), bytes(int(64)))
                default: m = Lab.icmp(type: [3, 11, 0, 4, 5, 12][int(6)], code: byte(), bytes(int(60)))
                }
                return ethernet(Lab.ipv4(m, from: sourceIP(), to: destinationIP(), protocol: IPProtocol.icmp))
            case .badUDP:
                var d = Lab.udp(bytes(int(100)), destinationPort: chance(50) ? listener : UInt16(1 + int(65535)))
                switch int(4) {
                case 0: d = Array(d.prefix(int(8)))                                     // no full header
                case 1: let len = chance(50) ? int(8) : d.count + 1 + int(100)          // length field lies
                        d[4] = UInt8(truncatingIfNeeded: len >> 8); d[5] = UInt8(truncatingIfNeeded: len)
                case 2: d[6] ^= 0xFF                                                     // checksum
                default: if d.count > 8 { d[8 + int(d.count - 8)] ^= 1 << UInt8(int(8)) } else { d[7] ^= 1 }
                }
                return ethernet(Lab.ipv4(d, protocol: IPProtocol.udp))
            case .randomBytes:
                var f = bytes(14 + int(1500))
                if chance(80) { let m = destinationMAC(); m.write(to: &f) }
                if chance(50) { f[12] = 0x08; f[13] = [0x00, 0x06][int(2)] }
                return f
            case .bitFlip:
                var f = valid()
                for _ in 0..<(1 + int(4)) {
                    let i = int(f.count)
                    f[i] ^= 1 << UInt8(int(8))
                }
                return f
            case .valid:
                return valid()
            case .otherProtocol:
                return ethernet(Lab.ipv4(bytes(int(80)), from: sourceIP(), to: destinationIP(),
                                         protocol: [IPProtocol.tcp, 0, 2, 41, 47, 50, 132, 255][int(8)]))
            }
        }
    }

    @Test func twentyFourThousandBrokenFramesAreSurvivedAndAccountedFor() throws {
        let h = Lab.Host(name: "B")
        h.stack.udpListeners.insert(7)
        var g = Generator(rng: SplitMix64(seed: 0x5EED_F00D))
        let perKind = 1500
        var kinds: [Kind] = Kind.allCases.flatMap { Array(repeating: $0, count: perKind) }
        // Shuffle with the same generator (Fisher-Yates), so kinds interleave.
        for i in stride(from: kinds.count - 1, to: 0, by: -1) { kinds.swapAt(i, g.int(i + 1)) }
        #expect(kinds.count == 24_000)
        let batch = 100
        #expect(batch < h.dev.rxQueues[0].ring.size - 1)
        var injected = 0
        var start = 0
        while start < kinds.count {
            let frames = kinds[start..<min(start + batch, kinds.count)].map { g.frame($0) }
            h.injectBurst(frames)
            injected += frames.count
            start += batch
            h.port.frames.removeAll()
            h.advance(by: 10 * Time.millisecond)
        }
        // Let every timer run out: ARP gives up, reassembly expires.
        h.advance(by: 120 * Time.second)
        h.port.frames.removeAll()

        let st = h.stack
        let c = st.counters, d = st.drops
        let ring = h.dev.rxQueues[0].ring
        // Every frame reached the stack.
        #expect(ring.missed == 0)
        #expect(h.dev.stats.rxPackets == UInt64(injected))
        // Link layer: each received frame was dropped there, or went to IPv4 or ARP.
        let linkDrops = d[.frameTooShort] + d[.vlanNotConfigured] + d[.unknownEtherType] + d[.notOurMAC]
        let arpFrames = Int(h.dev.stats.rxPackets) - Int(linkDrops) - Int(c.ipInReceives)
        #expect(arpFrames >= Int(c.arpRequestsIn + c.arpRepliesIn))
        #expect(arpFrames <= Int(c.arpRequestsIn + c.arpRepliesIn + d[.arpMalformed]))
        // IPv4: each datagram was refused, not for us, or handed up (fragments to reassembly).
        #expect(c.ipInReceives == c.ipInHdrErrors + c.ipInAddrErrors + d[.ipOtherHost] + c.ipReasmReqds
                + c.ipInDelivers - c.ipReasmOKs)
        #expect(c.ipInHdrErrors == d[.ipHeaderInvalid] + d[.ipChecksum] + d[.ipTruncated])
        // Transport: everything handed up reached ICMP, UDP, TCP or "protocol unreachable".
        let udpSeen = c.udpInDatagrams + c.udpNoPorts + c.udpInErrors
        let handed = c.icmpInMsgs + udpSeen + st.tcpCounters.inSegs + c.ipInUnknownProtos
        if st.transportHandlers.allSatisfy({ $0 == nil }) {
            #expect(c.ipInDelivers == handed)
        } else {
            #expect(c.ipInDelivers >= handed)
        }
        #expect(st.tcpCounters.inSegs > 0)
        #expect(c.udpInDatagrams == st.udpDelivered)
        #expect(c.icmpInMsgs >= c.icmpInErrors + c.icmpInEchos + c.icmpInEchoReps + c.icmpInDestUnreachs + c.icmpInTimeExcds)
        // Every kind of damage was seen and dropped for its own reason.
        for r: DropReason in [.frameTooShort, .vlanNotConfigured, .unknownEtherType, .notOurMAC, .arpMalformed,
                              .ipHeaderInvalid, .ipChecksum, .ipTruncated, .reassemblyInvalid, .icmpChecksum,
                              .icmpMalformed, .udpChecksum, .udpMalformed, .udpNoSocket, .protocolUnreachable] {
            #expect(d[r] > 0, "no drop for \(r)")
        }
        #expect(d.total > 10_000)
        // And the valid ones were served.
        #expect(st.udpDelivered > 100)
        #expect(c.icmpOutEchoReps > 100)
        #expect(c.ipReasmOKs > 0)
        #expect(c.arpRepliesOut > 100)
        // Nothing is held: reassembly memory and neighbour queues are empty.
        #expect(st.reassembly.memory == 0)
        #expect(st.neighbours.entries.allSatisfy { $0.queue.count == 0 })
        #expect(st.pool.statistics.inUse == ring.size - 1)
        #expect(h.dev.nic.iommu.faults == 0)

        // A normal ping still works: A asks for B, then pings it.
        h.inject(Lab.ethernet(Lab.arp(.request, senderMAC: Lab.aMAC, senderIP: Lab.aIP, targetIP: Lab.bIP),
                              to: .broadcast, from: Lab.aMAC, type: EtherType.arp))
        let arp = h.port.take()
        #expect(arp.count == 1)
        #expect(arp.first.flatMap { Lab.arpPacket($0.bytes) } ==
                ARPPacket(operation: .reply, senderMAC: Lab.bMAC, senderIP: Lab.bIP, targetMAC: Lab.aMAC, targetIP: Lab.aIP))
        h.inject(Lab.ethernet(Lab.ipv4(Lab.echoRequest(sequence: 4242), protocol: IPProtocol.icmp, id: 1)))
        let reply = h.port.take()
        #expect(reply.count == 1)
        let f = try #require(reply.first?.bytes)
        #expect(Lab.destinationMAC(f) == Lab.aMAC)
        #expect(Lab.icmpMessage(f)?.type == 0 && Lab.echoSequence(f) == 4242)
        #expect(h.shutdownIsClean())
    }

    @Test func eachKindAloneIsHandledWithoutLeaks() {
        for kind in Kind.allCases {
            let h = Lab.Host(name: "B")
            h.stack.udpListeners.insert(7)
            var g = Generator(rng: SplitMix64(seed: UInt64(kind.rawValue) &+ 99))
            for _ in 0..<10 {
                h.injectBurst((0..<50).map { _ in g.frame(kind) })
                h.advance(by: 100 * Time.millisecond)
            }
            h.advance(by: 60 * Time.second)
            #expect(h.dev.stats.rxPackets == 500, "\(kind)")
            #expect(h.stack.reassembly.memory == 0, "\(kind)")
            #expect(h.shutdownIsClean(), "\(kind)")
        }
    }
}
