import SkiffWire

extension NetworkStack {
    /// Arms the retransmit timer for what is outstanding: a tail loss probe (RFC 8985 §7) when
    /// the connection has SACK and is in Open or CWR state, else the RTO (RFC 6298) with its
    /// backoff. As Linux's `tcp_schedule_loss_probe()`: PTO = 2·SRTT + 200 ms with one segment
    /// out (the peer may delay its ACK), + 2 ms with more, 1 s before any RTT sample, and never
    /// later than the RTO would fire — from now when an ACK advanced (`restart`), else from when
    /// the first outstanding segment was sent. Linux: `tcp_rearm_rto()` / `tcp_schedule_loss_probe()`.
    func armRetransmitTimer(_ sock: TCPSocket, restart: Bool = false) {
        if sock.packetsOut == 0 { timers.cancel(sock.retransmitTimer); sock.pendingTimer = .none; return }
        // New data does not move a pending RACK reordering timer (Linux: tcp_event_new_data_sent
        // rearms only with nothing out before or a loss probe pending).
        if !restart && sock.pendingTimer == .reorder && timers.isArmed(sock.retransmitTimer) { return }
        let rto = currentRTO(sock)
        let head = sock.retransmitQueue.head
        let headSent = head != PacketSlab.none ? tcpSlab.meta(at: head).timestamp : now
        // How far in the future the RTO is (Linux: tcp_rto_delta_us).
        let rtoDelta = Int64(bitPattern: headSent &+ rto) - Int64(bitPattern: now)
        if tcpConfig.tailLossProbe && sock.sackEnabled && (sock.caState == .open || sock.caState == .cwr)
            && sock.state.isSynchronized {
            var pto: Nanoseconds
            if let srtt = sock.rtt.srtt {
                pto = 2 * srtt + (sock.packetsOut == 1 ? sock.rtt.minRTO : 2 * Time.millisecond)
            } else {
                pto = RTTEstimator.defaultInitialRTO
            }
            let delta = restart ? Int64(rto) : rtoDelta
            if delta > 0 { pto = min(pto, Nanoseconds(delta)) }
            sock.pendingTimer = .lossProbe
            timers.arm(sock.retransmitTimer, at: now &+ pto)
            return
        }
        if !restart && timers.isArmed(sock.retransmitTimer) && sock.pendingTimer == .rto { return }
        // Replacing a loss probe, the RTO keeps its time from the head's transmission.
        let wasProbe = !restart && sock.pendingTimer == .lossProbe
        sock.pendingTimer = .rto
        timers.arm(sock.retransmitTimer, at: now &+ (wasProbe ? Nanoseconds(max(rtoDelta, 1)) : rto))
    }

    /// RTO with exponential backoff, capped at 120 s (Linux: `inet_csk_rto_backoff`).
    func currentRTO(_ sock: TCPSocket) -> Nanoseconds { sock.rtt.rto }

    /// Arms the zero-window probe timer (Linux: `tcp_check_probe_timer` / `ICSK_TIME_PROBE0`).
    /// `restart` re-arms a pending probe from now (Linux: `tcp_ack_probe` when an ACK leaves the
    /// window shut).
    func armProbe0(_ sock: TCPSocket, restart: Bool = false) {
        if !restart && sock.pendingTimer == .probe0 && timers.isArmed(sock.retransmitTimer) { return }
        sock.pendingTimer = .probe0
        timers.arm(sock.retransmitTimer, at: now &+ probe0Interval(sock))
    }

    /// The probe interval: max(RTO, 200 ms) doubled per unanswered-window probe, at most 120 s
    /// (Linux: `tcp_probe0_when` = `tcp_probe0_base` << `icsk_backoff`, capped at `TCP_RTO_MAX`).
    func probe0Interval(_ sock: TCPSocket) -> Nanoseconds {
        min(max(currentRTO(sock), 200 * Time.millisecond), sock.rtt.maxRTO)
    }

    /// Dispatches a TCP timer. Linux: `tcp_write_timer_handler()`, `tcp_delack_timer_handler()`,
    /// `tcp_keepalive_timer()`.
    func tcpTimer(handle: Int32, kind: TCPTimerKind) {
        guard let sock = tcpSocket(handle) else { return }
        switch kind {
        case .retransmit:
            switch sock.pendingTimer {
            case .rto: tcpRetransmitTimer(sock)
            case .lossProbe: tcpLossProbe(sock)
            case .reorder: tcpRackReorderTimeout(sock)
            case .probe0: tcpProbeTimer(sock)
            case .none: break
            }
        case .delayedAck:
            if sock.ackPending && sock.state.isSynchronized {
                // Linux (tcp_delack_timer_handler): a delayed ACK that had to go alone ends
                // ping-pong mode.
                sock.pingpong = false
                tcpCounters.delayedAcks &+= 1
                tcpSendAck(sock)
            }
        case .keepalive:
            tcpKeepaliveTimer(sock)
        case .pacing:
            // Linux: tcp_pace_kick() → tcp_tsq_handler() → tcp_write_xmit().
            if sock.state.isSynchronized { tcpPush(sock) }
        }
    }

    /// RACK's reordering timer fired: segments whose deadline passed are lost; if any, recovery
    /// starts (or goes on) and they are retransmitted; then the RTO is re-armed from the first
    /// outstanding segment's transmission. Linux: `tcp_rack_reo_timeout()` → `tcp_rearm_rto()`.
    func tcpRackReorderTimeout(_ sock: TCPSocket) {
        guard sock.state.isSynchronized, sock.packetsOut > 0 else { sock.pendingTimer = .none; return }
        let lostBefore = sock.lostOut
        markLostSegments(sock)
        if sock.lostOut > lostBefore {
            if sock.caState != .recovery && sock.caState != .loss {
                enterRecovery(sock)
                prrUpdate(sock, delivered: 1, advanced: false, newlyLost: true)
            }
            tcpXmitRetransmitQueue(sock)
        }
        if sock.rackReoTimeout > 0 {
            sock.pendingTimer = .reorder
            timers.arm(sock.retransmitTimer, at: now &+ sock.rackReoTimeout &+ 2 * Time.millisecond)
            return
        }
        let head = sock.retransmitQueue.head
        let headSent = head != PacketSlab.none ? tcpSlab.meta(at: head).timestamp : now
        let delta = Int64(bitPattern: headSent &+ currentRTO(sock)) - Int64(bitPattern: now)
        sock.pendingTimer = .rto
        timers.arm(sock.retransmitTimer, at: now &+ Nanoseconds(max(delta, 1)))
    }

    /// The RTO fired: back off, enter Loss (cwnd 1, everything not SACKed marked lost), and
    /// retransmit the first segment; give up after the retry limits with ETIMEDOUT.
    /// Linux: `tcp_retransmit_timer()` → `tcp_enter_loss()`.
    func tcpRetransmitTimer(_ sock: TCPSocket) {
        sock.pendingTimer = .none
        guard sock.packetsOut > 0 else { return }
        let limit: Int
        switch sock.state {
        case .synSent: limit = sock.options.synCount > 0 ? sock.options.synCount : tcpConfig.synRetries
        case .synReceived: limit = tcpConfig.synAckRetries
        default: limit = sock.orphaned ? tcpConfig.orphanRetries : tcpConfig.retries2
        }
        let userTimedOut = sock.options.userTimeout > 0 && sock.retransmitStamp > 0
            && now &- sock.retransmitStamp >= sock.options.userTimeout
        if sock.backoffCount >= limit || userTimedOut {
            if sock.state == .synSent { tcpCounters.attemptFails &+= 1 }
            if sock.state == .synReceived, sock.parent >= 0, let l = tcpSocket(sock.parent) {
                l.synQueueLength = max(0, l.synQueueLength - 1)
                destroyTCPSocket(sock)
                return
            }
            sock.pendingError = .ETIMEDOUT
            tcpDone(sock)
            return
        }
        sock.timeouts &+= 1
        tcpCounters.timeouts &+= 1
        if sock.state.isSynchronized {
            if sock.caState != .loss {
                sock.priorCwnd = sock.window.cwnd
                sock.priorSSThresh = sock.window.ssthresh
            }
            sock.congestion.onEvent(.retransmitTimeout, window: &sock.window, now: now, sndNxt: sock.sndNxt,
                                    repeatedTimeout: sock.caState == .loss)
            sock.window.cwnd = 1
            sock.caState = .loss
            sock.highSeq = sock.sndNxt
            sock.dupAcks = 0
            sock.tlpHighSeq = 0
            if !sock.sackEnabled { sock.sackedOut = 0 }   // Linux: tcp_reset_reno_sack
            // Everything not SACKed is presumed lost (Linux: tcp_enter_loss → tcp_mark_skb_lost).
            var slot = sock.retransmitQueue.head
            while slot != PacketSlab.none {
                let m = tcpSlab.meta(at: slot)
                if m.tcpSacked & SegmentMark.sacked == 0 {
                    let segments = UInt32(m.tcpSegments)
                    if m.tcpSacked & SegmentMark.retransmitted != 0 {
                        sock.retransOut -= min(segments, sock.retransOut)
                        tcpSlab.updateMeta(at: slot) { $0.tcpSacked &= ~SegmentMark.retransmitted }
                    }
                    if m.tcpSacked & SegmentMark.lost == 0 {
                        tcpSlab.updateMeta(at: slot) { $0.tcpSacked |= SegmentMark.lost }
                        sock.lostOut += segments
                    }
                }
                slot = tcpSlab.next(slot)
            }
            tcpXmitRetransmitQueue(sock)
        } else {
            tcpRetransmitHead(sock)
        }
        sock.backoffCount += 1
        sock.rtt.backoff()
        sock.pendingTimer = .rto
        timers.arm(sock.retransmitTimer, at: now &+ currentRTO(sock))
    }

    /// Tail loss probe: send one new segment if the windows allow, else retransmit the last
    /// one, so a lost tail is repaired by SACK rather than an RTO. Linux: `tcp_send_loss_probe()`.
    func tcpLossProbe(_ sock: TCPSocket) {
        sock.pendingTimer = .none
        guard sock.packetsOut > 0, sock.state.isSynchronized else { return }
        if sock.tlpHighSeq != 0 {
            // At most one probe outstanding: the RTO keeps its time (Linux: goto rearm_timer).
            let head = tcpSlab.meta(at: sock.retransmitQueue.head).timestamp
            let delta = Int64(bitPattern: head &+ currentRTO(sock)) - Int64(bitPattern: now)
            sock.pendingTimer = .rto
            timers.arm(sock.retransmitTimer, at: now &+ Nanoseconds(max(delta, 1)))
            return
        }
        sock.tailLossProbes &+= 1
        tcpCounters.lossProbes &+= 1
        let before = sock.sndNxt
        if sock.writeQueue.head != PacketSlab.none {
            // One new segment, whatever the congestion window (Linux: tcp_write_xmit push_one = 2).
            let savedCwnd = sock.window.cwnd
            sock.window.cwnd = max(sock.window.cwnd, sock.inFlight + 1)
            tcpWriteXmit(sock, nagle: .push, limit: 1)
            sock.window.cwnd = savedCwnd
        }
        if sock.sndNxt == before, sock.retransmitQueue.tail != PacketSlab.none {
            // Only the last segment is probed: a TSO tail is split first (Linux: tcp_fragment in
            // tcp_send_loss_probe()).
            let tail = sock.retransmitQueue.tail
            let segments = Int(tcpSlab.meta(at: tail).tcpSegments)
            if segments > 1 {
                let mss = sendMSS(sock)
                tcpSplit(sock, slot: tail, in: &sock.retransmitQueue, keep: (segments - 1) * mss, mss: mss, sent: true)
            }
            retransmitSegment(sock, slot: sock.retransmitQueue.tail)
        }
        sock.tlpHighSeq = sock.sndNxt
        sock.pendingTimer = .rto
        timers.arm(sock.retransmitTimer, at: now &+ currentRTO(sock))
    }

    /// Zero-window probe: a segment one byte below `snd_una` makes the peer answer with its
    /// window (Linux: `tcp_probe_timer()` → `tcp_write_wakeup()` → `tcp_xmit_probe_skb()`).
    /// Linux: `tcp_probe_timer()` → `tcp_send_probe0()` → `tcp_write_wakeup()`. When the window
    /// has room for part of the next segment, that part is sent (Nagle and cork ignored), which
    /// also ends a cork after one probe interval; otherwise a bare probe. Every ACK resets the
    /// probe count (`icsk_probes_out`), so only an unanswered peer times out, after
    /// `tcp_retries2` probes; the interval doubles until the window opens.
    func tcpProbeTimer(_ sock: TCPSocket) {
        sock.pendingTimer = .none
        let head = sock.writeQueue.head
        guard sock.state.isSynchronized, head != PacketSlab.none, sock.packetsOut == 0 else {
            sock.probesOut = 0
            return
        }
        if sock.probesOut >= (sock.orphaned ? tcpConfig.orphanRetries : tcpConfig.retries2) {
            sock.pendingError = .ETIMEDOUT
            tcpDone(sock)
            return
        }
        let wndEnd = sock.sndUna &+ sock.sndWnd
        let m = tcpSlab.meta(at: head)
        if seqLT(m.tcpSeq, wndEnd) {
            let fits = Int(wndEnd &- m.tcpSeq)
            let room = min(fits, sendMSS(sock))
            if tcpSlab.length(at: head) > room { tcpFragmentWriteHead(sock, keep: room) }
            tcpSlab.updateMeta(at: head) { $0.tcpFlags |= TCPFlag.psh }
            tcpWriteXmit(sock, nagle: .push, ignoreWindow: true, limit: 1)
            if sock.packetsOut > 0 {
                sock.probesOut = 0
                sock.rtt.resetBackoff()
                return
            }
        } else {
            tcpCounters.zeroWindowProbes &+= 1
            sendProbe(sock)
        }
        sock.probesOut += 1
        sock.rtt.backoff()
        armProbe0(sock, restart: true)
    }

    /// A bare ACK with `seq = snd_una - 1`, which the peer must answer (keepalive and window probes).
    func sendProbe(_ sock: TCPSocket) {
        guard var b = pool.allocate(size: 0, headroom: tcpHeadroom) else { return }
        buildTCPHeader(sock, &b, seq: sock.sndUna &- 1, flags: TCPFlag.ack)
        sock.segmentsOut &+= 1
        tcpCounters.outSegs &+= 1
        _ = ipQueueXmit(b, destination: sock.remoteAddress, protocol: IPProtocol.tcp, tos: sock.options.typeOfService, dontFragment: true,
                        route: &sock.routeCache)
    }

    /// The socket timer: TIME-WAIT and orphaned FIN-WAIT-2 expiry, and keepalive probes.
    /// Linux: `tcp_keepalive_timer()`, `inet_twsk` expiry.
    func tcpKeepaliveTimer(_ sock: TCPSocket) {
        switch sock.state {
        case .timeWait:
            // Gone if the application closed it; otherwise its descriptor stays, CLOSED.
            tcpDone(sock)
        case .finWait2 where sock.orphaned:
            destroyTCPSocket(sock)
        case .established, .closeWait, .finWait1, .finWait2:
            guard sock.options.keepalive else { return }
            let idle = now &- max(sock.lastReceiveTime, sock.lastSendTime)
            if idle < sock.options.keepIdle && sock.probesOut == 0 {
                timers.arm(sock.keepaliveTimer, at: now &+ (sock.options.keepIdle - idle))
                return
            }
            if sock.probesOut >= sock.options.keepCount {
                sock.pendingError = .ETIMEDOUT
                tcpDone(sock)
                return
            }
            sock.probesOut += 1
            sendProbe(sock)
            timers.arm(sock.keepaliveTimer, at: now &+ sock.options.keepInterval)
        default:
            break
        }
    }
}
