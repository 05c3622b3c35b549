/// Counters a pool keeps, as `/proc/slabinfo` keeps them for `skbuff_head_cache`.
public struct PoolStatistics: Sendable, Equatable {
    /// Blocks handed out since the pool was made.
    public var allocations: UInt64 = 0
    /// Blocks returned.
    public var frees: UInt64 = 0
    /// Blocks in use now.
    public var inUse: Int = 0
    /// The most blocks ever in use at once.
    public var highWater: Int = 0
    /// Times the pool took more memory from the system (never per packet in steady state).
    public var grows: Int = 0
    /// Allocations refused because the pool reached its limit.
    public var exhausted: UInt64 = 0
    /// Blocks the pool owns in all.
    public var capacity: Int = 0
}

/// One size class: a free list of equally sized blocks carved from chunks.
@usableFromInline
struct SizeClass {
    @usableFromInline var blockBytes: Int32
    @usableFromInline var freeList: UnsafeMutablePointer<UnsafeMutablePointer<DataBlock>>
    @usableFromInline var freeCount: Int
    @usableFromInline var total: Int
    @usableFromInline var limit: Int
}

/// The state of a pool, kept at a stable address so that blocks can point back at it without
/// reference counting. Linux: a slab cache plus the page-fragment allocator.
@usableFromInline
struct PoolState {
    @usableFromInline var classes: UnsafeMutablePointer<SizeClass>
    @usableFromInline var classCount: Int
    @usableFromInline var stats = PoolStatistics()
    /// Every byte copy that buffers of this pool make is counted here.
    @usableFromInline var ledger = CopyLedger()
    @usableFromInline var chunks: [UnsafeMutableRawPointer] = []
    @usableFromInline var chunkBlocks: Int

    @usableFromInline @inline(__always)
    mutating func free(_ block: UnsafeMutablePointer<DataBlock>) {
        let c = classes + Int(block.pointee.sizeClass)
        c.pointee.freeList[c.pointee.freeCount] = block
        c.pointee.freeCount += 1
        stats.frees &+= 1
        stats.inUse -= 1
    }

    /// Takes a block that holds at least `bytes`, or nil when the pool is at its limit.
    @usableFromInline @inline(__always)
    mutating func take(bytes: Int, selfPointer: UnsafeMutablePointer<PoolState>) -> UnsafeMutablePointer<DataBlock>? {
        var i = 0
        while i < classCount && Int(classes[i].blockBytes) < bytes { i += 1 }
        if i == classCount { stats.exhausted &+= 1; return nil }
        let c = classes + i
        if c.pointee.freeCount == 0 {
            if !grow(classIndex: i, selfPointer: selfPointer) { stats.exhausted &+= 1; return nil }
        }
        c.pointee.freeCount -= 1
        let block = c.pointee.freeList[c.pointee.freeCount]
        block.pointee.references = 1
        block.pointee.payloadOnlyReferences = 0
        block.pointee.fragmentCount = 0
        block.pointee.fragmentBytes = 0
        stats.allocations &+= 1
        stats.inUse += 1
        if stats.inUse > stats.highWater { stats.highWater = stats.inUse }
        return block
    }

    @usableFromInline
    mutating func grow(classIndex: Int, selfPointer: UnsafeMutablePointer<PoolState>) -> Bool {
        let c = classes + classIndex
        let room = c.pointee.limit - c.pointee.total
        if room <= 0 { return false }
        let count = min(room, max(1, chunkBlocks * 2048 / Int(c.pointee.blockBytes)))
        let stride = DataBlock.headerStride + Int(c.pointee.blockBytes)
        let memory = UnsafeMutableRawPointer.allocate(byteCount: stride * count, alignment: 64)
        chunks.append(memory)
        let newTotal = c.pointee.total + count
        let list = UnsafeMutablePointer<UnsafeMutablePointer<DataBlock>>.allocate(capacity: newTotal)
        list.moveInitialize(from: c.pointee.freeList, count: c.pointee.freeCount)
        c.pointee.freeList.deallocate()
        c.pointee.freeList = list
        for k in 0..<count {
            let block = (memory + k * stride).bindMemory(to: DataBlock.self, capacity: 1)
            block.initialize(to: DataBlock(
                references: 0, payloadOnlyReferences: 0, capacity: c.pointee.blockBytes,
                sizeClass: Int32(classIndex), fragmentCount: 0, fragmentBytes: 0, pool: selfPointer))
            list[c.pointee.freeCount] = block
            c.pointee.freeCount += 1
        }
        c.pointee.total = newTotal
        stats.grows += 1
        stats.capacity += count
        return true
    }
}
