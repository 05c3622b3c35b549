import Testing
@testable import Skiff

/// Packet buffers: the headroom/tailroom arithmetic of `sk_buff`, clones that share a block,
/// header release, copy-on-write of shared headers, page fragments, and the pool's counters.
@Suite struct BufferTests {
    /// True when an allocation succeeded (keeps the noncopyable buffer out of `#expect`).
    static func got(_ b: consuming PacketBuffer?) -> Bool {
        switch consume b {
        case .some: true
        case .none: false
        }
    }

    static func fill(_ b: inout PacketBuffer, _ bytes: [UInt8]) {
        let p = b.put(bytes.count)
        bytes.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
    }

    static func all(_ b: borrowing PacketBuffer) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: b.length)
        let n = out.withUnsafeMutableBytes { b.copyBytes(to: $0.baseAddress!, offset: 0, count: b.length) }
        return Array(out[0..<n])
    }

    @Test func reservePushPullPutAndTrimStayInsideTheBlock() {
        let pool = BufferPool()
        do {
            var b = pool.allocate(size: 100, headroom: 0)!
            #expect(b.headroom == 0 && b.length == 0 && b.linearLength == 0)
            let room = b.tailroom
            #expect(room >= 100)
            b.reserve(32)
            #expect(b.headroom == 32 && b.tailroom == room - 32)
            Self.fill(&b, Array(0..<10))
            #expect(b.length == 10 && b.tailroom == room - 42)
            // A 4-byte header in front.
            let h = b.push(4)
            for i in 0..<4 { (h + i).storeBytes(of: 0xAA, as: UInt8.self) }
            #expect(b.headroom == 28 && b.length == 14)
            #expect(Array(b.bytes) == [0xAA, 0xAA, 0xAA, 0xAA] + Array(0..<10))
            // Pulling more than the data, or a negative count, changes nothing.
            #expect(b.pull(15) == false)
            #expect(b.pull(-1) == false)
            #expect(b.length == 14 && b.headroom == 28)
            #expect(b.pull(4) == true)
            #expect(Array(b.bytes) == Array(0..<10))
            // Trim only shortens.
            #expect(b.trim(to: 11) == false)
            #expect(b.trim(to: -1) == false)
            #expect(b.trim(to: 6) == true)
            #expect(Array(b.bytes) == Array(0..<6))
            #expect(b.tailroom == room - 32 - 6)
            #expect(b.pull(6) == true)
            #expect(b.length == 0)
            #expect(b.pull(1) == false)
            #expect(b.pull(0) == true)
            #expect(pool.statistics.inUse == 1)
        }
        #expect(pool.statistics.inUse == 0)
        #expect(pool.statistics.allocations == 1 && pool.statistics.frees == 1)
    }

    @Test func cloneSharesTheBlockAndCopiesOnlyMetadata() {
        let pool = BufferPool()
        do {
            var a = pool.allocate(size: 64)!
            Self.fill(&a, Array(repeating: 7, count: 64))
            a.meta.mark = 42
            #expect(a.isShared == false)
            do {
                var c = a.clone()
                #expect(a.isShared && c.isShared)
                #expect(c.data == a.data && c.length == 64 && c.meta.mark == 42)
                // One block for both: no allocation.
                #expect(pool.statistics.inUse == 1)
                #expect(pool.statistics.allocations == 1)
                // Metadata is the clone's own.
                c.meta.mark = 1
                #expect(a.meta.mark == 42)
                // Pulling on the clone moves only the clone's view.
                #expect(c.pull(10) == true)
                #expect(c.length == 54 && a.length == 64)
            }
            #expect(a.isShared == false)
            #expect(pool.statistics.inUse == 1)
        }
        #expect(pool.statistics.inUse == 0)
        #expect(pool.ledger.totalBytes == 0)
    }

    @Test func releasedHeaderLetsACloneWriteItsHeaderWithoutACopy() {
        let pool = BufferPool()
        do {
            // The original (TCP's copy on the retransmit queue) promises not to touch headers.
            var original = pool.allocate(size: 100)!
            Self.fill(&original, Array(repeating: 1, count: 100))
            original.releaseHeader()
            var clone = original.clone()
            #expect(clone.isShared == true)
            #expect(clone.isHeaderShared == false)
            #expect(original.isHeaderShared == true)
            #expect(clone.makeHeaderWritable(headroom: 64) == true)
            let p = clone.push(20)
            for i in 0..<20 { (p + i).storeBytes(of: 0x45, as: UInt8.self) }
            #expect(pool.ledger.bytes(.headerCopy) == 0)
            #expect(pool.ledger.operations(.headerCopy) == 0)
            #expect(pool.statistics.inUse == 1)
            // Same block: the clone's header sits in the original's headroom.
            #expect(clone.data + 20 == original.data)
            #expect(Array(original.bytes) == Array(repeating: 1, count: 100))
            // A second header writer (a clone that did not get the promise) must copy.
            var second = original.clone()
            #expect(second.isHeaderShared == true)
            #expect(second.makeHeaderWritable(headroom: 64) == true)
            #expect(pool.ledger.bytes(.headerCopy) == 100)
            #expect(pool.statistics.inUse == 2)
            _ = consume second
            _ = consume clone
            #expect(original.isShared == false)
        }
        #expect(pool.statistics.inUse == 0)
    }

    @Test func sharedHeaderIsCopiedBeforeItIsWritten() {
        let pool = BufferPool()
        do {
            var a = pool.allocate(size: 100)!
            Self.fill(&a, Array(0..<100))
            var c = a.clone()
            #expect(c.isHeaderShared && a.isHeaderShared)
            #expect(c.makeHeaderWritable(headroom: 96) == true)
            #expect(pool.ledger.bytes(.headerCopy) == 100)
            #expect(pool.ledger.operations(.headerCopy) == 1)
            #expect(!a.isShared && !c.isShared)
            #expect(c.headroom >= 96)
            #expect(pool.statistics.inUse == 2)
            // Writing the copy's header leaves the original alone.
            let p = c.push(2)
            p.storeBytes(of: 0xFF, as: UInt8.self)
            (p + 1).storeBytes(of: 0xFF, as: UInt8.self)
            #expect(Array(c.bytes) == [0xFF, 0xFF] + Array(0..<100))
            #expect(Array(a.bytes) == Array(0..<100))
            // A private header with room needs nothing.
            #expect(a.makeHeaderWritable(headroom: 64) == true)
            #expect(pool.ledger.operations(.headerCopy) == 1)
            // Too little headroom on a private buffer: copied to make room.
            var small = pool.allocate(size: 10, headroom: 8)!
            Self.fill(&small, Array(repeating: 3, count: 10))
            #expect(small.makeHeaderWritable(headroom: 64) == true)
            #expect(small.headroom >= 64)
            #expect(Array(small.bytes) == Array(repeating: 3, count: 10))
            #expect(pool.ledger.bytes(.headerCopy) == 110)
        }
        #expect(pool.statistics.inUse == 0)
    }

    @Test func fragmentsExtendTheLengthAndCopyAcrossBoundaries() {
        let pool = BufferPool()
        do {
            var head = pool.allocate(size: 40)!
            Self.fill(&head, Array(0..<40))
            do {
                var f1 = pool.allocate(size: 100)!
                Self.fill(&f1, Array(100..<200))
                var f2 = pool.allocate(size: 50)!
                Self.fill(&f2, Array(200..<250))
                #expect(head.addFragment(f1) == true)
                #expect(head.addFragment(f2) == true)
                // Adding shares the block: no bytes were copied.
                #expect(pool.ledger.totalBytes == 0)
                #expect(f1.isShared && f2.isShared)
            }
            // The fragments keep their blocks alive after their own buffers are gone.
            #expect(pool.statistics.inUse == 3)
            #expect(head.length == 190 && head.linearLength == 40 && head.fragmentLength == 150)
            #expect(head.fragmentCount == 2 && head.tailroom == 0)
            #expect(Self.all(head) == Array(0..<40) + Array(100..<200) + Array(200..<250))
            // A copy that starts in the linear part and ends in the first fragment.
            var out = [UInt8](repeating: 0, count: 30)
            let n = out.withUnsafeMutableBytes { head.copyBytes(to: $0.baseAddress!, offset: 30, count: 30) }
            #expect(n == 30 && out == Array(30..<40) + Array(100..<120))
            // One that spans both fragments, and one that runs past the end.
            var mid = [UInt8](repeating: 0, count: 20)
            let m = mid.withUnsafeMutableBytes { head.copyBytes(to: $0.baseAddress!, offset: 130, count: 20) }
            #expect(m == 20 && mid == Array(190..<200) + Array(200..<210))
            var tail = [UInt8](repeating: 0, count: 50)
            let t = tail.withUnsafeMutableBytes { head.copyBytes(to: $0.baseAddress!, offset: 180, count: 50) }
            #expect(t == 10 && Array(tail[0..<10]) == Array(240..<250))
            // Trim refuses a buffer with fragments.
            #expect(head.trim(to: 10) == false)
            #expect(head.length == 190)
            // Linearize: one copy of everything, counted.
            #expect(head.linearize() == true)
            #expect(head.fragmentCount == 0 && head.linearLength == 190)
            #expect(Array(head.bytes) == Array(0..<40) + Array(100..<200) + Array(200..<250))
            #expect(pool.ledger.bytes(.linearize) == 190)
            #expect(pool.ledger.operations(.linearize) == 1)
            // The old head block and both fragment blocks went back.
            #expect(pool.statistics.inUse == 1)
        }
        #expect(pool.statistics.inUse == 0)
    }

    @Test func fragmentTableAndSharingLimits() {
        let pool = BufferPool()
        do {
            var head = pool.allocate(size: 16)!
            Self.fill(&head, Array(repeating: 0, count: 16))
            var piece = pool.allocate(size: 4)!
            Self.fill(&piece, [1, 2, 3, 4])
            for _ in 0..<DataBlock.maxFragments { #expect(head.addFragment(piece) == true) }
            // The table is full.
            #expect(head.addFragment(piece) == false)
            #expect(head.fragmentCount == DataBlock.maxFragments)
            #expect(head.length == 16 + 4 * DataBlock.maxFragments)
            // A shared buffer's fragments are immutable.
            var shared = pool.allocate(size: 4)!
            let c = shared.clone()
            #expect(shared.addFragment(piece) == false)
            _ = consume c
            // A buffer with fragments cannot be added as a fragment.
            var holder = pool.allocate(size: 4)!
            #expect(holder.addFragment(head) == false)
            _ = consume holder
            _ = consume shared
            _ = consume piece
            #expect(pool.statistics.inUse == 2)
        }
        #expect(pool.statistics.inUse == 0)
    }

    @Test func exhaustedPoolRefusesAndCounts() {
        let pool = BufferPool(classes: [2048], limitBlocks: 4, chunkBlocks: 1)
        do {
            let b1 = pool.allocate(size: 100)!, b2 = pool.allocate(size: 100)!
            let b3 = pool.allocate(size: 100)!
            var b4 = pool.allocate(size: 100)!
            #expect(pool.statistics.inUse == 4)
            #expect(Self.got(pool.allocate(size: 100)) == false)
            #expect(pool.statistics.exhausted == 1)
            // Nothing fits a request larger than the biggest class, however empty the pool.
            #expect(Self.got(pool.allocate(size: 4000)) == false)
            #expect(pool.statistics.exhausted == 2)
            // Copies need blocks too.
            #expect(b4.makeHeaderWritable(headroom: 1000) == false)
            #expect(pool.statistics.exhausted == 3)
            #expect(pool.statistics.capacity == 4 && pool.statistics.grows == 4)
            _ = consume b1
            #expect(pool.statistics.inUse == 3)
            #expect(Self.got(pool.allocate(size: 100)) == true)
            #expect(pool.statistics.grows == 4)
            _ = consume b2; _ = consume b3; _ = consume b4
        }
        #expect(pool.statistics.inUse == 0)
        #expect(pool.statistics.highWater == 4)
        #expect(pool.statistics.allocations == 5 && pool.statistics.frees == 5)
    }

    @Test func statisticsTrackInUseAndHighWater() {
        let pool = BufferPool()
        #expect(pool.statistics == PoolStatistics())
        do {
            let a = pool.allocate(size: 10)!
            do {
                let b = pool.allocate(size: 10)!, c = pool.allocate(size: 5000)!
                #expect(pool.statistics.inUse == 3)
                _ = consume b; _ = consume c
            }
            #expect(pool.statistics.inUse == 1)
            let d = pool.allocate(size: 10)!
            #expect(pool.statistics.inUse == 2)
            #expect(pool.statistics.highWater == 3)
            _ = consume a; _ = consume d
        }
        let s = pool.statistics
        #expect(s.inUse == 0 && s.highWater == 3 && s.allocations == 4 && s.frees == 4)
        // Two size classes were touched: two growth steps, never one per packet.
        #expect(s.grows == 2)
        // The copy ledger is untouched by allocation alone.
        #expect(pool.ledger.totalBytes == 0)
    }
}
