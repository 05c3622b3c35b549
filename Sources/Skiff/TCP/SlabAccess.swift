/// Access to packets sitting in a `PacketSlab` list without taking them out — what TCP needs to
/// walk its retransmit queue (Linux walks `tcp_rtx_queue` in place).
extension PacketSlab {
    /// The slot after `slot` in its list, or `PacketSlab.none`.
    @inline(__always)
    func next(_ slot: Int32) -> Int32 { links[Int(slot)] }

    /// A clone of the packet in `slot` (Linux: `skb_clone` of a queued skb).
    @inline(__always)
    func clone(at slot: Int32) -> PacketBuffer { slots[Int(slot)].clone() }

    /// Changes the metadata of the packet in `slot`.
    @inline(__always)
    func updateMeta(at slot: Int32, _ body: (inout PacketMeta) -> Void) { body(&slots[Int(slot)].meta) }

    /// Lets `body` change the packet in `slot` in place (append to its tail, trim its head).
    @inline(__always)
    func withBuffer<R>(at slot: Int32, _ body: (inout PacketBuffer) -> R) -> R { body(&slots[Int(slot)]) }

    /// Adjusts a list's byte count after a packet in it changed length.
    static func adjust(_ list: inout PacketList, bytes delta: Int) { list.bytes += delta }
}

extension PacketSlab {
    /// Inserts `buffer` after `prev` in `list` (at the head when `prev` is `none`).
    /// Linux: `__skb_queue_after()` / rbtree insert in the out-of-order queue.
    mutating func insert(_ buffer: consuming PacketBuffer, after prev: Int32, in list: inout PacketList) {
        if prev == PacketSlab.none { pushFront(buffer, onto: &list); return }
        let length = buffer.length
        let slot = store(buffer)
        links[Int(slot)] = links[Int(prev)]
        links[Int(prev)] = slot
        if list.tail == prev { list.tail = slot }
        list.count += 1
        list.bytes += length
    }

    /// Removes and returns the packet after `prev` (the head when `prev` is `none`).
    mutating func remove(after prev: Int32, in list: inout PacketList) -> PacketBuffer? {
        if prev == PacketSlab.none { return popFront(&list) }
        let slot = links[Int(prev)]
        if slot == PacketSlab.none { return nil }
        links[Int(prev)] = links[Int(slot)]
        if list.tail == slot { list.tail = prev }
        return take(slot, from: &list)
    }
}
