import Foundation
import Testing
@testable import Skiff
import SkiffSim
import SkiffWire

/// Routing: longest-prefix match, metrics, the default gateway, the route cache and its
/// invalidation, and forwarding through a router (TTL, checksum, ICMP time exceeded).
@Suite struct RoutingTests {
    static let ms = Time.millisecond, s = Time.second

    @Test func longestPrefixWinsThenLowestMetric() throws {
        var t = RouteTable()
        let gw = IPv4Address(10, 0, 0, 254)
        // Added out of order on purpose.
        t.add(Route(destination: IPv4Address(10, 1, 2, 0), prefixLength: 24, device: 2))
        t.addDefault(gateway: gw, device: 0, metric: 10)
        t.add(Route(destination: IPv4Address(10, 1, 2, 3), prefixLength: 32, device: 3))
        t.add(Route(destination: IPv4Address(10, 0, 0, 0), prefixLength: 8, device: 0))
        t.add(Route(destination: IPv4Address(10, 1, 0, 0), prefixLength: 16, device: 1, metric: 20))
        t.add(Route(destination: IPv4Address(10, 1, 0, 0), prefixLength: 16, device: 4, metric: 5))
        t.addDefault(gateway: IPv4Address(10, 0, 0, 253), device: 5, metric: 1)
        #expect(t.lookup(IPv4Address(10, 1, 2, 3))?.device == 3)
        #expect(t.lookup(IPv4Address(10, 1, 2, 4))?.device == 2)
        // Two /16 routes: metric 5 beats metric 20.
        #expect(t.lookup(IPv4Address(10, 1, 3, 1))?.device == 4)
        #expect(t.lookup(IPv4Address(10, 2, 0, 1))?.device == 0)
        // Two defaults: metric 1 beats metric 10.
        let found = t.lookup(IPv4Address(192, 0, 2, 1))
        let d = try #require(found)
        #expect(d.device == 5 && d.gateway == IPv4Address(10, 0, 0, 253) && d.prefixLength == 0)
        #expect(t.lookups == 5)
        // Removing the winner exposes the next one.
        let g = t.generation
        #expect(t.remove(destination: IPv4Address(10, 1, 0, 0), prefixLength: 16, device: 4) == 1)
        #expect(t.generation > g)
        #expect(t.lookup(IPv4Address(10, 1, 3, 1))?.device == 1)
        #expect(t.remove(destination: .any, prefixLength: 0) == 2)
        #expect(t.lookup(IPv4Address(192, 0, 2, 1)) == nil)
    }

    @Test func moreSpecificSubnetOnAnotherInterfaceWins() throws {
        // H has 10.1.0.1/16 on eth0 (switch 1) and 10.1.2.1/24 on eth1 (switch 2).
        let world = SimWorld(seed: 3)
        let h = world.addHost(name: "H"), p1 = world.addHost(name: "P1"), p2 = world.addHost(name: "P2")
        let h0 = world.addDevice(host: h, configuration: DeviceConfiguration(name: "eth0", mac: MACAddress(2, 0, 0, 0, 0, 1)))
        let h1 = world.addDevice(host: h, configuration: DeviceConfiguration(name: "eth1", mac: MACAddress(2, 0, 0, 0, 0, 2)))
        let d1 = world.addDevice(host: p1, configuration: DeviceConfiguration(name: "eth0", mac: MACAddress(2, 0, 0, 0, 0, 3)))
        let d2 = world.addDevice(host: p2, configuration: DeviceConfiguration(name: "eth0", mac: MACAddress(2, 0, 0, 0, 0, 4)))
        h.addAddress(IPv4Address(10, 1, 0, 1), prefixLength: 16, device: h0)
        h.addAddress(IPv4Address(10, 1, 2, 1), prefixLength: 24, device: h1)
        let far = IPv4Address(10, 1, 3, 7), near = IPv4Address(10, 1, 2, 7)
        p1.addAddress(far, prefixLength: 16, device: d1)
        p2.addAddress(near, prefixLength: 24, device: d2)
        let sw1 = world.addSwitch(), sw2 = world.addSwitch()
        world.connect((h, h0), to: sw1); world.connect((p1, d1), to: sw1)
        world.connect((h, h1), to: sw2); world.connect((p2, d2), to: sw2)

        _ = h.ping(near, identifier: 1, sequence: 1, now: world.now)
        world.run(until: world.now + 10 * Self.ms)
        #expect(h1.stats.txPackets == 2 && h0.stats.txPackets == 0)   // ARP + echo, both on eth1
        _ = h.ping(far, identifier: 1, sequence: 2, now: world.now)
        world.run(until: world.now + 10 * Self.ms)
        #expect(h0.stats.txPackets == 2 && h1.stats.txPackets == 2)
        #expect(h.echoReplies.map(\.from) == [near, far])
        // Neighbours were resolved on the device the route chose.
        #expect(h.neighbours.entry(near, device: 1) != nil && h.neighbours.entry(near, device: 0) == nil)
        #expect(h.neighbours.entry(far, device: 0) != nil && h.neighbours.entry(far, device: 1) == nil)
        // Each reply comes from the address on the interface it was sent from.
        #expect(p2.neighbours.entry(IPv4Address(10, 1, 2, 1), device: 0) != nil)
        #expect(p1.neighbours.entry(IPv4Address(10, 1, 0, 1), device: 0) != nil)
    }

    @Test func offSubnetTrafficGoesToTheGatewaysMAC() {
        let h = Lab.Host(name: "A", address: Lab.aIP, mac: Lab.aMAC)
        let gw = IPv4Address(10, 0, 0, 254), gwMAC = MACAddress(0x02, 0, 0, 0, 0, 0xFE)
        let backup = IPv4Address(10, 0, 0, 253)
        h.stack.routes.addDefault(gateway: backup, device: 0, metric: 100)
        h.stack.routes.addDefault(gateway: gw, device: 0, metric: 10)
        let remote = IPv4Address(192, 0, 2, 80)
        h.ping(remote, sequence: 1)
        let arp = h.port.take()
        #expect(arp.count == 1)
        // ARP asks for the gateway (metric 10), never for the remote address.
        #expect(arp.first.flatMap { Lab.arpPacket($0.bytes) }?.targetIP == gw)
        h.inject(Lab.arpReplyFrame(from: gw, mac: gwMAC, to: Lab.aIP, hostMAC: Lab.aMAC))
        let out = h.port.take()
        #expect(out.count == 1)
        let f = out.first?.bytes ?? []
        #expect(Lab.destinationMAC(f) == gwMAC)
        #expect(Lab.ipPacket(f)?.header.destination == remote)
        #expect(Lab.ipPacket(f)?.header.source == Lab.aIP)
        #expect(h.stack.neighbours.entry(remote, device: 0) == nil)
        #expect(h.shutdownIsClean())
    }

    @Test func routeCacheIsReusedAndInvalidatedByTableChanges() {
        typealias P = Scenarios.SwitchedPair
        let s = Scenarios.switchedPair()
        s.b.udpListeners.insert(7)
        _ = s.a.ping(P.bAddress, identifier: 1, sequence: 1, now: s.world.now)
        s.world.run(until: s.world.now + 10 * Self.ms)
        var cache = RouteCache()
        func send(_ n: Int) -> [SendError?] {
            s.a.processContext(now: s.world.now) {
                (0..<n).map { _ in
                    s.a.udpSend(to: P.bAddress, sourcePort: 9, destinationPort: 7, payloadLength: 10, route: &cache) { _ in }
                }
            }
        }
        let base = s.a.routes.lookups
        #expect(send(10).allSatisfy { $0 == nil })
        #expect(s.a.routes.lookups == base + 1)
        // An unrelated route still invalidates every cached result once.
        s.a.routes.add(Route(destination: IPv4Address(192, 168, 0, 0), prefixLength: 16, device: 0))
        #expect(send(5).allSatisfy { $0 == nil })
        #expect(s.a.routes.lookups == base + 2)
        #expect(send(5).allSatisfy { $0 == nil })
        #expect(s.a.routes.lookups == base + 2)
        // Removing the connected route: the cached route must not be used any more.
        #expect(s.a.routes.remove(destination: IPv4Address(10, 0, 0, 0), prefixLength: 24) == 1)
        #expect(send(3) == [.noRoute, .noRoute, .noRoute])
        #expect(s.a.counters.ipOutNoRoutes == 3)
        s.a.routes.add(Route(destination: IPv4Address(10, 0, 0, 0), prefixLength: 24, device: 0,
                             source: P.aAddress, scope: .link))
        #expect(send(2).allSatisfy { $0 == nil })
        s.world.run(until: s.world.now + 10 * Self.ms)
        #expect(s.b.udpDelivered == 22)
    }

    @Test func noRouteFailsTheSendAndIsCounted() {
        let h = Lab.Host(name: "A", address: Lab.aIP, mac: Lab.aMAC)
        let away = IPv4Address(192, 168, 5, 5)
        #expect(h.udpSend(to: away, destinationPort: 53, payload: 20) == .noRoute)
        #expect(h.ping(away, sequence: 1) == .failure(.noRoute))
        #expect(h.stack.counters.ipOutNoRoutes == 2)
        #expect(h.stack.drops[.noRoute] == 2)
        #expect(h.stack.counters.ipOutRequests == 0)
        #expect(h.port.frames.isEmpty)
        #expect(h.shutdownIsClean())
    }

    @Test func routerForwardsWithTTLDecrementedAndChecksumPatched() throws {
        typealias R = Lab.Routed
        let t = R()
        let path = Lab.temporaryPath("forward")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let tap = PacketTap(writer: try PcapWriter(path: path))
        t.c.taps.append(tap)
        _ = t.a.ping(R.cAddress, identifier: 5, sequence: 1, now: t.world.now)
        t.world.run(until: t.world.now + 10 * Self.ms)
        #expect(t.a.echoReplies.map(\.from) == [R.cAddress])
        #expect(t.r.counters.ipForwDatagrams == 2)
        #expect(t.c.counters.icmpInEchos == 1)
        #expect(t.c.drops[.ipChecksum] == 0 && t.a.drops[.ipChecksum] == 0)
        tap.writer.close()
        let pcap = try #require(Lab.readPcap(path))
        // C saw the request arrive with TTL 63 and a header checksum that verifies.
        let received = pcap.records.compactMap { Lab.ipPacket($0.bytes) }.filter { $0.header.destination == R.cAddress }
        #expect(received.count == 1)
        #expect(received.first?.header.ttl == 63)
        #expect(received.first?.header.source == R.aAddress)
        // The reply left C with TTL 64.
        let sent = pcap.records.compactMap { Lab.ipPacket($0.bytes) }.filter { $0.header.source == R.cAddress }
        #expect(sent.map(\.header.ttl) == [64])
    }

    @Test func ttlOfOneGetsTimeExceededFromTheRouter() {
        typealias R = Lab.Routed
        let t = R()
        // Resolve everything first.
        _ = t.a.ping(R.cAddress, identifier: 5, sequence: 1, now: t.world.now)
        t.world.run(until: t.world.now + 10 * Self.ms)
        #expect(Lab.sendEcho(t.a, to: R.cAddress, ttl: 1, sequence: 2, now: t.world.now) == nil)
        t.world.run(until: t.world.now + 10 * Self.ms)
        #expect(t.r.drops[.ttlExceeded] == 1)
        #expect(t.r.counters.icmpOutTimeExcds == 1)
        #expect(t.a.counters.icmpInTimeExcds == 1)
        #expect(t.c.counters.icmpInEchos == 1)
        // TTL 2 is enough for one router.
        #expect(Lab.sendEcho(t.a, to: R.cAddress, ttl: 2, sequence: 3, now: t.world.now) == nil)
        t.world.run(until: t.world.now + 10 * Self.ms)
        #expect(t.c.counters.icmpInEchos == 2)
        #expect(t.a.echoReplies.map(\.sequence) == [1, 3])
        // Without forwarding the router drops what is not for it, silently.
        t.r.ipConfig.forwarding = false
        _ = t.a.ping(R.cAddress, identifier: 5, sequence: 4, now: t.world.now)
        t.world.run(until: t.world.now + 10 * Self.ms)
        #expect(t.r.drops[.ipNotForUs] == 1 && t.r.counters.ipInAddrErrors == 1)
        #expect(t.a.echoReplies.count == 2)
        for h in [t.a, t.r, t.c] {
            h.shutdownDevices()
            #expect(h.pool.statistics.inUse == 0)
        }
    }
}
