/// A pooled data block and the information every clone of it shares.
///
/// Linux: the data area of an `sk_buff` together with its `skb_shared_info` (dataref, frags).
///
/// Memory layout of one block in pool memory:
///
/// ```
/// +-----------+----------------------------+---------------------------------+
/// | DataBlock | Fragment x maxFragments    | data bytes (capacity)           |
/// +-----------+----------------------------+---------------------------------+
/// ```
///
/// Hazard: a block is reference counted by hand. Only `PacketBuffer` touches `references`;
/// the pool reuses the block as soon as the count reaches zero.
@usableFromInline
struct DataBlock {
    /// Every buffer that points at this block (Linux: the low half of `dataref`).
    @usableFromInline var references: Int32
    /// Buffers that promised never to touch the header area (Linux: the `nohdr` half of `dataref`,
    /// set by `skb_header_release`).
    @usableFromInline var payloadOnlyReferences: Int32
    /// Bytes of data the block holds.
    @usableFromInline var capacity: Int32
    /// Index of the size class in the pool.
    @usableFromInline var sizeClass: Int32
    /// Number of page fragments in use (Linux: `nr_frags`).
    @usableFromInline var fragmentCount: Int32
    /// Total bytes held by fragments (Linux: `data_len`).
    @usableFromInline var fragmentBytes: Int32
    /// The pool the block returns to.
    @usableFromInline var pool: UnsafeMutablePointer<PoolState>

    /// Linux: `MAX_SKB_FRAGS`.
    public static let maxFragments = 17

    @usableFromInline @inline(__always)
    static var headerStride: Int {
        (MemoryLayout<DataBlock>.stride + MemoryLayout<Fragment>.stride * maxFragments + 63) & ~63
    }
}

/// One page fragment of a buffer: a byte range of another pooled block, which it holds a
/// reference to. Linux: `skb_frag_t`.
@usableFromInline
struct Fragment {
    @usableFromInline var block: UnsafeMutablePointer<DataBlock>
    @usableFromInline var offset: Int32
    @usableFromInline var length: Int32
}

extension UnsafeMutablePointer where Pointee == DataBlock {
    @usableFromInline @inline(__always)
    var bytes: UnsafeMutableRawPointer {
        UnsafeMutableRawPointer(self) + DataBlock.headerStride
    }

    @usableFromInline @inline(__always)
    var fragments: UnsafeMutablePointer<Fragment> {
        (UnsafeMutableRawPointer(self) + MemoryLayout<DataBlock>.stride)
            .assumingMemoryBound(to: Fragment.self)
    }

    /// Drops one reference; returns the block to its pool when it was the last.
    @usableFromInline @inline(__always)
    func release(payloadOnly: Bool) {
        pointee.references -= 1
        if payloadOnly { pointee.payloadOnlyReferences -= 1 }
        if pointee.references == 0 {
            let frags = fragments
            for i in 0..<Int(pointee.fragmentCount) {
                frags[i].block.release(payloadOnly: true)
            }
            pointee.fragmentCount = 0
            pointee.fragmentBytes = 0
            pointee.payloadOnlyReferences = 0
            pointee.pool.pointee.free(self)
        }
    }
}
