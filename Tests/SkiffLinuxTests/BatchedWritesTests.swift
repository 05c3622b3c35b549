import Glibc
import Testing
import Skiff
@testable import SkiffLinux

/// Frames written through io_uring (`DescriptorIO` with batched writes), on a non-blocking
/// AF_UNIX datagram socket pair standing in for the TAP: gathered frames reach the far end whole
/// and in order at the flush, a full batch flushes by itself, and refused writes are counted
/// per frame. Where the kernel refuses io_uring the port writes each frame itself, which the
/// same checks cover.
@Suite struct BatchedWritesTests {
    /// A socket pair: [0] written by the port, [1] read by the test.
    static func pair() -> [Int32] {
        var fds: [Int32] = [0, 0]
        let r = socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds)
        #expect(r == 0)
        var size: Int32 = 4 << 20
        for fd in fds { setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, 4); setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, 4) }
        return fds
    }

    /// Frame `i`: a 14-byte header part of its own and a payload part, as the NIC's scatter-gather
    /// segments; every byte says which frame it belongs to.
    static func frame(_ i: Int) -> ([UInt8], [UInt8]) {
        let header = [UInt8](repeating: UInt8(truncatingIfNeeded: i), count: 14)
        let payload = (0..<(100 + i % 50)).map { UInt8(truncatingIfNeeded: i &* 7 &+ $0) }
        return (header, payload)
    }

    /// Frames' memory, which must stay valid until the flush that writes them (as the NIC's
    /// buffers do until completion): each frame's header and payload in blocks of their own.
    final class Frames {
        private var blocks: [UnsafeMutableRawBufferPointer] = []
        deinit { for b in blocks { b.deallocate() } }
        func block(_ bytes: [UInt8]) -> UnsafeRawBufferPointer {
            let b = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 8)
            b.copyMemory(from: UnsafeRawBufferPointer(start: bytes, count: bytes.count))
            blocks.append(b)
            return UnsafeRawBufferPointer(b)
        }
    }

    /// Hands frame `i` to the port as two segments that `memory` keeps.
    static func transmit(_ io: DescriptorIO, _ i: Int, _ memory: Frames, offload: FrameOffload = .none) -> Int {
        let (h, p) = frame(i)
        let segs = [memory.block(h), memory.block(p)]
        return segs.withUnsafeBufferPointer { io.transmit($0, length: h.count + p.count, l2: 14, offload: offload) }
    }

    /// Reads every datagram waiting on `fd`.
    static func drain(_ fd: Int32) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while out.count < 200_000 {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out.append(Array(buf[..<n]))
        }
        return out
    }

    /// With SKIFF_REQUIRE_IO_URING set (CI, on a kernel that allows io_uring) a port without its
    /// ring is a failure; elsewhere the tests check the one-writev-per-frame path instead.
    static func ringMissing(_ io: DescriptorIO) -> Bool {
        guard !io.batchesWrites else { return false }
        if getenv("SKIFF_REQUIRE_IO_URING") != nil {
            Issue.record("io_uring refused: \(io.tx.batchingState)")
        }
        return true
    }

    @Test("70 frames through io_uring: none leaves before a flush, two full batches flush by themselves, the rest at flush(); all arrive whole and in order")
    func gatheredFramesArriveInOrderAtTheFlush() {
        let fds = Self.pair()
        defer { close(fds[1]) }
        let io = DescriptorIO(fds: [fds[0]], vnetHeader: false, batchedWrites: true)
        defer { io.closeAll() }
        let memory = Frames()
        #expect(io.tx.batching == io.batchesWrites)
        if Self.ringMissing(io) {
            // A kernel without io_uring (or a sandbox refusing it): the port writes frame by frame.
            #expect(io.tx.batchingError != 0 && io.framesPerFlush == 1)
            for i in 0..<70 { #expect(Self.transmit(io, i, memory) > 0) }
            #expect(Self.drain(fds[1]).count == 70)
            return
        }
        #expect(io.framesPerFlush == DescriptorIO.batch)
        for i in 0..<(DescriptorIO.batch - 1) { #expect(Self.transmit(io, i, memory) == 14 + 100 + i % 50) }
        #expect(Self.drain(fds[1]).isEmpty)               // gathered, not written
        #expect(io.tx.frames == 0)
        for i in (DescriptorIO.batch - 1)..<70 { _ = Self.transmit(io, i, memory) }
        #expect(io.tx.batches == 2 && io.tx.frames == UInt64(2 * DescriptorIO.batch))
        io.flush()
        io.flush()                                        // nothing gathered: no submission
        #expect(io.tx.batches == 3 && io.tx.frames == 70 && io.tx.errors == 0)
        let got = Self.drain(fds[1])
        #expect(got.count == 70)
        for (i, f) in got.enumerated() {
            let (h, p) = Self.frame(i)
            #expect(f == h + p, "frame \(i)")
            if f != h + p { break }
        }
        #expect(io.tx.bytes == UInt64(got.reduce(0) { $0 + $1.count }))
    }

    @Test("with a virtio-net header each gathered frame carries its own header (GSO request) in front of its bytes")
    func eachGatheredFrameHasItsOwnHeader() {
        let fds = Self.pair()
        defer { close(fds[1]) }
        let io = DescriptorIO(fds: [fds[0]], vnetHeader: true, batchedWrites: true)
        defer { io.closeAll() }
        let memory = Frames()
        for i in 0..<3 {
            let o = FrameOffload(segmentSize: UInt16(1000 + i), headerLength: 54, checksumStart: 34, checksumOffset: 16,
                                 needsChecksum: true)
            _ = Self.transmit(io, i, memory, offload: o)
        }
        io.flush()
        let got = Self.drain(fds[1])
        #expect(got.count == 3 && io.tx.gsoFrames == 3 && io.tx.errors == 0)
        for (i, f) in got.enumerated() {
            let (h, p) = Self.frame(i)
            #expect(f.count == VirtioNetHeader.size + h.count + p.count)
            #expect(f[0] == 1 && f[1] == 1)               // NEEDS_CSUM, GSO_TCPV4
            #expect(Int(f[4]) | Int(f[5]) << 8 == 1000 + i)  // gso_size, little-endian
            #expect(Array(f[VirtioNetHeader.size...]) == h + p)
        }
    }

    @Test("writes the kernel refuses (a descriptor open for reading only; a full socket) count one error per frame, with the errno, and nothing traps")
    func refusedWritesAreCountedPerFrame() {
        var p: [Int32] = [0, 0]
        #expect(pipe(&p) == 0)
        defer { close(p[1]) }
        let memory = Frames()
        let io = DescriptorIO(fds: [p[0]], vnetHeader: false, batchedWrites: true)
        for i in 0..<5 { _ = Self.transmit(io, i, memory) }
        io.flush()
        #expect(io.tx.errors == 5 && io.tx.frames == 0 && io.tx.lastErrno == EBADF)
        io.closeAll()

        // A socket whose peer never reads: once its buffer is full, each further write is refused
        // at once (EAGAIN, as a non-blocking writev) instead of waiting, so order cannot change.
        let fds = Self.pair()
        defer { close(fds[1]) }
        let full = DescriptorIO(fds: [fds[0]], vnetHeader: false, batchedWrites: true)
        defer { full.closeAll() }
        var rounds = 0
        while full.tx.errors == 0 && rounds < 100_000 {
            for i in 0..<8 { _ = Self.transmit(full, i, memory) }
            full.flush()
            rounds += 1
        }
        #expect(full.tx.errors > 0 && full.tx.lastErrno == EAGAIN)
        let got = Self.drain(fds[1])
        #expect(UInt64(got.count) == full.tx.frames)
        // What arrived is an unbroken prefix of what was sent, frame by frame.
        for (k, f) in got.enumerated() {
            let (h, q) = Self.frame(k % 8)
            #expect(f == h + q, "frame \(k)")
            if f != h + q { break }
        }
    }

    @Test("a device that cannot take non-blocking requests (/dev/full: EOPNOTSUPP under io_uring) sends the port back to one writev per frame, starting with the frames the ring refused")
    func aDeviceWithoutNowaitFallsBackToWritev() {
        let fd = open("/dev/full", O_WRONLY | O_NONBLOCK)
        guard fd >= 0 else { return }   // no /dev/full in this sandbox: nothing to check
        let memory = Frames()
        let io = DescriptorIO(fds: [fd], vnetHeader: false, batchedWrites: true)
        defer { io.closeAll() }
        if Self.ringMissing(io) { return }   // the first test covers writev
        for i in 0..<4 { _ = Self.transmit(io, i, memory) }
        io.flush()
        // Every frame was written and refused with ENOSPC, the writev's own answer (never the
        // ring's EOPNOTSUPP). Where /dev/full refuses non-blocking requests (Linux's mem.c), the
        // ring is gone and the frames went out again one by one; a kernel whose /dev/full takes
        // them keeps the ring.
        #expect(io.tx.errors == 4 && io.tx.lastErrno == ENOSPC && io.tx.batches == 1)
        if io.tx.ringFailures == 1 {
            #expect(!io.batchesWrites && io.framesPerFlush == 1 && !io.tx.batching && io.tx.batchingError == EOPNOTSUPP)
            _ = Self.transmit(io, 4, memory)
            #expect(io.tx.errors == 5 && io.tx.batches == 1)   // written at once, not gathered
        } else {
            #expect(io.tx.ringFailures == 0 && io.batchesWrites)
        }
    }

    @Test("two queues: one submission carries frames for both descriptors, each flow to the queue its hash picks, in order")
    func gatheredFramesFollowTheFlowHashAcrossQueues() {
        let a = Self.pair(), b = Self.pair()
        defer { close(a[1]); close(b[1]) }
        let io = DescriptorIO(fds: [a[0], b[0]], vnetHeader: false, batchedWrites: true)
        defer { io.closeAll() }
        if Self.ringMissing(io) { return }
        let memory = Frames()
        var expected: [[[UInt8]]] = [[], []]
        for i in 0..<20 {
            // Ethernet, then IPv4/UDP from 10.0.0.<flow>: 4 flows, 5 frames each, interleaved.
            var f = [UInt8](repeating: UInt8(i), count: 14 + 28)
            f[14] = 0x45; f[14 + 9] = 17
            f[14 + 12] = 10; f[14 + 13] = 0; f[14 + 14] = 0; f[14 + 15] = UInt8(1 + i % 4)
            f[14 + 16] = 10; f[14 + 17] = 0; f[14 + 18] = 0; f[14 + 19] = 9
            f[14 + 20] = 0x30; f[14 + 21] = 0x39; f[14 + 22] = 0x00; f[14 + 23] = 0x07
            let q = f.withUnsafeBytes { Int(FlowHash.ipv4(packet: $0.baseAddress! + 14, length: 28) % 2) }
            expected[q].append(f)
            let seg = [memory.block(f)]
            _ = seg.withUnsafeBufferPointer { io.transmit($0, length: f.count, l2: 14) }
        }
        #expect(io.tx.batches == 0)
        io.flush()
        #expect(io.tx.batches == 1 && io.tx.frames == 20 && io.tx.errors == 0)
        #expect(Self.drain(a[1]) == expected[0])
        #expect(Self.drain(b[1]) == expected[1])
    }

    @Test("closing the port writes what it had gathered before the ring and the descriptors go")
    func closingFlushesTheGatheredFrames() {
        let fds = Self.pair()
        defer { close(fds[1]) }
        let io = DescriptorIO(fds: [fds[0]], vnetHeader: false, batchedWrites: true)
        if Self.ringMissing(io) { io.closeAll(); return }
        let memory = Frames()
        for i in 0..<3 { _ = Self.transmit(io, i, memory) }
        io.closeAll()
        #expect(io.tx.frames == 3 && !io.tx.batching && io.framesPerFlush == 1)
        #expect(Self.drain(fds[1]).count == 3)
        // After the close a frame is refused (EBADF), not gathered into a ring that is gone.
        _ = Self.transmit(io, 3, memory)
        #expect(io.tx.errors == 1 && io.tx.lastErrno == EBADF)
    }
}
