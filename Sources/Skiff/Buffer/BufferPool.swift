/// A pool of packet data blocks in a few size classes, grown in chunks and never shrunk, so that
/// a stack in steady state allocates nothing per packet.
///
/// Linux: the `skbuff_head_cache` / `kmalloc` caches that back `alloc_skb()`.
///
/// Threading: a pool is used by one thread at a time (the engine that owns it).
public final class BufferPool {
    @usableFromInline let state: UnsafeMutablePointer<PoolState>

    /// Default size classes: a small frame, a jumbo frame, and a whole 64 KiB GSO packet.
    public static let defaultClasses: [Int] = [2048 + 256, 9216 + 256, 65536 + 512]

    /// - Parameters:
    ///   - classes: data bytes of each size class, ascending.
    ///   - limitBlocks: the most blocks each class may grow to.
    ///   - chunkBlocks: about how many 2 KiB blocks one growth step adds.
    public init(classes: [Int] = BufferPool.defaultClasses, limitBlocks: Int = 1 << 16, chunkBlocks: Int = 256) {
        precondition(!classes.isEmpty)
        let sc = UnsafeMutablePointer<SizeClass>.allocate(capacity: classes.count)
        for (i, bytes) in classes.sorted().enumerated() {
            sc[i] = SizeClass(blockBytes: Int32(bytes),
                              freeList: .allocate(capacity: 0), freeCount: 0, total: 0, limit: limitBlocks)
        }
        state = .allocate(capacity: 1)
        state.initialize(to: PoolState(classes: sc, classCount: classes.count, chunkBlocks: chunkBlocks))
    }

    deinit {
        for chunk in state.pointee.chunks { chunk.deallocate() }
        for i in 0..<state.pointee.classCount { state.pointee.classes[i].freeList.deallocate() }
        state.pointee.classes.deallocate()
        state.deinitialize(count: 1)
        state.deallocate()
    }

    /// Allocates a buffer able to hold `headroom + size` bytes, with `headroom` bytes reserved in
    /// front for the headers lower layers push. Returns nil (and counts it) when the pool is
    /// exhausted. Linux: `alloc_skb()` followed by `skb_reserve()`.
    @inlinable @inline(__always)
    public func allocate(size: Int, headroom: Int = PacketBuffer.defaultHeadroom) -> PacketBuffer? {
        guard size >= 0, headroom >= 0,
              let block = state.pointee.take(bytes: size + headroom, selfPointer: state) else { return nil }
        return PacketBuffer(block: block, head: Int32(headroom))
    }

    /// Pool counters.
    public var statistics: PoolStatistics { state.pointee.stats }

    /// Bytes copied by buffers of this pool, by stage.
    public var ledger: CopyLedger {
        get { state.pointee.ledger }
        set { state.pointee.ledger = newValue }
    }

    /// Records a copy made outside buffer methods (for example by a port reading into a buffer).
    @inlinable @inline(__always)
    public func recordCopy(_ stage: CopyStage, bytes: Int) {
        state.pointee.ledger.record(stage, bytes: bytes)
    }

    /// Makes every class hold at least `blocks` blocks now, so a benchmark's steady state never grows.
    public func prefill(blocks: Int) {
        for i in 0..<state.pointee.classCount {
            while state.pointee.classes[i].total < min(blocks, state.pointee.classes[i].limit) {
                if !state.pointee.grow(classIndex: i, selfPointer: state) { break }
            }
        }
    }
}
