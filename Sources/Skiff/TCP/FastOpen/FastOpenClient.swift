import SkiffWire

/// What a client remembers about a server for Fast Open (Linux: `struct tcp_fastopen_metrics`).
struct FastOpenCacheEntry {
    /// The MSS the server's SYN-ACK offered (0: none yet).
    var mss: UInt16 = 0
    /// The server's cookie, and whether it came in the experimental option.
    var cookie: TCPFastOpenCookie?
    var experimental = false
    /// 1: a cookie request went unanswered, try the experimental option; 2: back to kind 34.
    var tryExperimental: UInt8 = 0
}

extension NetworkStack {
    /// Forgets every cached Fast Open cookie (Linux: `ip tcp_metrics flush`).
    public func flushFastOpenCache() { fastOpenCache.removeAll() }

    /// Whether a Fast Open client sends SYN data without a cookie (Linux: `tcp_fastopen_no_cookie`
    /// with `TFO_CLIENT_NO_COOKIE`).
    func fastOpenClientNoCookie(_ s: TCPSocket) -> Bool {
        tcpConfig.fastOpen & FastOpenFlags.clientNoCookie != 0 || s.fastOpen.noCookie
    }

    /// Whether the cache has what SYN data needs for `s`'s peer: a cookie, or none needed.
    /// Linux: `tcp_fastopen_cookie_check()`.
    func fastOpenCookieAvailable(_ s: TCPSocket) -> Bool {
        fastOpenClientNoCookie(s) || (fastOpenCache[s.remoteAddress.value]?.cookie.map { $0.count > 0 } ?? false)
    }

    /// Sends the SYN of a Fast Open connect: with as much of `data` as fits and the cached
    /// cookie when there is one, else a plain SYN with a cookie request. The SYN and the data
    /// are queued as two buffers (the SYN alone is what a timeout retransmits; the data is
    /// retransmitted if the SYN-ACK does not cover it) but leave as one segment. Returns the
    /// bytes taken. Linux: `tcp_connect()` → `tcp_send_syn_data()`.
    func fastOpenSendSyn(_ s: TCPSocket, _ data: UnsafeRawBufferPointer) -> Int {
        let entry = fastOpenCache[s.remoteAddress.value] ?? FastOpenCacheEntry()
        s.fastOpen.synOption = nil
        var space = 0
        if fastOpenClientNoCookie(s) {
            space = data.count
        } else if let c = entry.cookie, c.count > 0 {
            s.fastOpen.synOption = TCPFastOpenOption(cookie: c, experimental: entry.experimental)
            space = data.count
        } else {
            // No cookie yet: a plain SYN asking for one (Linux: the fallback of tcp_send_syn_data).
            s.fastOpen.synOption = TCPFastOpenOption(cookie: .request, experimental: entry.tryExperimental == 1)
        }
        if space > 0 {
            // The cached MSS bounds SYN data, less the most options a middlebox might add
            // (Linux: __tcp_mtu_to_mss(pmtu) - MAX_TCP_OPTION_SPACE).
            var clamp = entry.mss > 0 ? Int(entry.mss) : s.advertisedMSS
            if s.options.userMSS > 0 { clamp = min(clamp, s.options.userMSS) }
            let mtu = resolveRoute(s.remoteAddress, cache: &s.routeCache)?.mtu ?? 1500
            space = min(space, max(0, min(mtu - 40, clamp) - TCPOptions.maximumLength), 4096)
        }
        guard space > 0, !tcpSlab.isFull, var syn = pool.allocate(size: 0, headroom: tcpHeadroom),
              var d = pool.allocate(size: space, headroom: tcpHeadroom) else {
            tcpQueueControl(s, flags: TCPFlag.syn)
            return 0
        }
        syn.meta.tcpSeq = s.writeSeq
        syn.meta.tcpEndSeq = s.writeSeq &+ 1
        syn.meta.tcpFlags = TCPFlag.syn
        syn.meta.tcpSegments = 1
        syn.meta.timestamp = now
        syn.releaseHeader()
        s.writeSeq &+= 1
        let p = d.put(space)
        p.copyMemory(from: data.baseAddress!, byteCount: space)
        pool.recordCopy(.userToBuffer, bytes: space)
        d.meta.tcpSeq = s.writeSeq
        d.meta.tcpEndSeq = s.writeSeq &+ UInt32(space)
        d.meta.tcpFlags = TCPFlag.ack | TCPFlag.psh
        d.meta.tcpSegments = 1
        d.meta.timestamp = now
        d.releaseHeader()
        s.writeSeq &+= UInt32(space)
        s.queuedBytes += space
        tcpSlab.pushBack(syn, onto: &s.retransmitQueue)
        tcpSlab.pushBack(d, onto: &s.retransmitQueue)
        let dataSlot = s.retransmitQueue.tail
        s.packetsOut += 2
        s.fastOpen.synData = true
        // One segment: the SYN flag and sequence number, the data's bytes.
        var c = tcpSlab.clone(at: dataSlot)
        buildTCPHeader(s, &c, seq: s.iss, flags: TCPFlag.syn)
        s.sndNxt = s.writeSeq
        s.bytesSent &+= UInt64(space)
        s.segmentsOut &+= 1
        s.lastSendTime = now
        tcpCounters.outSegs &+= 1
        _ = ipQueueXmit(c, destination: s.remoteAddress, protocol: IPProtocol.tcp, tos: s.options.typeOfService,
                        dontFragment: true, route: &s.routeCache)
        armRetransmitTimer(s)
        return space
    }

    /// The SYN's data the SYN-ACK left unacknowledged is lost, not congestion: Loss state without
    /// a cwnd cut, and the data goes again whole (one TSO packet at the MSS the SYN-ACK set).
    /// Linux: `tcp_mark_skb_lost()` and `tcp_non_congestion_loss_retransmit()`.
    func fastOpenRetransmitSynData(_ s: TCPSocket) {
        let slot = s.retransmitQueue.head
        guard slot != PacketSlab.none else { return }
        // Linux (tcp_retransmit_skb → tcp_set_skb_tso_segs): segment counts follow the MSS the
        // SYN-ACK set; only SYN data is outstanding, so packets_out is their sum.
        let mss = sendMSS(s)
        var k = slot
        s.packetsOut = 0
        while k != PacketSlab.none {
            let segments = segmentCount(bytes: tcpSlab.length(at: k), mss: mss)
            tcpSlab.updateMeta(at: k) { $0.tcpSegments = segments }
            s.packetsOut += UInt32(segments)
            k = tcpSlab.next(k)
        }
        k = slot
        while k != PacketSlab.none {
            let mk = tcpSlab.meta(at: k)
            if mk.tcpSacked & (SegmentMark.lost | SegmentMark.sacked) == 0 {
                tcpSlab.updateMeta(at: k) { $0.tcpSacked |= SegmentMark.lost }
                s.lostOut += UInt32(mk.tcpSegments)
            }
            k = tcpSlab.next(k)
        }
        if s.caState != .loss {
            s.highSeq = s.sndNxt
            s.caState = .loss
        }
        retransmitSegment(s, slot: slot)
    }

    /// Data (and a FIN) on the SYN-ACK of a Fast Open connect are taken in order (a server may
    /// answer SYN data at once) and acknowledged now; returns whether there were any.
    /// Linux: `tcp_fastopen_add_skb()` from `tcp_rcv_fastopen_synack()`.
    func fastOpenSynAckData(_ s: TCPSocket, _ seg: TCPSegmentInfo, _ buffer: consuming PacketBuffer) -> Bool {
        let b = buffer
        guard seg.payloadLength > 0 || seg.has.fin, s.fastOpen.synFastOpen || s.fastOpen.synData else { return false }
        if b.length > 0 && !tcpSlab.isFull {
            s.rcvNxt = s.rcvNxt &+ UInt32(b.length)
            s.receiveQueueBytes += b.length
            s.bytesReceived &+= UInt64(b.length)
            s.lastDataReceiveTime = now
            tcpSlab.pushBack(b, onto: &s.receiveQueue)
        }
        if seg.has.fin { tcpFin(s) } else { tcpSendAck(s) }
        return true
    }

    /// The SYN-ACK of a Fast Open connect, after its ACK was processed: remembers the server's
    /// cookie and MSS; if the SYN's data was not acknowledged, retransmits it at once (the
    /// retransmission carries the handshake's ACK) and returns true. Linux:
    /// `tcp_rcv_fastopen_synack()`, `tcp_fastopen_cache_set()`.
    func fastOpenSynAckReceived(_ s: TCPSocket, _ seg: TCPSegmentInfo) -> Bool {
        guard s.fastOpen.synFastOpen || s.fastOpen.synData else { return false }
        let dataUnacked = s.fastOpen.synData && s.retransmitQueue.head != PacketSlab.none
        var cookie = seg.options.fastOpen
        var tryExperimental: UInt8 = 0
        if !s.fastOpen.synFastOpen {
            cookie = nil   // an unsolicited cookie is ignored
        } else if s.totalRetransmits == 0 && cookie == nil && !s.fastOpen.synData {
            // A cookie request went unanswered: next time try the other option kind.
            tryExperimental = s.fastOpen.synFastOpenExperimental ? 2 : 1
        }
        var entry = fastOpenCache[s.remoteAddress.value] ?? FastOpenCacheEntry()
        if let mss = seg.options.maximumSegmentSize, mss > 0 { entry.mss = mss }
        if let c = cookie, c.cookie.count > 0 {
            entry.cookie = c.cookie
            entry.experimental = c.experimental
        } else if tryExperimental > entry.tryExperimental && (entry.cookie?.count ?? 0) == 0 && !entry.experimental {
            entry.tryExperimental = tryExperimental
        }
        fastOpenCache[s.remoteAddress.value] = entry
        if dataUnacked {
            tcpCounters.fastOpenActiveFail &+= 1
            fastOpenRetransmitSynData(s)
            return true
        }
        s.fastOpen.synDataAcked = s.fastOpen.synData
        if s.fastOpen.synDataAcked {
            tcpCounters.fastOpenActive &+= 1
            // The SYN and its data were counted as two deliveries.
            if s.delivered > 1 { s.delivered -= 1 }
        }
        return false
    }
}

extension NetworkStack {
    /// The Fast Open part of a send: `sendto(MSG_FASTOPEN)` on an unconnected socket (`explicit`)
    /// connects with data in the SYN; the first send on a socket whose TCP_FASTOPEN_CONNECT
    /// connect was deferred sends that SYN. Returns the bytes the SYN took, EINPROGRESS when it
    /// took none, an error, or nil when this is an ordinary send. With `blocking` and bytes left
    /// over, the SYN-ACK's ACK waits for them. Linux: `tcp_sendmsg_fastopen()`.
    public func fastOpenSend(_ fd: Int32, _ data: UnsafeRawBufferPointer, to: SocketAddress?, explicit: Bool,
                             blocking: Bool, now t: Nanoseconds) -> Result<Int, Errno>? {
        guard let s = tcpSocket(fd) else { return nil }
        let copied: Int
        if s.fastOpen.deferred && s.state == .synSent {
            s.fastOpen.deferred = false
            copied = processContext(now: t) { fastOpenSendSyn(s, data) }
        } else {
            guard explicit else { return nil }
            guard tcpConfig.fastOpen & FastOpenFlags.clientEnable != 0 else { return .failure(.EOPNOTSUPP) }
            switch s.state {
            case .closed: break
            case .synSent, .synReceived: return .failure(.EALREADY)
            case .listen: return .failure(.EISCONN)
            default: return nil
            }
            guard let to else { return .failure(.EINVAL) }
            let (e, n) = tcpConnect(fd, to, now: t, synData: data)
            if let e, e != .EINPROGRESS { return .failure(e) }
            copied = n
        }
        s.fastOpen.writePending = blocking && copied < data.count
        return copied > 0 ? .success(copied) : .failure(.EINPROGRESS)
    }
}
