import SkiffWire

extension NetworkStack {
    /// Processes the acknowledgment of a segment: window update, SACK blocks, the retransmit
    /// queue cleaned (the originals freed: their last reference), RTT measured (Karn's rule),
    /// congestion control, loss detection and recovery, timers, then more data sent.
    /// Linux: `tcp_ack()` → `tcp_sacktag_write_queue()`, `tcp_clean_rtx_queue()`,
    /// `tcp_fastretrans_alert()`, `tcp_cong_control()`.
    func tcpAck(_ sock: TCPSocket, _ seg: TCPSegmentInfo) {
        let ack = seg.ack
        let priorUna = sock.sndUna
        let priorInFlight = sock.inFlight
        if seqLT(ack, priorUna) {
            // An old ACK (reordered behind a later one): only its SACK information may still be
            // new. What it newly SACKs counts as delivered for loss recovery and PRR, and what
            // that allows goes out (Linux: tcp_ack's `before(ack, prior_snd_una)` branch →
            // tcp_sacktag_write_queue, tcp_fastretrans_alert, tcp_xmit_recovery).
            guard sock.sackEnabled && !seg.options.sackBlocks.isEmpty else { return }
            let newly = tcpSackTag(sock, seg.options.sackBlocks, ack: ack, echo: seg.options.timestamp?.echo)
            guard newly > 0, sock.caState != .open || sock.lostOut > 0 || sock.sackedOut > 0 else { return }
            tcpFastRetransAlert(sock, ack: priorUna, delivered: newly, advanced: false)
            if sock.caState == .recovery || sock.caState == .loss { tcpXmitRetransmitQueue(sock) }
            tcpWriteXmit(sock, nagle: sock.nagleMode)
            return
        }
        // Window update (RFC 9293 §3.10.7.4).
        let wnd = UInt32(seg.window) << UInt32(seg.has.syn ? 0 : sock.sendWindowScale)
        var windowChanged = false
        if seqLT(sock.sndWl1, seg.seq) || (sock.sndWl1 == seg.seq && seqLE(sock.sndWl2, ack)) || seqGT(ack, priorUna) {
            windowChanged = wnd != sock.sndWnd
            sock.sndWnd = wnd
            sock.sndWl1 = seg.seq
            sock.sndWl2 = ack
            if wnd > sock.maxWindow { sock.maxWindow = wnd }
        }
        var newlySacked: UInt32 = 0
        let dsacksBefore = tcpCounters.dsackRecv
        if sock.sackEnabled && !seg.options.sackBlocks.isEmpty {
            newlySacked = tcpSackTag(sock, seg.options.sackBlocks, ack: ack, echo: seg.options.timestamp?.echo)
        }
        // Clean the retransmit queue.
        var acked: UInt32 = 0
        // Of those, segments already counted as delivered when they were SACKed.
        var ackedWereSacked: UInt32 = 0
        var reordLow: UInt32? = nil
        var rttSample: Nanoseconds? = nil
        var everRetransAcked = false
        while true {
            let slot = sock.retransmitQueue.head
            if slot == PacketSlab.none { break }
            let m = tcpSlab.meta(at: slot)
            let segments = UInt32(m.tcpSegments)
            if seqLE(m.tcpEndSeq, ack) {
                if m.tcpSacked & SegmentMark.sacked != 0 {
                    sock.sackedOut -= min(segments, sock.sackedOut)
                    ackedWereSacked += segments
                } else {
                    sock.delivered &+= UInt64(segments)   // Linux: tp->delivered (SACKed ones counted then)
                }
                if m.tcpSacked & SegmentMark.lost != 0 { sock.lostOut -= min(segments, sock.lostOut) }
                if m.tcpSacked & SegmentMark.retransmitted != 0 { sock.retransOut -= min(segments, sock.retransOut) }
                if m.tcpSacked & SegmentMark.everRetransmitted != 0 {
                    everRetransAcked = true
                } else if rttSample == nil && m.tcpSacked & SegmentMark.sacked == 0 {
                    // The earliest newly acknowledged segment, never retransmitted nor SACKed
                    // before (Linux: first_ackt). Every segment here was sent, at `timestamp`.
                    rttSample = now &- m.timestamp
                }
                if sock.sackEnabled && m.tcpSacked & SegmentMark.sacked == 0 {
                    rackAdvance(sock, m, echo: seg.options.timestamp?.echo)
                    // A hole filled by the original transmission: the network reorders.
                    if m.tcpSacked & SegmentMark.everRetransmitted == 0 && fackValid(sock)
                        && seqLT(m.tcpEndSeq, sock.fackSeq) { sock.reordSeen = true }
                    if m.tcpSacked & SegmentMark.everRetransmitted == 0 && reordLow == nil { reordLow = m.tcpSeq }
                }
                let payload = tcpSlab.length(at: slot)
                sock.queuedBytes -= payload + tcpBufferOverhead   // Linux: tcp_wmem_free_skb()
                sock.packetsOut -= min(segments, sock.packetsOut)
                acked += segments
                if m.tcpFlags & TCPFlag.syn != 0 { sock.sndUna = seqMax(sock.sndUna, m.tcpSeq &+ 1) }
                tracer.record(m.traceID, .tcpCleanRtxQueue, contexts.current, now)
                if m.txTimestamps != 0 { tcpAckTimestamp(sock, slot: slot, priorUna: priorUna, una: ack) }
                _ = tcpSlab.popFront(&sock.retransmitQueue)      // the original's last reference: freed
            } else if seqLT(m.tcpSeq, ack) {
                // Partly acknowledged: trim the acknowledged head (Linux: tcp_trim_head), and the
                // segments it no longer counts for are acknowledged (Linux: tcp_tso_acked).
                if m.txTimestamps != 0 { tcpAckTimestamp(sock, slot: slot, priorUna: priorUna, una: ack) }
                let n = Int(ack &- m.tcpSeq)
                let remaining = segmentCount(bytes: tcpSlab.length(at: slot) - n, mss: sendMSS(sock))
                tcpSlab.withBuffer(at: slot) { b in
                    _ = b.pull(n)
                    b.meta.tcpSeq = ack
                    b.meta.tcpSegments = remaining
                    b.meta.sharedHeadroom = true   // a clone in flight may still hold the trimmed bytes
                }
                PacketSlab.adjust(&sock.retransmitQueue, bytes: -n)
                sock.queuedBytes -= n
                if remaining < m.tcpSegments {
                    let gone = Int(m.tcpSegments) - Int(remaining)
                    adjustSegmentCounts(sock, marks: m.tcpSacked, by: -gone)
                    acked += UInt32(gone)
                    if m.tcpSacked & SegmentMark.sacked == 0 { sock.delivered &+= UInt64(gone) }
                    if rttSample == nil && m.tcpSacked & (SegmentMark.everRetransmitted | SegmentMark.sacked) == 0 {
                        rttSample = now &- m.timestamp
                    }
                }
                break
            } else {
                break
            }
        }
        // Linux: tcp_clean_rtx_queue() — a hole filled by an original transmission below the
        // highest SACK is reordering.
        if let low = reordLow, fackValid(sock), seqLT(low, sock.fackSeq) { checkSackReordering(sock, low: low) }
        // Linux: tcp_clean_rtx_queue() — all acknowledged: no longer busy (unless data waits).
        if sock.retransmitQueue.head == PacketSlab.none && acked > 0 { chronoStop(sock, .busy) }
        // RTT (RFC 6298 with Karn's rule: none when retransmitted data was acknowledged; then
        // the RFC 7323 timestamp echo, which is unambiguous). Linux: tcp_ack_update_rtt().
        if everRetransAcked { rttSample = nil }
        if rttSample == nil, sock.timestampsEnabled, seqGT(ack, priorUna), let ts = seg.options.timestamp, ts.echo != 0 {
            let delta = tcpTimestamp() &- ts.echo
            if delta < 120_000 { rttSample = Nanoseconds(max(delta, 1)) * Time.millisecond }
        }
        if let r = rttSample {
            sock.rtt.sample(r, now: now)
        }
        let advanced = seqGT(ack, priorUna)
        let isDupAck = !advanced && seg.payloadLength == 0 && !seg.has.fin && !windowChanged && sock.packetsOut > 0
        if advanced {
            sock.sndUna = ack
            // Linux: tcp_snd_una_update() — every acknowledged sequence number, SYN and FIN
            // included (so after a handshake RFC 5961's old-ACK allowance is one).
            sock.bytesAcked &+= UInt64(ack &- priorUna)
            // The retry count restarts; the backed-off RTO stays until a new RTT sample
            // (RFC 6298 §5.7; Linux resets icsk_backoff only in tcp_ack_update_rtt).
            sock.backoffCount = 0
            sock.retransmitStamp = 0
            sock.dupAcks = 0
            if sock.tlpHighSeq != 0 && seqGE(ack, sock.tlpHighSeq) { sock.tlpHighSeq = 0 }
            if sock.zerocopy.count > 0 { tcpZerocopyAcked(sock, una: ack) }
            confirmNeighbour(sock.routeCache.result?.nextHop ?? sock.remoteAddress, device: sock.routeCache.result?.device ?? 0)
        } else if isDupAck {
            sock.dupAcks += 1
        }
        // Segments newly delivered: acknowledged now and not SACKed before, plus newly SACKed
        // (Linux: tp->delivered, tcp_count_delivered() in tcp_clean_rtx_queue and sacktag).
        var delivered = acked - min(ackedWereSacked, acked) + newlySacked
        sock.delivered &+= UInt64(newlySacked)
        if !sock.sackEnabled {
            // Without SACK each duplicate ACK stands for a segment that left the network, and a
            // cumulative ACK first takes those back (Linux: tcp_add_reno_sack, tcp_remove_reno_sacks).
            if acked > 0 {
                delivered = max(acked > sock.sackedOut ? acked - sock.sackedOut : 0, 1)
                sock.sackedOut = acked - 1 >= sock.sackedOut ? 0 : sock.sackedOut - (acked - 1)
            } else if isDupAck {
                let prior = sock.sackedOut
                let holes = min(max(sock.lostOut, 1), sock.packetsOut)
                sock.sackedOut = min(sock.sackedOut + 1, sock.packetsOut - holes)
                delivered = sock.sackedOut > prior ? sock.sackedOut - prior : 0
            }
            if sock.packetsOut == 0 { sock.sackedOut = 0 }
        }
        // Loss detection runs only for a dubious ACK: a duplicate, one carrying new SACK or
        // D-SACK information, or any ACK outside the Open state (Linux: tcp_ack_is_dubious()).
        let notDuplicate = advanced || windowChanged || seg.payloadLength > 0
        let caAlert = newlySacked > 0 || tcpCounters.dsackRecv != dsacksBefore
        var rackChecked = false
        if !notDuplicate || caAlert || sock.caState != .open {
            sock.rackReoTimeout = 0
            tcpFastRetransAlert(sock, ack: ack, delivered: delivered, advanced: advanced)
            rackChecked = true
        }
        if sock.caState == .open || sock.caState == .disorder, acked > 0 {
            // cwnd grows by what was delivered, not by what the cumulative ACK covers: segments
            // SACKed (or duplicate-ACKed) earlier count once (Linux: tcp_cong_avoid(sk, ack,
            // acked_sacked)), and only while cwnd is what limits sending (tcp_is_cwnd_limited).
            let sample = AckSample(ackedSegments: delivered, rtt: rttSample, inFlight: priorInFlight,
                                   cwndLimited: isCwndLimited(sock), now: now,
                                   sndUna: sock.sndUna, sndNxt: sock.sndNxt)
            sock.congestion.onAck(sample, window: &sock.window)
        } else if sock.caState == .loss, acked > 0 {
            // After an RTO the window grows again by slow start.
            let sample = AckSample(ackedSegments: delivered, rtt: rttSample, inFlight: priorInFlight, cwndLimited: true, now: now,
                                   sndUna: sock.sndUna, sndNxt: sock.sndNxt)
            sock.congestion.onAck(sample, window: &sock.window)
        }
        if acked > 0 { updatePacingRate(sock) }
        // Timers.
        if sock.packetsOut == 0 {
            timers.cancel(sock.retransmitTimer)
            let probing = sock.pendingTimer == .probe0
            sock.pendingTimer = .none
            let head = sock.writeQueue.head
            if head != PacketSlab.none {
                // Linux: tcp_ack_probe() — a window that now takes the next segment ends the
                // probing and its backoff; one still shut re-arms the probe from now.
                let m = tcpSlab.meta(at: head)
                let dataEnd = m.tcpFlags & TCPFlag.fin != 0 ? m.tcpEndSeq &- 1 : m.tcpEndSeq
                if !seqGT(dataEnd, sock.sndUna &+ sock.sndWnd) {
                    if probing { sock.rtt.resetBackoff(); sock.probesOut = 0 }
                } else {
                    armProbe0(sock, restart: probing)
                }
            }
        } else if advanced || sock.pendingTimer == .probe0 {
            armRetransmitTimer(sock, restart: true)
        }
        if rackChecked && sock.rackReoTimeout > 0 && sock.packetsOut > 0 {
            // Linux: tcp_rack_mark_lost() arms ICSK_TIME_REO_TIMEOUT for when the next
            // outstanding segment's RACK deadline passes (+ TCP_TIMEOUT_MIN, 2 ms).
            sock.pendingTimer = .reorder
            timers.arm(sock.retransmitTimer, at: now &+ sock.rackReoTimeout &+ 2 * Time.millisecond)
        }
        if sock.caState == .recovery || sock.caState == .loss { tcpXmitRetransmitQueue(sock) }
        tcpWriteXmit(sock, nagle: sock.nagleMode)
        tcpCheckSpace(sock)   // Linux: tcp_data_snd_check() pushes, then tcp_check_space()
    }

    /// Marks SACKed segments of the retransmit queue; returns how many were newly SACKed.
    /// D-SACKs (a block below the cumulative ACK, or inside the second block) are counted.
    /// Linux: `tcp_sacktag_write_queue()` (RFC 2018, RFC 2883, RFC 6675).
    func tcpSackTag(_ sock: TCPSocket, _ blocks: SACKBlocks, ack: UInt32, echo: UInt32? = nil) -> UInt32 {
        var newly: UInt32 = 0
        var reordLow: UInt32? = nil
        defer { if let low = reordLow { checkSackReordering(sock, low: low) } }
        for (i, blk) in blocks.enumerated() {
            if !seqLT(blk.left, blk.right) { continue }
            if seqLE(blk.right, ack) || (i == 0 && blocks.count > 1 && seqGE(blk.left, blocks[1].left) && seqLE(blk.right, blocks[1].right)) {
                tcpCounters.dsackRecv &+= 1
                continue
            }
            // Ignore blocks beyond what was sent (RFC 2018: must be within the send window).
            if seqGT(blk.right, sock.sndNxt) { continue }
            let mss = sendMSS(sock)
            var slot = sock.retransmitQueue.head
            while slot != PacketSlab.none {
                var m = tcpSlab.meta(at: slot)
                if seqGE(m.tcpSeq, blk.right) { break }
                if seqLE(m.tcpEndSeq, blk.left) || m.tcpSacked & SegmentMark.sacked != 0 {
                    slot = tcpSlab.next(slot)
                    continue
                }
                // A TSO buffer the block covers in part is split at segment boundaries first;
                // a segment the block covers only partly stays unSACKed (Linux:
                // tcp_match_skb_to_sack() → tcp_fragment()).
                let length = tcpSlab.length(at: slot)
                if seqLT(m.tcpSeq, blk.left) {
                    let k = (Int(blk.left &- m.tcpSeq) + mss - 1) / mss * mss
                    if k < length { tcpSplit(sock, slot: slot, in: &sock.retransmitQueue, keep: k, mss: mss, sent: true) }
                    slot = tcpSlab.next(slot)
                    continue
                }
                if seqGT(m.tcpEndSeq, blk.right) {
                    let k = Int(blk.right &- m.tcpSeq) / mss * mss
                    guard k > 0, k < length,
                          tcpSplit(sock, slot: slot, in: &sock.retransmitQueue, keep: k, mss: mss, sent: true) else { break }
                    m = tcpSlab.meta(at: slot)
                }
                let segments = UInt32(m.tcpSegments)
                // Linux: tcp_sacktag_one() — a never-retransmitted segment SACKed below the
                // highest SACK arrived out of order.
                if m.tcpSacked & (SegmentMark.everRetransmitted | SegmentMark.retransmitted) == 0 && fackValid(sock)
                    && seqLT(m.tcpSeq, sock.fackSeq) && (reordLow.map { seqLT(m.tcpSeq, $0) } ?? true) {
                    reordLow = m.tcpSeq
                }
                var lostCleared = false, retransCleared = false
                tcpSlab.updateMeta(at: slot) { mm in
                    if mm.tcpSacked & SegmentMark.lost != 0 { lostCleared = true }
                    if mm.tcpSacked & SegmentMark.retransmitted != 0 { retransCleared = true }
                    mm.tcpSacked = (mm.tcpSacked | SegmentMark.sacked) & ~(SegmentMark.lost | SegmentMark.retransmitted)
                }
                if lostCleared { sock.lostOut -= min(segments, sock.lostOut) }
                if retransCleared { sock.retransOut -= min(segments, sock.retransOut) }
                sock.sackedOut += segments
                newly += segments
                rackAdvance(sock, m, echo: echo)
                if m.tcpSacked & SegmentMark.everRetransmitted == 0 && fackValid(sock)
                    && seqLT(m.tcpEndSeq, sock.fackSeq) { sock.reordSeen = true }
                if !fackValid(sock) || seqGT(m.tcpEndSeq, sock.fackSeq) { sock.fackSeq = m.tcpEndSeq }
                slot = tcpSlab.next(slot)
            }
        }
        return newly
    }

    /// Loss detection and recovery: enter fast recovery on three duplicate ACKs or when the
    /// scoreboard (RFC 6675) or RACK (RFC 8985) marks a segment lost; send with proportional
    /// rate reduction (RFC 6937) while recovering; leave when the recovery point is acknowledged.
    /// Linux: `tcp_fastretrans_alert()`, `tcp_cwnd_reduction()`.
    func tcpFastRetransAlert(_ sock: TCPSocket, ack: UInt32, delivered: UInt32, advanced: Bool) {
        switch sock.caState {
        case .recovery:
            if seqGE(ack, sock.highSeq) {
                // Recovery complete: cwnd set to ssthresh (Linux: tcp_end_cwnd_reduction).
                sock.window.cwnd = max(sock.window.ssthresh, 2)
                sock.caState = .open
                if !sock.sackEnabled { sock.sackedOut = 0 }   // Linux: tcp_reset_reno_sack
                sock.congestion.onEvent(.recoveryComplete, window: &sock.window, now: now)
                return
            }
            let lostBefore = sock.lostOut
            if !sock.sackEnabled && advanced { markHeadLost(sock) }    // NewReno partial ACK
            markLostSegments(sock)
            prrUpdate(sock, delivered: delivered, advanced: advanced, newlyLost: sock.lostOut > lostBefore)
        case .loss:
            if seqGE(ack, sock.highSeq) {
                sock.caState = .open
                if !sock.sackEnabled { sock.sackedOut = 0 }
                sock.congestion.onEvent(.recoveryComplete, window: &sock.window, now: now)
            } else {
                markLostSegments(sock)
            }
        case .open, .disorder, .cwr:
            if sock.packetsOut == 0 { return }
            let lostBefore = sock.lostOut
            markLostSegments(sock)
            if !sock.sackEnabled && sock.dupAcks >= 3 { markHeadLost(sock) }
            if sock.lostOut > 0 {
                enterRecovery(sock)
                prrUpdate(sock, delivered: delivered, advanced: advanced, newlyLost: sock.lostOut > lostBefore)
            } else if sock.sackedOut > 0 || sock.dupAcks > 0 {
                sock.caState = .disorder
            } else {
                sock.caState = .open
            }
        }
    }

    func enterRecovery(_ sock: TCPSocket) {
        sock.priorCwnd = sock.window.cwnd
        sock.priorSSThresh = sock.window.ssthresh
        sock.highSeq = sock.sndNxt
        sock.recoverFS = max(1, sock.inFlight + sock.lostOut)
        sock.congestion.onEvent(.enterRecovery, window: &sock.window, now: now)
        sock.prrDelivered = 0
        sock.prrOut = 0
        sock.caState = .recovery
        sock.fastRetransmits &+= 1
        tcpCounters.fastRetrans &+= 1
    }

    /// RFC 6937 PRR as Linux's `tcp_cwnd_reduction()`: how much may be sent on this ACK
    /// (cwnd = in flight + sndcnt). Above ssthresh, sending follows delivery in the proportion
    /// ssthresh / prior cwnd; below it, the slow-start reduction bound, with the extra segment
    /// only when the cumulative ACK advanced and nothing new was marked lost. The first ACK of
    /// recovery always lets the fast retransmission go. An ACK that delivered nothing changes
    /// nothing.
    func prrUpdate(_ sock: TCPSocket, delivered: UInt32, advanced: Bool, newlyLost: Bool) {
        guard delivered > 0 else { return }
        sock.prrDelivered += delivered
        let pipe = Int(sock.inFlight)
        let ssthresh = Int(sock.window.ssthresh)
        let delta = ssthresh - pipe
        var sndcnt: Int
        if delta < 0 {
            let prior = max(Int(sock.priorCwnd), 1)
            sndcnt = (ssthresh * Int(sock.prrDelivered) + prior - 1) / prior - Int(sock.prrOut)
        } else {
            sndcnt = max(Int(sock.prrDelivered) - Int(sock.prrOut), Int(delivered))
            if advanced && !newlyLost { sndcnt += 1 }
            sndcnt = min(delta, sndcnt)
        }
        sndcnt = max(sndcnt, sock.prrOut == 0 ? 1 : 0)
        sock.window.cwnd = UInt32(max(1, pipe + sndcnt))
    }

    /// Marks the first unacknowledged segment lost (NewReno; Linux: `tcp_mark_head_lost`).
    func markHeadLost(_ sock: TCPSocket) {
        let slot = sock.retransmitQueue.head
        guard slot != PacketSlab.none else { return }
        // One segment: a TSO buffer at the head is split first (Linux: tcp_mark_head_lost()
        // fragments to the packets it marks).
        if tcpSlab.meta(at: slot).tcpSegments > 1 && tcpSlab.meta(at: slot).tcpSacked & SegmentMark.lost == 0 {
            let mss = sendMSS(sock)
            tcpSplit(sock, slot: slot, in: &sock.retransmitQueue, keep: mss, mss: mss, sent: true)
        }
        markLost(sock, slot: slot)
    }

    /// Linux: `tcp_mark_skb_lost()` — a lost retransmission is lost again: no longer in flight,
    /// to be retransmitted once more.
    func markLost(_ sock: TCPSocket, slot: Int32) {
        let m = tcpSlab.meta(at: slot)
        if m.tcpSacked & SegmentMark.sacked != 0 { return }
        if m.tcpSacked & SegmentMark.lost != 0 {
            if m.tcpSacked & SegmentMark.retransmitted != 0 {
                tcpSlab.updateMeta(at: slot) { $0.tcpSacked &= ~SegmentMark.retransmitted }
                sock.retransOut -= min(UInt32(m.tcpSegments), sock.retransOut)
            }
            return
        }
        var wasRetrans = false
        tcpSlab.updateMeta(at: slot) { mm in
            wasRetrans = mm.tcpSacked & SegmentMark.retransmitted != 0
            mm.tcpSacked = (mm.tcpSacked | SegmentMark.lost) & ~SegmentMark.retransmitted
        }
        let segments = UInt32(m.tcpSegments)
        if wasRetrans { sock.retransOut -= min(segments, sock.retransOut) }
        sock.lostOut += segments
    }

    /// Data from `low` on arrived after data up to the highest SACK: reordering at least that
    /// deep, in segments, up to `tcp_max_reordering` (300). Linux: `tcp_check_sack_reordering()`.
    func checkSackReordering(_ sock: TCPSocket, low: UInt32) {
        guard fackValid(sock), seqLT(low, sock.fackSeq) else { return }
        let mss = UInt32(sendMSS(sock))
        let metric = sock.fackSeq &- low
        if metric > sock.reordering * mss {
            sock.reordering = min((metric + mss - 1) / mss, 300)
        }
        sock.reordSeen = true
    }

    /// The highest SACKed sequence is set and still above `snd_una` (and not beyond `snd_nxt`).
    func fackValid(_ sock: TCPSocket) -> Bool { seqGT(sock.fackSeq, sock.sndUna) && seqLE(sock.fackSeq, sock.sndNxt) }

    /// RACK: a segment was delivered (newly SACKed or cumulatively acknowledged). Its own RTT
    /// becomes RACK's; it becomes the reference if it was sent after the current one. A
    /// retransmitted segment acknowledged sooner than the minimum RTT, or whose ACK echoes a
    /// timestamp older than the retransmission, may be the original's: ignored.
    /// Linux: `tcp_rack_advance()`, `tcp_skb_spurious_retrans()`.
    func rackAdvance(_ sock: TCPSocket, _ m: PacketMeta, echo: UInt32?) {
        let rtt = now &- m.timestamp
        if m.tcpSacked & SegmentMark.everRetransmitted != 0 {
            if rtt < (sock.rtt.minRTT ?? 0) { return }
            if sock.timestampsEnabled, let e = echo, e != 0,
               seqLT(e, UInt32(truncatingIfNeeded: (m.timestamp / Time.millisecond) &+ tcpConfig.timestampOffset)) { return }
        }
        sock.rackRTT = rtt
        if !sock.rackValid || m.timestamp > sock.rackTime || (m.timestamp == sock.rackTime && seqGT(m.tcpEndSeq, sock.rackEndSeq)) {
            sock.rackTime = m.timestamp
            sock.rackEndSeq = m.tcpEndSeq
            sock.rackValid = true
        }
    }

    /// RACK's reordering window: none while recovering or once `reordering` segments are SACKed, unless
    /// reordering was seen; else a quarter of the minimum RTT, at most SRTT. Linux: `tcp_rack_reo_wnd()`.
    func rackReorderingWindow(_ sock: TCPSocket) -> Nanoseconds {
        if !sock.reordSeen && (sock.caState == .recovery || sock.caState == .loss || sock.sackedOut >= sock.reordering) { return 0 }
        return min((sock.rtt.minRTT ?? 0) / 4, sock.rtt.srtt ?? 0)
    }

    /// RFC 6675 `IsLost` (three SACKed segments above) and RFC 8985 RACK: a segment sent before
    /// the most recently delivered one and outstanding longer than RACK's RTT plus the
    /// reordering window is lost — a retransmission too, by its latest transmission time.
    /// Linux: `tcp_rack_detect_loss()`, `tcp_update_scoreboard()`.
    func markLostSegments(_ sock: TCPSocket) {
        sock.rackReoTimeout = 0
        guard sock.sackEnabled, sock.sackedOut > 0 || sock.rackValid else { return }
        var sackedAbove = sock.sackedOut
        let reoWnd = rackReorderingWindow(sock)
        var slot = sock.retransmitQueue.head
        while slot != PacketSlab.none {
            let m = tcpSlab.meta(at: slot)
            if m.tcpSacked & SegmentMark.sacked != 0 {
                sackedAbove -= min(UInt32(m.tcpSegments), sackedAbove)
            } else {
                let isLost = m.tcpSacked & SegmentMark.lost != 0
                let retransmitted = m.tcpSacked & SegmentMark.retransmitted != 0
                // Marked lost and not yet retransmitted: nothing to decide.
                if !isLost || retransmitted {
                    var lost = !isLost && sackedAbove >= 3
                    if !lost && tcpConfig.rack && sock.rackValid {
                        let sentBefore = m.timestamp < sock.rackTime
                            || (m.timestamp == sock.rackTime && seqLT(m.tcpEndSeq, sock.rackEndSeq))
                        let deadline = m.timestamp &+ sock.rackRTT &+ reoWnd
                        if sentBefore && now >= deadline { lost = true }
                        if sentBefore && !lost { sock.rackReoTimeout = max(sock.rackReoTimeout, deadline &- now) }
                    }
                    if lost { markLost(sock, slot: slot) }
                }
            }
            if sackedAbove == 0 {
                if !tcpConfig.rack || !sock.rackValid { break }
                // Original transmissions leave in sequence order, so once one was sent after
                // RACK's reference, every later segment was too (a retransmission even later):
                // nothing further can be lost yet (Linux walks its time-sorted list the same way).
                if m.tcpSacked & SegmentMark.everRetransmitted == 0
                    && (m.timestamp > sock.rackTime || (m.timestamp == sock.rackTime && !seqLT(m.tcpEndSeq, sock.rackEndSeq))) { break }
            }
            slot = tcpSlab.next(slot)
        }
    }

    /// Retransmits segments marked lost while the congestion window allows.
    /// Linux: `tcp_xmit_retransmit_queue()`.
    func tcpXmitRetransmitQueue(_ sock: TCPSocket) {
        var slot = sock.retransmitQueue.head
        while slot != PacketSlab.none {
            if sock.inFlight >= sock.window.cwnd { break }
            let m = tcpSlab.meta(at: slot)
            if m.tcpSacked & SegmentMark.lost != 0 && m.tcpSacked & (SegmentMark.retransmitted | SegmentMark.sacked) == 0 {
                // A TSO buffer goes in as many segments as cwnd takes (Linux: tcp_retransmit_skb()
                // fragments to cwnd quota · MSS).
                let quota = Int(sock.window.cwnd) - Int(sock.inFlight)
                // TCP Small Queues, with twice the room new data gets (Linux: factor 1).
                if tcpSmallQueueCheck(sock, truesize: tcpSlab.length(at: slot) + tcpBufferOverhead, factor: 1) { break }
                if Int(m.tcpSegments) > quota {
                    let mss = sendMSS(sock)
                    tcpSplit(sock, slot: slot, in: &sock.retransmitQueue, keep: quota * mss, mss: mss, sent: true)
                }
                retransmitSegment(sock, slot: slot)
                if sock.caState == .recovery { sock.prrOut += UInt32(tcpSlab.meta(at: slot).tcpSegments) }
            }
            slot = tcpSlab.next(slot)
        }
    }

    func retransmitSegment(_ sock: TCPSocket, slot: Int32) {
        tcpSlab.updateMeta(at: slot) { $0.tcpSacked |= SegmentMark.retransmitted | SegmentMark.everRetransmitted }
        let segments = tcpSlab.meta(at: slot).tcpSegments
        sock.retransOut += UInt32(segments)
        sock.totalRetransmits &+= UInt64(segments)
        tcpCounters.retransSegs &+= UInt64(segments)
        if sock.retransmitStamp == 0 { sock.retransmitStamp = now }
        tcpTransmit(sock, slot: slot)
    }

    /// Retransmits the first segment now (SYN, SYN-ACK, or the RTO's segment).
    func tcpRetransmitHead(_ sock: TCPSocket) {
        let slot = sock.retransmitQueue.head
        guard slot != PacketSlab.none else { return }
        if tcpSlab.meta(at: slot).tcpSegments > 1 {
            let mss = sendMSS(sock)
            tcpSplit(sock, slot: slot, in: &sock.retransmitQueue, keep: mss, mss: mss, sent: true)
        }
        let m = tcpSlab.meta(at: slot)
        if m.tcpSacked & SegmentMark.retransmitted != 0 { sock.retransOut -= min(UInt32(m.tcpSegments), sock.retransOut) }
        tcpSlab.updateMeta(at: slot) { $0.tcpSacked &= ~SegmentMark.retransmitted }
        retransmitSegment(sock, slot: slot)
    }
}
