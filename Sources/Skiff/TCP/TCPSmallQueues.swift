/// TCP Small Queues: a bulk sender keeps only about a millisecond of its data in the host's
/// qdiscs and TX rings, and sends more when the device frees what it sent, instead of filling
/// the qdisc with its whole congestion window (which only adds queueing delay to its RTT, and
/// keeps megabytes of sent data out of the CPU caches).
///
/// Every transmission charges its buffer to the socket (`TransmitCharge`); a freed buffer gives
/// the charge back and, if TCP stopped for it, puts the socket on the completion list that the
/// TASKLET softirq drains. Linux: `tcp_small_queue_check()`, `tcp_wfree()`,
/// `tcp_tasklet_func()` → `tcp_tsq_handler()`.
extension NetworkStack {
    /// Charges a transmission to its socket until the device frees it. Linux: `skb_set_owner_w()`
    /// in `__tcp_transmit_skb()` (destructor `tcp_wfree`).
    @inline(__always)
    func tcpChargeTransmit(_ sock: TCPSocket, _ buffer: inout PacketBuffer, bytes: Int) {
        let c: UnsafeMutablePointer<TransmitCharge>
        if let existing = sock.transmitCharge { c = existing } else {
            c = TransmitCharge.make(owner: Unmanaged.passUnretained(sock).toOpaque(), completions: transmitCompletions)
            sock.transmitCharge = c
        }
        buffer.charge(to: c, bytes: bytes)
    }

    /// Bytes of this socket's transmissions not yet freed by the device (Linux: `sk_wmem_alloc`).
    func tcpBytesBelow(_ sock: TCPSocket) -> Int { sock.transmitCharge?.pointee.bytes ?? 0 }

    /// True when the socket already has enough below it to send a buffer of `truesize` now: it
    /// is throttled, and the device's freeing of its buffers sends more. The limit is twice the
    /// buffer or about 1 ms at the pacing rate, at most `tcp_limit_output_bytes`, doubled
    /// `factor` times (retransmissions pass 1). A socket with at most one buffer on its
    /// retransmit queue always sends. Linux: `tcp_small_queue_check()`.
    func tcpSmallQueueCheck(_ sock: TCPSocket, truesize: Int, factor: Int) -> Bool {
        guard let c = sock.transmitCharge else { return false }
        // Before the first RTT sample Linux's sk_pacing_rate is ~0UL: no pacing term.
        let paced = sock.pacingRate == 0 ? Int.max : Int(clamping: sock.pacingRate >> pacingShift)
        // A nonsensical setting (negative, or so large that doubling it overflows) is clamped.
        let capped = min(max(2 * truesize, paced), max(tcpConfig.limitOutputBytes, 0))
        let limit = min(capped, Int.max >> factor) << factor
        guard c.pointee.bytes > limit else { return false }
        // Linux: tcp_rtx_queue_empty_or_single_skb() — no need to wait for a completion then.
        let head = sock.retransmitQueue.head
        if head == PacketSlab.none || tcpSlab.next(head) == PacketSlab.none { return false }
        c.pointee.throttled = true
        tcpCounters.smallQueueThrottles &+= 1
        return true
    }

    /// The TASKLET softirq: each socket the device freed buffers of while it was throttled sends
    /// again, lost segments first. Linux: `tcp_tasklet_func()` → `tcp_tsq_handler()` →
    /// `tcp_tsq_write()`.
    func tcpTaskletAction() {
        var chain = transmitCompletions.takeAll()
        while let cell = chain {
            let (owner, rest) = TransmitCompletions.unlink(cell)
            chain = rest
            guard let owner else { continue }   // the socket went away meanwhile
            let sock = Unmanaged<TCPSocket>.fromOpaque(owner).takeUnretainedValue()
            switch sock.state {
            case .established, .finWait1, .closing, .closeWait, .lastAck: break
            default: continue
            }
            if sock.lostOut > sock.retransOut && sock.window.cwnd > sock.inFlight {
                tcpXmitRetransmitQueue(sock)
            }
            tcpWriteXmit(sock, nagle: sock.nagleMode)
        }
    }
}
