import Testing
@testable import Skiff
import SkiffSim
import SkiffWire

/// Host A pings host B across a simulated switch: the packet trace of the foundation issue.
@Suite struct PingTests {
    typealias P = Scenarios.SwitchedPair

    @Test func arpResolvesAndQueuedPingsAreReleased() {
        let s = Scenarios.switchedPair()
        // Two pings before anything is resolved: both wait on A's neighbour entry for B.
        #expect(throws: Never.self) { try s.a.ping(P.bAddress, identifier: 7, sequence: 1, now: s.world.now).get() }
        #expect(throws: Never.self) { try s.a.ping(P.bAddress, identifier: 7, sequence: 2, now: s.world.now).get() }
        let entry = s.a.neighbours.entry(P.bAddress, device: 0)
        #expect(entry?.state == .incomplete)
        #expect(s.a.counters.arpRequestsOut == 1)
        s.world.run(until: s.world.now + 10 * Time.millisecond)
        // B answered ARP, A released both pings, B replied to each.
        #expect(s.a.counters.arpRepliesIn == 1)
        #expect(s.a.neighbours.entry(P.bAddress, device: 0)?.state == .reachable)
        // With no traffic confirming it, the entry goes STALE after the reachable time
        // (random in 15...45 s).
        #expect(s.world.runUntilIdle())
        #expect(s.a.neighbours.entry(P.bAddress, device: 0)?.state == .stale)
        #expect(s.world.now > 15 * Time.second && s.world.now <= 46 * Time.second)
        #expect(s.a.neighbours.entry(P.bAddress, device: 0)?.mac == P.bMAC)
        // B learned A from A's request (STALE), then used it to reply (DELAY).
        #expect(s.b.neighbours.entry(P.aAddress, device: 0)?.mac == P.aMAC)
        #expect(s.a.echoReplies.map(\.sequence) == [1, 2])
        #expect(s.a.echoReplies.allSatisfy { $0.from == P.bAddress && $0.payloadLength == 56 })
        #expect(s.b.counters.icmpInEchos == 2)
        #expect(s.a.drops.total == 0 && s.b.drops.total == 0)
    }

    @Test func fourThousandBytePingIsFragmentedAndReassembled() {
        let s = Scenarios.switchedPair()
        _ = s.a.ping(P.bAddress, identifier: 9, sequence: 1, payloadSize: 4000, now: s.world.now)
        #expect(s.world.runUntilIdle())
        // 4008 bytes of ICMP + 20 of IP over MTU 1500: three fragments each way.
        #expect(s.a.counters.ipFragOKs == 1)
        #expect(s.a.counters.ipFragCreates == 3)
        #expect(s.b.counters.ipReasmOKs == 1)
        #expect(s.b.counters.ipFragCreates == 3)
        #expect(s.a.counters.ipReasmOKs == 1)
        #expect(s.a.echoReplies.count == 1)
        #expect(s.a.echoReplies.first?.payloadLength == 4000)
        #expect(s.a.pool.ledger.bytes(.fragmentation) > 4000)
        #expect(s.b.pool.ledger.bytes(.reassembly) == 4008)
    }

    @Test func netfilterDropFailsThePingUntilRemoved() {
        let s = Scenarios.switchedPair()
        let rule = s.b.netfilter.append(
            NetfilterRule(match: NetfilterMatch(source: (P.aAddress, 32), ipProtocol: IPProtocol.icmp), target: .drop),
            to: .localIn)
        for seq in 1...3 {
            _ = s.a.ping(P.bAddress, identifier: 1, sequence: UInt16(seq), now: s.world.now)
            #expect(s.world.runUntilIdle())
        }
        #expect(s.a.echoReplies.isEmpty)
        #expect(s.b.netfilter.rules(.localIn)[rule].packets == 3)
        #expect(s.b.netfilter.rules(.localIn)[rule].bytes == 3 * 84)
        #expect(s.b.drops[.netfilter] == 3)
        s.b.netfilter.remove(at: rule, from: .localIn)
        _ = s.a.ping(P.bAddress, identifier: 1, sequence: 4, now: s.world.now)
        #expect(s.world.runUntilIdle())
        #expect(s.a.echoReplies.map(\.sequence) == [4])
    }

    @Test func traceOfOneEchoRequestCoversIPOutputToTxCompletion() throws {
        let s = Scenarios.switchedPair()
        // Resolve first so the traced request takes the connected path.
        _ = s.a.ping(P.bAddress, identifier: 2, sequence: 1, now: s.world.now)
        #expect(s.world.runUntilIdle())
        let id = try s.a.ping(P.bAddress, identifier: 2, sequence: 2, now: s.world.now, trace: true).get()
        #expect(id != 0)
        #expect(s.world.runUntilIdle())
        let stages = s.a.tracer.events(for: id).map(\.stage)
        let expected: [Stage] = [.pingSend, .ipQueueXmit, .ipLocalOut, .ipOutput, .ipFinishOutput2, .neighOutput,
                                 .devQueueXmit, .qdiscDirectXmit, .devHardStartXmit, .driverXmitFrame, .dmaMap,
                                 .doorbell, .nicTransmit, .cleanTxIRQ, .dmaUnmap, .bufferFree]
        #expect(stages == expected)
        let events = s.a.tracer.events(for: id)
        // Sent in process context, completed in the NET_RX softirq (the article's point).
        #expect(events.first { $0.stage == .driverXmitFrame }?.context == .process)
        #expect(events.first { $0.stage == .cleanTxIRQ }?.context == .softirq)
        #expect(s.a.softirq.count(.netRX) >= 1)
        #expect(s.a.echoReplies.count == 2)
    }

    @Test func everyBufferAndMappingIsReturned() {
        let s = Scenarios.switchedPair()
        for seq in 1...20 { _ = s.a.ping(P.bAddress, identifier: 3, sequence: UInt16(seq), payloadSize: 1000 * (seq % 5), now: s.world.now) }
        #expect(s.world.runUntilIdle())
        #expect(s.a.echoReplies.count == 20)
        for h in [s.a, s.b] {
            // Only the posted RX buffers remain; TX rings are clean.
            #expect(h.pool.statistics.inUse == h.devices[0].rxQueues[0].ring.size - 1)
            #expect(h.devices[0].nic.iommu.activeMappings == h.devices[0].rxQueues[0].ring.size - 1)
            h.shutdownDevices()
            #expect(h.pool.statistics.inUse == 0)
            #expect(h.devices[0].nic.iommu.activeMappings == 0)
            #expect(h.devices[0].nic.iommu.faults == 0)
        }
        #expect(s.world.wirePool.statistics.inUse == 0)
    }
}
