/// What a socket's transmitted buffers still hold below it: the bytes charged to the socket by
/// buffers that have left TCP and are not yet freed by the device (in a qdisc, waiting for a
/// neighbour, on a TX ring), and the TCP Small Queues state that waits for them to be freed.
///
/// Linux: `sk_wmem_alloc` (charged by `skb_set_owner_w()` in `__tcp_transmit_skb()`, given back
/// by the `tcp_wfree()` destructor), the `TSQ_THROTTLED` / `TSQ_QUEUED` bits of `sk_tsq_flags`,
/// and the socket's `tsq_node` on the per-CPU `tsq_tasklet` list.
///
/// A charge lives at a stable address that the buffers point at. Its socket owns it; when the
/// socket goes away first, the charge is orphaned and frees itself once the last buffer that
/// points at it has been freed and no list holds it (Linux: the reference `sk_wmem_alloc` holds
/// on the socket). All of it runs under the stack's lock.
@usableFromInline
struct TransmitCharge {
    /// Bytes charged by buffers not yet freed (Linux: `sk_wmem_alloc` less its base reference).
    @usableFromInline var bytes: Int = 0
    /// TCP stopped sending to wait for the device to free buffers (Linux: `TSQ_THROTTLED`).
    @usableFromInline var throttled = false
    /// On the completion list, waiting for the tasklet (Linux: `TSQ_QUEUED`).
    @usableFromInline var queued = false
    /// The socket, unretained; nil once the socket is gone (the charge is orphaned).
    @usableFromInline var owner: UnsafeMutableRawPointer?
    /// Next on the completion list.
    @usableFromInline var next: UnsafeMutablePointer<TransmitCharge>?
    /// The list a freed buffer puts a throttled socket on.
    @usableFromInline let completions: TransmitCompletions

    /// Makes a charge for `owner` (an unretained socket) whose wake-ups go to `completions`.
    static func make(owner: UnsafeMutableRawPointer, completions: TransmitCompletions) -> UnsafeMutablePointer<TransmitCharge> {
        let p = UnsafeMutablePointer<TransmitCharge>.allocate(capacity: 1)
        p.initialize(to: TransmitCharge(owner: owner, completions: completions))
        completions.liveCharges += 1
        return p
    }

    /// A buffer charged `n` bytes was freed. A throttled socket goes on the completion list for
    /// the tasklet to send more. Linux: `tcp_wfree()`.
    @usableFromInline
    static func uncharge(_ c: UnsafeMutablePointer<TransmitCharge>, bytes n: Int) {
        c.pointee.bytes -= n
        if c.pointee.owner == nil {
            freeIfUnused(c)
            return
        }
        guard c.pointee.throttled && !c.pointee.queued else { return }
        c.pointee.throttled = false
        c.pointee.queued = true
        c.pointee.completions.append(c)
    }

    /// The socket is going away: its charge stays until the last charged buffer is freed.
    static func orphan(_ c: UnsafeMutablePointer<TransmitCharge>) {
        c.pointee.owner = nil
        freeIfUnused(c)
    }

    /// Frees an orphaned charge that no buffer and no list refers to any more.
    static func freeIfUnused(_ c: UnsafeMutablePointer<TransmitCharge>) {
        guard c.pointee.owner == nil, c.pointee.bytes <= 0, !c.pointee.queued else { return }
        c.pointee.completions.liveCharges -= 1
        c.deinitialize(count: 1)
        c.deallocate()
    }
}

/// Sockets whose throttled transmission can go on because the device freed their buffers, in
/// the order their buffers were freed (Linux's `list_add` makes its list last-in first-out; the
/// order does not change what is sent); the TASKLET softirq takes them. Linux: the per-CPU
/// `tsq_tasklet` list (`struct tsq_tasklet`) that `tcp_wfree()` fills and `tcp_tasklet_func()`
/// drains.
@usableFromInline
final class TransmitCompletions {
    private var head: UnsafeMutablePointer<TransmitCharge>?
    private var tail: UnsafeMutablePointer<TransmitCharge>?
    /// Charges not yet freed, their sockets' and orphaned ones (a leak shows here).
    var liveCharges = 0

    /// Nothing waits for the tasklet.
    @inline(__always)
    var isEmpty: Bool { head == nil }

    @usableFromInline
    func append(_ c: UnsafeMutablePointer<TransmitCharge>) {
        c.pointee.next = nil
        if let t = tail { t.pointee.next = c } else { head = c }
        tail = c
    }

    /// Takes every socket off the list at once, as the tasklet does (Linux: `list_splice_init`),
    /// so that sockets queued while it runs wait for its next run. Returns the first of the
    /// chain for `next(after:)`.
    func takeAll() -> UnsafeMutablePointer<TransmitCharge>? {
        defer { head = nil; tail = nil }
        return head
    }

    /// Unlinks the first charge of a chain `takeAll` returned, clearing its `queued` bit (Linux:
    /// `TSQ_QUEUED`); returns its socket (unretained, nil when orphaned: the charge is then freed
    /// if nothing else holds it) and the rest of the chain.
    static func unlink(_ c: UnsafeMutablePointer<TransmitCharge>) -> (owner: UnsafeMutableRawPointer?, rest: UnsafeMutablePointer<TransmitCharge>?) {
        let rest = c.pointee.next
        c.pointee.next = nil
        c.pointee.queued = false
        let owner = c.pointee.owner
        if owner == nil { TransmitCharge.freeIfUnused(c) }
        return (owner, rest)
    }

    /// Empties the list without running anything (a stack going away).
    func drop() {
        var c = takeAll()
        while let cell = c { c = TransmitCompletions.unlink(cell).rest }
    }
}

extension PacketBuffer {
    /// Charges this buffer, which has no charge yet, `n` bytes to a socket until it is freed.
    /// Linux: `skb_set_owner_w()`.
    @inline(__always)
    mutating func charge(to c: UnsafeMutablePointer<TransmitCharge>, bytes n: Int) {
        c.pointee.bytes += n
        charge = c
        chargedBytes = Int32(n)
    }

    /// Gives `share` of `source`'s charge to this buffer, which has none yet, and takes it from
    /// `source`, without waking anyone: the bytes stay charged, only the buffer that frees them
    /// changes. GSO gives each segment its part (Linux: `tcp_gso_segment()` moving `tcp_wfree`
    /// and the truesize to the segments).
    @inline(__always)
    mutating func takeCharge(_ share: Int, from source: inout PacketBuffer) {
        guard let c = source.charge else { return }
        let n = min(share, Int(source.chargedBytes))
        guard n > 0 else { return }
        source.chargedBytes -= Int32(n)
        if source.chargedBytes == 0 { source.charge = nil }
        charge = c
        chargedBytes = Int32(n)
    }

    /// Moves this buffer's charge to `other` (a copy that takes its place).
    @inline(__always)
    mutating func moveCharge(to other: inout PacketBuffer) {
        other.charge = charge
        other.chargedBytes = chargedBytes
        charge = nil
        chargedBytes = 0
    }

    /// Gives the charge back now, while the buffer lives on. Linux: `skb_orphan()`.
    @inline(never)
    mutating func orphan() {
        guard let c = charge else { return }
        charge = nil
        TransmitCharge.uncharge(c, bytes: Int(chargedBytes))
        chargedBytes = 0
    }

    /// Bytes this buffer holds charged to a socket (0 when it has no owner).
    public var chargedToSocket: Int { charge == nil ? 0 : Int(chargedBytes) }
}
