import Testing
@testable import Skiff
import SkiffSim
import SkiffWire

/// The filter table on INPUT, OUTPUT and FORWARD: targets, matches and rule counters.
@Suite struct NetfilterTests {
    static let ms = Time.millisecond

    /// Host B (10.0.0.2) that knows A permanently and listens on a few UDP ports.
    static func hostB() -> Lab.Host {
        let h = Lab.Host(name: "B")
        h.stack.addPermanentNeighbour(Lab.aIP, mac: Lab.aMAC, device: h.dev)
        return h
    }

    static func udpFrame(port: UInt16, payload: Int = 10, from src: IPv4Address = Lab.aIP) -> [UInt8] {
        Lab.ethernet(Lab.ipv4(Lab.udp(Lab.pattern(payload), from: src, destinationPort: port), from: src,
                              protocol: IPProtocol.udp))
    }

    @Test func rejectOnInputAnswersWithTheChosenUnreachableCode() throws {
        let h = Self.hostB()
        h.stack.udpListeners.insert(80)
        let rule = h.stack.netfilter.append(
            NetfilterRule(match: NetfilterMatch(ipProtocol: IPProtocol.udp, destinationPorts: 80...80),
                          target: .reject(code: 13)), to: .localIn)
        let frame = Self.udpFrame(port: 80, payload: 20)
        h.inject(frame)
        #expect(h.stack.udpDelivered == 0)
        #expect(h.stack.drops[.netfilter] == 1 && h.stack.counters.ipInDiscards == 1)
        let out = h.port.take()
        #expect(out.count == 1)
        let m = try #require(out.first.flatMap { Lab.icmpMessage($0.bytes) })
        #expect(m.type == 3 && m.code == 13)
        #expect(m.body == Array(frame[14...]))
        #expect(h.stack.netfilter.rules(.localIn)[rule].packets == 1)
        #expect(h.stack.netfilter.rules(.localIn)[rule].bytes == 48)
        #expect(h.shutdownIsClean())
    }

    @Test func rejectedPingReachesTheSenderAsUnreachable() {
        typealias P = Scenarios.SwitchedPair
        let s = Scenarios.switchedPair()
        s.b.netfilter.append(NetfilterRule(match: NetfilterMatch(ipProtocol: IPProtocol.icmp), target: .reject(code: 3)),
                             to: .localIn)
        _ = s.a.ping(P.bAddress, identifier: 1, sequence: 1, now: s.world.now)
        s.world.run(until: s.world.now + 10 * Self.ms)
        #expect(s.a.echoReplies.isEmpty)
        #expect(s.a.counters.icmpInDestUnreachs == 1)
        #expect(s.b.counters.icmpInEchos == 0)
    }

    @Test func logCountsAndContinues() {
        let h = Self.hostB()
        h.stack.udpListeners.insert(53)
        let log = h.stack.netfilter.append(NetfilterRule(target: .log(prefix: "IN: ")), to: .localIn)
        let udpLog = h.stack.netfilter.append(
            NetfilterRule(match: NetfilterMatch(ipProtocol: IPProtocol.udp), target: .log(prefix: "UDP: ")), to: .localIn)
        h.inject(Self.udpFrame(port: 53, payload: 12))
        h.inject(Lab.ethernet(Lab.ipv4(Lab.echoRequest(sequence: 1), protocol: IPProtocol.icmp)))
        #expect(h.stack.udpDelivered == 1)
        #expect(h.stack.counters.icmpInEchos == 1 && h.port.frames.count == 1)
        let rules = h.stack.netfilter.rules(.localIn)
        #expect(rules[log].packets == 2 && rules[log].bytes == 40 + 84)
        #expect(rules[udpLog].packets == 1 && rules[udpLog].bytes == 40)
        #expect(h.stack.drops.total == 0)
        #expect(h.shutdownIsClean())
    }

    @Test func portRangeMatchesOnlyInsideTheRange() {
        let h = Self.hostB()
        for p: UInt16 in [999, 1000, 2000, 2001] { h.stack.udpListeners.insert(p) }
        let rule = h.stack.netfilter.append(
            NetfilterRule(match: NetfilterMatch(ipProtocol: IPProtocol.udp, destinationPorts: 1000...2000), target: .drop),
            to: .localIn)
        for (i, p) in [UInt16(999), 1000, 1500, 2000, 2001].enumerated() {
            h.inject(Self.udpFrame(port: p, payload: 10 + i))
        }
        // 999 and 2001 delivered; 1000, 1500 and 2000 dropped.
        #expect(h.stack.udpDelivered == 2)
        #expect(h.stack.udpDeliveredBytes == 10 + 14)
        let r = h.stack.netfilter.rules(.localIn)[rule]
        #expect(r.packets == 3)
        #expect(r.bytes == 39 + 40 + 41)   // IP lengths of the three dropped datagrams
        #expect(h.stack.drops[.netfilter] == 3)
        // A source-port range, on another protocol, matches nothing here.
        h.stack.netfilter.insert(NetfilterRule(match: NetfilterMatch(ipProtocol: IPProtocol.tcp, sourcePorts: 0...65535),
                                               target: .drop), at: 0, in: .localIn)
        h.inject(Self.udpFrame(port: 999))
        #expect(h.stack.udpDelivered == 3)
        #expect(h.stack.netfilter.rules(.localIn)[0].packets == 0)
        #expect(h.shutdownIsClean())
    }

    @Test func interfaceMatchSeparatesTwoDevices() {
        let h = Self.hostB()
        let eth1 = h.addDevice(name: "eth1", address: IPv4Address(10, 0, 9, 2), mac: MACAddress(0x02, 0, 0, 0, 9, 2))
        let peer9 = IPv4Address(10, 0, 9, 1), peer9MAC = MACAddress(0x02, 0, 0, 0, 9, 1)
        h.stack.addPermanentNeighbour(peer9, mac: peer9MAC, device: eth1)
        let rule = h.stack.netfilter.append(
            NetfilterRule(match: NetfilterMatch(inInterface: eth1.index), target: .drop), to: .localIn)
        h.inject(Lab.ethernet(Lab.ipv4(Lab.echoRequest(sequence: 1), protocol: IPProtocol.icmp)), device: 0)
        h.inject(Lab.ethernet(Lab.ipv4(Lab.echoRequest(sequence: 2), from: peer9, to: IPv4Address(10, 0, 9, 2),
                                       protocol: IPProtocol.icmp), to: MACAddress(0x02, 0, 0, 0, 9, 2), from: peer9MAC),
                 device: 1)
        #expect(h.ports[0].take().compactMap { Lab.echoSequence($0.bytes) } == [1])
        #expect(h.ports[1].frames.isEmpty)
        #expect(h.stack.netfilter.rules(.localIn)[rule].packets == 1)
        #expect(h.stack.drops[.netfilter] == 1)
        // An OUTPUT rule on the out-interface: replies via eth0 pass, via eth1 are stopped.
        h.stack.netfilter.flush(.localIn)
        h.stack.netfilter.append(NetfilterRule(match: NetfilterMatch(outInterface: eth1.index), target: .drop), to: .localOut)
        h.inject(Lab.ethernet(Lab.ipv4(Lab.echoRequest(sequence: 3), from: peer9, to: IPv4Address(10, 0, 9, 2),
                                       protocol: IPProtocol.icmp), to: MACAddress(0x02, 0, 0, 0, 9, 2), from: peer9MAC),
                 device: 1)
        h.inject(Lab.ethernet(Lab.ipv4(Lab.echoRequest(sequence: 4), protocol: IPProtocol.icmp)), device: 0)
        #expect(h.stack.counters.icmpInEchos == 3)
        #expect(h.ports[1].frames.isEmpty)
        #expect(h.ports[0].take().compactMap { Lab.echoSequence($0.bytes) } == [4])
        #expect(h.stack.counters.ipOutDiscards == 1)
        #expect(h.shutdownIsClean())
    }

    @Test func outputDropFailsTheSendWithFiltered() {
        let h = Lab.Host(name: "A", address: Lab.aIP, mac: Lab.aMAC)
        h.stack.addPermanentNeighbour(Lab.bIP, mac: Lab.bMAC, device: h.dev)
        let rule = h.stack.netfilter.append(
            NetfilterRule(match: NetfilterMatch(destination: (Lab.bIP, 32), ipProtocol: IPProtocol.udp), target: .drop),
            to: .localOut)
        #expect(h.udpSend(to: Lab.bIP, destinationPort: 53, payload: 100) == .filtered)
        #expect(h.udpSend(to: Lab.bIP, destinationPort: 54, payload: 1) == .filtered)
        #expect(h.stack.counters.ipOutDiscards == 2 && h.stack.drops[.netfilter] == 2)
        #expect(h.port.frames.isEmpty)
        // Pings are not UDP: they pass.
        #expect((try? h.ping(Lab.bIP, sequence: 1).get()) != nil)
        #expect(h.port.take().count == 1)
        let r = h.stack.netfilter.rules(.localOut)[rule]
        #expect(r.packets == 2 && r.bytes == UInt64(128 + 29))
        #expect(h.shutdownIsClean())
    }

    @Test func forwardHookFiltersTransitTrafficOnly() {
        typealias R = Lab.Routed
        let t = R()
        // Resolve the path, then filter ICMP from A leaving towards C.
        _ = t.a.ping(R.cAddress, identifier: 1, sequence: 1, now: t.world.now)
        t.world.run(until: t.world.now + 10 * Self.ms)
        #expect(t.a.echoReplies.count == 1)
        let drop = t.r.netfilter.append(
            NetfilterRule(match: NetfilterMatch(source: (R.aAddress, 32), ipProtocol: IPProtocol.icmp,
                                                inInterface: t.rLeft.index, outInterface: t.rRight.index),
                          target: .drop), to: .forward)
        _ = t.a.ping(R.cAddress, identifier: 1, sequence: 2, now: t.world.now)
        t.world.run(until: t.world.now + 10 * Self.ms)
        #expect(t.a.echoReplies.count == 1)
        #expect(t.r.netfilter.rules(.forward)[drop].packets == 1)
        #expect(t.r.drops[.netfilter] == 1)
        #expect(t.c.counters.icmpInEchos == 1)
        #expect(t.a.counters.icmpInDestUnreachs == 0)
        // Traffic to the router itself does not cross FORWARD.
        _ = t.a.ping(R.rLeftAddress, identifier: 1, sequence: 3, now: t.world.now)
        t.world.run(until: t.world.now + 10 * Self.ms)
        #expect(t.a.echoReplies.map(\.sequence) == [1, 3])
        #expect(t.r.netfilter.rules(.forward)[drop].packets == 1)
        // REJECT in FORWARD answers the sender with the unreachable code.
        t.r.netfilter.flush(.forward)
        t.r.netfilter.append(NetfilterRule(match: NetfilterMatch(ipProtocol: IPProtocol.icmp), target: .reject(code: 10)),
                             to: .forward)
        _ = t.a.ping(R.cAddress, identifier: 1, sequence: 4, now: t.world.now)
        t.world.run(until: t.world.now + 10 * Self.ms)
        #expect(t.a.counters.icmpInDestUnreachs == 1)
        #expect(t.r.counters.icmpOutDestUnreachs == 1)
        #expect(t.c.counters.icmpInEchos == 1)
        // An ACCEPT rule counts both directions of a conversation.
        t.r.netfilter.flush(.forward)
        let all = t.r.netfilter.append(NetfilterRule(target: .accept), to: .forward)
        _ = t.a.ping(R.cAddress, identifier: 1, sequence: 5, now: t.world.now)
        t.world.run(until: t.world.now + 10 * Self.ms)
        #expect(t.r.netfilter.rules(.forward)[all].packets == 2)
        #expect(t.r.netfilter.rules(.forward)[all].bytes == 2 * 84)
        #expect(t.a.echoReplies.map(\.sequence) == [1, 3, 5])
    }
}
