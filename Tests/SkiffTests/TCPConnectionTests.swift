import Testing
@testable import Skiff
import SkiffSim
import SkiffWire

/// Closing and TIME-WAIT, every RST case (RFC 9293, RFC 5961), challenge-ACK limits, SYN
/// cookies under a flood, and hostile segments — segment traces against a scripted peer.
@Suite struct TCPConnectionTests {
    static let ms = Time.millisecond

    // MARK: Close and TIME-WAIT

    /// The host closes first; the peer ACKs the FIN and sends its own. Returns the peer's FIN seq.
    static func activeClose(_ p: TCPPeer, _ fd: Int32, _ s: TCPSocket) throws -> UInt32 {
        let finSeq = s.sndNxt
        #expect(p.stack.close(fd, now: p.now) == nil)
        let fin = try #require(p.take().first)
        #expect(fin.flags == [.fin, .ack] && fin.seq == finSeq && fin.length == 0)
        #expect(s.state == .finWait1)
        p.ackTo(finSeq &+ 1)
        #expect(s.state == .finWait2)
        let peerFin = p.seq
        p.send([.fin, .ack])
        let ack = try #require(p.take().first)
        #expect(ack.isPureAck && ack.ack == peerFin &+ 1 && ack.seq == finSeq &+ 1)
        #expect(s.state == .timeWait)
        return peerFin
    }

    @Test func timeWaitLasts60SecondsAndReAcksARetransmittedFin() throws {
        let (p, fd, s) = TCPPeer.established()
        let peerFin = try Self.activeClose(p, fd, s)
        let t0 = p.now
        // 30 s later the peer's FIN again (our ACK was lost): ACKed again, TIME-WAIT restarts.
        p.host.advance(to: t0 + 30 * Time.second)
        p.send([.fin, .ack], seq: peerFin, advance: false)
        let again = p.take()
        try #require(again.count == 1)
        #expect(again[0].isPureAck && again[0].ack == peerFin &+ 1)
        p.host.advance(to: t0 + 90 * Time.second - 1)
        #expect(p.stack.tcpState(fd) == .timeWait)
        p.host.advance(to: t0 + 90 * Time.second)
        #expect(p.stack.tcpState(fd) == nil)
        #expect(p.stack.openSocketCount == 1)   // the listener
        // The 4-tuple is free: a segment for it now gets a RST.
        p.send(.ack)
        #expect(p.take().first?.flags == .rst)
    }

    @Test func anUnclosedSocketStaysClosedAfterTimeWaitSoItsHandleIsNotReused() throws {
        let (p, fd, s) = TCPPeer.established()
        #expect(p.stack.shutdown(fd, .write, now: p.now) == nil)
        let fin = try #require(p.take().first)
        p.ackTo(fin.seq &+ 1)
        p.send([.fin, .ack])
        _ = p.take()
        #expect(s.state == .timeWait)
        p.host.advance(by: 60 * Time.second)
        // Linux: the application's socket is CLOSE; the TIME-WAIT lives on without it.
        #expect(p.stack.tcpState(fd) == .closed)
        #expect(p.read(fd) == .success([]))
        #expect(p.stack.close(fd, now: p.now) == nil)
        #expect(p.stack.tcpState(fd) == nil)
    }

    @Test func anExactRstEndsTimeWaitAndAnOldAckRestartsIt() throws {
        let (p, fd, s) = TCPPeer.established()
        let peerFin = try Self.activeClose(p, fd, s)
        let t0 = p.now
        p.host.advance(to: t0 + 50 * Time.second)
        // A bare ACK at rcv_nxt: TIME-WAIT restarts (60 s from now), nothing is sent.
        p.send(.ack, seq: peerFin &+ 1, advance: false)
        #expect(p.take().isEmpty)
        p.host.advance(to: t0 + 109 * Time.second)
        #expect(p.stack.tcpState(fd) == .timeWait)
        // RST at rcv_nxt: TIME-WAIT assassination (Linux, tcp_rfc1337 = 0).
        p.send(.rst, seq: peerFin &+ 1, advance: false)
        #expect(p.stack.tcpState(fd) == nil)
    }

    @Test func aNewSynAboveTheOldSequenceReusesATimeWaitPairThroughTheListener() throws {
        // The host is the server and closes first: its TIME-WAIT holds the client's 4-tuple.
        let (p, fd, s) = TCPPeer.established()
        let peerFin = try Self.activeClose(p, fd, s)
        let oldSndNxt = s.sndNxt
        p.host.advance(by: 5 * Time.second)
        // A new SYN from the same port, above rcv_nxt (Linux: tcp_timewait_state_process → TCP_TW_SYN).
        p.seq = peerFin &+ 100_000
        p.tsVal &+= 5000
        p.send(.syn, options: p.linuxSynOptions())
        let sa = try #require(p.take().first)
        #expect(sa.flags == [.syn, .ack] && sa.ack == peerFin &+ 100_001)
        // Its ISN continues above the old connection's: snd_nxt + 65535 + 2.
        #expect(sa.seq == oldSndNxt &+ 65537)
        #expect(p.stack.tcpCounters.timeWaitRecycled == 1)
        // An old-looking SYN (below rcv_nxt, older timestamp) only gets the TIME-WAIT's ACK.
    }

    @Test func passiveCloseGoesThroughCloseWaitAndLastAck() throws {
        let (p, fd, s) = TCPPeer.established()
        p.send([.fin, .ack])
        let ack = try #require(p.take().first)
        #expect(ack.isPureAck && ack.ack == p.seq)
        #expect(s.state == .closeWait)
        #expect(p.read(fd) == .success([]))
        // A retransmitted FIN in CLOSE-WAIT is answered again.
        p.send([.fin, .ack], seq: p.seq &- 1, advance: false)
        #expect(p.take().first?.ack == p.seq)
        #expect(p.stack.close(fd, now: p.now) == nil)
        let fin = try #require(p.take().first)
        #expect(fin.flags == [.fin, .ack] && s.state == .lastAck)
        p.ackTo(fin.seq &+ 1)
        #expect(p.stack.tcpState(fd) == nil && p.stack.openSocketCount == 1)
    }

    @Test func closeWithUnreadDataSendsRstInsteadOfFin() throws {
        let (p, fd, s) = TCPPeer.established()
        p.send([.ack, .psh], payload: Lab.pattern(100))
        _ = p.take()
        let nxt = s.sndNxt
        #expect(p.stack.close(fd, now: p.now) == nil)
        let rst = try #require(p.take().first)
        // Linux (tcp_close, RFC 2525 §2.17): RST|ACK at snd_nxt.
        #expect(rst.flags == [.rst, .ack] && rst.seq == nxt && rst.ack == p.seq)
        #expect(p.stack.tcpState(fd) == nil)
    }

    // MARK: RST

    @Test func anExactRstResetsTheConnectionWithECONNRESET() throws {
        let (p, fd, s) = TCPPeer.established()
        p.send(.rst, seq: s.rcvNxt, advance: false)
        #expect(p.take().isEmpty)
        #expect(s.state == .closed)
        #expect(p.read(fd) == .failure(.ECONNRESET))
        #expect(p.stack.tcpCounters.estabResets == 1)
        #expect(p.write(fd, [1]) == .failure(.EPIPE))
    }

    @Test func anInWindowRstThatIsNotExactGetsAChallengeAck() throws {
        let (p, fd, s) = TCPPeer.established()
        _ = fd
        p.send(.rst, seq: s.rcvNxt &+ 1000, advance: false)
        let out = p.take()
        try #require(out.count == 1)
        // RFC 5961 §3.2: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>.
        #expect(out[0].isPureAck && out[0].seq == s.sndNxt && out[0].ack == s.rcvNxt)
        #expect(s.state == .established)
        #expect(p.stack.tcpCounters.challengeAcks == 1)
        // The attacker's guess was close; the real peer's next RST (exact) works.
        p.send([.rst, .ack], seq: s.rcvNxt, advance: false)
        #expect(s.state == .closed)
    }

    @Test func anOutOfWindowRstIsIgnored() throws {
        let (p, fd, s) = TCPPeer.established()
        _ = fd
        p.send(.rst, seq: s.rcvNxt &+ 0x4000_0000, advance: false)
        p.send(.rst, seq: s.rcvNxt &- 0x4000_0000, advance: false)
        #expect(p.take().isEmpty)
        #expect(s.state == .established)
        #expect(p.stack.tcpCounters.outOfWindow == 2)
    }

    @Test func rstInSynSentWithAnAcceptableAckRefusesTheConnection() throws {
        let p = TCPPeer()
        let fd = try p.stack.socket().get()
        #expect(p.stack.connect(fd, SocketAddress(Lab.aIP, 40_000), now: p.now) == .EINPROGRESS)
        let syn = try #require(p.take().first)
        p.hostPort = syn.sourcePort
        // RST without ACK, and RST with an unacceptable ACK: ignored (RFC 9293 §3.10.7.3).
        p.send(.rst, seq: 0, advance: false)
        p.send([.rst, .ack], seq: 0, ack: syn.seq &+ 7, advance: false)
        #expect(p.take().isEmpty)
        #expect(p.stack.tcpState(fd) == .synSent)
        // An ACK that is not acceptable (no RST) gets a RST <SEQ=SEG.ACK>.
        p.send(.ack, seq: 5, ack: syn.seq &+ 7, advance: false)
        let r = try #require(p.take().first)
        #expect(r.flags == .rst && r.seq == syn.seq &+ 7)
        #expect(p.stack.tcpState(fd) == .synSent)
        // RST|ACK acknowledging our SYN: refused.
        p.send([.rst, .ack], seq: 0, ack: syn.seq &+ 1, advance: false)
        #expect(p.stack.tcpState(fd) == .closed)
        #expect(p.stack.connect(fd, SocketAddress(Lab.aIP, 40_000), now: p.now) == .ECONNREFUSED)
        #expect(p.stack.tcpCounters.attemptFails == 1)
    }

    @Test func rstToASynRecvChildRemovesItQuietly() throws {
        let p = TCPPeer()
        let l = p.listen()
        p.send(.syn, options: p.linuxSynOptions())
        let sa = try #require(p.take().first)
        #expect(p.stack.openSocketCount == 2)
        p.send(.rst, seq: 1_000_001, advance: false)
        #expect(p.take().isEmpty)
        #expect(p.stack.openSocketCount == 1)
        if case .failure(let e) = p.stack.accept(l) { #expect(e == .EAGAIN) } else { Issue.record("child accepted") }
        // Its late ACK gets a RST now.
        p.absorb(sa)
        p.send(.ack)
        #expect(p.take().first?.flags == .rst)
    }

    @Test func aSynInAnEstablishedConnectionGetsAChallengeAck() throws {
        let (p, _, s) = TCPPeer.established()
        let before = s.rcvNxt
        p.send(.syn, seq: s.rcvNxt &+ 10, options: p.linuxSynOptions(), advance: false)
        let out = try #require(p.take().first)
        // RFC 5961 §4: a challenge ACK, the connection untouched.
        #expect(out.isPureAck && out.ack == before)
        #expect(s.state == .established && p.stack.tcpCounters.synChallenge == 1)
        // Out of window too.
        p.host.advance(by: Time.second)
        p.send(.syn, seq: s.rcvNxt &+ 0x2000_0000, options: p.linuxSynOptions(), advance: false)
        #expect(p.take().first?.isPureAck == true)
        #expect(p.stack.tcpCounters.synChallenge == 2 && s.state == .established)
    }

    @Test func challengeAcksAreLimitedPerConnectionAndStackWide() throws {
        let (p, _, s) = TCPPeer.established()
        // Per connection: one per tcp_invalid_ratelimit (500 ms) (Linux: __tcp_oow_rate_limited).
        for i in 1...5 { p.send(.rst, seq: s.rcvNxt &+ UInt32(i * 10), advance: false) }
        #expect(p.take().count == 1)
        #expect(p.stack.tcpCounters.challengeAcks == 1 && p.stack.tcpCounters.ackSkippedChallenge == 4)
        p.host.advance(by: 499 * Self.ms)
        p.send(.rst, seq: s.rcvNxt &+ 10, advance: false)
        #expect(p.take().isEmpty)
        p.host.advance(by: 1 * Self.ms)
        p.send(.rst, seq: s.rcvNxt &+ 10, advance: false)
        #expect(p.take().count == 1)
        // Stack-wide: tcp_challenge_ack_limit per second across connections.
        p.stack.tcpConfig.invalidRateLimit = 0
        p.stack.tcpConfig.challengeAckLimit = 3
        p.host.advance(by: Time.second)
        for i in 1...10 { p.send(.rst, seq: s.rcvNxt &+ UInt32(i * 10), advance: false) }
        #expect(p.take().count == 3)
        #expect(p.stack.tcpCounters.challengeAcksRateLimited == 7)
        p.host.advance(by: Time.second)
        p.send(.rst, seq: s.rcvNxt &+ 10, advance: false)
        #expect(p.take().count == 1)
        #expect(s.state == .established)
    }

    @Test func ackForDataNeverSentIsDroppedAndTooOldAckIsChallenged() throws {
        let (p, fd, s) = TCPPeer.established()
        p.write(fd, Lab.pattern(100))
        _ = p.take()
        let una = s.sndUna
        // SEG.ACK > SND.NXT in ESTABLISHED: dropped silently, data too (Linux: TCP_ACK_UNSENT_DATA).
        p.send([.ack, .psh], ack: s.sndNxt &+ 5000, payload: Lab.pattern(10), advance: false)
        #expect(p.take().isEmpty)
        #expect(s.rcvNxt == p.seq && s.sndUna == una)
        // Far below SND.UNA (RFC 5961 §5.2 blind injection): challenge ACK, data dropped.
        p.send([.ack, .psh], ack: una &- 0x1000_0000, payload: Lab.pattern(10), advance: false)
        let ch = try #require(p.take().first)
        #expect(ch.isPureAck && ch.ack == p.seq)
        #expect(s.rcvNxt == p.seq && p.stack.tcpCounters.challengeAcks == 1)
    }

    // MARK: SYN cookies

    @Test func aSynFloodOnASmallBacklogIsAnsweredWithCookiesAndARealClientStillConnects() throws {
        let p = TCPPeer()
        let l = p.listen(backlog: 4)
        // 60 SYNs from spoofed ports that never complete.
        for i in 0..<60 {
            let f = TCPPeer.tcpBytes(sourcePort: UInt16(10_000 + i), destinationPort: 80, seq: UInt32(7_000_000 + i * 977),
                                     ack: 0, flags: .syn, window: 65535, options: TCPOptions(maximumSegmentSize: 1460))
            p.inject(tcp: f)
        }
        let answers = p.take()
        #expect(answers.count == 60 && answers.allSatisfy { $0.flags == [.syn, .ack] })
        // The SYN queue holds the backlog (4); the rest are stateless cookies (Linux: qlen >= backlog).
        #expect(p.stack.tcpCounters.synCookiesSent == 56)
        #expect(p.stack.openSocketCount == 5)
        // A cookie SYN-ACK carries only the MSS (its value is encoded in the ISN).
        #expect(answers.last?.optionBytes == [2, 4, 0x05, 0xb4])
        // A real client connects through a cookie.
        p.port = 33_333
        p.send(.syn, options: p.linuxSynOptions())
        let sa = try #require(p.take().first)
        #expect(sa.flags == [.syn, .ack] && sa.ack == 1_000_001)
        #expect(p.stack.tcpCounters.synCookiesSent == 57)
        p.absorb(sa)
        p.send(.ack, window: 1000)
        #expect(p.stack.tcpCounters.synCookiesRecv == 1)
        let (fd, peer) = try p.stack.accept(l).get()
        #expect(peer.port == 33_333)
        let c = try #require(p.stack.tcpInfoSocket(fd))
        #expect(c.state == .established && c.mss == 1460 && !c.sackEnabled && !c.timestampsEnabled)
        // Data both ways, windows unscaled (no window scale was agreed).
        p.send([.ack, .psh], payload: Lab.pattern(300), window: 1000)
        let ack = try #require(p.take().first)
        #expect(ack.ack == p.seq && ack.window > 1000 && ack.optionBytes.isEmpty)
        #expect(p.read(fd) == .success(Lab.pattern(300)))
        #expect(p.write(fd, Lab.pattern(2000)) == .success(2000))
        // The peer's 1000-byte window (unscaled) is smaller than a segment: nothing until the
        // probe timer (1 s: no RTT sample through a cookie) sends the 1000 bytes that fit.
        #expect(p.take().filter { $0.length > 0 }.isEmpty)
        let probe = p.advance(by: Time.second).filter { $0.length > 0 }
        #expect(probe.map(\.length) == [1000])
        // A forged ACK with a wrong cookie is refused with a RST.
        p.port = 44_444
        p.send(.ack, seq: 5, ack: 0x1234_5678, advance: false)
        #expect(p.take().first?.flags == .rst)
        #expect(p.stack.tcpCounters.synCookiesFailed == 1)
    }

    @Test func aFullAcceptQueueDropsNewSyns() throws {
        let p = TCPPeer()
        let l = p.listen(backlog: 1)
        p.send(.syn, options: p.linuxSynOptions())
        p.absorb(try #require(p.take().first))
        p.send(.ack)
        // Not accepted yet: the next connection's SYN is dropped (Linux: ListenOverflows).
        p.port = 40_001
        p.send(.syn, options: p.linuxSynOptions())
        #expect(p.take().isEmpty)
        #expect(p.stack.tcpCounters.listenOverflows == 1)
        #expect(try p.stack.accept(l).get().1.port == 40_000)
    }

    // MARK: Hostile segments

    @Test func hostileSegmentsAreDroppedAndCountedAndChangeNothing() throws {
        let (p, fd, s) = TCPPeer.established()
        let snapshot = (s.rcvNxt, s.sndUna, s.sndNxt, s.sndWnd, s.state)
        func unchanged() -> Bool {
            (s.rcvNxt, s.sndUna, s.sndNxt, s.sndWnd, s.state) == snapshot && s.receiveQueueBytes == 0
        }
        let good = TCPPeer.tcpBytes(sourcePort: p.port, destinationPort: p.hostPort, seq: p.seq, ack: p.ack,
                                    flags: [.ack, .psh], window: 9, payload: Lab.pattern(100))
        // 1. A bad checksum.
        var bad = good
        bad[30] ^= 0x40
        p.inject(tcp: bad)
        #expect(p.stack.tcpCounters.inCsumErrors == 1 && p.stack.tcpCounters.inErrs == 1)
        #expect(p.take().isEmpty && unchanged())
        // 2. Data offset below 5 words.
        var short = good
        short[12] = 4 << 4
        TCPPeer.refill(&short)
        p.inject(tcp: short)
        #expect(p.stack.tcpCounters.inErrs == 2 && p.take().isEmpty && unchanged())
        // 3. Data offset beyond the segment.
        var beyond = Array(good[0..<40])
        beyond[12] = 15 << 4
        TCPPeer.refill(&beyond)
        p.inject(tcp: beyond)
        #expect(p.stack.tcpCounters.inErrs == 3 && p.take().isEmpty && unchanged())
        // 4. An option whose length runs past the header (MSS, length 10, in an 8-byte option area).
        var overrun = TCPPeer.tcpBytes(sourcePort: p.port, destinationPort: p.hostPort, seq: p.seq, ack: p.ack,
                                       flags: [.ack, .psh], window: 9,
                                       options: TCPOptions(timestamp: TCPTimestamp(value: 1, echo: 1)), payload: Lab.pattern(100))
        overrun[20] = 2; overrun[21] = 30
        TCPPeer.refill(&overrun)
        p.inject(tcp: overrun)
        #expect(p.stack.tcpCounters.inErrs == 4 && p.take().isEmpty && unchanged())
        #expect(p.stack.drops[.tcpChecksum] == 1 && p.stack.drops[.tcpMalformed] == 3)
        // 5. Data beyond the window: dropped, answered with a duplicate ACK.
        p.send([.ack, .psh], seq: s.rcvNxt &+ 0x1000_0000, payload: Lab.pattern(100), advance: false)
        let dup = try #require(p.take().first)
        #expect(dup.isPureAck && dup.ack == s.rcvNxt)
        #expect(p.stack.tcpCounters.outOfWindow == 1 && unchanged())
        // 6. Data without the ACK flag: dropped (RFC 9293 §3.10.7.4 fifth check).
        p.send(.psh, payload: Lab.pattern(100), advance: false)
        #expect(p.take().isEmpty && unchanged())
        // 7. An old duplicate (PAWS: timestamp older than TS.Recent): dropped, ACKed.
        p.host.advance(by: Time.second)
        p.send([.ack, .psh], payload: Lab.pattern(100),
               options: TCPOptions(timestamp: TCPTimestamp(value: p.tsVal &- 1000, echo: p.tsEcho)), advance: false)
        #expect(p.take().first?.isPureAck == true)
        #expect(p.stack.tcpCounters.pawsRejected == 1 && unchanged())
        // The connection still works.
        p.send([.ack, .psh], payload: Lab.pattern(100))
        #expect(p.read(fd) == .success(Lab.pattern(100)))
    }

    @Test func outOfWindowPureAcksAreAnsweredAtMostTwiceASecond() throws {
        let (p, _, s) = TCPPeer.established()
        for _ in 0..<5 { p.send(.ack, seq: s.rcvNxt &+ 0x3000_0000, advance: false) }
        // Linux: tcp_oow_rate_limited — one ACK per 500 ms for pure ACKs out of window.
        #expect(p.take().count == 1)
        #expect(p.stack.tcpCounters.ackSkippedSeq == 4)
        // Out-of-window data is always answered.
        for _ in 0..<3 { p.send([.ack], seq: s.rcvNxt &+ 0x3000_0000, payload: [1], advance: false) }
        #expect(p.take().count == 3)
    }
}

extension TCPPeer {
    /// Recomputes the checksum of hand-edited TCP bytes (whatever their data offset says).
    static func refill(_ b: inout [UInt8]) {
        b[16] = 0; b[17] = 0
        let pseudo = InternetChecksum.pseudoHeaderSum(source: Lab.aIP, destination: Lab.bIP, protocol: IPProtocol.tcp,
                                                      length: UInt16(b.count))
        let c = b.withUnsafeBytes { InternetChecksum.fold(InternetChecksum.sum($0, initial: pseudo)) }
        b[16] = UInt8(c >> 8); b[17] = UInt8(c & 0xFF)
    }
}
