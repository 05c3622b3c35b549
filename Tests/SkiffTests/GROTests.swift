import Testing
@testable import Skiff
import SkiffSim
import SkiffWire

/// GRO in the receiving NAPI poll, as segment traces: the peer's segments arrive back to back on
/// the ring, and what TCP and the application see is checked.
@Suite struct GROTests {
    static let mss = 1448

    /// The frames of `count` consecutive data segments from the peer, starting `first` segments on.
    static func segments(_ p: TCPPeer, _ indices: [Int], data: [UInt8], badChecksum: Int? = nil) -> [[UInt8]] {
        indices.map { i in
            var opts = TCPOptions()
            opts.timestamp = TCPTimestamp(value: p.tsVal, echo: p.tsEcho)
            var tcp = TCPPeer.tcpBytes(sourcePort: p.port, destinationPort: p.hostPort, seq: p.seq &+ UInt32(i * mss),
                                       ack: p.ack, flags: .ack, window: p.window, options: opts,
                                       payload: Array(data[(i * mss)..<((i + 1) * mss)]))
            if i == badChecksum { tcp[17] ^= 0x40 }
            return TCPPeer.frame(tcp: tcp)
        }
    }

    @Test("five in-order segments in one poll go up as one packet: one ACK for all, the bytes in order")
    func inOrderSegmentsAreMerged() throws {
        let (p, fd, s) = TCPPeer.established()
        let data = Lab.pattern(5 * Self.mss, seed: 3)
        let rxq = p.host.dev.rxQueues[0]
        let merged = rxq.groMerged, flushed = rxq.groFlushed
        p.host.injectBurst(Self.segments(p, [0, 1, 2, 3, 4], data: data))
        #expect(rxq.groMerged - merged == 4 && rxq.groFlushed - flushed == 1)
        let acks = p.take()
        #expect(acks.count == 1 && acks[0].ack == p.seq &+ UInt32(5 * Self.mss))
        #expect(s.rcvMSS < 2 * Self.mss)   // measured by the segment size, not the merged length
        #expect(try p.read(fd).get() == data)
        #expect(p.stack.pool.ledger.bytes(.linearize) == 0)
    }

    @Test("a gap ends a merge and order is kept: 0 1 3 2 arrives as [0 1] [3] [2] and reads in order")
    func aGapEndsTheMerge() throws {
        let (p, fd, _) = TCPPeer.established()
        let data = Lab.pattern(4 * Self.mss, seed: 5)
        let rxq = p.host.dev.rxQueues[0]
        let merged = rxq.groMerged, flushed = rxq.groFlushed
        p.host.injectBurst(Self.segments(p, [0, 1, 3, 2], data: data))
        #expect(rxq.groMerged - merged == 1 && rxq.groFlushed - flushed == 3)
        // Segment 3 was out of order: a duplicate ACK with a SACK block went out for it.
        let acks = p.take()
        #expect(acks.contains { !$0.options.sackBlocks.isEmpty })
        #expect(acks.last?.ack == p.seq &+ UInt32(4 * Self.mss))
        #expect(try p.read(fd).get() == data)
    }

    @Test("a segment with a bad checksum is not merged: it goes up alone and TCP drops it")
    func aBadChecksumIsNotMerged() throws {
        let (p, fd, _) = TCPPeer.established()
        let data = Lab.pattern(3 * Self.mss, seed: 7)
        let errors = p.stack.tcpCounters.inCsumErrors
        p.host.injectBurst(Self.segments(p, [0, 1, 2], data: data, badChecksum: 1))
        #expect(p.stack.tcpCounters.inCsumErrors - errors == 1)
        #expect(try p.read(fd).get() == Array(data[0..<Self.mss]))
        // Segment 2 waits out of order for the retransmission of 1.
        p.host.injectBurst(Self.segments(p, [1], data: data))
        #expect(try p.read(fd).get() == Array(data[Self.mss...]))
    }

    @Test("GRO off: every segment goes up on its own")
    func groOff() throws {
        let host = Lab.Host(name: "B") { $0.features.remove(.gro) }
        host.stack.addPermanentNeighbour(Lab.aIP, mac: Lab.aMAC, device: host.dev)
        let p = TCPPeer(host: host)
        let l = p.listen()
        p.send(.syn, options: TCPOptions(maximumSegmentSize: 1460, windowScale: 7, sackPermitted: true,
                                         timestamp: TCPTimestamp(value: p.tsVal, echo: 0)))
        p.absorb(try #require(p.take().first))
        p.send(.ack)
        let fd = try p.stack.accept(l).get().0
        let data = Lab.pattern(4 * Self.mss, seed: 9)
        p.host.injectBurst(Self.segments(p, [0, 1, 2, 3], data: data))
        #expect(host.dev.rxQueues[0].groMerged == 0)
        #expect(p.take().filter(\.isPureAck).count >= 2)   // an ACK for every two segments
        #expect(try p.read(fd).get() == data)
    }

    @Test("a router merges with GRO and forwards the merged packets; GSO cuts them again with valid checksums")
    func forwardedGROPacketsAreCutAgain() throws {
        let net = Lab.Routed()
        let t = BulkTransfer(world: net.world, sender: net.a, receiver: net.c, port: 5001, bytes: 4 << 20)
        #expect(t.run(limit: 120 * Time.second))
        #expect(t.received == 4 << 20 && t.mismatches == 0)
        #expect(t.senderHash.hexDigest() == t.receiverHash.hexDigest())
        #expect(net.rLeft.rxQueues[0].groMerged > 0)
        #expect(net.r.counters.ipForwDatagrams > 0)
        #expect(net.c.tcpCounters.inCsumErrors == 0 && net.c.drops[.tcpChecksum] == 0)
    }
}
