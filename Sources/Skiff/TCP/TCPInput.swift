import SkiffWire

/// The header fields of a received segment, read once (Linux: `TCP_SKB_CB` on receive).
struct TCPSegmentInfo {
    var source: IPv4Address, destination: IPv4Address
    var sourcePort: UInt16, destinationPort: UInt16
    var seq: UInt32, ack: UInt32
    var flags: UInt8
    var window: UInt16
    var options: TCPOptions
    var payloadLength: Int
    /// `seq` + payload + SYN + FIN.
    var endSeq: UInt32
    var has: (syn: Bool, ack: Bool, fin: Bool, rst: Bool)
}

extension NetworkStack {
    /// Receives a TCP segment: header and checksum validated, then handed to its connection, its
    /// listener, or answered with a RST. Linux: `tcp_v4_rcv()`.
    func tcpV4Rcv(_ buffer: consuming PacketBuffer, source: IPv4Address, destination: IPv4Address) {
        tracer.record(buffer.meta.traceID, .tcpV4Rcv, contexts.current, now)
        tcpCounters.inSegs &+= 1
        // A large received segment keeps its payload in fragments when the device vouched for
        // the checksum and the header is in the linear part; otherwise it is made linear.
        let keepFragments = buffer.meta.checksumValid && buffer.linearLength >= 60
        guard buffer.fragmentCount == 0 || keepFragments || buffer.linearize() else { drops.count(.poolExhausted); return }
        let view: TCPView
        do {
            view = try TCPView(checking: buffer.fragmentCount == 0 ? buffer.bytes
                               : UnsafeRawBufferPointer(rebasing: buffer.bytes[0..<min(buffer.linearLength, 60)]))
        } catch {
            tcpCounters.inErrs &+= 1; drops.count(.tcpMalformed); return
        }
        // Linux: CHECKSUM_UNNECESSARY skips tcp_checksum_complete().
        guard buffer.meta.checksumValid || view.verifyChecksum(source: source, destination: destination) else {
            tcpCounters.inErrs &+= 1; tcpCounters.inCsumErrors &+= 1; drops.count(.tcpChecksum); return
        }
        if source.isBroadcast || source.isMulticast || destination.isBroadcast || destination.isMulticast {
            drops.count(.tcpMalformed); return
        }
        let flags = buffer.bytes[13]
        let payload = buffer.length - view.dataOffset
        let seq = view.sequenceNumber
        var seg = TCPSegmentInfo(
            source: source, destination: destination, sourcePort: view.sourcePort, destinationPort: view.destinationPort,
            seq: seq, ack: view.acknowledgmentNumber, flags: flags, window: view.window, options: view.options,
            payloadLength: payload, endSeq: 0,
            has: (flags & TCPFlag.syn != 0, flags & TCPFlag.ack != 0, flags & TCPFlag.fin != 0, flags & TCPFlag.rst != 0))
        seg.endSeq = seq &+ UInt32(payload) &+ (seg.has.syn ? 1 : 0) &+ (seg.has.fin ? 1 : 0)
        buffer.pull(view.dataOffset)
        buffer.meta.tcpSeq = seq &+ (seg.has.syn ? 1 : 0)
        buffer.meta.tcpEndSeq = buffer.meta.tcpSeq &+ UInt32(payload)
        buffer.meta.tcpFlags = flags
        let key = ConnectionKey(localAddress: destination.value, remoteAddress: source.value,
                                localPort: seg.destinationPort, remotePort: seg.sourcePort)
        if let h = tcpConnections[key], let sock = tcpSocket(h) {
            sock.segmentsIn &+= 1
            tcpRcvStateProcess(sock, seg, buffer)
            return
        }
        if let h = tcpListeners[seg.destinationPort], let l = tcpSocket(h),
           l.localAddress == .any || l.localAddress == destination {
            if let child = tcpListenReceive(l, seg), seg.payloadLength > 0 { fastOpenAddSynData(child, buffer) }
            return
        }
        drops.count(.tcpNoSocket)
        tcpResetForSegment(seg)
    }

    /// RFC 9293 §3.10.7.1: the reset for a segment that reached no connection.
    func tcpResetForSegment(_ seg: TCPSegmentInfo) {
        if seg.has.rst { return }
        if seg.has.ack {
            tcpSendReset(to: seg.source, port: seg.sourcePort, from: seg.destination, port: seg.destinationPort,
                         seq: seg.ack, ack: nil)
        } else {
            tcpSendReset(to: seg.source, port: seg.sourcePort, from: seg.destination, port: seg.destinationPort,
                         seq: 0, ack: seg.endSeq)
        }
    }

    // MARK: Option negotiation

    /// Applies the options of a SYN or SYN-ACK (Linux: `tcp_parse_options` + `tcp_openreq_init` /
    /// `tcp_rcv_synsent_state_process`).
    func negotiateOptions(_ sock: TCPSocket, _ o: TCPOptions) {
        let peerMSS = Int(o.maximumSegmentSize ?? 536)
        sock.mss = max(48, min(peerMSS, sock.advertisedMSS))
        if sock.options.userMSS > 0 { sock.mss = min(sock.mss, sock.options.userMSS) }
        if tcpConfig.windowScaling, let ws = o.windowScale {
            sock.windowScalingEnabled = true
            sock.sendWindowScale = min(ws, 14)
        } else {
            sock.windowScalingEnabled = false
            sock.sendWindowScale = 0
            sock.receiveWindowScale = 0
        }
        sock.sackEnabled = tcpConfig.sack && o.sackPermitted
        if tcpConfig.timestamps, let ts = o.timestamp {
            sock.timestampsEnabled = true
            sock.tsRecent = ts.value
            sock.tsRecentStamp = now
        } else {
            sock.timestampsEnabled = false
        }
        sock.rcvMSS = min(sock.mss, 1460)
    }

    /// Our window scale for the configured maximum receive buffer (Linux: `tcp_select_initial_window`).
    func initialWindowScale() -> UInt8 {
        guard tcpConfig.windowScaling else { return 0 }
        var space = max(tcpConfig.receiveMemory.2, 65535)
        var ws: UInt8 = 0
        while space > 65535 && ws < 14 { space >>= 1; ws += 1 }
        return ws
    }

    /// Sets MSS, window and scale for a new connection on the route to `remote`.
    func initConnection(_ sock: TCPSocket) {
        let mtu = resolveRoute(sock.remoteAddress, cache: &sock.routeCache)?.mtu ?? 1500
        sock.advertisedMSS = max(88, mtu - 40)
        if sock.options.userMSS > 0 { sock.advertisedMSS = min(sock.advertisedMSS, sock.options.userMSS) }
        sock.mss = min(536, sock.advertisedMSS)
        sock.receiveWindowScale = initialWindowScale()
        let mss = sock.advertisedMSS
        sock.rcvWnd = UInt32(min(65535, sock.receiveBufferSize / 2) / mss * mss)
        sock.window = CongestionWindow()
        sock.rtt = RTTEstimator()
    }

    // MARK: LISTEN

    /// A segment for a listener: a SYN starts a connection (a child in SYN-RECV, or a SYN cookie
    /// when the queue is full); an ACK may complete a SYN cookie; anything else gets a RST.
    /// Linux: `tcp_v4_conn_request()`, `cookie_v4_check()`. Returns the child when it is a Fast
    /// Open child that took the SYN's data (the caller queues that data).
    @discardableResult
    func tcpListenReceive(_ l: TCPSocket, _ seg: TCPSegmentInfo, isn: UInt32? = nil) -> TCPSocket? {
        if seg.has.rst { return nil }
        if seg.has.ack && !seg.has.syn {
            if tcpConfig.synCookies, let mss = synCookies.decode(
                source: seg.source, sourcePort: seg.sourcePort, destination: seg.destination,
                destinationPort: seg.destinationPort, clientISN: seg.seq &- 1, cookie: seg.ack &- 1, now: now),
               l.acceptQueue.count < max(1, l.backlog) {
                tcpCounters.synCookiesRecv &+= 1
                let c = makeChild(l, seg)
                c.iss = seg.ack &- 1
                c.sndUna = seg.ack; c.sndNxt = seg.ack; c.writeSeq = seg.ack; c.pushedSeq = seg.ack
                c.bytesAcked = 1   // the SYN-ACK (Linux: tcp_ack in SYN_RECV)
                c.irs = seg.seq &- 1
                c.rcvNxt = seg.seq; c.copiedSeq = seg.seq; c.rcvWup = seg.seq
                c.mss = min(Int(mss), c.advertisedMSS)
                // The cookie's SYN-ACK offered no window scale (nor SACK, timestamps): windows are
                // unscaled both ways.
                c.receiveWindowScale = 0
                c.sendWindowScale = 0
                c.windowScalingEnabled = false
                c.rcvMSS = min(c.mss, 1460)
                c.sndWnd = UInt32(seg.window)
                c.maxWindow = c.sndWnd
                c.sndWl1 = seg.seq; c.sndWl2 = seg.ack
                c.state = .established
                c.lastDataReceiveTime = now
                tcpInitSendBuffer(c)
                l.acceptQueue.append(c.handle)
                tcpCounters.passiveOpens &+= 1
                return nil
            }
            if tcpConfig.synCookies { tcpCounters.synCookiesFailed &+= 1 }
            tcpResetForSegment(seg)
            return nil
        }
        guard seg.has.syn else { return nil }
        if l.acceptQueue.count >= max(1, l.backlog) {
            tcpCounters.listenOverflows &+= 1; tcpCounters.listenDrops &+= 1
            drops.count(.tcpListenOverflow)
            return nil
        }
        // Linux (tcp_conn_request, since 4.4): the SYN queue is full at the listen backlog.
        if l.synQueueLength >= l.backlog {
            guard tcpConfig.synCookies else { tcpCounters.listenDrops &+= 1; drops.count(.tcpListenOverflow); return nil }
            sendSynCookie(l, seg)
            return nil
        }
        let fastOpen = fastOpenTry(l, seg)
        let c = makeChild(l, seg)
        negotiateOptions(c, seg.options)
        c.irs = seg.seq
        c.rcvNxt = seg.seq &+ 1
        c.copiedSeq = c.rcvNxt
        c.rcvWup = c.rcvNxt
        c.sndWnd = UInt32(seg.window)
        c.maxWindow = c.sndWnd
        c.sndWl1 = seg.seq
        c.iss = isn ?? isnGenerator.generate(localAddress: seg.destination, localPort: seg.destinationPort,
                                             remoteAddress: seg.source, remotePort: seg.sourcePort, now: now)
        c.sndUna = c.iss; c.sndNxt = c.iss; c.writeSeq = c.iss; c.pushedSeq = c.iss &+ 1
        c.state = .synReceived
        c.fastOpen.synAckCookie = fastOpen.reply
        if fastOpen.createChild {
            // Linux (tcp_conn_request): a Fast Open child skips the SYN queue and goes straight
            // to the accept queue, in SYN-RECV, once its SYN-ACK is out.
            fastOpenMakeChild(l, c, seg)
            tcpQueueControl(c, flags: TCPFlag.syn | TCPFlag.ack)
            l.acceptQueue.append(c.handle)
            return c
        }
        l.synQueueLength += 1
        tcpQueueControl(c, flags: TCPFlag.syn | TCPFlag.ack)
        return nil
    }

    func makeChild(_ l: TCPSocket, _ seg: TCPSegmentInfo) -> TCPSocket {
        let c = newTCPSocket()
        c.localAddress = seg.destination; c.localPort = seg.destinationPort
        c.remoteAddress = seg.source; c.remotePort = seg.sourcePort
        c.options = l.options
        c.sendBufferSize = l.sendBufferSize
        c.sendBufferLocked = l.sendBufferLocked
        c.receiveBufferSize = l.receiveBufferSize
        c.receiveBufferLocked = l.receiveBufferLocked
        c.congestion = l.congestion
        // Linux: sk_clone_lock() copies the socket flags (SOCK_ZEROCOPY) and sk_tsflags; the
        // notification ids start again at 0.
        c.zerocopy.enabled = l.zerocopy.enabled
        c.timestamping.flags = l.timestamping.flags & ~TimestampingFlag.optID
        c.timestamping.newLayout = l.timestamping.newLayout
        c.parent = l.handle
        initConnection(c)
        tcpConnections[connectionKey(c)] = c.handle
        return c
    }

    /// Answers a SYN statelessly with a cookie ISN (Linux: `cookie_v4_init_sequence`).
    func sendSynCookie(_ l: TCPSocket, _ seg: TCPSegmentInfo) {
        tcpCounters.synCookiesSent &+= 1
        tcpCounters.outSegs &+= 1
        let mtu = resolveRoute(seg.source, cache: &l.routeCache)?.mtu ?? 1500
        let peerMSS = Int(seg.options.maximumSegmentSize ?? 536)
        let (cookie, mss) = synCookies.encode(source: seg.source, sourcePort: seg.sourcePort, destination: seg.destination,
                                              destinationPort: seg.destinationPort, clientISN: seg.seq,
                                              mss: UInt16(min(peerMSS, mtu - 40)), now: now)
        // A temporary control block only to build the SYN-ACK; nothing is kept.
        let t = TCPSocket(handle: -1, timers: &timers)
        t.localAddress = seg.destination; t.localPort = seg.destinationPort
        t.remoteAddress = seg.source; t.remotePort = seg.sourcePort
        t.state = .synReceived
        t.advertisedMSS = Int(mss)
        t.rcvNxt = seg.seq &+ 1
        t.rcvWnd = 65535
        guard var b = pool.allocate(size: 0, headroom: tcpHeadroom) else { return }
        buildTCPHeader(t, &b, seq: cookie, flags: TCPFlag.syn | TCPFlag.ack)
        timers.destroyTimer(t.retransmitTimer); timers.destroyTimer(t.delayedAckTimer); timers.destroyTimer(t.keepaliveTimer)
        _ = ipQueueXmit(b, destination: seg.source, protocol: IPProtocol.tcp, dontFragment: true, route: &t.routeCache)
    }

    // MARK: Connection states

    /// Processes a segment for a connection in any state but LISTEN.
    /// Linux: `tcp_rcv_state_process()` / `tcp_rcv_established()`, RFC 9293 §3.10.7.
    func tcpRcvStateProcess(_ sock: TCPSocket, _ seg: TCPSegmentInfo, _ buffer: consuming PacketBuffer) {
        if sock.state == .synSent { tcpSynSentReceive(sock, seg, buffer); return }
        if sock.state == .closed { tcpResetForSegment(seg); return }
        if sock.state == .synReceived && sock.parent >= 0 && seg.has.syn && !seg.has.ack && !seg.has.rst
            && seg.seq == sock.irs {
            // A retransmitted SYN: our SYN-ACK was lost; resend it (Linux: tcp_check_req →
            // inet_rtx_syn_ack). It is below rcv_nxt, so this comes before the window check.
            tcpRetransmitHead(sock)
            return
        }
        if sock.state == .timeWait { tcpTimeWaitReceive(sock, seg); return }

        // PAWS (RFC 7323 §5): an old timestamp marks an old duplicate. A RST passes.
        if !seg.has.rst && pawsReject(sock, seg) {
            tcpCounters.pawsRejected &+= 1
            drops.count(.tcpPAWS)
            if seg.has.syn {
                tcpCounters.synChallenge &+= 1
                sendChallengeAck(sock)
            } else if seg.endSeq == seg.seq && outOfWindowAckLimited(sock) {
                tcpCounters.ackSkippedSeq &+= 1
            } else {
                tcpSendAck(sock)
            }
            return
        }
        // Sequence acceptability (Linux: tcp_sequence; RFC 9293 §3.10.7.4, first check).
        if !segmentAcceptable(sock, seg) {
            tcpCounters.outOfWindow &+= 1
            drops.count(.tcpOutOfWindow)
            if !seg.has.rst {
                if seg.has.syn {
                    // RFC 5961 §4 (Linux: syn_challenge).
                    tcpCounters.synChallenge &+= 1
                    sendChallengeAck(sock)
                    return
                }
                // Pure ACKs out of window are answered at most once per tcp_invalid_ratelimit
                // (Linux: tcp_oow_rate_limited); data is always answered.
                if seg.endSeq == seg.seq && outOfWindowAckLimited(sock) {
                    tcpCounters.ackSkippedSeq &+= 1
                    return
                }
                if sock.sackEnabled && tcpConfig.dsack && seqLT(seg.seq, sock.rcvNxt) && seg.payloadLength > 0 {
                    sock.dsack = (seg.seq, seqMin(seg.endSeq, sock.rcvNxt))
                    tcpCounters.dsackSent &+= 1
                }
                tcpSendAck(sock)
            }
            return
        }
        // RST (RFC 5961 §3): only an exact match resets; in-window gets a challenge ACK.
        if seg.has.rst {
            if seg.seq == sock.rcvNxt {
                tcpReset(sock)
            } else {
                sendChallengeAck(sock)
            }
            return
        }
        // SYN in a synchronised state (RFC 5961 §4): challenge ACK.
        if seg.has.syn {
            // Linux (tcp_rcv_state_process): after a simultaneous open, the peer's SYN-ACK in
            // SYN-RECV that acknowledges our SYN completes the handshake like an ACK.
            let simultaneousOpenSynAck = sock.state == .synReceived && sock.parent < 0 && seg.has.ack
                && seg.endSeq == seg.seq &+ 1 && seg.endSeq == sock.rcvNxt && seg.ack == sock.sndNxt
            if !simultaneousOpenSynAck {
                tcpCounters.synChallenge &+= 1
                sendChallengeAck(sock)
                return
            }
        }
        guard seg.has.ack else { drops.count(.tcpMalformed); return }
        if sock.state == .synReceived {
            guard seqGT(seg.ack, sock.sndUna) && seqLE(seg.ack, sock.sndNxt) else {
                tcpSendReset(to: seg.source, port: seg.sourcePort, from: seg.destination, port: seg.destinationPort,
                             seq: seg.ack, ack: nil)
                return
            }
            tcpEstablishPassive(sock)
        }
        // An ACK for data never sent is dropped with the segment (Linux: tcp_ack() →
        // TCP_ACK_UNSENT_DATA): silently in ESTABLISHED, with a challenge ACK in the other states.
        if seqGT(seg.ack, sock.sndNxt) {
            drops.count(.tcpOutOfWindow)
            if sock.state != .established { sendChallengeAck(sock) }
            return
        }
        // RFC 5961 §5.2: an ACK below snd_una − min(max_window, bytes_acked) is a blind
        // injection: challenge ACK, and the segment is dropped (Linux: TCP_TOO_OLD_ACK).
        let ackWindow = UInt32(truncatingIfNeeded: min(UInt64(sock.maxWindow), sock.bytesAcked))
        if seqLT(seg.ack, sock.sndUna &- ackWindow) {
            drops.count(.tcpOutOfWindow)
            sendChallengeAck(sock)
            return
        }
        // A valid ACK: the peer is alive (Linux: tcp_ack resets icsk_probes_out, sets rcv_tstamp).
        sock.lastReceiveTime = now
        sock.probesOut = 0
        tcpAck(sock, seg)
        if let ts = seg.options.timestamp, sock.timestampsEnabled, seqLE(seg.seq, sock.rcvWup) || seg.seq == sock.rcvNxt {
            sock.tsRecent = ts.value
            sock.tsRecentStamp = now
        }
        guard tcpSocket(sock.handle) === sock else { return }   // the ACK may have closed it
        let finAcked = sock.finSent && sock.sndUna == sock.writeSeq
        switch sock.state {
        case .finWait1 where finAcked:
            sock.state = .finWait2
            if sock.orphaned { timers.arm(sock.keepaliveTimer, at: now &+ tcpConfig.finTimeout) }
        case .closing where finAcked:
            enterTimeWait(sock)
        case .lastAck where finAcked:
            destroyTCPSocket(sock)
            return
        default: break
        }
        if abortOnDataAfterClose(sock, seg) { return }
        // Data and FIN.
        switch sock.state {
        case .established where seg.has.syn:
            // The SYN-ACK that completed a simultaneous open repeats the SYN already taken: a
            // duplicate, answered at once with a D-SACK of it (Linux: tcp_data_queue with
            // end_seq ≤ rcv_nxt → tcp_dsack_set, quick ACK).
            if sock.sackEnabled && tcpConfig.dsack {
                sock.dsack = (seg.seq, seg.endSeq)
                tcpCounters.dsackSent &+= 1
            }
            tcpSendAck(sock)
        case .established, .finWait1, .finWait2:
            if seg.payloadLength > 0 || seg.has.fin { tcpDataQueue(sock, seg, buffer) }
        case .closeWait, .closing, .lastAck:
            // After the peer's FIN only a retransmission can come; it is answered as a duplicate
            // (Linux: tcp_rcv_state_process step 7 passes seq < rcv_nxt to tcp_data_queue).
            if (seg.payloadLength > 0 || seg.has.fin) && seqLT(seg.seq, sock.rcvNxt) && seqLE(seg.endSeq, sock.rcvNxt) {
                tcpDataQueue(sock, seg, buffer)
            }
        default:
            break
        }
    }

    /// New data for a socket whose application no longer reads (after `close()` or
    /// `shutdown(SHUT_RD)`) resets the connection, and the segment is answered with a RST
    /// (RFC 1122 §4.2.2.13 says a reset MUST be sent). In FIN-WAIT any segment reaching past
    /// rcv_nxt counts; in CLOSE-WAIT, CLOSING and LAST-ACK only one that starts below rcv_nxt
    /// (anything later is ignored there). Linux: `tcp_rcv_state_process()` step 7,
    /// TCPAbortOnData. Returns true when the connection was reset.
    func abortOnDataAfterClose(_ sock: TCPSocket, _ seg: TCPSegmentInfo) -> Bool {
        guard sock.shutdownRead || sock.orphaned, seg.endSeq != seg.seq else { return false }
        switch sock.state {
        case .finWait1, .finWait2: break
        case .closeWait, .closing, .lastAck: guard seqLT(seg.seq, sock.rcvNxt) else { return false }
        default: return false
        }
        guard seqGT(seg.endSeq &- (seg.has.fin ? 1 : 0), sock.rcvNxt) else { return false }
        tcpCounters.abortOnData &+= 1
        tcpReset(sock)
        tcpResetForSegment(seg)
        return true
    }

    /// PAWS (RFC 7323 §5.3; Linux: `tcp_paws_discard`, a one-tick tolerance, and timestamps older
    /// than 24 days no longer count).
    func pawsReject(_ sock: TCPSocket, _ seg: TCPSegmentInfo) -> Bool {
        guard sock.timestampsEnabled, let ts = seg.options.timestamp else { return false }
        return Int32(bitPattern: sock.tsRecent &- ts.value) > 1 && now &- sock.tsRecentStamp < 24 * 86_400 * Time.second
    }

    /// Per-connection limit on ACKs that answer invalid segments: true when one went out less
    /// than `tcp_invalid_ratelimit` ago (Linux: `__tcp_oow_rate_limited`).
    func outOfWindowAckLimited(_ sock: TCPSocket) -> Bool {
        if let last = sock.lastOutOfWindowAck, now &- last < tcpConfig.invalidRateLimit { return true }
        sock.lastOutOfWindowAck = now
        return false
    }

    /// A segment for a connection in TIME-WAIT (Linux: `tcp_timewait_state_process`): a bare ACK
    /// or RST exactly at `rcv_nxt` restarts the 60 s (a RST ends TIME-WAIT, `tcp_rfc1337` = 0); a
    /// new SYN above the old sequence space opens a new connection through the listener; anything
    /// else (a retransmitted FIN) is ACKed and restarts the 60 s.
    func tcpTimeWaitReceive(_ sock: TCPSocket, _ seg: TCPSegmentInfo) {
        let paws = pawsReject(sock, seg)
        if !paws && seg.seq == sock.rcvNxt && (seg.endSeq == seg.seq || seg.has.rst) {
            if seg.has.rst {
                tcpDone(sock)   // TIME-WAIT assassination (RFC 1337), as Linux allows by default
                return
            }
            timers.arm(sock.keepaliveTimer, at: now &+ tcpConfig.timeWaitLength)
            if let ts = seg.options.timestamp, sock.timestampsEnabled { sock.tsRecent = ts.value; sock.tsRecentStamp = now }
            return
        }
        if seg.has.syn && !seg.has.rst && !seg.has.ack && !paws
            && (seqGT(seg.seq, sock.rcvNxt)
                || (sock.timestampsEnabled && seg.options.timestamp.map { Int32(bitPattern: sock.tsRecent &- $0.value) < 0 } == true)),
           let h = tcpListeners[sock.localPort], let l = tcpSocket(h) {
            // A new incarnation: its ISN continues above the old connection's (RFC 1122 4.2.2.13).
            var isn = sock.sndNxt &+ 65535 &+ 2
            if isn == 0 { isn = 1 }
            tcpCounters.timeWaitRecycled &+= 1
            tcpDone(sock)
            tcpListenReceive(l, seg, isn: isn)
            return
        }
        if paws { tcpCounters.pawsRejected &+= 1 }
        if seg.has.rst { return }
        if paws || seg.has.ack { timers.arm(sock.keepaliveTimer, at: now &+ tcpConfig.timeWaitLength) }
        if seg.endSeq == seg.seq || seg.has.syn, outOfWindowAckLimited(sock) {
            tcpCounters.ackSkippedSeq &+= 1
            return
        }
        tcpSendAck(sock)
    }

    /// Sequence acceptability as Linux tests it (`tcp_sequence()`): the segment must not end
    /// before the edge last advertised (`rcv_wup`) nor start beyond the window; one that runs past
    /// the window is taken only while the receive queue is empty. This is looser than RFC 9293
    /// §3.10.7.4's test: an old segment that still reaches `rcv_wup` is processed (its ACK is
    /// used, its data is answered with a D-SACK), as Linux does.
    func segmentAcceptable(_ sock: TCPSocket, _ seg: TCPSegmentInfo) -> Bool {
        let wnd = sock.rcvWnd &- (sock.rcvNxt &- sock.rcvWup)
        let window = Int32(bitPattern: wnd) > 0 ? wnd : 0
        if seqLT(seg.endSeq, sock.rcvWup) { return false }
        let right = sock.rcvNxt &+ window
        if seqGT(seg.endSeq, right) {
            if seqGT(seg.seq, right) { return false }
            if sock.receiveQueue.head != PacketSlab.none { return false }
        }
        return true
    }

    /// RFC 5961 challenge ACK, rate limited per second (Linux: `tcp_send_challenge_ack`).
    /// First the connection's own limit (one per `tcp_invalid_ratelimit`), then the stack-wide
    /// count per second (Linux: `tcp_challenge_ack_limit`; Linux randomises it, this does not).
    func sendChallengeAck(_ sock: TCPSocket) {
        if outOfWindowAckLimited(sock) {
            tcpCounters.ackSkippedChallenge &+= 1
            return
        }
        if now &- challengeAckWindowStart >= Time.second {
            challengeAckWindowStart = now
            challengeAckCount = 0
        }
        guard challengeAckCount < tcpConfig.challengeAckLimit else {
            tcpCounters.challengeAcksRateLimited &+= 1
            return
        }
        challengeAckCount += 1
        tcpCounters.challengeAcks &+= 1
        tcpSendAck(sock)
    }

    /// The connection was reset by the peer (RFC 9293 §3.10.7.4 RST processing).
    func tcpReset(_ sock: TCPSocket) {
        switch sock.state {
        case .synReceived where sock.parent >= 0 && !sock.fastOpen.passiveChild:
            // A passive open that was refused: back to LISTEN, the child goes away.
            if let l = tcpSocket(sock.parent) { l.synQueueLength = max(0, l.synQueueLength - 1) }
            destroyTCPSocket(sock)
            return
        case .closeWait:
            sock.pendingError = .EPIPE
        case .synReceived where sock.fastOpen.passiveChild:
            sock.pendingError = .ECONNRESET   // Linux: tcp_reset() in SYN_RECV
        case .synSent, .synReceived:
            sock.pendingError = .ECONNREFUSED
        default:
            sock.pendingError = .ECONNRESET
        }
        if sock.state == .established || sock.state == .closeWait { tcpCounters.estabResets &+= 1 }
        tcpDone(sock)
    }

    /// Moves a connection to CLOSED, keeping the socket for the application to see the error
    /// unless it was already closed (Linux: `tcp_done()`).
    func tcpDone(_ sock: TCPSocket) {
        timers.cancel(sock.retransmitTimer)
        timers.cancel(sock.delayedAckTimer)
        timers.cancel(sock.keepaliveTimer)
        _ = tcpSlab.removeAll(&sock.writeQueue)
        _ = tcpSlab.removeAll(&sock.retransmitQueue)
        _ = tcpSlab.removeAll(&sock.outOfOrderQueue)
        if sock.zerocopy.count > 0 { tcpZerocopyPurge(sock) }
        sock.packetsOut = 0; sock.sackedOut = 0; sock.lostOut = 0; sock.retransOut = 0
        sock.queuedBytes = 0
        let key = connectionKey(sock)
        if tcpConnections[key] == sock.handle { tcpConnections[key] = nil }
        sock.state = .closed
        sock.shutdownWrite = true
        fastOpenChildDone(sock)
        // An orphan, or a child not yet on the accept queue, has no one left to read the error;
        // a child on the accept queue stays there, closed, for accept() to return (Linux).
        if sock.orphaned || (sock.parent >= 0 && !isOnAcceptQueue(sock)) { destroyTCPSocket(sock) }
    }


    /// SYN-SENT processing (RFC 9293 §3.10.7.3; Linux: `tcp_rcv_synsent_state_process()`).
    func tcpSynSentReceive(_ sock: TCPSocket, _ seg: TCPSegmentInfo, _ buffer: consuming PacketBuffer) {
        if seg.has.ack && (seqLE(seg.ack, sock.iss) || seqGT(seg.ack, sock.sndNxt)) {
            if !seg.has.rst { tcpResetForSegment(seg) }
            drops.count(.tcpOutOfWindow)
            return
        }
        if seg.has.rst {
            if seg.has.ack {
                tcpCounters.attemptFails &+= 1
                sock.pendingError = .ECONNREFUSED
                tcpDone(sock)
            }
            return
        }
        guard seg.has.syn else { return }
        // Linux (tcp_rcv_synsent_state_process, PAWSActiveRejected): a SYN-ACK echoing a
        // timestamp we never sent is answered with a RST and dropped.
        if seg.has.ack, tcpConfig.timestamps, let sent = sock.synTimestamp, let ts = seg.options.timestamp, ts.echo != 0,
           ts.echo &- sent > tcpTimestamp() &- sent {
            tcpCounters.pawsRejected &+= 1
            tcpResetForSegment(seg)
            return
        }
        negotiateOptions(sock, seg.options)
        sock.irs = seg.seq
        sock.rcvNxt = seg.seq &+ 1
        sock.copiedSeq = sock.rcvNxt
        sock.rcvWup = sock.rcvNxt
        sock.sndWnd = UInt32(seg.window)      // a SYN's window is never scaled
        sock.maxWindow = sock.sndWnd
        sock.sndWl1 = seg.seq
        if seg.has.ack {
            sock.sndWl2 = seg.ack
            tcpAck(sock, seg)
            sock.state = .established
            sock.lastDataReceiveTime = now   // Linux: tcp_finish_connect() sets lrcvtime
            tcpInitSendBuffer(sock)
            let pending = sock.fastOpen.writePending
            sock.fastOpen.writePending = false
            if fastOpenSynAckReceived(sock, seg) {
                // The SYN's data was retransmitted, carrying the ACK.
            } else if fastOpenSynAckData(sock, seg, buffer) {
                // Data on a Fast Open SYN-ACK was queued and acknowledged.
            } else if pending {
                // A writer waits with more data: it will carry the ACK (Linux: the delayed ACK
                // of tcp_rcv_synsent_state_process when sk_write_pending).
                // Linux: tcp_enter_quickack_mode() there starts the delayed-ACK engine.
                sock.ackTimeoutStarted = true
                sock.pingpong = false
                scheduleDelayedAck(sock)
            } else {
                tcpSendAck(sock)
            }
            if sock.options.keepalive { timers.arm(sock.keepaliveTimer, at: now &+ sock.options.keepIdle) }
            tcpPush(sock)
        } else {
            // Simultaneous open: answer with SYN-ACK (our SYN again, now acknowledging theirs).
            sock.state = .synReceived
            if sock.retransmitQueue.head != PacketSlab.none {
                tcpSlab.updateMeta(at: sock.retransmitQueue.head) { $0.tcpFlags = TCPFlag.syn | TCPFlag.ack }
                tcpRetransmitHead(sock)
            }
        }
    }

    /// SYN-RECV → ESTABLISHED: the child joins its listener's accept queue.
    func tcpEstablishPassive(_ sock: TCPSocket) {
        sock.state = .established
        sock.lastDataReceiveTime = now
        tcpInitSendBuffer(sock)
        if sock.parent >= 0 || sock.fastOpen.passiveChild { tcpCounters.passiveOpens &+= 1 }
        if sock.options.keepalive { timers.arm(sock.keepaliveTimer, at: now &+ sock.options.keepIdle) }
        if sock.fastOpen.passiveChild {
            // Already on the accept queue (or accepted) since its SYN (Linux:
            // tcp_rcv_synrecv_state_fastopen).
            fastOpenChildDone(sock)
            return
        }
        if sock.parent >= 0, let l = tcpSocket(sock.parent) {
            l.synQueueLength = max(0, l.synQueueLength - 1)
            l.acceptQueue.append(sock.handle)
        }
    }

    /// Whether `sock` waits on its listener's accept queue.
    func isOnAcceptQueue(_ sock: TCPSocket) -> Bool {
        guard sock.parent >= 0, let l = tcpSocket(sock.parent) else { return false }
        return l.acceptQueue.contains(sock.handle)
    }

    func enterTimeWait(_ sock: TCPSocket) {
        sock.state = .timeWait
        timers.cancel(sock.retransmitTimer)
        timers.cancel(sock.delayedAckTimer)
        _ = tcpSlab.removeAll(&sock.writeQueue)
        _ = tcpSlab.removeAll(&sock.retransmitQueue)
        _ = tcpSlab.removeAll(&sock.outOfOrderQueue)
        sock.packetsOut = 0
        timers.arm(sock.keepaliveTimer, at: now &+ tcpConfig.timeWaitLength)
    }
}
