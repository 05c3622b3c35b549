/// A packet in flight: metadata plus a view of a pooled, reference-counted data block.
///
/// Linux: `struct sk_buff`.
///
/// ```
///   block bytes:  [ headroom | data (linear part) ............ | tailroom ]
///                 0          head                              tail       capacity
///   fragments (shared with every clone): [frag0][frag1]...  -> byte ranges of other blocks
/// ```
///
/// `PacketBuffer` is noncopyable: it is consumed as it moves down the path, so using a buffer
/// after handing it on is a compile error, and dropping it returns its block to the pool.
/// A `clone()` shares the block and copies only metadata; writing into a header that another
/// buffer can see first copies it (`makeHeaderWritable`).
public struct PacketBuffer: ~Copyable {
    /// Bytes reserved in front of new buffers: Ethernet + VLAN + IPv4 with options + TCP with
    /// options, rounded up (Linux: `MAX_TCP_HEADER`).
    public static let defaultHeadroom = 128

    @usableFromInline var block: UnsafeMutablePointer<DataBlock>
    @usableFromInline var head: Int32
    @usableFromInline var tail: Int32
    /// What `charge` holds (in the padding after the offsets; fields keep their order).
    @usableFromInline var chargedBytes: Int32 = 0
    /// This buffer promised not to touch the header area (Linux: `skb->nohdr`).
    @usableFromInline var payloadOnly: Bool = false
    /// The socket this buffer is charged to until it is freed, and how much (`chargedBytes`)
    /// (Linux: `skb->sk` with `skb->truesize` and the `tcp_wfree` destructor). Not copied by
    /// `clone()`, as Linux's `skb_clone()` leaves the clone without an owner.
    @usableFromInline var charge: UnsafeMutablePointer<TransmitCharge>? = nil
    /// Per-packet metadata.
    public var meta = PacketMeta()

    @inlinable @inline(__always)
    init(block: UnsafeMutablePointer<DataBlock>, head: Int32) {
        self.block = block
        self.head = head
        self.tail = head
    }

    @inlinable @inline(__always)
    deinit {
        if let c = charge { TransmitCharge.uncharge(c, bytes: Int(chargedBytes)) }
        block.release(payloadOnly: payloadOnly)
    }

    // MARK: Sizes

    /// Bytes in the linear part (Linux: `skb_headlen`).
    @inlinable public var linearLength: Int { Int(tail - head) }
    /// Bytes in fragments (Linux: `skb->data_len`).
    @inlinable public var fragmentLength: Int { Int(block.pointee.fragmentBytes) }
    /// All bytes of the packet (Linux: `skb->len`).
    @inlinable public var length: Int { Int(tail - head) + Int(block.pointee.fragmentBytes) }
    /// Free bytes before the data (Linux: `skb_headroom`).
    @inlinable public var headroom: Int { Int(head) }
    /// Free bytes after the data (Linux: `skb_tailroom`); zero once the buffer has fragments.
    @inlinable public var tailroom: Int {
        block.pointee.fragmentCount > 0 ? 0 : Int(block.pointee.capacity - tail)
    }
    /// Number of fragments (Linux: `skb_shinfo(skb)->nr_frags`).
    @inlinable public var fragmentCount: Int { Int(block.pointee.fragmentCount) }
    /// True when another buffer shares the data block (Linux: `skb_cloned`).
    @inlinable public var isShared: Bool { block.pointee.references > 1 }
    /// True when another buffer that may write headers shares the block (Linux: `skb_header_cloned`).
    @inlinable public var isHeaderShared: Bool {
        block.pointee.references - block.pointee.payloadOnlyReferences > (payloadOnly ? 0 : 1)
    }

    // MARK: Access

    /// Pointer to the first byte of the linear data (Linux: `skb->data`).
    @inlinable public var data: UnsafeMutableRawPointer { block.bytes + Int(head) }

    /// The linear part as a read-only view.
    @inlinable public var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: block.bytes + Int(head), count: Int(tail - head))
    }

    /// Byte range `i` of the fragments.
    @inlinable public func fragment(_ i: Int) -> UnsafeRawBufferPointer {
        let f = block.fragments[i]
        return UnsafeRawBufferPointer(start: f.block.bytes + Int(f.offset), count: Int(f.length))
    }

    // MARK: Header room operations

    /// Moves `data` back by `n` bytes and returns the new start, for a header to be written there.
    /// Linux: `skb_push()`. Precondition: `headroom >= n` (callers reserve with `defaultHeadroom`
    /// or call `makeHeaderWritable(headroom:)` first).
    @inlinable @inline(__always) @discardableResult
    public mutating func push(_ n: Int) -> UnsafeMutableRawPointer {
        precondition(n >= 0 && Int(head) >= n, "push beyond headroom")
        head -= Int32(n)
        return block.bytes + Int(head)
    }

    /// Drops `n` bytes from the front (a header that was consumed). Linux: `skb_pull()`.
    /// Returns false, changing nothing, if the linear part is shorter than `n`.
    @inlinable @inline(__always) @discardableResult
    public mutating func pull(_ n: Int) -> Bool {
        guard n >= 0, n <= Int(tail - head) else { return false }
        head += Int32(n)
        return true
    }

    /// Extends the data by `n` bytes at the end and returns where they start. Linux: `skb_put()`.
    /// Precondition: `tailroom >= n`.
    @inlinable @inline(__always) @discardableResult
    public mutating func put(_ n: Int) -> UnsafeMutableRawPointer {
        precondition(n >= 0 && n <= tailroom, "put beyond tailroom")
        let p = block.bytes + Int(tail)
        tail += Int32(n)
        return p
    }

    /// Appends bytes at the end, counting the copy against `stage`.
    @inlinable
    public mutating func append(_ source: UnsafeRawBufferPointer, stage: CopyStage) {
        let p = put(source.count)
        if let base = source.baseAddress { p.copyMemory(from: base, byteCount: source.count) }
        block.pointee.pool.pointee.ledger.record(stage, bytes: source.count)
    }

    /// Reserves `n` bytes of headroom in an empty buffer. Linux: `skb_reserve()`.
    @inlinable
    public mutating func reserve(_ n: Int) {
        precondition(head == tail && n <= Int(block.pointee.capacity - tail))
        head += Int32(n); tail += Int32(n)
    }

    /// Cuts the linear data to `length` bytes. Linux: `skb_trim()` (linear buffers only; returns
    /// false when the buffer has fragments or is already shorter).
    @inlinable @discardableResult
    public mutating func trim(to length: Int) -> Bool {
        guard block.pointee.fragmentCount == 0, length >= 0, length <= Int(tail - head) else { return false }
        tail = head + Int32(length)
        return true
    }

    // MARK: Fragments

    /// Adds `buffer`'s linear bytes as a fragment that references its block (no copy).
    /// Linux: `skb_fill_page_desc()`. Returns false when the fragment table is full or this
    /// block is shared (fragments of shared blocks are immutable).
    @discardableResult
    public mutating func addFragment(_ buffer: borrowing PacketBuffer) -> Bool {
        let n = Int(block.pointee.fragmentCount)
        guard n < DataBlock.maxFragments, !isShared, buffer.fragmentCount == 0 else { return false }
        buffer.block.pointee.references += 1
        buffer.block.pointee.payloadOnlyReferences += 1
        block.fragments[n] = Fragment(block: buffer.block, offset: buffer.head, length: buffer.tail - buffer.head)
        block.pointee.fragmentCount += 1
        block.pointee.fragmentBytes += buffer.tail - buffer.head
        return true
    }

    /// Adds `length` bytes of `buffer`, from `offset` (across its linear part and fragments),
    /// as fragments that reference the blocks holding them (no copy): how a transmission or a
    /// software-GSO segment points into the original. Returns false, adding nothing, when the
    /// range is outside `buffer`, this block is shared, or the fragment table would overflow.
    @discardableResult
    public mutating func addFragments(of buffer: borrowing PacketBuffer, offset: Int, length: Int) -> Bool {
        guard !isShared, offset >= 0, length >= 0, offset + length <= buffer.length else { return false }
        if length == 0 { return true }
        // Plan first so that nothing is added when the table would overflow.
        let pieces = buffer.pieces(offset: offset, length: length)
        guard Int(block.pointee.fragmentCount) + pieces <= DataBlock.maxFragments else { return false }
        var off = offset, remaining = length
        let linear = Int(buffer.tail - buffer.head)
        @inline(__always) func add(_ b: UnsafeMutablePointer<DataBlock>, _ o: Int32, _ n: Int32) {
            b.pointee.references += 1
            b.pointee.payloadOnlyReferences += 1
            block.fragments[Int(block.pointee.fragmentCount)] = Fragment(block: b, offset: o, length: n)
            block.pointee.fragmentCount += 1
            block.pointee.fragmentBytes += n
        }
        if off < linear {
            let n = min(linear - off, remaining)
            add(buffer.block, buffer.head + Int32(off), Int32(n))
            remaining -= n; off = 0
        } else { off -= linear }
        var i = 0
        while remaining > 0 && i < buffer.fragmentCount {
            let f = buffer.block.fragments[i]
            if off < Int(f.length) {
                let n = min(Int(f.length) - off, remaining)
                add(f.block, f.offset + Int32(off), Int32(n))
                remaining -= n; off = 0
            } else { off -= Int(f.length) }
            i += 1
        }
        return true
    }

    /// How many contiguous pieces `length` bytes at `offset` take: one for a part in the linear
    /// area, one for each fragment they touch. That many fragments `addFragments` adds, and that
    /// many descriptors the bytes take on a TX ring.
    func pieces(offset: Int, length: Int) -> Int {
        var pieces = 0
        var off = offset, remaining = length
        let linear = Int(tail - head)
        if off < linear { pieces += 1; remaining -= min(linear - off, remaining); off = 0 } else { off -= linear }
        var i = 0
        while remaining > 0 && i < fragmentCount {
            let f = block.fragments[i]
            if off < Int(f.length) { pieces += 1; remaining -= min(Int(f.length) - off, remaining); off = 0 } else { off -= Int(f.length) }
            i += 1
        }
        return pieces
    }

    // MARK: Clone and copy

    /// A second buffer for the same bytes: the data block is shared (its count goes up), the
    /// metadata is copied. Linux: `skb_clone()`.
    @inlinable
    public func clone() -> PacketBuffer {
        block.pointee.references += 1
        var c = PacketBuffer(block: block, head: head)
        c.tail = tail
        c.meta = meta
        return c
    }

    /// Promises that this buffer will never write its header area again, so clones may push
    /// their headers into the shared headroom without copying. Linux: `skb_header_release()`.
    @inlinable
    public mutating func releaseHeader() {
        if !payloadOnly {
            payloadOnly = true
            block.pointee.payloadOnlyReferences += 1
        }
    }

    /// Makes the header area private and at least `headroom` bytes long, copying the linear
    /// bytes to a new block if another header-writing buffer shares this one or the room is too
    /// small. Fragments stay shared. Linux: `skb_cow_head()`. Returns false if the pool is empty.
    public mutating func makeHeaderWritable(headroom need: Int) -> Bool {
        if !isHeaderShared && Int(head) >= need { return true }
        let pool = block.pointee.pool
        let linear = Int(tail - head)
        let room = max(need, Int(head))
        guard let fresh = pool.pointee.take(bytes: room + linear, selfPointer: pool) else { return false }
        (fresh.bytes + room).copyMemory(from: block.bytes + Int(head), byteCount: linear)
        // The fragments move with the header: the new block references them too.
        let n = Int(block.pointee.fragmentCount)
        for i in 0..<n {
            let f = block.fragments[i]
            f.block.pointee.references += 1
            f.block.pointee.payloadOnlyReferences += 1
            fresh.fragments[i] = f
        }
        fresh.pointee.fragmentCount = Int32(n)
        fresh.pointee.fragmentBytes = block.pointee.fragmentBytes
        pool.pointee.ledger.record(.headerCopy, bytes: linear)
        block.release(payloadOnly: payloadOnly)
        block = fresh
        payloadOnly = false
        head = Int32(room)
        tail = head + Int32(linear)
        return true
    }

    /// A private, linear copy of the whole packet with `headroom` bytes in front.
    /// Linux: `skb_copy()`. Returns nil if the pool is empty.
    public func copy(headroom: Int = PacketBuffer.defaultHeadroom, stage: CopyStage = .headerCopy) -> PacketBuffer? {
        let pool = block.pointee.pool
        guard let fresh = pool.pointee.take(bytes: headroom + length, selfPointer: pool) else { return nil }
        var c = PacketBuffer(block: fresh, head: Int32(headroom))
        c.meta = meta
        let total = copyBytes(to: c.put(length), offset: 0, count: length)
        pool.pointee.ledger.record(stage, bytes: total)
        return c
    }

    /// Makes the buffer linear: fragments are copied into the linear part. Linux: `skb_linearize()`.
    public mutating func linearize() -> Bool {
        if block.pointee.fragmentCount == 0 { return true }
        guard var c = copy(headroom: Int(head), stage: .linearize) else { return false }
        moveCharge(to: &c)   // the copy stays charged to the socket (Linux keeps skb->sk)
        self = c
        return true
    }

    /// Copies `count` bytes starting at `offset` (across linear part and fragments) to `dest`.
    /// Does not count in the ledger; callers record the stage. Returns the bytes copied.
    @discardableResult
    public func copyBytes(to dest: UnsafeMutableRawPointer, offset: Int, count: Int) -> Int {
        var off = offset, remaining = count, out = 0
        let linear = Int(tail - head)
        if off < linear {
            let n = min(linear - off, remaining)
            (dest).copyMemory(from: block.bytes + Int(head) + off, byteCount: n)
            out += n; remaining -= n; off = 0
        } else {
            off -= linear
        }
        var i = 0
        while remaining > 0 && i < Int(block.pointee.fragmentCount) {
            let f = block.fragments[i]
            if off < Int(f.length) {
                let n = min(Int(f.length) - off, remaining)
                (dest + out).copyMemory(from: f.block.bytes + Int(f.offset) + off, byteCount: n)
                out += n; remaining -= n; off = 0
            } else {
                off -= Int(f.length)
            }
            i += 1
        }
        return out
    }

    /// The pool this buffer's block came from, for allocations that belong with it.
    @inlinable
    var poolState: UnsafeMutablePointer<PoolState> { block.pointee.pool }

    /// Records a copy on this buffer's pool ledger.
    @inlinable
    public func recordCopy(_ stage: CopyStage, bytes: Int) {
        block.pointee.pool.pointee.ledger.record(stage, bytes: bytes)
    }

    /// Allocates a new buffer from the same pool. Linux: `alloc_skb()` on the same node.
    @inlinable
    public func allocateSibling(size: Int, headroom: Int = PacketBuffer.defaultHeadroom) -> PacketBuffer? {
        let pool = block.pointee.pool
        guard let b = pool.pointee.take(bytes: size + headroom, selfPointer: pool) else { return nil }
        return PacketBuffer(block: b, head: Int32(headroom))
    }
}
