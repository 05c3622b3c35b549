/// Send-buffer accounting as Linux does it: what a queued buffer costs, when a write may take a new
/// buffer, when the socket is writable, and how the send buffer grows with cwnd.
///
/// Linux charges every skb on the write and retransmit queues its `truesize` to `sk_wmem_queued`:
/// the payload (page fragments, charged byte for byte as `tcp_sendmsg` copies) plus the skb's
/// own head (`struct sk_buff`, the small linear area for headers and `skb_shared_info`). Skiff's
/// buffers come from pooled blocks of fixed size classes, so their real footprint says nothing
/// about Linux's; instead each queued buffer is charged as Linux would charge its skb: a fixed
/// `tcpBufferOverhead` for the head plus its payload. A buffer split in two (`tcpSplit`, Linux
/// `tso_fragment` / `tcp_fragment`) adds one more head; a partial ACK trims payload only
/// (`tcp_trim_head`); a freed buffer gives back its head and what payload it still has. So
/// `queuedBytes` is Linux's `sk_wmem_queued` and `sendBufferSize` its `sk_sndbuf`, and the
/// short counts of writes, POLLOUT and EPOLLOUT come out where Linux's do.
let tcpBufferOverhead = 1280

/// Per-MSS memory `tcp_sndbuf_expand` assumes for the non-TSO worst case: the segment plus
/// `MAX_TCP_HEADER` (320) and `skb_shared_info` (320), rounded up to a power of two, plus
/// `struct sk_buff` (256).
@inline(__always)
func tcpSendMemoryPerSegment(mss: Int) -> Int {
    var p = 1
    while p < mss + 320 + 320 { p <<= 1 }
    return p + 256
}

extension NetworkStack {
    /// A write may take a new buffer: less than SO_SNDBUF queued, and (shifted left by one for a
    /// wake-up, as Linux asks for half) fewer unsent bytes than the not-sent low-water mark.
    /// Linux: `__sk_stream_memory_free()` → `tcp_stream_memory_free()`.
    @inline(__always)
    func tcpStreamMemoryFree(_ sock: TCPSocket, wake: Bool) -> Bool {
        guard sock.queuedBytes < sock.sendBufferSize else { return false }
        let notSent = UInt64(UInt32(truncatingIfNeeded: sock.writeSeq &- sock.sndNxt))
        return (wake ? notSent << 1 : notSent) < UInt64(notSentLowat(sock))
    }

    /// Writable for poll and wake-ups: the free part of the send buffer is at least half of what
    /// is queued, and memory is free for a wake-up. Linux: `__sk_stream_is_writeable(sk, 1)` with
    /// `sk_stream_wspace()` ≥ `sk_stream_min_wspace()`.
    @inline(__always)
    func tcpStreamWriteable(_ sock: TCPSocket) -> Bool {
        sock.sendBufferSize - sock.queuedBytes >= sock.queuedBytes >> 1 && tcpStreamMemoryFree(sock, wake: true)
    }

    /// Grows SO_SNDBUF to hold twice cwnd (at least the initial window, at least the reordering
    /// degree plus one) of worst-case segments, up to `tcp_wmem[2]`. Linux: `tcp_sndbuf_expand()`.
    func tcpSndbufExpand(_ sock: TCPSocket) {
        let perSegment = tcpSendMemoryPerSegment(mss: max(sock.mss, sendMSS(sock)))
        let segments = max(10, Int(sock.window.cwnd), Int(sock.reordering) + 1)
        let wanted = 2 * segments * perSegment
        if sock.sendBufferSize < wanted { sock.sendBufferSize = min(wanted, tcpConfig.sendMemory.2) }
    }

    /// On entering ESTABLISHED: the send buffer sized for the initial window unless SO_SNDBUF
    /// was set. Linux: `tcp_init_buffer_space()` → `tcp_sndbuf_expand()`.
    func tcpInitSendBuffer(_ sock: TCPSocket) {
        if !sock.sendBufferLocked { tcpSndbufExpand(sock) }
    }

    /// After an ACK freed space: if a writer found the buffer full, grow it when cwnd has room
    /// and wake writers. Linux: `tcp_check_space()` → `tcp_new_space()` with
    /// `tcp_should_expand_sndbuf()`.
    func tcpCheckSpace(_ sock: TCPSocket) {
        guard sock.noSpace else { return }
        if !sock.sendBufferLocked && sock.inFlight < sock.window.cwnd { tcpSndbufExpand(sock) }
        tcpWriteSpace(sock)
        if !sock.noSpace { chronoStop(sock, .sendBufferLimited) }
    }

    /// Wakes writers when the socket is writable again: the wake-up EPOLLOUT edges and blocked
    /// writes wait for. Linux: `sk_stream_write_space()` (clears `SOCK_NOSPACE`).
    func tcpWriteSpace(_ sock: TCPSocket) {
        guard tcpStreamWriteable(sock) else { return }
        sock.noSpace = false
        sock.writeSpaceWakes &+= 1
    }
}
