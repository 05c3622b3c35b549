import SkiffWire

/// About a millisecond of data at the pacing rate is `pacingRate >> pacingShift` bytes (Linux:
/// `sk_pacing_shift`, 10); the TSO autosizing and TCP Small Queues both use it.
let pacingShift: UInt64 = 10

/// TSO-sized buffers: how big the write queue's buffers grow, how many segments one transmission
/// carries, and splitting a buffer in two without copying its bytes.
extension NetworkStack {
    /// Whether the connection's route leads to a device that takes GSO packets (Linux:
    /// `sk_can_gso()`).
    func canGSO(_ sock: TCPSocket) -> Bool {
        guard let r = sock.routeCache.result, r.device < devices.count else { return false }
        let f = devices[r.device].features
        return f.contains(.gso) || f.contains(.tso)
    }

    /// How many payload bytes a write-queue buffer may hold: as many whole segments as a GSO
    /// packet takes, and no more than half the largest window the peer offered, at least one
    /// segment. Linux: `tcp_xmit_size_goal()` with `tcp_bound_to_half_wnd()`.
    func sizeGoal(_ sock: TCPSocket) -> Int {
        let mss = sendMSS(sock)
        guard canGSO(sock) else { return mss }
        var goal = tcpConfig.gsoMaxSize - 1 - tcpHeadroom
        let window = Int(sock.maxWindow)
        let cutoff = window > 536 ? window / 2 : window
        if cutoff > 0 && goal > cutoff { goal = cutoff }
        return max(mss, goal / mss * mss)
    }

    /// Segments a buffer of `bytes` payload counts for at `mss` (at least one). Linux:
    /// `tcp_set_skb_tso_segs()`.
    @inline(__always)
    func segmentCount(bytes: Int, mss: Int) -> UInt16 {
        bytes <= mss ? 1 : UInt16(truncatingIfNeeded: (bytes + mss - 1) / mss)
    }

    /// The most segments one transmission should carry: about a millisecond of data at the pacing
    /// rate, at least `tcp_min_tso_segs`, at most what a GSO packet holds. Linux:
    /// `tcp_tso_autosize()` / `tcp_tso_segs()`.
    func tsoSegmentLimit(_ sock: TCPSocket, mss: Int) -> Int {
        let maxSegs = max(1, (tcpConfig.gsoMaxSize - 1 - tcpHeadroom) / mss)
        guard canGSO(sock) else { return 1 }
        if sock.pacingRate == 0 && sock.rtt.srtt != nil { updatePacingRate(sock) }
        guard sock.pacingRate > 0 else { return maxSegs }
        let bytes = Int(min(sock.pacingRate >> pacingShift, UInt64(tcpConfig.gsoMaxSize)))
        return min(maxSegs, max(tcpConfig.minTSOSegments, bytes / mss))
    }

    /// Recomputes the pacing rate from cwnd and SRTT: 200 % of cwnd·MSS/SRTT in slow start,
    /// 120 % afterwards, capped by SO_MAX_PACING_RATE. Linux: `tcp_update_pacing_rate()`.
    func updatePacingRate(_ sock: TCPSocket) {
        guard let srtt = sock.rtt.srtt, srtt > 0 else {
            if sock.maxPacingRate > 0 { sock.pacingRate = sock.maxPacingRate }
            return
        }
        let ratio = sock.window.cwnd < sock.window.ssthresh / 2 ? tcpConfig.pacingSlowStartRatio
            : tcpConfig.pacingCongestionAvoidanceRatio
        let inFlightBytes = UInt64(max(sock.window.cwnd, sock.packetsOut)) * UInt64(sendMSS(sock))
        var rate = inFlightBytes.multipliedReportingOverflow(by: UInt64(ratio) * 10_000_000).partialValue / srtt
        if sock.maxPacingRate > 0 { rate = min(rate, sock.maxPacingRate) }
        sock.pacingRate = max(rate, 1)
    }

    /// Pacing applies to this connection (Linux: `tcp_needs_internal_pacing()`).
    @inline(__always)
    func pacingEnabled(_ sock: TCPSocket) -> Bool { tcpConfig.internalPacing || sock.maxPacingRate > 0 }

    /// After `bytes` leave, the earliest time the next packet may (Linux: `tcp_update_skb_after_send()`
    /// moving `tcp_wstamp_ns` by len / pacing rate).
    func pacingAfterSend(_ sock: TCPSocket, bytes: Int) {
        guard pacingEnabled(sock), sock.pacingRate > 0 else { return }
        let gap = UInt64(bytes) &* Time.second / sock.pacingRate
        sock.pacingNextTime = max(sock.pacingNextTime, now) &+ gap
    }

    /// Holds transmission back until the pacing time, arming the pacing timer. Linux:
    /// `tcp_pacing_check()`.
    func pacingCheck(_ sock: TCPSocket) -> Bool {
        guard pacingEnabled(sock), sock.pacingNextTime > now else { return false }
        let timer: TimerID
        if let t = sock.pacingTimer { timer = t } else {
            timer = timers.makeTimer(.tcp(handle: sock.handle, kind: .pacing))
            sock.pacingTimer = timer
        }
        if !timers.isArmed(timer) {
            timers.arm(timer, at: sock.pacingNextTime)
            sock.pacingDelays &+= 1
        }
        return true
    }

    /// Splits the buffer in `slot` of `list` so that it keeps `keep` payload bytes; the rest
    /// becomes a new buffer right after it that shares the same data block (no copy), taking
    /// PSH and FIN, and the scoreboard marks of the original. Segment counts are recomputed at
    /// `mss`; for a sent buffer the connection's counts move with them. Linux: `tcp_fragment()`.
    /// Returns false (changing nothing) when the buffer is too short or the slab is full.
    @discardableResult
    func tcpSplit(_ sock: TCPSocket, slot: Int32, in list: inout PacketList, keep: Int, mss: Int, sent: Bool) -> Bool {
        let len = tcpSlab.length(at: slot)
        guard keep > 0, len > keep, !tcpSlab.isFull else { return false }
        let m = tcpSlab.meta(at: slot)
        var rest = tcpSlab.clone(at: slot)
        guard rest.fragmentCount == 0, rest.pull(keep) else { return false }
        rest.meta.tcpSeq = m.tcpSeq &+ UInt32(keep)
        rest.meta.sharedHeadroom = true
        rest.meta.traceID = 0
        rest.meta.tcpSegments = segmentCount(bytes: len - keep, mss: mss)
        rest.releaseHeader()
        // Linux: tcp_fragment_tstamp() — a timestamp request goes with the part holding its key.
        let stampMoves = m.txTimestamps != 0 && seqGE(m.txTimestampKey, rest.meta.tcpSeq)
        if !stampMoves { rest.meta.txTimestamps = 0 }
        let headSegments = segmentCount(bytes: keep, mss: mss)
        tcpSlab.withBuffer(at: slot) { b in
            _ = b.trim(to: keep)
            b.meta.tcpEndSeq = m.tcpSeq &+ UInt32(keep)
            b.meta.tcpFlags = m.tcpFlags & ~(TCPFlag.psh | TCPFlag.fin)
            b.meta.tcpEndOfRecord = false   // Linux: tcp_skb_fragment_eor() — the rest keeps it
            b.meta.tcpSegments = headSegments
            if stampMoves { b.meta.txTimestamps = 0 }
        }
        if sent {
            let delta = Int(headSegments) + Int(rest.meta.tcpSegments) - Int(m.tcpSegments)
            if delta != 0 { adjustSegmentCounts(sock, marks: m.tcpSacked, by: delta) }
        }
        PacketSlab.adjust(&list, bytes: -(len - keep))
        tcpSlab.insert(rest, after: slot, in: &list)
        sock.queuedBytes += tcpBufferOverhead   // Linux: the new skb's head is charged (tso_fragment)
        return true
    }

    /// Moves the connection's segment counts when a sent buffer's count changes (Linux:
    /// `tcp_adjust_pcount()`).
    func adjustSegmentCounts(_ sock: TCPSocket, marks: UInt8, by delta: Int) {
        @inline(__always) func add(_ v: inout UInt32) { v = UInt32(max(0, Int(v) + delta)) }
        add(&sock.packetsOut)
        if marks & SegmentMark.sacked != 0 { add(&sock.sackedOut) }
        if marks & SegmentMark.lost != 0 { add(&sock.lostOut) }
        if marks & SegmentMark.retransmitted != 0 { add(&sock.retransOut) }
    }
}
