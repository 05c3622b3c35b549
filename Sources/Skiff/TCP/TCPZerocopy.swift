/// One MSG_ZEROCOPY notification range whose bytes are not yet all acknowledged: one send, or
/// several consecutive ones merged (Linux: `struct ubuf_info_msgzc`: `id`, `len`, `bytelen`).
struct ZerocopyRange {
    var first: UInt32
    var count: UInt32
    /// Bytes the sends asked for (Linux: `bytelen`).
    var bytes: Int
    /// Sequence number after the last byte queued under this range: the range completes once it
    /// is acknowledged, as Linux's completes when the last skb holding it is freed.
    var endSeq: UInt32
}

/// A TCP socket's MSG_ZEROCOPY state (Linux: `SOCK_ZEROCOPY`, `sk_zckey`, and the `ubuf_info`s its
/// skbs hold). Skiff copies the bytes of a zerocopy send, as Linux does whenever the device
/// cannot take the user's pages (tun, loopback, no scatter-gather): the send returns at once,
/// the buffer is the caller's again, and the completion, still sent once the data is
/// acknowledged, says `SO_EE_CODE_ZEROCOPY_COPIED`. The write queue is still laid out as
/// Linux lays out a zerocopy skb: each user page a fragment, at most `maxFragments` per buffer.
struct ZerocopyState {
    /// Ranges outstanding at most (Linux: each is an skb charged to `optmem_max`; past it the
    /// send fails with ENOBUFS).
    static let maxPending = 128
    /// Bytes one range may grow to by merging sends (Linux: `byte_limit`, 512 KiB).
    static let maxRangeBytes = 1 << 19
    /// Fragments one buffer takes (Linux: `MAX_SKB_FRAGS`).
    static let maxFragments = 17
    static let pageSize: UInt = 4096

    /// SO_ZEROCOPY (Linux: `SOCK_ZEROCOPY`).
    var enabled = false
    /// The next notification id (Linux: `sk_zckey`).
    var nextID: UInt32 = 0
    private var ring: [ZerocopyRange] = []
    private var head = 0
    private(set) var count = 0
    /// Where the last user fragment of the write queue's tail buffer ends, so that the next
    /// bytes, if they follow in the same page, extend it (Linux: `skb_can_coalesce()`); 0 = none.
    var lastFragmentEnd: UInt = 0
    /// The tail buffer's last bytes were copied (they share one page fragment).
    var lastAppendWasCopy = false

    var front: ZerocopyRange? { count > 0 ? ring[head] : nil }

    private func index(_ i: Int) -> Int { (head + i) % ZerocopyState.maxPending }

    /// How a send's notification id was found.
    enum Begin { case merged, new, full }

    /// Linux: `msg_zerocopy_realloc()`: the send joins the newest range when the write queue's
    /// tail buffer holds that range (it is still unsent), the ids follow on and the range stays
    /// small; otherwise it takes a new id.
    mutating func begin(size: Int, tailHoldsRange: Bool) -> Begin {
        if tailHoldsRange, count > 0 {
            let last = index(count - 1)
            let r = ring[last]
            if r.count < UInt32(UInt16.max) - 1, r.bytes + size <= ZerocopyState.maxRangeBytes,
               r.first &+ r.count == nextID {
                ring[last].count += 1
                ring[last].bytes += size
                nextID &+= 1
                return .merged
            }
        }
        guard count < ZerocopyState.maxPending else { return .full }
        if ring.isEmpty { ring = [ZerocopyRange](repeating: ZerocopyRange(first: 0, count: 0, bytes: 0, endSeq: 0),
                                                 count: ZerocopyState.maxPending) }
        ring[index(count)] = ZerocopyRange(first: nextID, count: 1, bytes: size, endSeq: 0)
        count += 1
        nextID &+= 1
        return .new
    }

    /// The send copied nothing: its id is given back (Linux: `msg_zerocopy_put_abort()`).
    mutating func abort(_ how: Begin) {
        guard count > 0 else { return }
        let last = index(count - 1)
        nextID &-= 1
        if how == .merged { ring[last].count -= 1 } else { count -= 1 }
    }

    /// The newest range now ends at `seq`.
    mutating func extendLast(to seq: UInt32) {
        guard count > 0 else { return }
        ring[index(count - 1)].endSeq = seq
    }

    mutating func removeFirst() -> ZerocopyRange? {
        guard count > 0 else { return nil }
        let r = ring[head]
        head = index(1)
        count -= 1
        return r
    }

    mutating func removeAll() { head = 0; count = 0 }

    /// How many of `n` bytes at `address` a zerocopy buffer with `used` fragments still takes,
    /// and its fragments then: each user page a fragment, except that bytes continuing the last
    /// fragment in its page extend it; none when the buffer is already full (Linux:
    /// `zerocopy_fill_skb_from_iter()`, EMSGSIZE).
    static func fit(address: UInt, count n: Int, used: Int, lastEnd: UInt) -> (bytes: Int, fragments: Int) {
        guard used < maxFragments else { return (0, used) }
        var a = address, left = n, frags = used, taken = 0
        while left > 0 {
            let chunk = min(left, Int(pageSize - a % pageSize))
            let joins = taken == 0 && a == lastEnd && a % pageSize != 0
            if !joins {
                if frags == maxFragments { break }
                frags += 1
            }
            a += UInt(chunk); left -= chunk; taken += chunk
        }
        return (taken, frags)
    }
}

extension NetworkStack {
    /// Completes the zerocopy ranges whose bytes this ACK acknowledged: a completion each on the
    /// error queue, coalescing with the one before (Linux: the last skb holding a `ubuf_info`
    /// freed in `tcp_clean_rtx_queue()` → `msg_zerocopy_callback()`).
    func tcpZerocopyAcked(_ s: TCPSocket, una: UInt32) {
        while let r = s.zerocopy.front, seqGE(una, r.endSeq) {
            _ = s.zerocopy.removeFirst()
            notifyZerocopy(s, r)
        }
    }

    /// The connection's queues were dropped (a reset, a timeout): the outstanding ranges complete
    /// as their skbs are freed, unless the application has closed the socket (Linux:
    /// `tcp_write_queue_purge()`; `SOCK_DEAD` suppresses the notification).
    func tcpZerocopyPurge(_ s: TCPSocket) {
        while let r = s.zerocopy.removeFirst() {
            if !s.orphaned { notifyZerocopy(s, r) }
        }
        s.zerocopy.lastFragmentEnd = 0
    }

    /// Linux: `__msg_zerocopy_callback()`: ee_info..ee_data is the range of ids; the bytes were
    /// copied, so the code says so.
    private func notifyZerocopy(_ s: TCPSocket, _ r: ZerocopyRange) {
        guard r.count > 0 else { return }
        let m = SocketErrorMessage(errno: 0, origin: ErrorOrigin.zerocopy, code: 1,   // SO_EE_CODE_ZEROCOPY_COPIED
                                   info: r.first, data: r.first &+ r.count &- 1)
        queueError(s, m, payload: nil)
    }

    /// Lays `n` bytes at `address` out in the tail buffer as Linux's zerocopy skbs are laid out,
    /// and returns how many fit (0 when its fragments are all taken): a zerocopy send's bytes take
    /// a fragment per user page (`ZerocopyState.fit`); copied bytes share one page fragment,
    /// which a buffer holding a range counts too (Linux: the copy path's `sk_page_frag`), and
    /// move the range's end, as its buffer is now freed later.
    func zerocopyLayout(_ s: TCPSocket, tail: Int32, at address: UnsafeRawPointer, count n: Int, zerocopy: Bool) -> Int {
        var used = Int(tcpSlab.meta(at: tail).tcpZerocopyFragments)
        if zerocopy {
            if used == 0 && tcpSlab.length(at: tail) > 0 { used = 1 }
            let start = UInt(bitPattern: address)
            let (bytes, frags) = ZerocopyState.fit(address: start, count: n, used: used,
                                                   lastEnd: s.zerocopy.lastAppendWasCopy ? 0 : s.zerocopy.lastFragmentEnd)
            if bytes == 0 { return 0 }
            tcpSlab.updateMeta(at: tail) { $0.tcpZerocopyFragments = UInt8(frags) }
            s.zerocopy.lastFragmentEnd = start + UInt(bytes)
            s.zerocopy.lastAppendWasCopy = false
            return bytes
        }
        if used > 0 {
            if !s.zerocopy.lastAppendWasCopy {
                if used >= ZerocopyState.maxFragments { return 0 }
                tcpSlab.updateMeta(at: tail) { $0.tcpZerocopyFragments = UInt8(used + 1) }
            }
            s.zerocopy.extendLast(to: s.writeSeq &+ UInt32(n))
        }
        s.zerocopy.lastAppendWasCopy = true
        return n
    }
}
