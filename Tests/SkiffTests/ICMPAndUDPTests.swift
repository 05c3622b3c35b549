import Testing
@testable import Skiff
import SkiffSim
import SkiffWire

/// UDP delivery and ICMP errors: port unreachable, rate limiting, checksums, and the rule
/// that ICMP errors are never sent about ICMP errors.
@Suite struct ICMPAndUDPTests {
    typealias P = Scenarios.SwitchedPair
    static let ms = Time.millisecond

    static func resolved(lineRate: UInt64 = 10_000_000_000) -> Scenarios.SwitchedPair {
        let s = Scenarios.switchedPair(lineRate: lineRate)
        _ = s.a.ping(P.bAddress, identifier: 1, sequence: 1, now: s.world.now)
        s.world.run(until: s.world.now + 10 * ms)
        return s
    }

    static func send(_ s: Scenarios.SwitchedPair, port: UInt16, count: Int = 1, payload: Int = 32) -> [SendError?] {
        var cache = RouteCache()
        return s.a.processContext(now: s.world.now) {
            (0..<count).map { _ in
                s.a.udpSend(to: P.bAddress, sourcePort: 4000, destinationPort: port, payloadLength: payload,
                            route: &cache) { b in for i in 0..<b.count { b[i] = UInt8(i & 0xFF) } }
            }
        }
    }

    @Test func closedPortAnswersPortUnreachableAndAListenerReceives() {
        let s = Self.resolved()
        s.b.udpListeners.insert(7777)
        #expect(Self.send(s, port: 9) == [nil])
        #expect(Self.send(s, port: 7777, payload: 100) == [nil])
        s.world.run(until: s.world.now + 10 * Self.ms)
        #expect(s.b.counters.udpNoPorts == 1 && s.b.drops[.udpNoSocket] == 1)
        #expect(s.b.counters.icmpOutDestUnreachs == 1)
        #expect(s.a.counters.icmpInDestUnreachs == 1)
        #expect(s.b.udpDelivered == 1 && s.b.udpDeliveredBytes == 100)
        #expect(s.b.counters.udpInDatagrams == 1)
        #expect(s.a.counters.udpOutDatagrams == 2)
        #expect(s.a.drops.total == 0)
    }

    @Test func portUnreachableQuotesTheOriginalDatagram() throws {
        let h = Lab.Host(name: "B")
        h.stack.addPermanentNeighbour(Lab.aIP, mac: Lab.aMAC, device: h.dev)
        let ip = Lab.ipv4(Lab.udp(Lab.pattern(100), destinationPort: 9), protocol: IPProtocol.udp, id: 0x5151)
        h.inject(Lab.ethernet(ip))
        let out = h.port.take()
        #expect(out.count == 1)
        let m = try #require(out.first.flatMap { Lab.icmpMessage($0.bytes) })
        #expect(m.type == 3 && m.code == 3 && m.rest == 0)
        #expect(m.body == ip)
        // A long datagram is quoted up to 576 bytes of ICMP datagram in all.
        h.advance(by: 2 * Time.second)
        h.inject(Lab.ethernet(Lab.ipv4(Lab.udp(Lab.pattern(1400), destinationPort: 9), protocol: IPProtocol.udp)))
        let long = try #require(h.port.take().first.flatMap { Lab.icmpMessage($0.bytes) })
        #expect(long.body.count == 576 - 20 - 8)
        #expect(h.shutdownIsClean())
    }

    @Test func errorsToOneDestinationAreRateLimited() {
        // No serialisation delay on the wire: the twenty datagrams arrive at the same instant.
        let s = Self.resolved(lineRate: 0)
        // Twenty datagrams to a closed port, all at the same instant.
        #expect(Self.send(s, port: 9, count: 20).allSatisfy { $0 == nil })
        let t0 = s.world.now
        s.world.run(until: t0)
        #expect(s.b.counters.udpNoPorts == 20)
        #expect(s.b.counters.icmpOutDestUnreachs == 6)
        #expect(s.b.counters.icmpOutRateLimited == 14)
        s.world.run(until: t0 + 10 * Self.ms)
        #expect(s.a.counters.icmpInDestUnreachs == 6)
        // Half a second later the bucket holds half a token: still limited.
        s.world.run(until: t0 + 500 * Self.ms)
        _ = Self.send(s, port: 9)
        s.world.run(until: s.world.now + Self.ms)
        #expect(s.b.counters.icmpOutRateLimited == 15)
        // One second after the burst one more error may go.
        s.world.run(until: t0 + 1000 * Self.ms)
        _ = Self.send(s, port: 9)
        s.world.run(until: s.world.now + 10 * Self.ms)
        #expect(s.b.counters.icmpOutDestUnreachs == 7)
        #expect(s.a.counters.icmpInDestUnreachs == 7)
        #expect(s.b.counters.icmpOutRateLimited == 15)
    }

    @Test func badUDPChecksumIsDroppedAndZeroChecksumAccepted() {
        let h = Lab.Host(name: "B")
        h.stack.addPermanentNeighbour(Lab.aIP, mac: Lab.aMAC, device: h.dev)
        h.stack.udpListeners.insert(53)
        var good = Lab.udp(Lab.pattern(40), destinationPort: 53)
        good[6] ^= 0x01
        h.inject(Lab.ethernet(Lab.ipv4(good, protocol: IPProtocol.udp)))
        #expect(h.stack.drops[.udpChecksum] == 1)
        #expect(h.stack.counters.udpInErrors == 1)
        #expect(h.stack.udpDelivered == 0)
        // A corrupted payload byte is caught the same way, and a closed port does not matter:
        // the checksum comes first and no ICMP error is sent for a corrupt datagram.
        var corrupt = Lab.udp(Lab.pattern(40), destinationPort: 9)
        corrupt[20] ^= 0x80
        h.inject(Lab.ethernet(Lab.ipv4(corrupt, protocol: IPProtocol.udp)))
        #expect(h.stack.drops[.udpChecksum] == 2)
        #expect(h.port.frames.isEmpty)
        // Checksum 0 means "none computed" (RFC 768).
        h.inject(Lab.ethernet(Lab.ipv4(Lab.udp(Lab.pattern(40), destinationPort: 53, checksum: 0), protocol: IPProtocol.udp)))
        #expect(h.stack.udpDelivered == 1 && h.stack.udpDeliveredBytes == 40)
        // A length field longer than the datagram is malformed.
        var long = Lab.udp(Lab.pattern(40), destinationPort: 53)
        long[5] = 200
        h.inject(Lab.ethernet(Lab.ipv4(long, protocol: IPProtocol.udp)))
        #expect(h.stack.drops[.udpMalformed] == 1)
        #expect(h.stack.counters.udpInErrors == 3)
        #expect(h.shutdownIsClean())
    }

    @Test func noICMPErrorAboutAnICMPError() {
        // B forwards, so a TTL-1 packet passing through would earn a time exceeded.
        let h = Lab.Host(name: "B")
        h.stack.ipConfig.forwarding = true
        h.stack.addPermanentNeighbour(Lab.aIP, mac: Lab.aMAC, device: h.dev)
        let elsewhere = IPv4Address(10, 0, 0, 77)
        // An echo request with TTL 1: answered with time exceeded.
        h.inject(Lab.ethernet(Lab.ipv4(Lab.echoRequest(sequence: 1), to: elsewhere, protocol: IPProtocol.icmp, ttl: 1)))
        let first = h.port.take()
        #expect(first.count == 1)
        #expect(first.first.flatMap { Lab.icmpMessage($0.bytes) }?.type == 11)
        // ICMP errors (unreachable, time exceeded, source quench, redirect, parameter problem)
        // with TTL 1: dropped without a word.
        let inner = Lab.ipv4(Lab.udp([], destinationPort: 9), from: elsewhere, to: Lab.aIP, protocol: IPProtocol.udp)
        for type: UInt8 in [3, 11, 4, 5, 12] {
            h.advance(by: 2 * Time.second)
            let err = Lab.icmp(type: type, code: 0, Array(inner[0..<28]))
            h.inject(Lab.ethernet(Lab.ipv4(err, to: elsewhere, protocol: IPProtocol.icmp, ttl: 1)))
        }
        #expect(h.stack.drops[.ttlExceeded] == 6)
        #expect(h.stack.counters.icmpOutTimeExcds == 1)
        #expect(h.stack.counters.icmpOutRateLimited == 0)
        #expect(h.port.frames.isEmpty)
        // Nor for a datagram sent to a broadcast address, nor from one.
        h.inject(Lab.ethernet(Lab.ipv4(Lab.udp([1, 2], to: IPv4Address(10, 0, 0, 255), destinationPort: 9),
                                       to: IPv4Address(10, 0, 0, 255), protocol: IPProtocol.udp), to: .broadcast))
        #expect(h.stack.counters.udpNoPorts == 1)
        #expect(h.port.frames.isEmpty)
        // An unknown protocol does get protocol unreachable.
        h.inject(Lab.ethernet(Lab.ipv4([0, 0, 0, 0], protocol: 99)))
        let proto = h.port.take()
        #expect(proto.first.flatMap { Lab.icmpMessage($0.bytes) }.map { [$0.type, $0.code] } == [3, 2])
        #expect(h.stack.counters.ipInUnknownProtos == 1)
        #expect(h.shutdownIsClean())
    }

    @Test func echoRequestsAreAnsweredFromTheAddressAsked() throws {
        let h = Lab.Host(name: "B")
        h.stack.addPermanentNeighbour(Lab.aIP, mac: Lab.aMAC, device: h.dev)
        h.inject(Lab.ethernet(Lab.ipv4(Lab.echoRequest(identifier: 0x1111, sequence: 42, payload: 300), protocol: IPProtocol.icmp)))
        let out = h.port.take()
        #expect(out.count == 1)
        let f = try #require(out.first?.bytes)
        let ip = try #require(Lab.ipPacket(f))
        #expect(ip.header.source == Lab.bIP && ip.header.destination == Lab.aIP)
        let m = try #require(Lab.icmpMessage(f))
        #expect(m.type == 0 && m.code == 0 && m.rest == 0x1111_002A)
        #expect(m.body == Lab.pattern(300))
        #expect(h.stack.counters.icmpInEchos == 1 && h.stack.counters.icmpOutEchoReps == 1)
        // A corrupted request is dropped.
        var bad = Lab.echoRequest(sequence: 43)
        bad[10] ^= 0xFF
        h.inject(Lab.ethernet(Lab.ipv4(bad, protocol: IPProtocol.icmp)))
        #expect(h.stack.drops[.icmpChecksum] == 1 && h.stack.counters.icmpInErrors == 1)
        #expect(h.port.frames.isEmpty)
        #expect(h.shutdownIsClean())
    }

    @Test func echoRequestsFromBroadcastSourcesAreNotAnswered() {
        let h = Lab.Host(name: "B")
        // Claimed sources no reply may go to: the subnet's broadcast, all-ones, multicast, zero.
        let sources = [IPv4Address(10, 0, 0, 255), .broadcast, IPv4Address(224, 0, 0, 1), .any]
        for (i, src) in sources.enumerated() {
            h.inject(Lab.ethernet(Lab.ipv4(Lab.echoRequest(sequence: UInt16(i)), from: src, protocol: IPProtocol.icmp)))
        }
        #expect(h.stack.counters.icmpInEchos == 4)
        #expect(h.stack.counters.icmpOutEchoReps == 0)
        #expect(h.port.frames.isEmpty)
        // A unicast neighbour on the subnet is answered (after ARP).
        h.inject(Lab.ethernet(Lab.ipv4(Lab.echoRequest(sequence: 9), protocol: IPProtocol.icmp)))
        #expect(h.port.take().compactMap { Lab.arpPacket($0.bytes)?.targetIP } == [Lab.aIP])
        h.inject(Lab.arpReplyFrame(from: Lab.aIP, mac: Lab.aMAC, to: Lab.bIP, hostMAC: Lab.bMAC))
        #expect(h.port.take().compactMap { Lab.echoSequence($0.bytes) } == [9])
        #expect(h.shutdownIsClean())
    }
}
