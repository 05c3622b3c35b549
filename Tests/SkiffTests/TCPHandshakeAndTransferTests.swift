import Testing
@testable import Skiff
import SkiffSim
import SkiffWire

/// TCP between two simulated hosts, as segment traces and end-to-end transfers.
@Suite struct TCPHandshakeAndTransferTests {
    typealias P = Scenarios.SwitchedPair

    /// Runs the world until `cond` holds or `limit` of virtual time passes.
    @discardableResult
    func until(_ s: Scenarios.SwitchedPair, _ limit: Nanoseconds = 10 * Time.second, _ cond: () -> Bool) -> Bool {
        s.world.run(limit: s.world.now + limit) { cond() }
    }

    @Test func threeWayHandshakeNegotiatesLinuxOptions() throws {
        let s = Scenarios.switchedPair()
        let l = try s.b.socket().get()
        #expect(s.b.bind(l, SocketAddress(.any, 80)) == nil)
        #expect(s.b.listen(l, backlog: 8) == nil)
        let c = try s.a.socket().get()
        #expect(s.a.connect(c, SocketAddress(P.bAddress, 80), now: s.world.now) == .EINPROGRESS)
        #expect(s.a.tcpState(c) == .synSent)
        #expect(s.a.connect(c, SocketAddress(P.bAddress, 80), now: s.world.now) == .EALREADY)
        var accepted: Int32 = -1
        #expect(until(s) {
            if case let .success((fd, _)) = s.b.accept(l) { accepted = fd }
            return accepted >= 0 && s.a.tcpState(c) == .established
        })
        #expect(s.a.connect(c, SocketAddress(P.bAddress, 80), now: s.world.now) == .EISCONN)
        let a = try #require(s.a.tcpInfoSocket(c)), b = try #require(s.b.tcpInfoSocket(accepted))
        #expect(a.mss == 1460 && b.mss == 1460)
        #expect(a.sackEnabled && b.sackEnabled && a.timestampsEnabled && b.timestampsEnabled)
        #expect(a.sendWindowScale == b.receiveWindowScale && b.receiveWindowScale == 7)
        #expect(try s.b.peerAddress(accepted).get().address == P.aAddress)
        #expect(try s.a.localAddress(c).get().port >= 32768)
        #expect(s.a.tcpCounters.activeOpens == 1 && s.b.tcpCounters.passiveOpens == 1)
        #expect(s.a.poll(c).contains(.writable) && !s.a.poll(c).contains(.readable))
    }

    @Test func synToAClosedPortIsRefused() throws {
        let s = Scenarios.switchedPair()
        let c = try s.a.socket().get()
        #expect(s.a.connect(c, SocketAddress(P.bAddress, 81), now: s.world.now) == .EINPROGRESS)
        #expect(until(s) { s.a.tcpState(c) == .closed })
        #expect(s.a.connect(c, SocketAddress(P.bAddress, 81), now: s.world.now) == .ECONNREFUSED)
        #expect(s.b.tcpCounters.outRsts == 1)
        #expect(s.b.drops[.tcpNoSocket] == 1)
    }

    @Test func oneMegabyteArrivesIntactAndTheActiveCloserWaitsInTimeWait() {
        let s = Scenarios.switchedPair()
        let t = BulkTransfer(world: s.world, sender: s.a, receiver: s.b, port: 5001, bytes: 1 << 20)
        #expect(t.run(limit: 60 * Time.second))
        #expect(t.received == 1 << 20 && t.mismatches == 0)
        #expect(t.senderHash.hexDigest() == t.receiverHash.hexDigest())
        let sock = s.a.tcpInfoSocket(t.senderSocket)
        // A closed first: after its FIN is acknowledged and B's FIN arrives it is in TIME-WAIT.
        #expect(until(s, 5 * Time.second) { s.a.tcpState(t.senderSocket) == .timeWait })
        #expect(sock?.totalRetransmits == 0)
        // 60 s later it is gone; nothing leaks on either host.
        s.world.run(until: s.world.now + 61 * Time.second)
        #expect(s.a.tcpState(t.senderSocket) == nil)
        #expect(s.a.openSocketCount == 0 && s.b.openSocketCount == 1)   // B's listener remains
        #expect(s.a.tcpSlab.count == 0 && s.b.tcpSlab.count == 0)
    }

    @Test func transferSurvivesLossReorderingAndDuplication() {
        let imp = Impairments(loss: 0.02, duplicate: 0.01, reorder: 0.02, delay: 200 * Time.microsecond)
        let s = Scenarios.switchedPair(seed: 42, impairments: imp)
        let t = BulkTransfer(world: s.world, sender: s.a, receiver: s.b, port: 5001, bytes: 2 << 20, seed: 9)
        #expect(t.run(limit: 300 * Time.second))
        #expect(t.mismatches == 0 && t.received == 2 << 20)
        #expect(t.senderHash.hexDigest() == t.receiverHash.hexDigest())
        // 2 % loss each way: the sender must have repaired something.
        #expect(s.a.tcpCounters.retransSegs > 0)
    }

    @Test func corruptedSegmentsAreDroppedByChecksumAndRepaired() {
        let s = Scenarios.switchedPair(seed: 7, impairments: Impairments(corrupt: 0.02, delay: 100 * Time.microsecond))
        let t = BulkTransfer(world: s.world, sender: s.a, receiver: s.b, port: 5001, bytes: 1 << 20, seed: 3)
        #expect(t.run(limit: 300 * Time.second))
        #expect(t.mismatches == 0 && t.received == 1 << 20)
        let csumDrops = s.a.tcpCounters.inCsumErrors + s.b.tcpCounters.inCsumErrors + s.a.drops[.ipChecksum] + s.b.drops[.ipChecksum]
            + s.a.drops[.icmpChecksum] + s.b.drops[.icmpChecksum]
        #expect(csumDrops > 0)
    }
}
