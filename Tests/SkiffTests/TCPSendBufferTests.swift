import Testing
@testable import Skiff
import SkiffWire

/// Send-buffer accounting as packetdrill's notsent_lowat and epoll scripts pin it down: a peer
/// with MSS 1000 and a window of 257 << 7 (so 16-segment buffers), `tcp_wmem[1]` 50000 and
/// `tcp_min_tso_segs` 10, as traces against `TCPPeer`.
@Suite struct TCPSendBufferTests {
    static let ms = Time.millisecond

    static func connection(wmem: Int = 50_000) -> (TCPPeer, Int32, TCPSocket) {
        TCPPeer.established(sack: true, timestamps: false, windowScale: 7, mss: 1000, rtt: 20 * ms,
                            window: 257, offloads: true) { stack in
            stack.tcpConfig.sendMemory = (4096, wmem, 4_194_304)
            stack.tcpConfig.minTSOSegments = 10
        }
    }

    /// notsent-lowat-default.pkt: the first 16000-byte buffer goes out at once (10 segments, the
    /// initial window) and its rest takes 10000 more; two more buffers fit under 50000 bytes of
    /// truesize, a fourth does not: 58000 of 59000 are taken, and the socket is not writable.
    @Test func aWriteStopsWhereTheSendBufferIsFull() throws {
        let (p, fd, s) = Self.connection()
        #expect(s.sendBufferSize == 50_000)   // tcp_sndbuf_expand wants 46080: less
        #expect(p.write(fd, Lab.pattern(59_000)) == .success(58_000))
        let out = p.take().filter { $0.length > 0 }
        #expect(out.reduce(0) { $0 + $1.length } == 10_000)
        // Every buffer queued, sent or not, is charged its head: the four the write took, plus
        // the pieces tcp_cwnd_test's half-cwnd quota split off the first (tcp_fragment charges
        // the new skb).
        let buffers = s.writeQueue.count + s.retransmitQueue.count
        #expect(buffers >= 4)
        #expect(s.queuedBytes == 58_000 + buffers * tcpBufferOverhead)
        #expect(!p.stack.poll(fd).contains(.writable))
        #expect(p.write(fd, Lab.pattern(1000)) == .failure(.EAGAIN))
    }

    /// notsent-lowat-setsockopt.pkt: with TCP_NOTSENT_LOWAT 4000 no new buffer is taken while
    /// 4000 or more bytes are unsent: the first buffer and the 10000 bytes its rest takes.
    @Test func notSentLowatStopsAWriteEarly() throws {
        let (p, fd, s) = Self.connection(wmem: 262_144)
        #expect(p.stack.setOption(fd, .notSentLowat(4000)) == nil)
        #expect(p.write(fd, Lab.pattern(59_000)) == .success(26_000))
        #expect(s.unsentBytes == 16_000)
        #expect(!p.stack.poll(fd).contains(.writable))
        // An ACK that lets only part of the rest go leaves it unwritable; once fewer than half
        // the mark (2000) are unsent, it is writable again.
        p.host.advance(by: 20 * Self.ms)
        p.ackTo(s.sndUna &+ 2000)
        _ = p.take()
        #expect(s.unsentBytes >= 2000)
        #expect(!p.stack.poll(fd).contains(.writable))
        for _ in 0..<3 {
            p.host.advance(by: 20 * Self.ms)
            p.ackTo(s.sndNxt)
            _ = p.take()
        }
        #expect(s.unsentBytes == 0)
        #expect(p.stack.poll(fd).contains(.writable))
    }

    /// epoll_out_edge.pkt: with EPOLLET, EPOLLOUT is reported once when registered, not after a
    /// write that filled the buffer, not for an ACK that frees too little, once for the ACK that
    /// makes the socket writable (the write-space wake-up), and not again until a writer finds
    /// the buffer full once more.
    @Test func epollOutEdgesFollowWriteSpaceWakeUps() throws {
        let (p, fd, s) = Self.connection()
        #expect(p.stack.setOption(fd, .notSentLowat(-1)) == nil)   // 0xffffffff: no limit
        let ep = p.stack.epollCreate()
        #expect(p.stack.epollControl(ep, .add, fd, events: [.readable, .writable], edgeTriggered: true) == nil)
        func wait() -> [EpollEvent] { (try? p.stack.epollWait(ep, maxEvents: 1).get()) ?? [] }
        #expect(wait().map(\.events) == [[.writable]])
        #expect(wait().isEmpty)
        #expect(p.write(fd, Lab.pattern(59_000)) == .success(58_000))
        #expect(wait().isEmpty)
        let base = s.sndUna
        p.ackTo(base &+ 10_000)
        _ = p.take()
        #expect(wait().isEmpty)                 // cwnd full: the buffer did not grow
        p.ackTo(base &+ 26_000)
        _ = p.take()
        #expect(s.sendBufferSize > 50_000)      // tcp_sndbuf_expand with cwnd 36
        #expect(wait().map(\.events) == [[.writable]])
        #expect(wait().isEmpty)
        // Another ACK frees more, but no writer is waiting: no new edge.
        p.ackTo(s.sndNxt)
        _ = p.take()
        #expect(wait().isEmpty)
    }

    /// SO_SNDBUF pins the buffer (Linux: SOCK_SNDBUF_LOCK): ACKs no longer grow it.
    @Test func setSendBufferStopsGrowth() throws {
        let (p, fd, s) = Self.connection()
        #expect(p.stack.setOption(fd, .sendBuffer(21_000)) == nil)
        #expect(s.sendBufferSize == 42_000)
        let n = try p.write(fd, Lab.pattern(100_000)).get()
        #expect(n < 100_000)
        for _ in 0..<4 {
            p.ackTo(s.sndNxt)
            _ = p.take()
        }
        #expect(s.sendBufferSize == 42_000)
    }

    /// TCP_NOTSENT_LOWAT takes any int as Linux's u32 (-1 is 0xffffffff, no limit) and reads
    /// back the same; 0 falls back to the sysctl. A negative SO_SNDBUF is EINVAL.
    @Test func malformedBufferOptionValues() throws {
        let (p, fd, _) = Self.connection()
        #expect(p.stack.setOption(fd, .notSentLowat(-1)) == nil)
        #expect(try p.stack.option(fd, .notSentLowat).get() == .int(Int(UInt32.max)))
        #expect(p.stack.setOption(fd, .notSentLowat(Int(Int32.min))) == nil)
        #expect(try p.stack.option(fd, .notSentLowat).get() == .int(0x8000_0000))
        #expect(p.stack.setOption(fd, .notSentLowat(0)) == nil)
        #expect(p.stack.notSentLowat(p.stack.tcpInfoSocket(fd)!) == p.stack.tcpConfig.notSentLowat)
        #expect(p.stack.setOption(fd, .sendBuffer(-5)) == .EINVAL)
        #expect(p.stack.setOption(999, .notSentLowat(1)) == .EBADF)
    }
}

/// TCP_INQ (inq/server.pkt): after each read, the bytes still to read; 1 once the peer's FIN has
/// come and everything is read, so the reader goes on to the end of stream.
@Suite struct TCPReceiveQueueHintTests {
    @Test func inqCountsWhatIsLeftAndTheFin() throws {
        let (p, fd, _) = TCPPeer.established()
        #expect(p.stack.receiveQueueHint(fd) == nil)          // off by default
        #expect(try p.stack.option(fd, .receiveQueueHint).get() == .bool(false))
        #expect(p.stack.setOption(fd, .receiveQueueHint(1)) == nil)
        #expect(try p.stack.option(fd, .receiveQueueHint).get() == .bool(true))
        p.send([.ack, .psh], payload: Lab.pattern(1000))
        #expect(try p.read(fd, max: 200).get().count == 200)
        #expect(p.stack.receiveQueueHint(fd) == 800)
        #expect(try p.read(fd).get().count == 800)
        #expect(p.stack.receiveQueueHint(fd) == 0)
        p.send([.ack, .fin], payload: Lab.pattern(500))
        #expect(try p.read(fd).get().count == 500)
        #expect(p.stack.receiveQueueHint(fd) == 1)
        #expect(p.stack.setOption(fd, .receiveQueueHint(0)) == nil)
        #expect(p.stack.receiveQueueHint(fd) == nil)
    }

    @Test func inqTakesOnlyZeroOrOne() throws {
        let (p, fd, _) = TCPPeer.established()
        #expect(p.stack.setOption(fd, .receiveQueueHint(2)) == .EINVAL)
        #expect(p.stack.setOption(fd, .receiveQueueHint(-1)) == .EINVAL)
        #expect(try p.stack.option(fd, .receiveQueueHint).get() == .bool(false))
        #expect(p.stack.setOption(fd, .receiveQueueHint(1)) == nil)
    }
}

/// TCP_INFO's chronographs and reordering degree, as packetdrill's tcp_info and sack scripts
/// read them.
@Suite struct TCPInfoChronoTests {
    static let ms = Time.millisecond

    /// tcp-info-rwnd-limited.pkt: data held back by a zero window counts as receive-window-limited
    /// time until the window opens; the busy time runs while data is queued and stops once all
    /// of it is acknowledged.
    @Test func zeroWindowTimeIsReceiveWindowLimited() throws {
        let (p, fd, s) = TCPPeer.established(rtt: 10 * Self.ms, window: 0)
        #expect(try p.stack.tcpInfo(fd).get().receiveWindowLimited == 0)
        p.write(fd, Lab.pattern(1000))
        #expect(p.take().filter { $0.length > 0 }.isEmpty)
        p.host.advance(by: 100 * Self.ms)
        _ = p.take()
        var info = try p.stack.tcpInfo(fd).get()
        #expect(info.receiveWindowLimited == 100 * Self.ms)
        #expect(info.busyTime == 100 * Self.ms)
        p.ackTo(s.sndUna, window: 2000)     // the window opens: the data goes
        #expect(p.take().contains { $0.length == 1000 })
        p.host.advance(by: 30 * Self.ms)
        info = try p.stack.tcpInfo(fd).get()
        #expect(info.receiveWindowLimited == 100 * Self.ms)
        #expect(info.busyTime == 130 * Self.ms)
        p.ackTo(s.sndNxt, window: 2000)     // all acknowledged: the clock stops
        p.host.advance(by: 50 * Self.ms)
        info = try p.stack.tcpInfo(fd).get()
        #expect(info.busyTime == 130 * Self.ms)
        #expect(info.sendBufferLimited == 0)
    }

    /// sack-shift-sacked-2-6-8-3-9-nofack.pkt: after SACKs for segments 3, 7 and 9 (of ten),
    /// a SACK for segment 4 shows it arrived after data up to 9001: reordering of 6 segments
    /// (Linux: tcp_check_sack_reordering).
    @Test func aLateSackRaisesTheReorderingDegree() throws {
        let (p, fd, s) = TCPPeer.established(timestamps: false, mss: 1000, rtt: 100 * Self.ms)
        let base = s.sndNxt
        p.write(fd, Lab.pattern(10_000))
        _ = p.take()
        #expect(try p.stack.tcpInfo(fd).get().reordering == 3)
        func blk(_ a: Int, _ b: Int) -> SACKBlock { SACKBlock(left: base &+ UInt32(a), right: base &+ UInt32(b)) }
        p.host.advance(by: 100 * Self.ms)
        p.ackTo(base, sack: [blk(2000, 3000)])
        p.ackTo(base, sack: [blk(2000, 3000), blk(6000, 7000)])
        p.ackTo(base, sack: [blk(2000, 3000), blk(6000, 7000), blk(8000, 9000)])
        #expect(try p.stack.tcpInfo(fd).get().reordering == 3)
        p.ackTo(base, sack: [blk(2000, 4000), blk(6000, 7000), blk(8000, 9000)])
        #expect(try p.stack.tcpInfo(fd).get().reordering == 6)
    }
}
