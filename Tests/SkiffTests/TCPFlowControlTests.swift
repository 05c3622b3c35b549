import Testing
@testable import Skiff
import SkiffSim
import SkiffWire

/// Nagle, TCP_NODELAY, MSG_MORE / TCP_CORK, delayed ACKs, and the receive window: a full
/// window, zero-window probes with backoff, and the window reopening. Segment traces against a
/// scripted peer, plus two simulated hosts for the end-to-end case.
@Suite struct TCPFlowControlTests {
    static let ms = Time.millisecond

    // MARK: Nagle

    @Test func nagleCoalescesSmallWritesWhileDataIsUnacked() throws {
        let (p, fd, s) = TCPPeer.established()
        let base = s.sndNxt
        #expect(p.write(fd, Lab.pattern(100, seed: 1)) == .success(100))
        let first = p.take()
        try #require(first.count == 1)
        #expect(first[0].seq == base && first[0].length == 100 && first[0].flags == [.ack, .psh])
        // Two more small writes while the first is unacknowledged: held (RFC 9293 §3.7.4, Minshall).
        #expect(p.write(fd, Lab.pattern(100, seed: 2)) == .success(100))
        #expect(p.write(fd, Lab.pattern(100, seed: 3)) == .success(100))
        #expect(p.take().isEmpty)
        // The ACK releases them as one segment.
        p.host.advance(by: 10 * Self.ms)
        p.ackTo(base &+ 100)
        let second = p.take()
        try #require(second.count == 1)
        #expect(second[0].seq == base &+ 100 && second[0].length == 200)
        #expect(second[0].payload == Lab.pattern(100, seed: 2) + Lab.pattern(100, seed: 3))
        // A full-sized segment is never held; only the small tail waits.
        #expect(p.write(fd, Lab.pattern(1448 + 10, seed: 4)) == .success(1458))
        let third = p.take()
        #expect(third.map(\.length) == [1448])
        #expect(third.first?.seq == base &+ 300)
        p.ackTo(base &+ 300 &+ 1448)
        let tail = p.take()
        #expect(tail.map(\.length) == [10] && tail.first?.seq == base &+ 1748)
    }

    @Test func noDelaySendsEverySmallWriteAtOnce() throws {
        let (p, fd, s) = TCPPeer.established()
        #expect(p.stack.setOption(fd, .noDelay(true), now: p.now) == nil)
        let base = s.sndNxt
        for i in 0..<4 { #expect(p.write(fd, Lab.pattern(50, seed: i)) == .success(50)) }
        let out = p.take()
        #expect(out.map(\.length) == [50, 50, 50, 50])
        #expect(out.map(\.seq) == [base, base &+ 50, base &+ 100, base &+ 150])
        #expect(out.allSatisfy { $0.flags == [.ack, .psh] })
        #expect(s.packetsOut == 4)
    }

    @Test func settingNoDelayPushesWhatNagleHeld() throws {
        let (p, fd, s) = TCPPeer.established()
        let base = s.sndNxt
        p.write(fd, Lab.pattern(10))
        p.write(fd, Lab.pattern(20))
        #expect(p.take().map(\.length) == [10])
        #expect(p.stack.setOption(fd, .noDelay(true), now: p.now) == nil)
        let out = p.take()
        #expect(out.map(\.length) == [20] && out.first?.seq == base &+ 10)
    }

    @Test func msgMoreHoldsAPartialSegmentUntilAWriteWithoutIt() throws {
        let (p, fd, s) = TCPPeer.established()
        let base = s.sndNxt
        #expect(p.write(fd, Lab.pattern(100), flags: .more) == .success(100))
        #expect(p.write(fd, Lab.pattern(100), flags: .more) == .success(100))
        #expect(p.take().isEmpty)
        #expect(p.write(fd, Lab.pattern(50)) == .success(50))
        let out = p.take()
        try #require(out.count == 1)
        #expect(out[0].seq == base && out[0].length == 250 && out[0].flags == [.ack, .psh])
        // With MSG_MORE, full segments still go; the PSH waits for the last write.
        #expect(p.write(fd, Lab.pattern(3000), flags: .more) == .success(3000))
        let full = p.take()
        #expect(full.map(\.length) == [1448, 1448])
        #expect(full.allSatisfy { $0.flags == .ack })
    }

    @Test func corkHoldsPartialSegmentsUntilUncorked() throws {
        let (p, fd, s) = TCPPeer.established()
        let base = s.sndNxt
        #expect(p.stack.setOption(fd, .cork(true), now: p.now) == nil)
        #expect(p.write(fd, Lab.pattern(1000)) == .success(1000))
        #expect(p.take().isEmpty)
        #expect(p.write(fd, Lab.pattern(1000)) == .success(1000))
        // One full segment is out; 552 bytes wait.
        let full = p.take()
        #expect(full.map(\.length) == [1448] && full.first?.seq == base)
        p.host.advance(by: 10 * Self.ms)
        p.ackTo(base &+ 1448)
        #expect(p.take().filter { $0.length > 0 }.isEmpty)
        #expect(p.stack.setOption(fd, .cork(false), now: p.now) == nil)
        let rest = p.take()
        #expect(rest.map(\.length) == [552] && rest.first?.seq == base &+ 1448)
        #expect(rest.first?.flags == [.ack, .psh])
    }

    @Test func corkedDataWithNothingInFlightGoesOutWhenTheProbeTimerFires() throws {
        // Linux: a corked partial segment arms the probe timer (tcp_check_probe_timer); when it
        // fires, tcp_write_wakeup sends what the window allows — TCP_CORK's 200 ms ceiling.
        let (p, fd, s) = TCPPeer.established()
        let base = s.sndNxt
        #expect(p.stack.setOption(fd, .cork(true), now: p.now) == nil)
        let t0 = p.now
        #expect(p.write(fd, Lab.pattern(100)) == .success(100))
        #expect(p.advance(by: 209 * Self.ms).isEmpty)
        let out = p.advance(by: 1 * Self.ms)
        try #require(out.count == 1)
        #expect(out[0].seq == base && out[0].length == 100 && out[0].time == t0 + 210 * Self.ms)   // RTO: 10 ms + 200 ms
    }

    // MARK: Delayed ACK

    @Test func delayedAcksFollowQuickAckModeThenTwoFullSegmentsOrFortyMilliseconds() throws {
        let (p, fd, s) = TCPPeer.established()
        _ = fd
        // Quick-ACK mode first (Linux: up to 16 ACKs at once while the connection starts).
        for i in 0..<16 {
            p.send([.ack, .psh], payload: Lab.pattern(1448, seed: i))
            let out = p.take()
            #expect(out.count == 1 && out.first?.isPureAck == true && out.first?.ack == p.seq, "segment \(i)")
        }
        // Then one segment waits for the 40 ms delayed-ACK timer.
        let t = p.now
        p.send([.ack, .psh], payload: Lab.pattern(1448))
        #expect(p.take().isEmpty)
        #expect(p.advance(by: 39 * Self.ms).isEmpty)
        let delayed = p.advance(by: 1 * Self.ms)
        #expect(delayed.count == 1 && delayed.first?.ack == p.seq && delayed.first?.time == t + 40 * Self.ms)
        #expect(p.stack.tcpCounters.delayedAcks == 1)
        // Two full segments: ACKed at once on the second (RFC 5681 §4.2; Linux: more than one rcv_mss unacked).
        p.send([.ack], payload: Lab.pattern(1448))
        #expect(p.take().isEmpty)
        p.send([.ack], payload: Lab.pattern(1448))
        let two = p.take()
        #expect(two.count == 1 && two.first?.ack == p.seq)
        // Two small segments are less than one MSS: still delayed (Linux counts bytes, not segments).
        p.send([.ack, .psh], payload: Lab.pattern(100))
        p.send([.ack, .psh], payload: Lab.pattern(100))
        #expect(p.take().isEmpty)
        let late = p.advance(by: 40 * Self.ms)
        #expect(late.count == 1 && late.first?.ack == p.seq)
        #expect(s.rcvNxt == p.seq)
    }

    @Test func outOfOrderDataIsAckedAtOnceWithSACKBlocksAndTheFillingSegmentToo() throws {
        let (p, _, s) = TCPPeer.established()
        let start = p.seq
        // Skip quick-ACK mode so only the out-of-order rule can explain an immediate ACK.
        s.quickAcks = 0
        p.send([.ack], seq: start &+ 1448, payload: Lab.pattern(1448), advance: false)
        let dup = p.take()
        try #require(dup.count == 1)
        #expect(dup[0].ack == start)
        #expect(dup[0].options.sackBlocks.map { [$0.left, $0.right] } == [[start &+ 1448, start &+ 2896]])
        // Two holes: blocks most recent first (RFC 2018 §4).
        p.send([.ack], seq: start &+ 4344, payload: Lab.pattern(1448), advance: false)
        let dup2 = try #require(p.take().first)
        #expect(dup2.options.sackBlocks.map { [$0.left, $0.right] } == [[start &+ 4344, start &+ 5792], [start &+ 1448, start &+ 2896]])
        // The first hole filled: ACK at once, one block left.
        p.send([.ack], seq: start, payload: Lab.pattern(1448), advance: false)
        let fill = try #require(p.take().first)
        #expect(fill.ack == start &+ 2896)
        #expect(fill.options.sackBlocks.map { [$0.left, $0.right] } == [[start &+ 4344, start &+ 5792]])
        // An old segment again: D-SACK (RFC 2883) as the first block.
        p.send([.ack], seq: start, payload: Lab.pattern(1448), advance: false)
        let d = try #require(p.take().first)
        #expect(d.options.sackBlocks.map { [$0.left, $0.right] } == [[start, start &+ 1448], [start &+ 4344, start &+ 5792]])
        #expect(p.stack.tcpCounters.dsackSent == 1)
    }

    @Test func aPartlyOldSegmentIsTakenAndItsOldHeadDSacked() throws {
        let (p, fd, s) = TCPPeer.established()
        let start = p.seq
        p.send([.ack, .psh], payload: Lab.pattern(1000))
        _ = p.take()
        // 600 old bytes and 400 new ones: the new ones are queued, the old part D-SACKed (Linux).
        p.send([.ack, .psh], seq: start &+ 400, payload: Array(Lab.pattern(1400)[400...]), advance: false)
        let ack = try #require(p.take().first)
        #expect(ack.ack == start &+ 1400)
        #expect(ack.options.sackBlocks.map { [$0.left, $0.right] } == [[start &+ 400, start &+ 1000]])
        #expect(s.rcvNxt == start &+ 1400)
        #expect(p.read(fd) == .success(Lab.pattern(1400)))
    }

    @Test func aReceiverAtAClosedWindowDropsInOrderDataAndNeverShrinksItsWindow() throws {
        let p = TCPPeer()
        let l = p.listen()
        #expect(p.stack.setOption(l, .receiveBuffer(4096), now: p.now) == nil)
        let (fd, sa) = p.connectToListener(l)
        let s = try #require(p.stack.tcpInfoSocket(fd))
        s.quickAcks = 100   // every segment ACKed at once, so each window is seen
        // 4 KiB of buffer space: the SYN-ACK offers two segments' worth (2 × 1448).
        #expect(sa.window == 2896)
        var rightEdge = p.seq &+ 2896
        var edges: [UInt32] = []
        var sent = 0
        for _ in 0..<20 {
            let allowed = Int(Int32(bitPattern: rightEdge &- p.seq))
            if allowed <= 0 { break }
            let n = min(1448, allowed)
            p.send([.ack, .psh], payload: Lab.pattern(n, seed: sent))
            sent += n
            let ack = try #require(p.take().last)
            let edge = ack.ack &+ (UInt32(ack.window) << 7)
            // The right edge never moves left (RFC 9293 §3.8.6.2.1).
            #expect(Int32(bitPattern: edge &- rightEdge) >= 0)
            rightEdge = edge
            edges.append(edge)
        }
        #expect(s.receiveQueueBytes == sent && sent >= 2896)
        #expect(rightEdge == p.seq)
        // The window is shut. In-order data now is dropped and answered with window 0 (Linux:
        // tcp_sequence refuses data past the window while the receive queue holds data).
        p.send([.ack, .psh], payload: Lab.pattern(500), advance: false)
        let zero = try #require(p.take().first)
        #expect(zero.window == 0 && zero.ack == p.seq)
        #expect(p.stack.tcpCounters.outOfWindow == 1 && s.receiveQueueBytes == sent)
        // Reading everything reopens it with a window update.
        let got = try p.read(fd).get()
        #expect(got.count == sent)
        let update = try #require(p.take().first)
        #expect(update.isPureAck && update.window > 0)
        p.send([.ack, .psh], payload: Lab.pattern(500))
        #expect(s.receiveQueueBytes == 500)
    }

    // MARK: Zero window

    /// A connection whose peer advertises an unscaled window of `window` bytes.
    static func smallWindow(_ window: UInt16) -> (TCPPeer, Int32, TCPSocket) {
        TCPPeer.established(windowScale: nil, window: window)
    }

    @Test func senderStopsAtTheOfferedWindowAndProbesAZeroWindowWithBackoff() throws {
        let (p, fd, s) = Self.smallWindow(3000)
        let base = s.sndNxt
        #expect(p.write(fd, Lab.pattern(10_000)) == .success(10_000))
        let out = p.take()
        // Only what fits the 3000-byte window: two full segments (a third would end past it).
        #expect(out.map(\.length) == [1448, 1448])
        p.host.advance(by: 10 * Self.ms)
        // The peer takes them but its buffer is full: window 0.
        p.ackTo(base &+ 2896, window: 0)
        #expect(p.take().isEmpty)
        #expect(s.sndWnd == 0 && s.packetsOut == 0)
        let t0 = p.now
        // Probes: a bare ACK one below snd_una (RFC 9293 §3.8.6.1; Linux tcp_xmit_probe_skb), first
        // after one RTO (210 ms), then doubling; the peer answers each with its zero window.
        var times: [Nanoseconds] = []
        for _ in 0..<200 {
            let probes = p.advanceToNextTimer().filter { $0.length == 0 && $0.flags == .ack }
            for pr in probes {
                #expect(pr.seq == base &+ 2896 &- 1 && pr.ack == p.seq)
                times.append(pr.time - t0)
                p.ackTo(base &+ 2896, window: 0)
            }
            if times.count >= 12 { break }
        }
        let rto: Nanoseconds = 210 * Self.ms
        var expected: [Nanoseconds] = []
        var at: Nanoseconds = 0, interval = rto
        for _ in 0..<12 {
            at += interval
            expected.append(at)
            interval = min(interval * 2, 120 * Time.second)
        }
        #expect(Array(times.prefix(12)) == expected)
        // An answering peer keeps the connection alive however long the window stays shut
        // (Linux resets icsk_probes_out on every ACK): well past tcp_retries2 = 15 probes.
        #expect(s.state == .established && s.pendingError == nil)
        #expect(p.stack.tcpCounters.zeroWindowProbes >= 12)
        // The window opens: the rest goes at once.
        p.ackTo(base &+ 2896, window: 20_000)
        let rest = p.take()
        #expect(rest.map(\.length) == [1448, 1448, 1448, 1448, 1312])
        #expect(rest.first?.seq == base &+ 2896)
        // And the backoff is over: a lost segment now is retransmitted after the plain RTO.
        #expect(s.rtt.backoffCount == 0)
    }

    @Test func unansweredZeroWindowProbesTimeOutAfterRetries2() throws {
        let (p, fd, s) = Self.smallWindow(1448)
        let base = s.sndNxt
        p.write(fd, Lab.pattern(5000))
        #expect(p.take().map(\.length) == [1448])
        p.host.advance(by: 10 * Self.ms)
        p.ackTo(base &+ 1448, window: 0)
        var probes = 0
        for _ in 0..<40 {
            probes += p.advance(by: 120 * Time.second).filter { $0.length == 0 && $0.flags == .ack }.count
            if s.state == .closed { break }
        }
        // tcp_retries2 = 15 probes without an answer, then ETIMEDOUT.
        #expect(probes == 15)
        #expect(s.state == .closed)
        #expect(p.read(fd) == .failure(.ETIMEDOUT))
    }

    @Test func aWindowSmallerThanTheNextSegmentIsFilledByTheProbe() throws {
        // Linux (tcp_write_wakeup): when the window is open but too small for the next segment,
        // the probe timer sends as much of it as fits.
        let (p, fd, s) = Self.smallWindow(2000)
        let base = s.sndNxt
        p.write(fd, Lab.pattern(4000))
        #expect(p.take().map(\.length) == [1448])
        p.host.advance(by: 10 * Self.ms)
        p.ackTo(base &+ 1448, window: 1000)
        #expect(p.take().isEmpty)
        let probe = p.advance(by: 210 * Self.ms)
        #expect(probe.map(\.length) == [1000])
        #expect(probe.first?.seq == base &+ 1448)
        // The split-off 448 bytes go; the 1104-byte tail waits for them (Nagle, as Linux).
        p.ackTo(base &+ 2448, window: 5000)
        let next = p.take()
        #expect(next.map(\.length) == [448] && next.first?.seq == base &+ 2448)
        p.ackTo(base &+ 2896, window: 5000)
        #expect(p.take().map(\.length) == [1104])
    }

    @Test func aReceiverThatDoesNotReadClosesItsWindowAndReadingReopensIt() throws {
        let s = Scenarios.switchedPair(impairments: Impairments(delay: 50 * Time.microsecond))
        let l = try s.b.socket().get()
        #expect(s.b.bind(l, SocketAddress(.any, 9000)) == nil)
        #expect(s.b.listen(l, backlog: 4) == nil)
        let c = try s.a.socket().get()
        #expect(s.a.connect(c, SocketAddress(Scenarios.SwitchedPair.bAddress, 9000), now: s.world.now) == .EINPROGRESS)
        var accepted: Int32 = -1
        s.world.run(limit: s.world.now + Time.second) {
            if case let .success((fd, _)) = s.b.accept(l) { accepted = fd }
            return accepted >= 0 && s.a.tcpState(c) == .established
        }
        try #require(accepted >= 0)
        let total = 4 << 20
        var sent = 0
        let data = (0..<total).map { transferPattern($0, seed: 5) }
        func pump() {
            while sent < total {
                let r = data[sent...].withUnsafeBytes { s.a.send(c, UnsafeRawBufferPointer(rebasing: $0.prefix(65536)), now: s.world.now) }
                guard case let .success(n) = r else { break }
                sent += n
            }
        }
        // Phase 1: B never reads. A fills B's buffer, then sees a zero window and probes.
        s.world.run(limit: s.world.now + 5 * Time.second) { pump(); return false }
        let a = try #require(s.a.tcpInfoSocket(c)), b = try #require(s.b.tcpInfoSocket(accepted))
        #expect(a.sndWnd == 0)
        #expect(s.a.tcpCounters.zeroWindowProbes >= 3)
        #expect(b.receiveQueueBytes > 0 && b.receiveQueueBytes <= b.receiveBufferSize)
        let buffered = b.receiveQueueBytes
        #expect(a.state == .established && b.state == .established)
        #expect(s.a.tcpCounters.retransSegs == 0)
        // Phase 2: B reads everything; the window reopens and the transfer completes intact.
        var got: [UInt8] = []
        got.reserveCapacity(total)
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        let done = s.world.run(limit: s.world.now + 60 * Time.second) {
            pump()
            while true {
                let r = buf.withUnsafeMutableBytes { s.b.recv(accepted, into: $0, now: s.world.now) }
                guard case let .success(n) = r, n > 0 else { break }
                got.append(contentsOf: buf[0..<n])
            }
            return got.count == total
        }
        #expect(done)
        #expect(buffered > 0)
        var h1 = SHA256(), h2 = SHA256()
        h1.update(data); h2.update(got)
        #expect(h1.hexDigest() == h2.hexDigest())
    }
}
