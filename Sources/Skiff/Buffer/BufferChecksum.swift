import SkiffWire

extension PacketBuffer {
    /// The one's-complement sum of this buffer's bytes from `offset` (in the linear part) to the
    /// end, fragments included, added to `initial`. A piece that starts at an odd position
    /// contributes its sum byte-swapped, so pieces of any length add up as one run would.
    /// Linux: `skb_checksum()`.
    public func checksumSum(from offset: Int, initial: UInt32) -> UInt32 {
        var total = UInt64(initial)
        var odd = false
        @inline(__always) func add(_ piece: UnsafeRawBufferPointer) {
            guard piece.count > 0 else { return }
            var s = InternetChecksum.sum(piece)
            s = (s & 0xFFFF) + (s >> 16)
            s = (s & 0xFFFF) + (s >> 16)
            if odd { s = ((s & 0xFF) << 8) | (s >> 8) }
            total += UInt64(s)
            if piece.count & 1 == 1 { odd.toggle() }
        }
        add(UnsafeRawBufferPointer(start: data + offset, count: linearLength - offset))
        for i in 0..<fragmentCount { add(fragment(i)) }
        while total > 0xFFFF_FFFF { total = (total & 0xFFFF_FFFF) + (total >> 32) }
        return UInt32(total)
    }
}
