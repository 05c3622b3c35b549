/// A FIFO of packets threaded through a `PacketSlab`: the indices of its first and last slot,
/// plus how many packets and bytes it holds.
///
/// Linux: `struct sk_buff_head` (a qdisc band, a flow queue); the links live in the slab rather
/// than in the packets, since a `PacketBuffer` has no `next`/`prev` pointers.
///
/// Hazard: a list is meaningful only together with the slab it was filled from. Use it with no
/// other slab, and do not copy it and then pop from both copies.
public struct PacketList: Sendable, Equatable {
    /// Slot of the first packet, or `PacketSlab.none`.
    public internal(set) var head: Int32 = PacketSlab.none
    /// Slot of the last packet, or `PacketSlab.none`.
    public internal(set) var tail: Int32 = PacketSlab.none
    /// Packets in the list (Linux: `sk_buff_head.qlen`).
    public internal(set) var count: Int = 0
    /// Bytes of those packets, by `PacketBuffer.length` (Linux: the per-band share of `qstats.backlog`).
    public internal(set) var bytes: Int = 0

    public init() {}

    @inlinable public var isEmpty: Bool { count == 0 }
}

/// Fixed-capacity storage for noncopyable packets, in slots linked by `Int32` indices, so that a
/// qdisc can keep any number of FIFO lists (bands, flows) without allocating per packet.
///
/// ```
///   slots:  [ pkt | pkt | free | pkt | free | ... ]     capacity slots, allocated once
///   links:  [  3  | -1  |  4   |  1  |  -1  | ... ]     next slot in a list, or in the free list
///   list A: head 0 -> 3 -> 1 (tail)      free list: 2 -> 4 -> ...
/// ```
///
/// Linux has no direct counterpart: `sk_buff` carries its own `next`/`prev` and qdiscs link them
/// into `sk_buff_head` lists. Here the links are kept beside the buffers so the buffers stay
/// plain noncopyable values.
///
/// Destroying the slab destroys every packet still inside, returning its block to the pool.
public struct PacketSlab: ~Copyable {
    /// The "no slot" index that ends a list.
    public static let none: Int32 = -1

    /// Slots in all.
    public let capacity: Int
    /// Slots holding a packet.
    public internal(set) var count: Int = 0

    @usableFromInline let slots: UnsafeMutablePointer<PacketBuffer>
    @usableFromInline let links: UnsafeMutablePointer<Int32>
    @usableFromInline let occupied: UnsafeMutablePointer<Bool>
    @usableFromInline var freeHead: Int32

    /// Allocates `capacity` slots up front; nothing is allocated afterwards.
    public init(capacity: Int) {
        precondition(capacity > 0 && capacity < Int(Int32.max), "slab capacity out of range")
        self.capacity = capacity
        slots = .allocate(capacity: capacity)
        links = .allocate(capacity: capacity)
        occupied = .allocate(capacity: capacity)
        for i in 0..<capacity {
            links[i] = i + 1 < capacity ? Int32(i + 1) : PacketSlab.none
            occupied[i] = false
        }
        freeHead = 0
    }

    deinit {
        for i in 0..<capacity where occupied[i] {
            (slots + i).deinitialize(count: 1)
        }
        slots.deallocate()
        links.deallocate()
        occupied.deallocate()
    }

    /// True when no slot is free; pushing is then a precondition failure.
    @inlinable public var isFull: Bool { freeHead == PacketSlab.none }
    /// Free slots.
    @inlinable public var available: Int { capacity - count }

    @inline(__always)
    mutating func store(_ buffer: consuming PacketBuffer) -> Int32 {
        precondition(freeHead != PacketSlab.none, "PacketSlab is full")
        let slot = freeHead
        freeHead = links[Int(slot)]
        (slots + Int(slot)).initialize(to: buffer)
        occupied[Int(slot)] = true
        count += 1
        return slot
    }

    /// Appends `buffer` at the tail of `list` (Linux: `__skb_queue_tail()`).
    /// Precondition: `!isFull`.
    public mutating func pushBack(_ buffer: consuming PacketBuffer, onto list: inout PacketList) {
        let length = buffer.length
        let slot = store(buffer)
        links[Int(slot)] = PacketSlab.none
        if list.tail == PacketSlab.none {
            list.head = slot
        } else {
            links[Int(list.tail)] = slot
        }
        list.tail = slot
        list.count += 1
        list.bytes += length
    }

    /// Puts `buffer` at the head of `list`, to be popped next (Linux: `__skb_queue_head()`).
    /// Precondition: `!isFull`.
    public mutating func pushFront(_ buffer: consuming PacketBuffer, onto list: inout PacketList) {
        let length = buffer.length
        let slot = store(buffer)
        links[Int(slot)] = list.head
        if list.head == PacketSlab.none { list.tail = slot }
        list.head = slot
        list.count += 1
        list.bytes += length
    }

    /// Removes and returns the head of `list`, or nil when it is empty
    /// (Linux: `__skb_dequeue()`).
    public mutating func popFront(_ list: inout PacketList) -> PacketBuffer? {
        let slot = list.head
        if slot == PacketSlab.none { return nil }
        list.head = links[Int(slot)]
        if list.head == PacketSlab.none { list.tail = PacketSlab.none }
        return take(slot, from: &list)
    }

    /// Moves the packet out of `slot` (already unlinked from `list`) and frees the slot.
    @inline(__always)
    mutating func take(_ slot: Int32, from list: inout PacketList) -> PacketBuffer {
        let i = Int(slot)
        let buffer = (slots + i).move()
        occupied[i] = false
        list.count -= 1
        list.bytes -= buffer.length
        links[i] = freeHead
        freeHead = slot
        count -= 1
        return buffer
    }

    /// Destroys every packet of `list` and empties it (Linux: `__skb_queue_purge()`).
    /// Returns how many packets were destroyed.
    @discardableResult
    public mutating func removeAll(_ list: inout PacketList) -> Int {
        var n = 0
        while popFront(&list) != nil { n += 1 }
        return n
    }

    /// Byte length of the packet in `slot` (Linux: `qdisc_pkt_len()` of a peeked skb).
    @inlinable
    public func length(at slot: Int32) -> Int {
        precondition(slot >= 0 && Int(slot) < capacity && occupied[Int(slot)], "empty slot")
        return slots[Int(slot)].length
    }

    /// Metadata of the packet in `slot`, for peeking at a list head without removing it
    /// (Linux: `skb_peek()`).
    @inlinable
    public func meta(at slot: Int32) -> PacketMeta {
        precondition(slot >= 0 && Int(slot) < capacity && occupied[Int(slot)], "empty slot")
        return slots[Int(slot)].meta
    }
}
