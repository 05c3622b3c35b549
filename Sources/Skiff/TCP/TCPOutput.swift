import SkiffWire

/// Flags of `send`/`sendmsg` (Linux: `MSG_*`).
public struct SendFlags: OptionSet, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public static let dontWait = SendFlags(rawValue: 0x40)     // MSG_DONTWAIT
    public static let more = SendFlags(rawValue: 0x8000)       // MSG_MORE
    public static let noSignal = SendFlags(rawValue: 0x4000)   // MSG_NOSIGNAL
    public static let endOfRecord = SendFlags(rawValue: 0x80)  // MSG_EOR
    /// MSG_ZEROCOPY: completion is reported on the error queue (with SO_ZEROCOPY; see
    /// `TCP/TCPZerocopy.swift`: Skiff copies and says so).
    public static let zerocopy = SendFlags(rawValue: 0x400_0000)
}

/// Largest TCP header plus IP and link headers a segment needs in front (Linux: `MAX_TCP_HEADER`).
let tcpHeadroom = 128

extension NetworkStack {
    // MARK: tcp_sendmsg

    /// `tcpSendmsg` for one buffer. Linux: `tcp_sendmsg()`.
    func tcpSendmsg(_ sock: TCPSocket, _ data: UnsafeRawBufferPointer, flags: SendFlags) -> Result<Int, Errno> {
        withUnsafePointer(to: data) { tcpSendmsg(sock, UnsafeBufferPointer(start: $0, count: 1), flags: flags) }
    }

    /// An I/O vector in one call (as Linux's `msg_iter`). With MSG_ZEROCOPY on a socket with
    /// SO_ZEROCOPY the send takes a notification id first and gives it back if nothing was
    /// queued (`TCP/TCPZerocopy.swift`). Linux: `tcp_sendmsg()` → `msg_zerocopy_realloc()`.
    func tcpSendmsg(_ sock: TCPSocket, _ parts: UnsafeBufferPointer<UnsafeRawBufferPointer>, flags: SendFlags) -> Result<Int, Errno> {
        var total = 0
        for p in parts { total += p.count }
        guard flags.contains(.zerocopy), sock.zerocopy.enabled, total > 0 else {
            return tcpSendmsgCopy(sock, parts, total: total, flags: flags, zerocopy: nil)
        }
        // Linux: msg_zerocopy_realloc(), before the connection state is looked at.
        let tail = sock.writeQueue.tail
        let tailHolds = tail != PacketSlab.none && tcpSlab.meta(at: tail).tcpZerocopyFragments > 0
        let how = sock.zerocopy.begin(size: total, tailHoldsRange: tailHolds)
        if how == .full { return .failure(.ENOBUFS) }
        let r = tcpSendmsgCopy(sock, parts, total: total, flags: flags, zerocopy: how)
        if case .success = r { sock.zerocopy.extendLast(to: sock.writeSeq) } else { sock.zerocopy.abort(how) }
        return r
    }

    /// Copies user bytes onto the write queue and pushes. The tail buffer is filled while it has
    /// room (the size goal: a TSO-sized buffer, see `sizeGoal`), then a new buffer is taken; the
    /// send buffer limits what is queued (a short count or EAGAIN when full).
    /// Linux: `tcp_sendmsg_locked()`.
    private func tcpSendmsgCopy(_ sock: TCPSocket, _ parts: UnsafeBufferPointer<UnsafeRawBufferPointer>, total: Int,
                                flags: SendFlags, zerocopy: ZerocopyState.Begin?) -> Result<Int, Errno> {
        if let e = sock.pendingError { sock.pendingError = nil; return .failure(e) }
        switch sock.state {
        case .established, .closeWait: break
        case .synReceived where sock.fastOpen.passiveChild: break   // Linux: tcp_passive_fastopen()
        case .synSent, .synReceived: return .failure(.EAGAIN)
        // Linux: sk_stream_wait_connect() — any other state is EPIPE.
        default: return .failure(.EPIPE)
        }
        if sock.shutdownWrite { return .failure(.EPIPE) }
        // Nothing to send is not an error (Linux: tcp_sendmsg_locked returns the 0 it copied).
        if total == 0 { return .success(0) }
        let id = tracer.begin()
        tracer.record(id, .socketSend, contexts.current, now)
        tracer.record(id, .tcpSendmsg, contexts.current, now)
        let goal = sizeGoal(sock)
        let mss = sendMSS(sock)
        sock.writingMore = flags.contains(.more)
        // A zerocopy send may add to the tail buffer only when that holds its own range.
        var ownsTail = zerocopy == .merged
        var copied = 0
        var part = 0, offset = 0
        while copied < total {
            while parts[part].count == offset { part += 1; offset = 0 }
            let data = parts[part]
            var tail = sock.writeQueue.tail
            var room = 0
            if tail != PacketSlab.none {
                let len = tcpSlab.length(at: tail)
                let m = tcpSlab.meta(at: tail)
                // Linux: tcp_skb_can_collapse_to() — nothing joins a FIN or an ended record.
                let closed = m.tcpFlags & TCPFlag.fin != 0 || m.tcpEndOfRecord
                room = closed ? 0 : min(goal - len, tcpSlab.withBuffer(at: tail) { $0.tailroom })
                // Linux: skb_zerocopy_iter_stream() → EMSGSIZE (its fragments are all taken) or
                // EEXIST (it holds another send's range): tcp_mark_push(), then a new buffer.
                if room > 0 && m.tcpZerocopyFragments > 0
                    && (m.tcpZerocopyFragments >= UInt8(ZerocopyState.maxFragments) || zerocopy != nil && !ownsTail) {
                    room = 0
                    markPush(sock, slot: tail)
                }
            }
            if room <= 0 {
                // A new buffer sized for what this write still holds, up to the size goal; none
                // while the send buffer is full (Linux: sk_stream_memory_free → wait_for_space).
                let size = min(goal, max(mss, total - copied))
                guard tcpStreamMemoryFree(sock, wake: false) else { sock.noSpace = true; break }
                // No buffer: the writer waits for the pool to change (its write mark follows
                // the pool while it waits), or for space as for a full send buffer (Linux:
                // sk_stream_wait_memory sets SOCK_NOSPACE whatever the shortage).
                guard !tcpSlab.isFull, var b = pool.allocate(size: size, headroom: tcpHeadroom) else {
                    sock.noSpace = true
                    sock.waitingForBuffers = true
                    break
                }
                sock.waitingForBuffers = false
                b.meta.tcpSeq = sock.writeSeq
                b.meta.tcpEndSeq = sock.writeSeq
                b.meta.tcpFlags = TCPFlag.ack
                b.meta.traceID = copied == 0 ? id : 0
                b.releaseHeader()
                room = min(size, b.tailroom)
                // Linux: tcp_add_write_queue_tail() — the first queued buffer starts the busy time.
                if sock.writeQueue.head == PacketSlab.none { chronoStart(sock, .busy) }
                tcpSlab.pushBack(b, onto: &sock.writeQueue)
                tail = sock.writeQueue.tail
                if zerocopy != nil { ownsTail = true }
                if sock.zerocopy.enabled { sock.zerocopy.lastFragmentEnd = 0; sock.zerocopy.lastAppendWasCopy = false }
                sock.queuedBytes += tcpBufferOverhead   // Linux: tcp_skb_entail() charges the head
            }
            var n = min(room, data.count - offset)
            if sock.zerocopy.enabled {
                n = zerocopyLayout(sock, tail: tail, at: data.baseAddress! + offset, count: n, zerocopy: zerocopy != nil)
                if n == 0 {
                    // The buffer's fragments are all taken: it is closed, and the room test above
                    // pushes it and takes a new one (Linux: EMSGSIZE, new_segment).
                    tcpSlab.updateMeta(at: tail) { $0.tcpZerocopyFragments = UInt8(ZerocopyState.maxFragments) }
                    continue
                }
            }
            let src = data.baseAddress! + offset
            tcpSlab.withBuffer(at: tail) { b in
                let p = b.put(n)
                p.copyMemory(from: src, byteCount: n)
                b.meta.tcpEndSeq &+= UInt32(n)
                if b.meta.traceID == 0 && copied == 0 { b.meta.traceID = id }
                // Linux: a buffer this write starts in loses an earlier write's PSH.
                if copied == 0 { b.meta.tcpFlags &= ~TCPFlag.psh }
            }
            PacketSlab.adjust(&sock.writeQueue, bytes: n)
            pool.recordCopy(.userToBuffer, bytes: n)
            sock.writeSeq &+= UInt32(n)
            sock.queuedBytes += n
            copied += n
            offset += n
            let full = tcpSlab.length(at: tail) >= goal
            if full && forcedPush(sock) {
                // A full buffer when more than half the peer's largest window was written since
                // the last PSH gets one, and everything queued goes out (Linux: tcp_sendmsg_locked
                // → forced_push, tcp_mark_push, __tcp_push_pending_frames).
                markPush(sock, slot: tail)
                if copied < total { tcpWriteXmit(sock, nagle: .push) }
            } else if full && copied < total && tail == sock.writeQueue.head {
                // Else a full buffer at the head of the queue goes out alone (tcp_push_one).
                tcpWriteXmit(sock, nagle: .push, limit: 1)
            }
        }
        if copied == 0 { return .failure(.EAGAIN) }
        if flags.contains(.endOfRecord) && copied == total {
            // Linux: the skb where an MSG_EOR write ends is marked eor.
            tcpSlab.updateMeta(at: sock.writeQueue.tail) { $0.tcpEndOfRecord = true }
        }
        if !flags.contains(.more) || forcedPush(sock), sock.writeQueue.tail != PacketSlab.none {
            // Linux: tcp_push() → tcp_mark_push(): the write's last segment carries PSH.
            markPush(sock, slot: sock.writeQueue.tail)
        }
        if sock.timestamping.flags != 0 { tcpTxTimestamp(sock) }
        tcpPush(sock, more: flags.contains(.more))
        return .success(copied)
    }

    /// Whether more than half of the peer's largest window was written since PSH was last
    /// marked. Linux: `forced_push()`.
    @inline(__always)
    func forcedPush(_ sock: TCPSocket) -> Bool {
        seqGT(sock.writeSeq, sock.pushedSeq &+ (sock.maxWindow >> 1))
    }

    /// Marks PSH on a queued buffer and remembers where. Linux: `tcp_mark_push()`.
    @inline(__always)
    func markPush(_ sock: TCPSocket, slot: Int32) {
        tcpSlab.updateMeta(at: slot) { $0.tcpFlags |= TCPFlag.psh }
        sock.pushedSeq = sock.writeSeq
    }

    /// Payload bytes per segment now: the MSS less the options every segment carries.
    /// Linux: `tcp_current_mss()`.
    @inline(__always)
    func sendMSS(_ sock: TCPSocket) -> Int {
        var m = sock.mss - (sock.timestampsEnabled ? 12 : 0)
        if sock.options.userMSS > 0 { m = min(m, sock.options.userMSS) }
        return max(m, 48)
    }

    /// Linux: `tcp_push()` → `__tcp_push_pending_frames()`.
    func tcpPush(_ sock: TCPSocket, more: Bool = false, force: Bool = false) {
        let mode: NagleMode = force || sock.options.noDelay && !sock.options.cork && !more ? .push
            : (sock.options.cork || more ? .cork : .nagle)
        tcpWriteXmit(sock, nagle: mode)
    }

    enum NagleMode { case nagle, cork, push }

    // MARK: tcp_write_xmit

    /// Sends what the windows allow from the write queue: for each buffer the congestion-window
    /// test, the receive-window test and the Nagle test (Linux's, with Minshall's variant); each
    /// sent buffer moves to the retransmit queue and a clone goes down the stack.
    /// Linux: `tcp_write_xmit()`. Returns true if anything was sent.
    @discardableResult
    func tcpWriteXmit(_ sock: TCPSocket, nagle: NagleMode, ignoreWindow: Bool = false, limit: Int = Int.max) -> Bool {
        guard sock.state.isSynchronized || sock.state == .synSent || sock.state == .synReceived else { return false }
        let mssNow = sendMSS(sock)
        var sent = 0
        if sock.packetsOut == 0 && sock.lastSendTime > 0 && sock.writeQueue.head != PacketSlab.none
            && sock.state == .established {
            // Linux: tcp_slow_start_after_idle_check() and CA_EVENT_TX_START.
            let idle = now &- sock.lastSendTime
            if tcpConfig.slowStartAfterIdle {
                CongestionControl.restartWindow(window: &sock.window, idle: idle, rto: currentRTO(sock))
            }
            sock.congestion.onEvent(.transmitStart, window: &sock.window, now: now, lastSend: sock.lastSendTime)
        }
        let maxSegments = tsoSegmentLimit(sock, mss: mssNow)
        var cwndHit = false
        var rwndHit = false
        defer {
            // Linux: the receive-window-limited time runs while the peer's window holds data.
            if rwndHit { chronoStart(sock, .receiveWindowLimited) } else { chronoStop(sock, .receiveWindowLimited) }
            // Linux: is_cwnd_limited |= packets_in_flight >= cwnd; tcp_cwnd_validate().
            let limited = cwndHit || sock.inFlight >= sock.window.cwnd
            if sent > 0 || limited { cwndValidate(sock, limited: limited) }
        }
        while true {
            let slot = sock.writeQueue.head
            if slot == PacketSlab.none { break }
            if pacingCheck(sock) { break }
            let m = tcpSlab.meta(at: slot)
            let len = Int(m.tcpEndSeq &- m.tcpSeq)
            let payload = tcpSlab.length(at: slot)
            let isFin = m.tcpFlags & TCPFlag.fin != 0
            tracer.record(m.traceID, .tcpWriteXmit, contexts.current, now)
            // A Fast Open child's SYN-ACK is not in flight for Linux (the request sent it).
            let synAckOut = sock.fastOpen.passiveChild && sock.sndUna == sock.iss ? 1 : 0
            // Congestion window, in segments (Linux: tcp_cwnd_test); only a FIN that is a single
            // segment may go beyond it (the final FIN), not a larger buffer the FIN rides on.
            let quota = cwndQuota(sock)
            if quota <= 0 && !(isFin && payload <= mssNow) { cwndHit = true; break }
            // Receive window: the first segment must fit (Linux: tcp_snd_wnd_test).
            let firstEnd = payload > mssNow ? m.tcpSeq &+ UInt32(mssNow) : (isFin ? m.tcpEndSeq &- 1 : m.tcpEndSeq)
            // Its window starts after the SYN-ACK too (Linux: the child's snd_una is ISN + 1).
            let windowBase = synAckOut == 1 ? sock.iss &+ 1 : sock.sndUna
            let windowEnd = windowBase &+ sock.sndWnd
            if seqGT(firstEnd, windowEnd) && m.tcpFlags & TCPFlag.syn == 0 && !ignoreWindow {
                if sock.packetsOut == 0 { armProbe0(sock) }
                rwndHit = true
                break
            }
            // Nagle (Linux: tcp_nagle_test / tcp_nagle_check with tcp_minshall_check).
            let isTail = slot == sock.writeQueue.tail
            if payload < mssNow && !isFin && isTail {
                switch nagle {
                case .push: break
                case .cork:
                    if sock.writeQueue.count == 1 {
                        // Linux: tcp_check_probe_timer() — with nothing in flight the probe timer
                        // will send the corked segment (TCP_CORK's ceiling).
                        if sent == 0 && sock.packetsOut == 0 { armProbe0(sock) }
                        return sent > 0
                    }
                case .nagle:
                    if nagleHoldsPartial(sock) { return sent > 0 }
                }
            }
            if payload > mssNow {
                // A TSO buffer: send what cwnd, the window, the autosized limit and Nagle allow
                // now and split off the rest (Linux: tcp_mss_split_point() → tso_fragment()).
                var limit = min(payload, max(quota, 1) * mssNow, maxSegments * mssNow)
                if !ignoreWindow {
                    let room = Int(windowEnd &- m.tcpSeq)
                    if room < limit { limit = max(mssNow, room / mssNow * mssNow) }
                }
                if limit == payload && isTail && payload % mssNow != 0 && !isFin {
                    let holds: Bool
                    switch nagle {
                    case .push: holds = false
                    case .cork: holds = true
                    case .nagle: holds = nagleHoldsPartial(sock)
                    }
                    if holds { limit = payload / mssNow * mssNow }
                }
                if limit < payload {
                    tcpSplit(sock, slot: slot, in: &sock.writeQueue, keep: limit, mss: mssNow, sent: false)
                }
            }
            // TCP Small Queues: enough of this socket's data is still in the qdisc and the TX
            // ring; the device's freeing of it sends more.
            if tcpSmallQueueCheck(sock, truesize: tcpSlab.length(at: slot) + tcpBufferOverhead, factor: 0) { break }
            guard var b = tcpSlab.popFront(&sock.writeQueue) else { break }
            let sentPayload = b.length
            let segments = segmentCount(bytes: sentPayload, mss: mssNow)
            b.meta.tcpSegments = segments
            let endSeq = b.meta.tcpEndSeq
            let sentLen = Int(endSeq &- b.meta.tcpSeq)
            tcpSlab.pushBack(b, onto: &sock.retransmitQueue)
            let rslot = sock.retransmitQueue.tail
            sock.packetsOut += UInt32(segments)
            if sock.caState == .recovery || sock.caState == .cwr { sock.prrOut += UInt32(segments) }   // Linux: prr_out
            tcpTransmit(sock, slot: rslot)
            sock.sndNxt = seqMax(sock.sndNxt, endSeq)
            // Linux: tcp_minshall_update() in tcp_write_xmit; a SYN or SYN-ACK never passes there.
            if (sentPayload % mssNow != 0 || sentPayload == 0) && m.tcpFlags & TCPFlag.syn == 0 { sock.sndSml = endSeq }
            sock.bytesSent &+= UInt64(sentLen)
            pacingAfterSend(sock, bytes: sentPayload)
            sent += 1
            if sent >= limit { break }
            _ = len
        }
        if sent > 0 {
            sock.lastSendTime = now
            armRetransmitTimer(sock)
        }
        return sent > 0
    }

    /// How many segments the next transmission may carry by the congestion window: what cwnd
    /// leaves free, but at most half of cwnd, so that a window goes out as at least two GSO
    /// packets. Zero when cwnd is full. Linux: `tcp_cwnd_test()`.
    @inline(__always)
    func cwndQuota(_ sock: TCPSocket) -> Int {
        // A Fast Open child's SYN-ACK does not count (Linux sent it from the request).
        let synAckOut = sock.fastOpen.passiveChild && sock.sndUna == sock.iss ? 1 : 0
        let cwnd = Int(sock.window.cwnd), inFlight = Int(sock.inFlight) - synAckOut
        if inFlight >= cwnd { return 0 }
        return min(max(cwnd / 2, 1), cwnd - inFlight)
    }

    /// Remembers whether this window of data was limited by cwnd, or else the most segments it
    /// had out, for the ACK's decision to grow cwnd. Linux: `tcp_cwnd_validate()`.
    func cwndValidate(_ sock: TCPSocket, limited: Bool) {
        if !seqLT(sock.sndUna, sock.cwndUsageSeq) || limited
            || (!sock.isCwndLimited && sock.packetsOut > sock.maxPacketsOut) {
            sock.isCwndLimited = limited
            sock.maxPacketsOut = sock.packetsOut
            sock.cwndUsageSeq = sock.sndNxt
        }
        // Not cwnd-limited, everything sent, and a writer found the buffer full: the send
        // buffer is what starves the network.
        if !isCwndLimited(sock) && sock.writeQueue.head == PacketSlab.none && sock.noSpace
            && (sock.state == .established || sock.state == .closeWait) {
            chronoStart(sock, .sendBufferLimited)
        }
    }

    /// Whether cwnd is what limits sending, so an ACK may grow it: the last window was
    /// cwnd-limited, or in slow start cwnd is below twice the most segments out. Linux:
    /// `tcp_is_cwnd_limited()`. With `slowStartOnly`, only the slow-start rule (the ACK path
    /// keeps its own in-flight test for the rest).
    func isCwndLimited(_ sock: TCPSocket, slowStartOnly: Bool = false) -> Bool {
        if sock.isCwndLimited && !slowStartOnly { return true }
        if sock.window.inSlowStart { return sock.window.cwnd < 2 * sock.maxPacketsOut }
        return false
    }

    /// Splits the head of the write queue so that it keeps `keep` payload bytes; the rest stays
    /// queued behind it, sharing its bytes. Linux: `tcp_fragment()` on the write queue.
    func tcpFragmentWriteHead(_ sock: TCPSocket, keep: Int) {
        let head = sock.writeQueue.head
        guard head != PacketSlab.none else { return }
        tcpSplit(sock, slot: head, in: &sock.writeQueue, keep: keep, mss: sendMSS(sock), sent: false)
    }

    /// Nagle's test for a partial segment: hold it while sent data is unacknowledged and the
    /// last small segment is still in flight (Minshall's variant). Linux: `tcp_nagle_check()`.
    @inline(__always)
    func nagleHoldsPartial(_ sock: TCPSocket) -> Bool {
        let minshall = seqGT(sock.sndSml, sock.sndUna) && !seqGT(sock.sndSml, sock.sndNxt)
        return sock.packetsOut > 0 && minshall
    }

    // MARK: tcp_transmit_skb

    /// Transmits the segment in `slot` of the retransmit queue: a clone shares its data, the TCP
    /// header and options are pushed into the clone's headroom, and the clone goes to IP.
    /// Linux: `tcp_transmit_skb()` → `__tcp_transmit_skb()` → `ip_queue_xmit()`.
    func tcpTransmit(_ sock: TCPSocket, slot: Int32) {
        var c: PacketBuffer
        // The headroom is free unless the bytes in front belong to another buffer (a split or
        // trimmed one) or an earlier transmission's clone, headers and all, is still on its way
        // down (in a qdisc or a TX ring): its headers must not be overwritten (Linux:
        // `skb_cloned()` → `pskb_copy()` in `__tcp_transmit_skb`).
        let headroomFree = !tcpSlab.meta(at: slot).sharedHeadroom && !tcpSlab.withBuffer(at: slot) { $0.isHeaderShared }
        if headroomFree {
            // The headers go into the released headroom of a clone (zero header copies).
            c = tcpSlab.clone(at: slot)
        } else {
            // The headers get a small buffer of their own, the payload is referenced, not copied
            // (Linux: an skb whose data sits in page fragments).
            guard var h = pool.allocate(size: 0, headroom: tcpHeadroom) else { drops.count(.poolExhausted); return }
            let ok = tcpSlab.withBuffer(at: slot) { b -> Bool in
                h.meta = b.meta
                return h.addFragments(of: b, offset: 0, length: b.length)
            }
            guard ok else { drops.count(.poolExhausted); return }
            c = h
        }
        tcpSlab.updateMeta(at: slot) { $0.timestamp = now }
        tracer.record(c.meta.traceID, .tcpTransmitSkb, contexts.current, now)
        let segments = UInt64(c.meta.tcpSegments)
        // A transmission of several segments (a TSO/GSO packet) carries PSH, as every such packet
        // does in packetdrill's Linux traces (slow start's 2-segment bursts, the IW10 burst of a
        // longer write), unless the application holds data back (MSG_MORE, TCP_CORK); a single
        // segment keeps its buffer's flag (tcp_push's mark).
        let pushes = segments > 1 && c.meta.tcpFlags & TCPFlag.syn == 0 && !sock.options.cork && !sock.writingMore
        let flags = pushes ? c.meta.tcpFlags | TCPFlag.psh : c.meta.tcpFlags
        let isNew = seqGT(c.meta.tcpEndSeq, sock.sndNxt)
        // A buffer of several segments leaves as one GSO packet, cut by the NIC (TSO) or just
        // before the driver (GSO); Linux: tcp_set_skb_tso_segs() sets gso_size.
        c.meta.gsoSize = segments > 1 ? UInt16(sendMSS(sock)) : 0
        // Linux: OutSegs counts new segments, not retransmissions (those are RetransSegs).
        if isNew || c.meta.tcpSeq == c.meta.tcpEndSeq { tcpCounters.outSegs &+= segments }
        buildTCPHeader(sock, &c, seq: c.meta.tcpSeq, flags: flags, partialChecksum: segments > 1 || checksumOffloaded(sock))
        sock.segmentsOut &+= segments
        // Linux: tcp_event_data_sent() — data leaving within an ATO (40 ms) of data arriving
        // turns ping-pong mode on.
        if tcpSlab.length(at: slot) > 0 && sock.state.isSynchronized && sock.ackTimeoutStarted
            && now &- sock.lastDataReceiveTime < 40 * Time.millisecond {
            sock.pingpong = true
        }
        // Charged to the socket until the device frees it, as its buffer is charged to the queues.
        tcpChargeTransmit(sock, &c, bytes: tcpSlab.length(at: slot) + tcpBufferOverhead)
        _ = ipQueueXmit(c, destination: sock.remoteAddress, protocol: IPProtocol.tcp, tos: sock.options.typeOfService, dontFragment: true,
                        route: &sock.routeCache)
    }

    /// Pushes and fills the TCP header in front of `b`'s payload. Options: on SYN, Linux's
    /// MSS / SACK-permitted / timestamps / window scale; otherwise timestamps and SACK blocks.
    /// The route's device fills in transport checksums (Linux: `NETIF_F_HW_CSUM` in `sk_route_caps`).
    @inline(__always)
    func checksumOffloaded(_ sock: TCPSocket) -> Bool {
        guard let r = sock.routeCache.result, r.device < devices.count else { return false }
        return devices[r.device].features.contains(.txChecksum)
    }

    /// With `partialChecksum` the checksum field gets only the pseudo-header sum, for the device
    /// or GSO to finish (Linux: `CHECKSUM_PARTIAL`, `tcp_v4_send_check()`); otherwise the whole
    /// checksum is computed here.
    func buildTCPHeader(_ sock: TCPSocket, _ b: inout PacketBuffer, seq: UInt32, flags: UInt8, partialChecksum: Bool = false) {
        var opts = TCPOptions()
        let syn = flags & TCPFlag.syn != 0
        if syn {
            opts.maximumSegmentSize = UInt16(sock.advertisedMSS)
            if tcpConfig.sack && (sock.state == .synSent || sock.sackEnabled) { opts.sackPermitted = true }
            if tcpConfig.timestamps && (sock.state == .synSent || sock.timestampsEnabled) {
                opts.timestamp = TCPTimestamp(value: tcpTimestamp(), echo: sock.tsRecent)
                if sock.state == .synSent && sock.synTimestamp == nil { sock.synTimestamp = tcpTimestamp() }
            }
            if tcpConfig.windowScaling && (sock.state == .synSent || sock.windowScalingEnabled) {
                opts.windowScale = sock.receiveWindowScale
            }
            opts.fastOpen = fastOpenSynOption(sock, room: TCPOptions.maximumLength - opts.encodedLength)
        } else {
            if sock.timestampsEnabled { opts.timestamp = TCPTimestamp(value: tcpTimestamp(), echo: sock.tsRecent) }
            if sock.sackEnabled { fillSACKBlocks(sock, &opts) }
        }
        let optLen = opts.encodedLength
        let hl = 20 + optLen
        let segLen = b.length + hl
        let p = b.push(hl)
        p.storeBytes(of: sock.localPort.bigEndian, as: UInt16.self)
        p.storeBytes(of: sock.remotePort.bigEndian, toByteOffset: 2, as: UInt16.self)
        p.storeBytes(of: seq.bigEndian, toByteOffset: 4, as: UInt32.self)
        let ackFlag = flags & TCPFlag.ack != 0
        p.storeBytes(of: (ackFlag ? sock.rcvNxt : 0).bigEndian, toByteOffset: 8, as: UInt32.self)
        p.storeBytes(of: UInt8(hl / 4) << 4, toByteOffset: 12, as: UInt8.self)
        p.storeBytes(of: flags, toByteOffset: 13, as: UInt8.self)
        let win: UInt16
        if syn {
            // Linux: tcp_select_initial_window() — the receive space (`tcp_full_space`: half of
            // sk_rcvbuf, which is tcp_rmem[1] unless SO_RCVBUF set it) rounded down to whole
            // segments of the MSS (less the timestamp option on a SYN-ACK carrying it), then at
            // most 64 KiB on a SYN (never scaled): 64240 for the default 128 KiB, 65535 exactly
            // for packetdrill's 540000.
            let m = max(sock.advertisedMSS - (sock.state == .synReceived && sock.timestampsEnabled ? 12 : 0), 1)
            let rcvbuf = sock.receiveBufferLocked ? sock.receiveBufferSize : tcpConfig.receiveMemory.1
            let space = max(0, rcvbuf / 2)
            let w = UInt32(min(65535, space > m ? space / m * m : space))
            sock.rcvWnd = w
            sock.rcvWup = sock.rcvNxt
            sock.rcvSSThresh = w
            win = UInt16(w)
        } else {
            win = UInt16(min(selectWindow(sock) >> UInt32(sock.receiveWindowScale), 65535))
        }
        p.storeBytes(of: win.bigEndian, toByteOffset: 14, as: UInt16.self)
        p.storeBytes(of: UInt32(0), toByteOffset: 16, as: UInt32.self)
        if optLen > 0 { _ = opts.emit(into: UnsafeMutableRawBufferPointer(start: p + 20, count: optLen)) }
        var sum = InternetChecksum.pseudoHeaderSum(source: sock.localAddress, destination: sock.remoteAddress,
                                                   protocol: IPProtocol.tcp, length: UInt16(truncatingIfNeeded: segLen))
        if partialChecksum {
            p.storeBytes(of: (~InternetChecksum.fold(sum)).bigEndian, toByteOffset: 16, as: UInt16.self)
            b.meta.checksumPartial = true
        } else {
            sum = b.checksumSum(from: 0, initial: sum)
            p.storeBytes(of: InternetChecksum.fold(sum).bigEndian, toByteOffset: 16, as: UInt16.self)
        }
        b.meta.transportOffset = 0
        if ackFlag {
            sock.ackPending = false
            sock.segmentsSinceAck = 0
            timers.cancel(sock.delayedAckTimer)
        }
        sock.dsack = nil
    }

    /// SACK blocks for the next segment: a D-SACK first if one is pending, then the out-of-order
    /// runs, most recent first (RFC 2018, RFC 2883). Linux: `tcp_build_sack` / `selective_acks`.
    func fillSACKBlocks(_ sock: TCPSocket, _ opts: inout TCPOptions) {
        if let d = sock.dsack { _ = opts.sackBlocks.append(SACKBlock(left: d.0, right: d.1)) }
        // Contiguous runs of the out-of-order queue (the first four), collected in SkiffWire's
        // fixed-capacity block list.
        var runs = SACKBlocks()
        var slot = sock.outOfOrderQueue.head
        var run: SACKBlock? = nil
        while slot != PacketSlab.none {
            let m = tcpSlab.meta(at: slot)
            if let r = run, m.tcpSeq == r.right {
                run = SACKBlock(left: r.left, right: m.tcpEndSeq)
            } else {
                if let r = run { _ = runs.append(r) }
                run = SACKBlock(left: m.tcpSeq, right: m.tcpEndSeq)
            }
            slot = tcpSlab.next(slot)
        }
        if let r = run { _ = runs.append(r) }
        // Most recent (highest) first, as the receiver reports the block holding the newest data first.
        for r in runs.reversed() { _ = opts.sackBlocks.append(r) }
    }

    /// The window to advertise, in bytes: free receive buffer space, never shrinking the right
    /// edge already offered, and with silly-window avoidance (no small increases).
    /// Linux: `tcp_select_window()` → `__tcp_select_window()`.
    func selectWindow(_ sock: TCPSocket) -> UInt32 {
        let space = max(0, sock.receiveBufferSize / 2 - sock.receiveQueueBytes - sock.outOfOrderBytes)
        let mss = max(sock.rcvMSS, 536)
        var free = UInt32(min(space, Int(UInt32(65535) << UInt32(sock.receiveWindowScale))))
        // Receiver-side SWS avoidance (RFC 9293 §3.8.6.2.2): offer nothing rather than a sliver.
        if free < UInt32(min(sock.receiveBufferSize / 4, mss)) { free = 0 }
        // Never move the right edge left (RFC 9293: shrinking the window is discouraged).
        let current = sock.rcvWnd &- (sock.rcvNxt &- sock.rcvWup)
        var window = free
        if Int32(bitPattern: current) > 0 && window < current { window = current }
        // Round up to the scale unit, so the scaled field never moves the right edge left nor
        // scales a small window away (Linux: ALIGN(window, 1 << rcv_wscale)).
        let scale = UInt32(sock.receiveWindowScale)
        let unit = UInt32(1) << scale
        window = (window + unit - 1) / unit * unit
        sock.rcvWnd = window
        sock.rcvWup = sock.rcvNxt
        return window
    }

    /// Sends a bare ACK now (Linux: `tcp_send_ack()`).
    func tcpSendAck(_ sock: TCPSocket) {
        guard var b = pool.allocate(size: 0, headroom: tcpHeadroom) else { drops.count(.poolExhausted); return }
        let seq = sock.sndNxt
        buildTCPHeader(sock, &b, seq: seq, flags: TCPFlag.ack)
        sock.segmentsOut &+= 1
        tcpCounters.outSegs &+= 1
        _ = ipQueueXmit(b, destination: sock.remoteAddress, protocol: IPProtocol.tcp, tos: sock.options.typeOfService, dontFragment: true,
                        route: &sock.routeCache)
    }

    /// Queues a control segment that takes sequence space (SYN, FIN) and sends it.
    /// Linux: `tcp_send_fin()`, `tcp_connect()`'s SYN.
    func tcpQueueControl(_ sock: TCPSocket, flags: UInt8) {
        if flags & TCPFlag.fin != 0, sock.writeQueue.tail != PacketSlab.none {
            // Linux: the FIN rides on the last unsent segment.
            tcpSlab.updateMeta(at: sock.writeQueue.tail) { m in
                m.tcpFlags |= TCPFlag.fin
                m.tcpEndSeq &+= 1
            }
            sock.writeSeq &+= 1
            tcpPush(sock, force: true)
            return
        }
        guard !tcpSlab.isFull, var b = pool.allocate(size: 0, headroom: tcpHeadroom) else {
            drops.count(.poolExhausted); return
        }
        b.meta.tcpSeq = sock.writeSeq
        b.meta.tcpEndSeq = sock.writeSeq &+ 1
        b.meta.tcpFlags = flags
        b.releaseHeader()
        sock.writeSeq &+= 1
        if flags & TCPFlag.fin != 0 && sock.writeQueue.head == PacketSlab.none { chronoStart(sock, .busy) }
        tcpSlab.pushBack(b, onto: &sock.writeQueue)
        sock.queuedBytes += tcpBufferOverhead   // Linux: tcp_queue_skb() charges the skb
        tcpPush(sock, force: true)
    }

    /// Resets a connection from our side: RST|ACK at snd_nxt built like any segment of the
    /// connection, so it carries the timestamp option and the current window. Linux:
    /// `tcp_send_active_reset()` → `tcp_transmit_skb()`.
    func tcpSendActiveReset(_ sock: TCPSocket) {
        guard var b = pool.allocate(size: 0, headroom: tcpHeadroom) else { drops.count(.poolExhausted); return }
        buildTCPHeader(sock, &b, seq: sock.sndNxt, flags: TCPFlag.rst | TCPFlag.ack)
        sock.segmentsOut &+= 1
        tcpCounters.outRsts &+= 1
        tcpCounters.outSegs &+= 1
        _ = ipQueueXmit(b, destination: sock.remoteAddress, protocol: IPProtocol.tcp, tos: sock.options.typeOfService,
                        dontFragment: true, route: &sock.routeCache)
    }

    /// Sends a RST for a segment that has no connection (RFC 9293 §3.10.7.1; Linux: `tcp_v4_send_reset()`).
    func tcpSendReset(to source: IPv4Address, port sourcePort: UInt16, from destination: IPv4Address, port destinationPort: UInt16,
                      seq: UInt32, ack: UInt32?, window: UInt16 = 0) {
        guard var b = pool.allocate(size: 0, headroom: tcpHeadroom) else { drops.count(.poolExhausted); return }
        let p = b.push(20)
        p.storeBytes(of: destinationPort.bigEndian, as: UInt16.self)
        p.storeBytes(of: sourcePort.bigEndian, toByteOffset: 2, as: UInt16.self)
        p.storeBytes(of: seq.bigEndian, toByteOffset: 4, as: UInt32.self)
        p.storeBytes(of: (ack ?? 0).bigEndian, toByteOffset: 8, as: UInt32.self)
        p.storeBytes(of: UInt8(5 << 4), toByteOffset: 12, as: UInt8.self)
        p.storeBytes(of: TCPFlag.rst | (ack != nil ? TCPFlag.ack : 0), toByteOffset: 13, as: UInt8.self)
        p.storeBytes(of: window.bigEndian, toByteOffset: 14, as: UInt16.self)
        p.storeBytes(of: UInt32(0), toByteOffset: 16, as: UInt32.self)
        let sum = InternetChecksum.sum(UnsafeRawBufferPointer(start: p, count: 20),
                                       initial: InternetChecksum.pseudoHeaderSum(source: destination, destination: source, protocol: IPProtocol.tcp, length: 20))
        p.storeBytes(of: InternetChecksum.fold(sum).bigEndian, toByteOffset: 16, as: UInt16.self)
        tcpCounters.outRsts &+= 1
        tcpCounters.outSegs &+= 1
        var cache = RouteCache()
        _ = ipQueueXmitFrom(b, source: destination, destination: source, protocol: IPProtocol.tcp, route: &cache)
    }

    /// The TCP timestamp clock: milliseconds (Linux: `tcp_time_stamp_ms`, the `TS val` of 1 kHz).
    @inline(__always)
    func tcpTimestamp() -> UInt32 { UInt32(truncatingIfNeeded: (now / Time.millisecond) &+ tcpConfig.timestampOffset) }
}
