import Testing
@testable import Skiff
import SkiffWire

/// TCP Small Queues, as traces of a bulk sender behind a NIC whose completions lag: what the
/// socket has in the qdisc and on the TX ring stays near `tcp_limit_output_bytes` (or about 1 ms
/// at its pacing rate), TCP stops there and the TASKLET softirq sends more as the NIC frees
/// frames; every byte still arrives, and every charge comes back. Linux:
/// `tcp_small_queue_check()`, `tcp_wfree()`, `tcp_tasklet_func()`.
@Suite struct TCPSmallQueuesTests {
    static let us = Time.microsecond

    /// Host B at 1 Gbit/s (the NIC frees a 1514-byte frame about 12 µs after it starts it), on
    /// a device that keeps charges until completion unless `orphans`.
    static func connection(limit: Int, orphans: Bool = false) -> (TCPPeer, Int32, TCPSocket) {
        let host = Lab.Host(name: "B") {
            $0.lineRate = 1_000_000_000
            $0.orphansOnTransmit = orphans
        }
        host.stack.addPermanentNeighbour(Lab.aIP, mac: Lab.aMAC, device: host.dev)
        return TCPPeer.established(mss: 1460, rtt: 1 * Time.millisecond, window: 65535, host: host) { stack in
            stack.tcpConfig.limitOutputBytes = limit
            stack.tcpConfig.sendMemory = (4096, 4 << 20, 4 << 20)
        }
    }

    struct Run {
        var delivered = 0
        var peakBelow = 0
        var peakQdisc = 0
        var steps = 0
    }

    /// Writes `total` bytes while the peer acknowledges what it has seen every 20 µs (bounded
    /// to 20 000 steps, 0.4 s of virtual time); records the peak of what the socket had below it.
    static func transfer(_ p: TCPPeer, _ fd: Int32, _ s: TCPSocket, total: Int) -> Run {
        var r = Run()
        let data = Lab.pattern(total)
        var written = 0
        let start = s.sndUna
        while r.steps < 20_000 {
            r.steps += 1
            if written < total, case let .success(n) = p.write(fd, Array(data[written...])) { written += n }
            r.peakBelow = max(r.peakBelow, p.stack.tcpBytesBelow(s))
            r.peakQdisc = max(r.peakQdisc, p.host.dev.txQueues[0].qdisc.statistics.backlogBytes)
            let segs = p.advance(by: 20 * us)
            for seg in segs where seg.length > 0 { p.absorb(seg) }
            if segs.contains(where: { $0.length > 0 }) { p.ackTo() }
            r.delivered = Int(p.ack &- start)
            if r.delivered >= total && written == total { break }
        }
        return r
    }

    @Test func aBulkSenderKeepsOnlyTheLimitBelowItAndTheTaskletSendsTheRest() throws {
        let limit = 128 * 1024
        let (p, fd, s) = Self.connection(limit: limit)
        let r = Self.transfer(p, fd, s, total: 2 << 20)
        #expect(r.delivered == 2 << 20)
        // The check runs before each transmission: one more buffer (at most a 64 KiB GSO
        // packet and its head) may pass the limit.
        #expect(r.peakBelow > 0)
        #expect(r.peakBelow <= limit + 65_536 + tcpBufferOverhead)
        #expect(p.stack.tcpCounters.smallQueueThrottles > 0)
        #expect(p.stack.softirq.count(.tasklet) > 0)
        // Everything freed: the charges the GSO segments took add up to what was charged.
        _ = p.advance(by: 10 * Time.millisecond)
        #expect(p.stack.tcpBytesBelow(s) == 0)
        #expect(try p.stack.memoryInfo(fd).get().sendAllocated == 0)
    }

    /// With Linux's 4 MiB cap the limit is about 1 ms at the pacing rate: this sender's ACKs
    /// come back well within that, so far more than the small limit above goes below and it is
    /// never held back.
    @Test func theDefaultLimitIsAMillisecondAtThePacingRate() throws {
        let (p, fd, s) = Self.connection(limit: 4 << 20)
        let r = Self.transfer(p, fd, s, total: 2 << 20)
        #expect(r.delivered == 2 << 20)
        #expect(r.peakBelow > 128 * 1024 + 65_536 + tcpBufferOverhead)
        #expect(r.peakBelow <= min(4 << 20, Int(s.pacingRate >> 10)) + 65_536 + tcpBufferOverhead)
        #expect(p.stack.tcpCounters.smallQueueThrottles == 0)
    }

    /// A device that orphans on transmit (tun, veth): a frame's charge goes when it is put on
    /// the ring, so only the qdisc counts, and with a fast NIC the sender is never held back.
    @Test func aDeviceThatOrphansOnTransmitCountsOnlyTheQdisc() throws {
        let (p, fd, s) = Self.connection(limit: 128 * 1024, orphans: true)
        let r = Self.transfer(p, fd, s, total: 1 << 20)
        #expect(r.delivered == 1 << 20)
        #expect(r.peakBelow <= r.peakQdisc + 65_536 + tcpBufferOverhead)
        _ = p.advance(by: 10 * Time.millisecond)
        #expect(p.stack.tcpBytesBelow(s) == 0)
    }

    /// A socket aborted while it is throttled and its frames are still on the ring: the charge
    /// outlives the socket and is freed when the NIC completes them, nothing more is sent for
    /// the dead socket, and the stack goes on serving a new connection.
    @Test func aSocketAbortedWhileThrottledLeavesNothingBehind() throws {
        let p: TCPPeer, fd: Int32
        weak var socket: TCPSocket?
        let before: Int
        do {
            let (p0, fd0, s) = Self.connection(limit: 16 * 1024)
            p = p0; fd = fd0; socket = s
            before = p.stack.transmitCompletions.liveCharges   // the handshake made this socket's
            // The first window goes, the peer acknowledges it, more goes out at once than the
            // 16 KiB limit allows, and TCP waits for the NIC.
            #expect(p.write(fd, Lab.pattern(400_000)) == .success(400_000))
            var steps = 0
            while p.stack.tcpCounters.smallQueueThrottles == 0 && steps < 200 {
                steps += 1
                let segs = p.take()
                for seg in segs where seg.length > 0 { p.absorb(seg) }
                if segs.contains(where: { $0.length > 0 }) { p.ackTo() }
            }
            let charge = try #require(s.transmitCharge)
            #expect(charge.pointee.throttled)
            #expect(p.stack.tcpBytesBelow(s) > 16 * 1024)
        }
        #expect(p.stack.setOption(fd, .linger(on: true, seconds: 0)) == nil)
        #expect(p.stack.close(fd, now: p.now) == nil)   // RST; the socket goes away with frames below it
        #expect(socket == nil)
        _ = p.take()
        let after = p.advance(by: 10 * Time.millisecond)
        #expect(after.allSatisfy { $0.length == 0 })   // no data for the dead socket
        #expect(p.host.dev.txQueues[0].ring.unused == p.host.dev.txQueues[0].ring.size - 1)
        #expect(p.stack.transmitCompletions.liveCharges == before - 1)   // the orphaned charge was freed
        #expect(p.stack.transmitCompletions.isEmpty)
        // A new connection on the same stack transfers as before.
        let q = TCPPeer(host: p.host, port: 40_001, hostPort: 81)
        let l = q.listen()
        q.send(.syn, options: q.linuxSynOptions())
        let synAck = q.take()
        #expect(synAck.count == 1)
        if let sa = synAck.first { q.absorb(sa) }
        q.send(.ack)
        guard case let .success((fd2, _)) = p.stack.accept(l), let s2 = p.stack.tcpInfoSocket(fd2) else {
            Issue.record("not accepted"); return
        }
        let r = Self.transfer(q, fd2, s2, total: 300_000)
        #expect(r.delivered == 300_000)
    }

    /// Settings out of range (a negative limit, one too large to double) are clamped: every byte
    /// still arrives, with TCP held back at every buffer or never.
    @Test func outOfRangeLimitsStillDeliverEverything() throws {
        for limit in [-5, 0, Int.max] {
            let (p, fd, s) = Self.connection(limit: limit)
            let r = Self.transfer(p, fd, s, total: 300_000)
            #expect(r.delivered == 300_000, "limit \(limit)")
            _ = p.advance(by: 10 * Time.millisecond)
            #expect(p.stack.tcpBytesBelow(s) == 0, "limit \(limit)")
        }
    }

    /// Charges belong to the buffer that was charged: a clone carries none, an orphaned buffer
    /// gives its charge back at once, and a freed one at its end.
    @Test func chargesFollowTheBufferNotItsClones() throws {
        let stack = NetworkStack(name: "charges")
        let t = TCPSocket(handle: 7, timers: &stack.timers)
        guard var b = stack.pool.allocate(size: 1000) else { Issue.record("pool"); return }
        stack.tcpChargeTransmit(t, &b, bytes: 2280)
        #expect(stack.tcpBytesBelow(t) == 2280)
        let c = b.clone()
        #expect(c.chargedToSocket == 0 && b.chargedToSocket == 2280)
        _ = consume c
        #expect(stack.tcpBytesBelow(t) == 2280)
        var d = b.clone()
        stack.tcpChargeTransmit(t, &d, bytes: 500)
        #expect(stack.tcpBytesBelow(t) == 2780)
        d.orphan()
        #expect(stack.tcpBytesBelow(t) == 2280 && d.chargedToSocket == 0)
        _ = consume b
        #expect(stack.tcpBytesBelow(t) == 0)
        _ = consume d
        #expect(stack.transmitCompletions.isEmpty)   // not throttled: nobody to wake
    }
}
