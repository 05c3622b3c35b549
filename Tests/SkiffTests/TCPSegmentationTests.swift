import Testing
@testable import Skiff
import SkiffSim
import SkiffWire

/// TSO and GSO from tcp_sendmsg to the wire, written as segment traces: buffers grow to the size
/// goal, tcp_write_xmit sends as many segments per transmission as cwnd, the window and the
/// autosized limit allow, the NIC (TSO) or GSO cuts them, and the scoreboard counts segments.
@Suite struct TCPSegmentationTests {
    static let ms = Time.millisecond
    /// MSS 1460 less the 12 bytes of timestamps.
    static let mss = 1448

    @Test("IW10: a 20 000-byte write leaves as two TSO frames of 5 segments (half of cwnd each) with a partial checksum; the rest after the ACK")
    func tsoFrameOfTheInitialWindow() throws {
        // A 100 µs RTT: a millisecond of data at the pacing rate is more than the window.
        let (p, fd, s) = TCPPeer.established(rtt: 100 * Time.microsecond, offloads: true)
        #expect(p.host.dev.features.contains(.tso))
        let base = s.sndNxt
        p.write(fd, Lab.pattern(20_000))
        let frames = p.host.port.frames
        // Linux: tcp_cwnd_test() gives one transmission at most half of cwnd.
        #expect(frames.count == 2)
        let f = try #require(frames.first)
        #expect(f.offload.segmentSize == UInt16(Self.mss) && f.offload.needsChecksum)
        #expect(f.offload.checksumStart == 14 + 20 && f.offload.checksumOffset == 16 && f.offload.headerLength == 14 + 20 + 32)
        let first = p.take()
        #expect(first.map(\.length) == [5 * Self.mss, 5 * Self.mss] && first[0].seq == base && first[0].gsoSize == UInt16(Self.mss))
        #expect(s.packetsOut == 10)
        #expect(p.stack.tcpCounters.outSegs >= 10)
        // All acknowledged: the remaining 5 520 bytes (3 segments and a partial one) go at once,
        // with PSH: nothing is in flight, so Nagle does not hold the partial tail.
        // (Within the tail-loss-probe time: 2·SRTT + 2 ms.)
        p.host.advance(by: Self.ms)
        p.ackTo(base &+ UInt32(10 * Self.mss))
        let rest = p.take()
        #expect(rest.map(\.length) == [20_000 - 10 * Self.mss])
        #expect(rest.first?.flags.contains(.psh) == true && rest.first?.gsoSize == UInt16(Self.mss))
        #expect(s.packetsOut == 4)
    }

    @Test("TSO autosizing: at a 10 ms RTT the initial window leaves in transmissions of two segments")
    func tsoAutosizing() throws {
        let (p, fd, s) = TCPPeer.established(rtt: 10 * Self.ms, offloads: true)
        // Pacing rate 200 % · 10 · 1448 B / 10 ms ≈ 2.9 MB/s; about 1 ms of that is 2 828 bytes,
        // less than two segments, so tcp_min_tso_segs (2) applies (Linux: tcp_tso_autosize()).
        #expect(s.pacingRate == 0 || s.pacingRate > 2_000_000)
        p.write(fd, Lab.pattern(20_000))
        let segs = p.take()
        #expect(segs.map(\.length) == Array(repeating: 2 * Self.mss, count: 5))
        #expect(segs.allSatisfy { $0.gsoSize == UInt16(Self.mss) })
        #expect(s.pacingRate > 2_000_000 && s.pacingRate < 4_000_000)
        #expect(s.packetsOut == 10)
    }

    @Test("PSH on every transmission of several segments (as packetdrill's Linux traces show), not under MSG_MORE")
    func pshOnEveryTSOPacket() throws {
        let (p, fd, s) = TCPPeer.established(rtt: 10 * Self.ms, offloads: true)
        let base = s.sndNxt
        p.write(fd, Lab.pattern(20_000))
        let segs = p.take()
        #expect(segs.map(\.length) == Array(repeating: 2 * Self.mss, count: 5))
        #expect(segs.allSatisfy { $0.flags == [.ack, .psh] })
        // An ACK of one segment lets one more out; the ACK of two, a 2-segment packet with PSH.
        p.host.advance(by: Self.ms)
        p.ackTo(base &+ UInt32(2 * Self.mss))
        let next = p.take().filter { $0.length > 0 }
        #expect(!next.isEmpty && next.allSatisfy { $0.length < 2 * Self.mss || $0.flags.contains(.psh) })
        // Under MSG_MORE the application has more to say: no PSH.
        let (q, qfd, _) = TCPPeer.established(rtt: 10 * Self.ms, offloads: true)
        q.write(qfd, Lab.pattern(20_000), flags: .more)
        let held = q.take()
        #expect(!held.isEmpty && held.allSatisfy { $0.flags == .ack })
    }

    @Test("without TSO, GSO cuts the same write into MSS-sized frames: headers copied, payload referenced")
    func gsoCutsWithoutCopyingPayload() throws {
        let (p, fd, s) = TCPPeer.established()
        #expect(!p.host.dev.features.contains(.tso) && p.host.dev.features.contains(.gso))
        let base = s.sndNxt
        let copiedBefore = p.stack.pool.ledger.bytes(.segmentation)
        p.write(fd, Lab.pattern(20_000))
        let segs = p.take()
        #expect(segs.map(\.length) == Array(repeating: Self.mss, count: 10))
        #expect(segs.map(\.seq) == (0..<10).map { base &+ UInt32($0 * Self.mss) })
        #expect(segs.allSatisfy { $0.gsoSize == 0 })
        // 14 + 20 + 32 header bytes per segment; none of the 14 480 payload bytes.
        #expect(p.stack.pool.ledger.bytes(.segmentation) - copiedBefore == 10 * 66)
        #expect(s.packetsOut == 10)
    }

    @Test("a partial ACK of a TSO buffer frees the segments it covers")
    func partialAckOfATSOBuffer() throws {
        let (p, fd, s) = TCPPeer.established(rtt: 100 * Time.microsecond, offloads: true)
        let base = s.sndNxt
        p.write(fd, Lab.pattern(10 * Self.mss))
        #expect(p.take().count == 2)
        #expect(s.packetsOut == 10)
        p.host.advance(by: 10 * Self.ms)
        p.ackTo(base &+ UInt32(3 * Self.mss))
        #expect(s.packetsOut == 7 && s.sndUna == base &+ UInt32(3 * Self.mss))
        p.ackTo(base &+ UInt32(10 * Self.mss))
        #expect(s.packetsOut == 0)
    }

    @Test("SACK of segments 4–6 splits the TSO buffer; segments 1–3 are lost and retransmitted alone")
    func sackSplitsATSOBuffer() throws {
        let (p, fd, s) = TCPPeer.established(rtt: 100 * Time.microsecond, offloads: true)
        let base = s.sndNxt
        func seq(_ n: Int) -> UInt32 { base &+ UInt32(n * Self.mss) }
        p.write(fd, Lab.pattern(10 * Self.mss))
        #expect(p.take().count == 2)
        p.host.advance(by: Self.ms)
        p.ackTo(base, sack: [SACKBlock(left: seq(3), right: seq(6))])
        #expect(s.sackedOut == 3)
        #expect(s.lostOut == 3 && s.caState == .recovery)
        let retrans = p.take().filter { $0.length > 0 }
        #expect(!retrans.isEmpty)
        #expect(retrans.first?.seq == base)
        #expect(retrans.allSatisfy { Int32(bitPattern: $0.seq &- seq(3)) < 0 })
        p.ackTo(seq(10))
        #expect(s.packetsOut == 0 && s.sackedOut == 0 && s.lostOut == 0 && s.retransOut == 0)
    }

    @Test("SO_MAX_PACING_RATE paces transmissions and autosizes TSO to tcp_min_tso_segs")
    func pacingSpacesTransmissions() throws {
        let (p, fd, s) = TCPPeer.established(offloads: true)
        let rate: UInt64 = 100_000   // bytes per second
        #expect(p.stack.setOption(fd, .maxPacingRate(rate)) == nil)
        #expect(p.stack.option(fd, .maxPacingRate) == .success(.int(Int(rate))))
        p.write(fd, Lab.pattern(8 * Self.mss))
        var frames: [WireSegment] = p.take()
        for _ in 0..<40 {
            // The peer acknowledges what arrived, so no probe or retransmission mixes in.
            if let last = frames.last { p.ackTo(last.endSeq) }
            frames += p.advance(by: 5 * Self.ms)
        }
        // About 1 ms of data at the rate is less than two segments: two per transmission.
        #expect(frames.allSatisfy { $0.length <= 2 * Self.mss })
        #expect(frames.reduce(0) { $0 + $1.length } == 8 * Self.mss)
        // Each transmission waits length / rate after the one before (virtual time).
        for (a, b) in zip(frames, frames.dropFirst()) {
            let gap = UInt64(a.length) * Time.second / rate
            #expect(b.time - a.time >= gap)
        }
        #expect(s.pacingDelays > 0)
        #expect(try p.stack.tcpInfo(fd).get().maxPacingRate == rate)
    }

    @Test("buffers are bounded by half the peer's largest window; one larger than the window left goes in a window-sized piece")
    func windowLimitsATSOBuffer() throws {
        // Window 11 000 (no scaling): the size goal is 5 500 rounded down to segments, 4 344.
        let (p, fd, s) = TCPPeer.established(windowScale: nil, rtt: 100 * Time.microsecond, window: 11_000, offloads: true)
        let base = s.sndNxt
        p.write(fd, Lab.pattern(20_000))
        let segs = p.take()
        // Two whole buffers, then 2 312 bytes of window left: one segment of the third buffer.
        #expect(segs.map(\.length) == [3 * Self.mss, 3 * Self.mss, Self.mss], "\(segs)")
        #expect(segs.first?.seq == base)
        #expect(s.packetsOut == 7)
    }
}

/// Two simulated hosts whose NICs offload TSO and checksums over links that carry large frames
/// whole (as virtio or veth): the data arrives intact, in few frames, never linearized.
@Suite struct OffloadTransferTests {
    @Test("8 MiB over offloading NICs: SHA-256 equal, large frames, no payload checksummed or linearized")
    func offloadedTransfer() throws {
        let s = Scenarios.switchedPair(offloads: true)
        #expect(s.aDevice.features.contains(.tso) && s.aDevice.features.contains(.txChecksum))
        let t = BulkTransfer(world: s.world, sender: s.a, receiver: s.b, port: 5001, bytes: 8 << 20)
        #expect(t.run(limit: 120 * Time.second))
        #expect(t.received == 8 << 20 && t.mismatches == 0)
        #expect(t.senderHash.hexDigest() == t.receiverHash.hexDigest())
        // Far fewer frames than 1448-byte segments: TSO frames crossed whole (in slow start each
        // carries at most half of cwnd).
        #expect(s.aDevice.nic.txFrames < UInt64((8 << 20) / 1448 / 3))
        #expect(s.b.pool.ledger.bytes(.linearize) == 0)
        #expect(s.b.tcpCounters.inCsumErrors == 0 && s.b.drops.total == 0)
    }

    @Test("corruption on an offloading path: corrupted frames lose their offload marks, are checked and dropped")
    func offloadedTransferWithCorruption() throws {
        let s = Scenarios.switchedPair(seed: 3, impairments: Impairments(loss: 0.002, corrupt: 0.01, delay: 50 * Time.microsecond),
                                       offloads: true)
        let t = BulkTransfer(world: s.world, sender: s.a, receiver: s.b, port: 5001, bytes: 4 << 20)
        #expect(t.run(limit: 600 * Time.second))
        #expect(t.received == 4 << 20 && t.mismatches == 0)
        #expect(t.senderHash.hexDigest() == t.receiverHash.hexDigest())
        let corrupted = s.aLink.statistics.0.corrupted + s.aLink.statistics.1.corrupted
            + s.bLink.statistics.0.corrupted + s.bLink.statistics.1.corrupted
        #expect(corrupted > 0)
        #expect(s.a.tcpCounters.inCsumErrors + s.b.tcpCounters.inCsumErrors + s.a.drops[.ipChecksum] + s.b.drops[.ipChecksum] > 0)
    }
}
