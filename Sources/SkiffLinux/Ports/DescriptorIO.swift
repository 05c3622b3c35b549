#if canImport(Glibc)
import Glibc
#endif
import CSkiffLinux
import Skiff

/// Frame I/O on TAP/TUN descriptors: one `read` per frame until the descriptor is empty or the
/// batch full; on the way out, each frame's `writev` straight from the NIC's scatter-gather
/// segments (the kernel's copy in `tun_get_user` is the only copy on the way out). With
/// io_uring the `writev`s of up to `framesPerFlush` frames go to the kernel in one
/// `io_uring_enter`, which saves the writer the system-call entry and `write`'s VFS work for every
/// frame after the first; without it (or where the kernel refuses io_uring) each frame is its own
/// `writev`. The kernel runs each request inline, in order: tun takes non-blocking writes
/// (`FMODE_NOWAIT`) and its send buffer is unlimited, so none waits or is retried out of order.
/// Linux: `tun_chr_read_iter()` / `tun_chr_write_iter()`.
final class DescriptorIO: @unchecked Sendable {
    let fds: [Int32]
    let vnetHeader: Bool
    /// Used by one transmitting thread at a time (under the NIC's transmit lock, or the stack
    /// lock on a NIC that transmits at the doorbell): iovecs and virtio-net headers,
    /// `iovCapacity` and one header per gathered frame.
    private let iov: UnsafeMutablePointer<iovec>
    private let headers: UnsafeMutableRawPointer
    private static let iovCapacity = 40
    private static let headerStride = 16
    /// The io_uring that gathered frames go through (nil: one `writev` per frame).
    private var ring: OpaquePointer?
    private let results: UnsafeMutablePointer<skiff_uring_result>
    /// What the flush needs of each gathered frame, by slot.
    private struct Pending { var queue = 0, iovecs = 0, length = 0, answered = false }
    private let pending: UnsafeMutablePointer<Pending>
    /// Frames gathered for the next flush.
    private var gathered = 0
    /// Frames per flush: the ring's batch, or 1.
    private(set) var framesPerFlush: Int
    /// Written by the transmitter; read under the NIC's transmit lock.
    var tx = PortTxStatistics()

    /// Frames per io_uring flush.
    static let batch = 32

    init(fds: [Int32], vnetHeader: Bool, batchedWrites: Bool = false) {
        self.fds = fds
        self.vnetHeader = vnetHeader
        let ring = batchedWrites ? skiff_uring_create(UInt32(2 * DescriptorIO.batch)) : nil
        let refused = batchedWrites && ring == nil ? errno : 0
        self.ring = ring
        tx.batching = ring != nil
        tx.batchingError = refused
        framesPerFlush = ring == nil ? 1 : DescriptorIO.batch
        let frames = framesPerFlush   // slots of iovecs, headers and results
        iov = .allocate(capacity: DescriptorIO.iovCapacity * frames)
        headers = .allocate(byteCount: DescriptorIO.headerStride * frames, alignment: 8)
        results = .allocate(capacity: frames)
        pending = .allocate(capacity: frames)
        pending.initialize(repeating: Pending(), count: frames)
    }

    deinit {
        if let r = ring { skiff_uring_destroy(r) }
        iov.deallocate()
        headers.deallocate()
        results.deallocate()
        pending.deallocate()
    }

    /// io_uring carries this port's writes.
    var batchesWrites: Bool { ring != nil }

    /// Reads until EAGAIN or the batch is full.
    func receive(queue q: Int, into batch: FrameBatch) -> Int {
        let fd = fds[q]
        var n = 0
        var bytes = 0
        while n < batch.capacity {
            let r = read(fd, batch.slot(n), batch.slotSize)
            if r < 0 {
                if errno == EINTR { continue }
                if errno != EAGAIN { batch.errors &+= 1 }
                break
            }
            if r == 0 { break }
            if r >= batch.slotSize { batch.errors &+= 1; continue }   // truncated: cannot be used
            batch.lengths[n] = r
            bytes += r
            n += 1
        }
        batch.count = n
        batch.reads &+= 1
        batch.frames &+= UInt64(n)
        batch.bytes &+= UInt64(bytes)
        return n
    }

    /// Reads frames straight into `buffers` (each read: the virtio-net header into a scratch area,
    /// the frame into the buffer), until EAGAIN or `count`. Only with a virtio-net header.
    func receiveDirect(queue q: Int, buffers: UnsafePointer<UnsafeMutableRawBufferPointer>, count: Int,
                       lengths: UnsafeMutablePointer<Int>, offloads: UnsafeMutablePointer<FrameOffload>,
                       batch: FrameBatch) -> Int {
        let fd = fds[q]
        var n = 0
        var bytes = 0
        var parts = (iovec(), iovec())
        while n < count {
            let buffer = buffers[n]
            let r = withUnsafeMutablePointer(to: &parts) { pp -> Int in
                pp.withMemoryRebound(to: iovec.self, capacity: 2) { iv in
                    iv[0] = iovec(iov_base: batch.directHeader, iov_len: VirtioNetHeader.size)
                    iv[1] = iovec(iov_base: buffer.baseAddress, iov_len: buffer.count)
                    return readv(fd, iv, 2)
                }
            }
            if r < 0 {
                if errno == EINTR { continue }
                if errno != EAGAIN { batch.errors &+= 1 }
                break
            }
            if r == 0 { break }
            let frame = r - VirtioNetHeader.size
            if frame <= 0 || frame >= buffer.count {
                lengths[n] = -1; offloads[n] = .none; batch.errors &+= 1
            } else if let o = VirtioNetHeader.read(UnsafeRawPointer(batch.directHeader), frameLength: frame) {
                lengths[n] = frame; offloads[n] = o
                if o.segmentSize > 0 { batch.gsoFrames &+= 1 }
                if o.needsChecksum { batch.checksumsCompleted &+= 1 }
                bytes += frame
            } else {
                lengths[n] = -1; offloads[n] = .none; batch.errors &+= 1
            }
            n += 1
        }
        batch.reads &+= 1
        batch.frames &+= UInt64(n)
        batch.bytes &+= UInt64(bytes)
        return n
    }

    /// Writes one frame, or gathers it for the next `flush()` when io_uring carries the writes.
    /// Queue choice by flow hash keeps a flow on one descriptor. With a virtio-net header,
    /// `offload` fills it (a plain frame gets an empty one). Returns the frame's length, or 0
    /// for a write that failed at once.
    func transmit(_ segments: UnsafeBufferPointer<UnsafeRawBufferPointer>, length: Int, l2: Int,
                  offload: FrameOffload = .none) -> Int {
        let slot = ring == nil ? 0 : gathered
        let v = iov + slot * DescriptorIO.iovCapacity
        var count = 0
        if vnetHeader {
            let h = headers + slot * DescriptorIO.headerStride
            VirtioNetHeader.write(offload, to: h)
            v[0] = iovec(iov_base: h, iov_len: VirtioNetHeader.size)
            count = 1
            if offload.segmentSize > 0 { tx.gsoFrames &+= 1 }
        }
        for s in segments where count < DescriptorIO.iovCapacity {
            v[count] = iovec(iov_base: UnsafeMutableRawPointer(mutating: s.baseAddress), iov_len: s.count)
            count += 1
        }
        var q = 0
        if fds.count > 1, let first = segments.first, first.count >= l2 + 20 {
            let h = FlowHash.ipv4(packet: first.baseAddress! + l2, length: first.count - l2)
            q = Int(h % UInt32(fds.count))
        }
        if let r = ring {
            pending[slot] = Pending(queue: q, iovecs: count, length: length)
            _ = skiff_uring_writev(r, fds[q], v, UInt32(count), UInt64(slot))
            gathered += 1
            if gathered == framesPerFlush { flush() }
            return length
        }
        return write(v, count: count, queue: q, length: length) ? length : 0
    }

    /// One frame, one `writev`; counts the result.
    private func write(_ v: UnsafeMutablePointer<iovec>, count: Int, queue q: Int, length: Int) -> Bool {
        let r = writev(fds[q], v, Int32(count))
        if r < 0 {
            tx.errors &+= 1
            tx.lastErrno = errno
            return false
        }
        tx.frames &+= 1
        tx.bytes &+= UInt64(length)
        return true
    }

    /// Writes the gathered frames with one `io_uring_enter` and counts each one's result. When
    /// the ring fails, or the device refuses non-blocking requests (EOPNOTSUPP: no
    /// `FMODE_NOWAIT`), the port gives the ring up and writes one `writev` per frame from then
    /// on, starting with the frames the ring did not write (their iovecs are valid until this
    /// returns).
    func flush() {
        guard let r = ring, gathered > 0 else { return }
        let n = gathered
        gathered = 0
        var failure: Int32 = 0
        let got = Int(skiff_uring_flush(r, results, UInt32(n), &failure))
        tx.batches &+= 1
        for slot in 0..<n { pending[slot].answered = false }
        var refused = false
        let header = vnetHeader ? VirtioNetHeader.size : 0
        for i in 0..<got {
            let slot = Int(results[i].tag), written = Int(results[i].result)
            guard slot < n else { continue }
            pending[slot].answered = true
            let length = pending[slot].length
            if written == length + header {
                tx.frames &+= 1
                tx.bytes &+= UInt64(length)
            } else if written == -Int(EOPNOTSUPP) {
                refused = true
                pending[slot].answered = false   // not written: write it again below
            } else {
                tx.errors &+= 1
                tx.lastErrno = written < 0 ? -Int32(written) : EIO
            }
        }
        guard failure != 0 || refused else { return }
        giveUpRing(failure != 0 ? failure : EOPNOTSUPP)
        for slot in 0..<n where !pending[slot].answered {
            let p = pending[slot]
            _ = write(iov + slot * DescriptorIO.iovCapacity, count: p.iovecs, queue: p.queue, length: p.length)
        }
    }

    /// Back to one `writev` per frame.
    private func giveUpRing(_ error: Int32) {
        if let r = ring { skiff_uring_destroy(r) }
        ring = nil
        framesPerFlush = 1
        tx.batching = false
        tx.batchingError = error
        tx.ringFailures &+= 1
    }

    /// Writes what is gathered, then closes the ring and the descriptors (by the transmitting
    /// thread, or under its lock).
    func closeAll() {
        flush()
        if let r = ring { skiff_uring_destroy(r); ring = nil; framesPerFlush = 1; tx.batching = false }
        for fd in fds { close(fd) }
    }
}
