import Testing
@testable import Skiff
import SkiffSim
import SkiffWire

/// ARP and Neighbour Unreachability Detection, read off the wire: host A (10.0.0.1) sits on a
/// capturing port; the test plays the peer by injecting ARP frames and watches what A sends.
@Suite struct NeighbourTests {
    static let a = Lab.aIP, aMAC = Lab.aMAC
    static let peer = Lab.bIP, peerMAC = Lab.bMAC
    static let ms = Time.millisecond, s = Time.second

    static func hostA(configure: (inout DeviceConfiguration) -> Void = { _ in }) -> Lab.Host {
        Lab.Host(name: "A", address: a, mac: aMAC, configure: configure)
    }

    static func state(_ h: Lab.Host, _ ip: IPv4Address = peer) -> NUDState? { h.stack.neighbours.entry(ip, device: 0)?.state }

    /// The peer answers A's request.
    static func reply(_ h: Lab.Host, from ip: IPv4Address = peer, mac: MACAddress = peerMAC) {
        h.inject(Lab.arpReplyFrame(from: ip, mac: mac, to: a, hostMAC: aMAC))
    }

    @Test func unansweredResolutionProbesThreeTimesThenFailsAndDropsTheQueue() {
        let h = Self.hostA()
        let ghost = IPv4Address(10, 0, 0, 99)
        h.ping(ghost, sequence: 1)
        h.ping(ghost, sequence: 2)
        #expect(Self.state(h, ghost) == .incomplete)
        // One request so far: both pings wait on the entry.
        #expect(h.port.frames.count == 1)
        h.advance(to: 3 * Self.s - 1)
        #expect(Self.state(h, ghost) == .incomplete)
        #expect(h.stack.drops[.neighbourFailed] == 0)
        h.advance(to: 3 * Self.s)
        #expect(Self.state(h, ghost) == .failed)
        #expect(h.stack.drops[.neighbourFailed] == 2)
        h.advance(to: 20 * Self.s)
        // Exactly three broadcast requests, one second apart; the pings never left.
        let frames = h.port.take()
        #expect(frames.map(\.time) == [0, Self.s, 2 * Self.s])
        for f in frames {
            let arp = Lab.arpPacket(f.bytes)
            #expect(Lab.destinationMAC(f.bytes) == .broadcast)
            #expect(Lab.sourceMAC(f.bytes) == Self.aMAC)
            #expect(arp == ARPPacket(operation: .request, senderMAC: Self.aMAC, senderIP: Self.a,
                                     targetMAC: .zero, targetIP: ghost))
        }
        #expect(h.stack.counters.arpRequestsOut == 3)
        #expect(h.stack.drops.total == 2)

        // Using the FAILED entry again restarts resolution; this time the host answers.
        h.ping(ghost, sequence: 3)
        #expect(Self.state(h, ghost) == .incomplete)
        let again = h.port.take()
        #expect(again.count == 1 && Lab.arpPacket(again[0].bytes)?.targetIP == ghost)
        #expect(again.first?.time == 20 * Self.s)
        let ghostMAC = MACAddress(0x02, 0, 0, 0, 0, 0x99)
        Self.reply(h, from: ghost, mac: ghostMAC)
        #expect(Self.state(h, ghost) == .reachable)
        let released = h.port.take()
        #expect(released.count == 1)
        #expect(Lab.destinationMAC(released[0].bytes) == ghostMAC)
        #expect(Lab.echoSequence(released[0].bytes) == 3)
        #expect(h.shutdownIsClean())
    }

    @Test func unresolvedQueueOverflowDropsTheOldestPackets() {
        let h = Self.hostA()
        // Five 84-byte datagrams against a 200-byte queue: room for two.
        h.stack.neighbours.parameters.unresolvedQueueBytes = 200
        for seq in 1...5 { h.ping(Self.peer, sequence: UInt16(seq)) }
        #expect(h.stack.drops[.neighbourQueueFull] == 3)
        #expect(h.stack.neighbours.entry(Self.peer, device: 0)?.queueDrops == 3)
        #expect(h.port.take().count == 1)   // the ARP request
        Self.reply(h)
        let sent = h.port.take()
        #expect(sent.compactMap { Lab.echoSequence($0.bytes) } == [4, 5])
        #expect(sent.allSatisfy { Lab.destinationMAC($0.bytes) == Self.peerMAC })
        #expect(h.stack.drops.total == 3)
        #expect(h.shutdownIsClean())
    }

    @Test func unresolvedQueueNeverHoldsMoreThanItsByteLimit() throws {
        let h = Self.hostA()
        h.stack.neighbours.parameters.unresolvedQueueBytes = 200
        h.ping(Self.peer, sequence: 1)                      // 84 bytes
        h.ping(Self.peer, sequence: 2)                      // 168
        h.ping(Self.peer, sequence: 3, payloadSize: 150)    // 178: both older packets must go
        let found = h.stack.neighbours.lookup(Self.peer, device: 0)
        let e = try #require(found)
        let queued = h.stack.neighbours.entries[e].queue.bytes
        #expect(queued == 178)
        #expect(queued <= 200)
        #expect(h.stack.drops[.neighbourQueueFull] == 2)
        Self.reply(h)
        #expect(h.port.take().compactMap { Lab.echoSequence($0.bytes) } == [3])
        #expect(h.shutdownIsClean())
    }

    @Test func fullSharedQueueDropsAPacketOnceAndCountsItOnce() throws {
        // 512 unresolved neighbours each hold one packet: the shared queue storage is full.
        let h = Lab.Host(name: "A", address: Self.a, prefixLength: 16, mac: Self.aMAC)
        let targets: [IPv4Address] = (0..<513).map { (i: Int) -> IPv4Address in
            let third = UInt8(1 + i / 250), fourth = UInt8(1 + i % 250)
            return IPv4Address(10, 0, third, fourth)
        }
        for t in targets.prefix(512) { h.ping(t, sequence: 1) }
        #expect(h.stack.neighbours.slab.isFull == true)
        #expect(h.stack.drops[.neighbourQueueFull] == 0)
        // One more neighbour: its packet has nowhere to go, and is counted once.
        h.ping(targets[512], sequence: 1)
        #expect(h.stack.drops[.neighbourQueueFull] == 1)
        #expect(h.stack.neighbours.entry(targets[512], device: 0)?.queueDrops == 1)
        #expect(h.stack.drops.total == 1)
        h.advance(by: 3 * Self.s)
        #expect(h.stack.drops[.neighbourFailed] == 512)
        #expect(h.shutdownIsClean())
    }

    @Test func reachableGoesStaleThenDelayProbeAndReachableAgain() throws {
        let h = Self.hostA()
        h.ping(Self.peer, sequence: 1)
        h.advance(to: Self.ms)
        Self.reply(h)
        let entryFound = h.stack.neighbours.entry(Self.peer, device: 0)
        let entry = try #require(entryFound)
        #expect(entry.state == .reachable && entry.mac == Self.peerMAC && entry.confirmed == Self.ms)
        #expect(entry.reachableTime >= 15 * Self.s && entry.reachableTime <= 45 * Self.s)
        #expect(h.port.take().map { Lab.echoSequence($0.bytes) } == [nil, 1])   // ARP request, then the ping

        // REACHABLE lasts exactly the entry's reachable time, then STALE (no traffic, no ARP).
        let staleAt = Self.ms + entry.reachableTime
        h.advance(to: staleAt - 1)
        #expect(Self.state(h) == .reachable)
        h.advance(to: staleAt)
        #expect(Self.state(h) == .stale)
        #expect(h.port.frames.isEmpty)

        // Using a STALE entry sends at once with the old address and starts DELAY.
        let use = staleAt + 10 * Self.s
        h.advance(to: use)
        h.ping(Self.peer, sequence: 2)
        #expect(Self.state(h) == .delay)
        let now = h.port.take()
        #expect(now.count == 1 && Lab.echoSequence(now[0].bytes) == 2)
        #expect(Lab.destinationMAC(now[0].bytes) == Self.peerMAC)

        // No confirmation within 5 s: PROBE, with a unicast request to the cached address.
        h.advance(to: use + 5 * Self.s - 1)
        #expect(Self.state(h) == .delay && h.port.frames.isEmpty)
        h.advance(to: use + 5 * Self.s)
        #expect(Self.state(h) == .probe)
        let probe = h.port.take()
        #expect(probe.count == 1)
        #expect(probe.first?.time == use + 5 * Self.s)
        #expect(Lab.destinationMAC(probe[0].bytes) == Self.peerMAC)
        #expect(Lab.arpPacket(probe[0].bytes) == ARPPacket(operation: .request, senderMAC: Self.aMAC, senderIP: Self.a,
                                                           targetMAC: Self.peerMAC, targetIP: Self.peer))
        // The peer answers: REACHABLE again, confirmed now.
        h.advance(by: 10 * Self.ms)
        Self.reply(h)
        let afterFound = h.stack.neighbours.entry(Self.peer, device: 0)
        let after = try #require(afterFound)
        #expect(after.state == .reachable && after.confirmed == h.now)
        #expect(h.stack.counters.arpRequestsOut == 2)
        #expect(h.stack.drops.total == 0)
        #expect(h.shutdownIsClean())
    }

    @Test func probeWithoutAnswerFailsAfterThreeUnicastRequests() {
        let h = Self.hostA()
        h.ping(Self.peer, sequence: 1)
        Self.reply(h)
        h.advance(to: 60 * Self.s)
        #expect(Self.state(h) == .stale)
        h.port.frames.removeAll()
        h.ping(Self.peer, sequence: 2)
        h.advance(to: 60 * Self.s + 5 * Self.s + 3 * Self.s)
        #expect(Self.state(h) == .failed)
        let arps = h.port.take().filter { Lab.etherType($0.bytes) == EtherType.arp }
        #expect(arps.map(\.time) == [65 * Self.s, 66 * Self.s, 67 * Self.s])
        #expect(arps.allSatisfy { Lab.destinationMAC($0.bytes) == Self.peerMAC })
        // The ping itself had already gone; nothing was queued to drop.
        #expect(h.stack.drops[.neighbourFailed] == 0)
        #expect(h.shutdownIsClean())
    }

    @Test func gratuitousARPUpdatesAnExistingEntryOnly() throws {
        let h = Self.hostA()
        h.ping(Self.peer, sequence: 1)
        Self.reply(h)
        h.port.frames.removeAll()
        // The peer moved to a new NIC and says so.
        let newMAC = MACAddress(0x02, 0, 0, 0, 0, 0xBB)
        h.inject(Lab.ethernet(Lab.arp(.request, senderMAC: newMAC, senderIP: Self.peer, targetIP: Self.peer),
                              to: .broadcast, from: newMAC, type: EtherType.arp))
        let eFound = h.stack.neighbours.entry(Self.peer, device: 0)
        let e = try #require(eFound)
        #expect(e.mac == newMAC && e.state == .stale)
        // Nobody answers an announcement.
        #expect(h.port.frames.isEmpty)
        h.ping(Self.peer, sequence: 2)
        #expect(h.port.take().map { Lab.destinationMAC($0.bytes) } == [newMAC])
        // An announcement from a host we never talked to creates nothing.
        let stranger = IPv4Address(10, 0, 0, 50)
        h.inject(Lab.ethernet(Lab.arp(.request, senderMAC: MACAddress(0x02, 0, 0, 0, 0, 0x50), senderIP: stranger,
                                      targetIP: stranger), to: .broadcast, from: MACAddress(0x02, 0, 0, 0, 0, 0x50),
                              type: EtherType.arp))
        #expect(h.stack.neighbours.entry(stranger, device: 0) == nil)
        #expect(h.shutdownIsClean())
    }

    @Test func announceReachesAPeerOverTheSwitch() {
        typealias P = Scenarios.SwitchedPair
        let s = Scenarios.switchedPair()
        _ = s.a.ping(P.bAddress, identifier: 1, sequence: 1, now: s.world.now)
        s.world.run(until: s.world.now + 10 * Self.ms)
        #expect(s.a.neighbours.entry(P.bAddress, device: 0)?.mac == P.bMAC)
        let newMAC = MACAddress(0x02, 0, 0, 0, 0, 0xBC)
        s.bDevice.mac = newMAC
        s.b.announce(device: s.bDevice, now: s.world.now)
        s.world.run(until: s.world.now + 10 * Self.ms)
        #expect(s.a.counters.arpRequestsIn == 1)
        #expect(s.a.neighbours.entry(P.bAddress, device: 0)?.mac == newMAC)
        #expect(s.a.neighbours.entry(P.bAddress, device: 0)?.state == .stale)
        _ = s.a.ping(P.bAddress, identifier: 1, sequence: 2, now: s.world.now)
        s.world.run(until: s.world.now + 10 * Self.ms)
        #expect(s.a.echoReplies.map(\.sequence) == [1, 2])
        #expect(s.a.drops.total == 0 && s.b.drops.total == 0)
    }

    @Test func permanentEntryNeverSendsARP() {
        let h = Self.hostA()
        h.stack.addPermanentNeighbour(Self.peer, mac: Self.peerMAC, device: h.dev)
        h.ping(Self.peer, sequence: 1)
        h.advance(to: 120 * Self.s)
        // A reply claiming another address, and a request from the peer, change nothing.
        let liar = MACAddress(0x02, 0, 0, 0, 0, 0x66)
        Self.reply(h, mac: liar)
        h.inject(Lab.ethernet(Lab.arp(.request, senderMAC: liar, senderIP: Self.peer, targetIP: Self.a),
                              to: .broadcast, from: liar, type: EtherType.arp))
        #expect(Self.state(h) == .permanent)
        #expect(h.stack.neighbours.entry(Self.peer, device: 0)?.mac == Self.peerMAC)
        h.ping(Self.peer, sequence: 2)
        h.advance(to: 240 * Self.s)
        let frames = h.port.take()
        // Two pings to the permanent address and our answer to the request; never a request.
        #expect(frames.compactMap { Lab.echoSequence($0.bytes) } == [1, 2])
        #expect(frames.filter { Lab.isEchoRequest($0.bytes) }.allSatisfy { Lab.destinationMAC($0.bytes) == Self.peerMAC })
        #expect(frames.compactMap { Lab.arpPacket($0.bytes)?.operation } == [.reply])
        #expect(h.stack.counters.arpRequestsOut == 0)
        #expect(h.shutdownIsClean())
    }

    @Test func ipLinkDeviceNeverARPs() {
        let h = Self.hostA { $0.linkType = .ip; $0.name = "tun0" }
        #expect(h.dev.noARP && h.dev.headerLength == 0)
        h.ping(Self.peer, sequence: 1)
        // A bare IP packet, no link header.
        let out = h.port.take()
        #expect(out.count == 1)
        #expect(out.first?.bytes.count == 84 && out.first?.bytes.first == 0x45)
        #expect(out.first.flatMap { Lab.echoSequence($0.bytes, linkHeader: 0) } == 1)
        // An echo request arriving as a bare IP packet is answered the same way.
        h.inject(Lab.ipv4(Lab.echoRequest(sequence: 9), from: Self.peer, to: Self.a, protocol: IPProtocol.icmp))
        let reply = h.port.take()
        #expect(reply.count == 1)
        #expect(reply.first.flatMap { Lab.icmpMessage($0.bytes, linkHeader: 0) }?.type == 0)
        #expect(reply.first.flatMap { Lab.echoSequence($0.bytes, linkHeader: 0) } == 9)
        h.advance(to: 100 * Self.s)
        #expect(h.port.frames.isEmpty)
        #expect(h.stack.counters.arpRequestsOut == 0)
        #expect(h.stack.neighbours.entries.isEmpty)
        #expect(h.shutdownIsClean())
    }
}
