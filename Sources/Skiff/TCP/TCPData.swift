import SkiffWire

extension NetworkStack {
    /// Queues received data: in order → the receive queue (then whatever the out-of-order queue
    /// now continues); old → a D-SACK and an immediate ACK; ahead of `rcv_nxt` → the
    /// out-of-order queue (sorted, duplicates dropped) and an immediate ACK carrying SACK blocks.
    /// A FIN in order moves the state. Linux: `tcp_data_queue()`, `tcp_ofo_queue()`, `tcp_fin()`.
    func tcpDataQueue(_ sock: TCPSocket, _ seg: TCPSegmentInfo, _ buffer: consuming PacketBuffer) {
        var b = buffer
        let seq = b.meta.tcpSeq
        let end = b.meta.tcpEndSeq
        let fin = seg.has.fin
        // Linux: tcp_event_data_recv() stamps icsk_ack.lrcvtime.
        if seg.payloadLength > 0 { sock.lastDataReceiveTime = now }
        // Linux: tcp_measure_rcv_mss() — a large (GRO/GSO) segment counts by its segment size.
        let segmentLength = b.meta.gsoSize > 0 ? Int(b.meta.gsoSize) : seg.payloadLength
        if segmentLength > sock.rcvMSS { sock.rcvMSS = min(segmentLength, sock.mss) }
        if seqLE(end, sock.rcvNxt) && !(fin && end == sock.rcvNxt) {
            // Entirely old data: a duplicate (RFC 2883 D-SACK).
            if seg.payloadLength > 0 && sock.sackEnabled && tcpConfig.dsack {
                sock.dsack = (seq, end)
                tcpCounters.dsackSent &+= 1
            }
            tcpSendAck(sock)
            return
        }
        if seqLE(seq, sock.rcvNxt) {
            // In order (possibly overlapping what we have).
            let overlap = Int(sock.rcvNxt &- seq)
            if overlap > 0 && sock.sackEnabled && tcpConfig.dsack {
                // Linux: a partly old segment D-SACKs its old head.
                sock.dsack = (seq, sock.rcvNxt)
                tcpCounters.dsackSent &+= 1
            }
            let window = sock.rcvWnd &- (sock.rcvNxt &- sock.rcvWup)
            if Int32(bitPattern: window) <= 0 {
                // Linux: in-order data (or FIN) at a closed window is dropped and answered at once
                // (TCPZeroWindowDrop); the sender's probes find out when it reopens.
                tcpCounters.zeroWindowDrops &+= 1
                drops.count(.tcpReceiveBufferFull)
                sock.quickAcks = max(sock.quickAcks, 16)
                tcpSendAck(sock)
                return
            }
            if overlap > 0 {
                if !b.pull(overlap) { _ = b.linearize(); _ = b.pull(overlap) }
                b.meta.tcpSeq = sock.rcvNxt
            }
            let hadHoles = sock.outOfOrderQueue.head != PacketSlab.none
            var finSeen = fin
            if b.length > 0 {
                guard !tcpSlab.isFull else { drops.count(.tcpReceiveBufferFull); return }
                sock.rcvNxt = b.meta.tcpEndSeq
                if sock.rcvSSThresh > 0 {
                    // Linux: tcp_grow_window() — about two segments (at least twice this one's
                    // length) per segment, up to the receive space.
                    let incr = UInt32(max(2 * sock.rcvMSS, 2 * b.length))
                    sock.rcvSSThresh = min(sock.rcvSSThresh &+ incr, UInt32(max(0, sock.receiveBufferSize / 2)))
                }
                sock.receiveQueueBytes += b.length
                sock.bytesReceived &+= UInt64(b.length)
                tracer.record(b.meta.traceID, .tcpV4Rcv, contexts.current, now)
                tcpSlab.pushBack(b, onto: &sock.receiveQueue)
            }
            if hadHoles { finSeen = tcpOfoQueue(sock) || finSeen }
            sock.segmentsSinceAck += 1
            if finSeen {
                tcpFin(sock)
                return
            }
            // Linux (__tcp_ack_snd_check): at once in quick-ACK mode, when out-of-order data was
            // there, or when more than one full segment (rcv_mss) arrived since the last ACK.
            if hadHoles || (sock.quickAcks > 0 && !sock.pingpong) || Int(sock.rcvNxt &- sock.rcvWup) > sock.rcvMSS {
                if sock.quickAcks > 0 { sock.quickAcks -= 1 }
                tcpSendAck(sock)
            } else {
                scheduleDelayedAck(sock)
            }
            return
        }
        // Out of order: beyond the window is dropped; otherwise insert sorted.
        let window = sock.rcvWnd &- (sock.rcvNxt &- sock.rcvWup)
        if seqGE(seq, sock.rcvNxt &+ window) && window > 0 {
            drops.count(.tcpOutOfWindow)
            tcpSendAck(sock)
            return
        }
        guard !tcpSlab.isFull, sock.outOfOrderBytes + b.length <= sock.receiveBufferSize else {
            drops.count(.tcpOutOfOrderFull)
            tcpSendAck(sock)
            return
        }
        tcpCounters.ofoQueue &+= 1
        var prev = PacketSlab.none
        var slot = sock.outOfOrderQueue.head
        while slot != PacketSlab.none {
            let m = tcpSlab.meta(at: slot)
            if seqLE(m.tcpSeq, seq) && seqGE(m.tcpEndSeq, end) && !(fin && m.tcpFlags & TCPFlag.fin == 0) {
                // Already have all of it.
                if sock.sackEnabled && tcpConfig.dsack { sock.dsack = (seq, end); tcpCounters.dsackSent &+= 1 }
                tcpSendAck(sock)
                return
            }
            if seqGT(m.tcpSeq, seq) { break }
            prev = slot
            slot = tcpSlab.next(slot)
        }
        b.meta.tcpFlags = fin ? TCPFlag.fin : 0
        sock.outOfOrderBytes += b.length
        tcpSlab.insert(b, after: prev, in: &sock.outOfOrderQueue)
        // Linux: out-of-order data is ACKed at once (a duplicate ACK with SACK blocks) and
        // quick-ACK mode is entered.
        sock.quickAcks = max(sock.quickAcks, 2)
        tcpSendAck(sock)
    }

    /// Moves out-of-order segments that now continue `rcv_nxt` to the receive queue.
    /// Returns true when a queued FIN became in order. Linux: `tcp_ofo_queue()`.
    func tcpOfoQueue(_ sock: TCPSocket) -> Bool {
        var fin = false
        while sock.outOfOrderQueue.head != PacketSlab.none {
            let m = tcpSlab.meta(at: sock.outOfOrderQueue.head)
            if seqGT(m.tcpSeq, sock.rcvNxt) { break }
            guard var b = tcpSlab.popFront(&sock.outOfOrderQueue) else { break }
            sock.outOfOrderBytes -= b.length
            if seqLE(m.tcpEndSeq, sock.rcvNxt) && !(m.tcpFlags & TCPFlag.fin != 0 && m.tcpEndSeq == sock.rcvNxt) {
                continue  // wholly duplicate
            }
            let overlap = Int(sock.rcvNxt &- m.tcpSeq)
            if overlap > 0 {
                if !b.pull(overlap) { _ = b.linearize(); _ = b.pull(overlap) }
                b.meta.tcpSeq = sock.rcvNxt
            }
            if m.tcpFlags & TCPFlag.fin != 0 { fin = true }
            if b.length > 0 {
                sock.rcvNxt = b.meta.tcpEndSeq
                if sock.rcvSSThresh > 0 {
                    // Linux: tcp_grow_window() — about two segments (at least twice this one's
                    // length) per segment, up to the receive space.
                    let incr = UInt32(max(2 * sock.rcvMSS, 2 * b.length))
                    sock.rcvSSThresh = min(sock.rcvSSThresh &+ incr, UInt32(max(0, sock.receiveBufferSize / 2)))
                }
                sock.receiveQueueBytes += b.length
                sock.bytesReceived &+= UInt64(b.length)
                tcpSlab.pushBack(b, onto: &sock.receiveQueue)
            }
            if fin { break }
        }
        return fin
    }

    /// An in-order FIN (RFC 9293 §3.10.7.4 eighth step; Linux: `tcp_fin()`).
    func tcpFin(_ sock: TCPSocket) {
        sock.rcvNxt &+= 1
        sock.finReceived = true
        switch sock.state {
        case .established: sock.state = .closeWait
        case .finWait1:
            if sock.finSent && sock.sndUna == sock.writeSeq { enterTimeWait(sock) } else { sock.state = .closing }
        case .finWait2: enterTimeWait(sock)
        default: break
        }
        tcpSendAck(sock)
    }

    /// Arms the delayed-ACK timer (Linux: `tcp_send_delayed_ack()`; ATO 40 ms, `TCP_DELACK_MIN`).
    func scheduleDelayedAck(_ sock: TCPSocket) {
        sock.ackPending = true
        if !timers.isArmed(sock.delayedAckTimer) {
            timers.arm(sock.delayedAckTimer, at: now &+ 40 * Time.millisecond)
        }
    }

    /// Copies received bytes to the user, frees what was read, and sends a window update when the
    /// window has opened a lot. Linux: `tcp_recvmsg()` → `skb_copy_datagram_iter()`,
    /// `tcp_cleanup_rbuf()`.
    func tcpRecvmsg(_ sock: TCPSocket, into dest: UnsafeMutableRawBufferPointer, peek: Bool) -> Result<Int, Errno> {
        var copied = 0
        var slot = sock.receiveQueue.head
        var offset = sock.receiveHeadOffset
        while copied < dest.count && slot != PacketSlab.none {
            let n = tcpSlab.withBuffer(at: slot) { b -> Int in
                let k = min(b.length - offset, dest.count - copied)
                b.copyBytes(to: dest.baseAddress! + copied, offset: offset, count: k)
                return k
            }
            copied += n
            offset += n
            let len = tcpSlab.length(at: slot)
            if offset >= len {
                slot = tcpSlab.next(slot)
                offset = 0
                if !peek {
                    _ = tcpSlab.popFront(&sock.receiveQueue)
                }
            }
        }
        if copied == 0 {
            if let e = sock.pendingError { sock.pendingError = nil; return .failure(e) }
            if sock.finReceived || sock.shutdownRead || sock.state == .closed { return .success(0) }
            if sock.state == .listen || sock.state == .synSent || sock.state == .synReceived {
                return .failure(sock.state == .listen ? .ENOTCONN : .EAGAIN)
            }
            return .failure(.EAGAIN)
        }
        pool.recordCopy(.bufferToUser, bytes: copied)
        if peek { return .success(copied) }
        sock.receiveHeadOffset = offset
        sock.receiveQueueBytes -= copied
        sock.copiedSeq &+= UInt32(copied)
        receiveSpaceAdjust(sock)
        // Window update if the window we could offer now is at least twice what the peer has,
        // and twice the peer's window still fits under the largest window we can offer (the
        // clamp: 65535 scaled by our window scale). Linux: tcp_cleanup_rbuf()'s
        // `2 * rcv_window_now <= window_clamp`.
        let offered = sock.rcvWnd &- (sock.rcvNxt &- sock.rcvWup)
        let clamp = UInt64(65535) << UInt64(sock.receiveWindowScale)
        var couldOffer = min(UInt64(max(0, sock.receiveBufferSize / 2 - sock.receiveQueueBytes - sock.outOfOrderBytes)), clamp)
        // Never more than the window slow start allows (Linux: __tcp_select_window caps the free
        // space at rcv_ssthresh).
        if sock.rcvSSThresh > 0 { couldOffer = min(couldOffer, UInt64(sock.rcvSSThresh)) }
        let twiceOffered = 2 * UInt64(max(offered, UInt32(sock.rcvMSS)))
        if sock.state.isSynchronized && sock.state != .timeWait && 2 * UInt64(offered) <= clamp && couldOffer >= twiceOffered {
            tcpSendAck(sock)
        }
        return .success(copied)
    }
}

extension NetworkStack {
    /// Receive-buffer auto-tuning: once per RTT, if the application read more than the space
    /// measured last time, grow the receive buffer to twice that (plus what arrived out of
    /// order), up to `tcp_rmem[2]`, so the window keeps up with the sender.
    /// Linux: `tcp_rcv_space_adjust()` (with `tcp_moderate_rcvbuf` on).
    func receiveSpaceAdjust(_ sock: TCPSocket) {
        let rtt = max(sock.rtt.srtt ?? Time.millisecond, 100 * Time.microsecond)
        if sock.rcvqSpaceTime == 0 {
            sock.rcvqSpaceTime = now
            sock.rcvqSpaceSeq = sock.copiedSeq
            sock.rcvqSpace = min(max(Int(sock.rcvWnd), sock.advertisedMSS), 10 * sock.advertisedMSS)   // Linux: tcp_init_buffer_space
            return
        }
        guard now &- sock.rcvqSpaceTime >= rtt else { return }
        let copied = Int(sock.copiedSeq &- sock.rcvqSpaceSeq)
        if copied > sock.rcvqSpace && !sock.receiveBufferLocked {
            let wanted = min(tcpConfig.receiveMemory.2, 2 * (2 * copied + sock.outOfOrderBytes))
            if wanted > sock.receiveBufferSize {
                sock.receiveBufferSize = wanted
                sock.receiveBufferGrowths &+= 1
            }
            sock.rcvqSpace = copied
        }
        sock.rcvqSpaceTime = now
        sock.rcvqSpaceSeq = sock.copiedSeq
    }
}
