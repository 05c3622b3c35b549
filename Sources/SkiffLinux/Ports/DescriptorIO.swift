#if canImport(Glibc)
import Glibc
#endif
import CSkiffLinux
import Skiff

/// Frame I/O on TAP/TUN descriptors: one `read` per frame until the descriptor is empty or the
/// batch full, one `writev` per frame straight from the NIC's scatter-gather segments (the
/// kernel's copy in `tun_get_user` is the only copy on the way out).
/// Linux: `tun_chr_read_iter()` / `tun_chr_write_iter()`.
final class DescriptorIO: @unchecked Sendable {
    let fds: [Int32]
    let vnetHeader: Bool
    /// Used under the NIC's transmit lock (`NICModel.withTransmitLock`; transmit only).
    private let iov: UnsafeMutablePointer<iovec>
    private let header: UnsafeMutableRawPointer
    private static let iovCapacity = 40
    /// Written by the transmitter; read under the NIC's transmit lock.
    var tx = PortTxStatistics()

    init(fds: [Int32], vnetHeader: Bool) {
        self.fds = fds
        self.vnetHeader = vnetHeader
        iov = .allocate(capacity: DescriptorIO.iovCapacity)
        header = .allocate(byteCount: 16, alignment: 8)
    }

    deinit {
        iov.deallocate()
        header.deallocate()
    }

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

    /// Writes one frame. Queue choice by flow hash keeps a flow on one descriptor. With a
    /// virtio-net header, `offload` fills it (a plain frame gets an empty one).
    func transmit(_ segments: UnsafeBufferPointer<UnsafeRawBufferPointer>, length: Int, l2: Int,
                  offload: FrameOffload = .none) -> Int {
        var count = 0
        if vnetHeader {
            VirtioNetHeader.write(offload, to: header)
            iov[0] = iovec(iov_base: header, iov_len: VirtioNetHeader.size)
            count = 1
            if offload.segmentSize > 0 { tx.gsoFrames &+= 1 }
        }
        for s in segments where count < DescriptorIO.iovCapacity {
            iov[count] = iovec(iov_base: UnsafeMutableRawPointer(mutating: s.baseAddress), iov_len: s.count)
            count += 1
        }
        var fd = fds[0]
        if fds.count > 1, let first = segments.first, first.count >= l2 + 20 {
            let h = FlowHash.ipv4(packet: first.baseAddress! + l2, length: first.count - l2)
            fd = fds[Int(h % UInt32(fds.count))]
        }
        let r = writev(fd, iov, Int32(count))
        if r < 0 {
            tx.errors &+= 1
            tx.lastErrno = errno
            return 0
        }
        tx.frames &+= 1
        tx.bytes &+= UInt64(length)
        return length
    }

    func closeAll() { for fd in fds { close(fd) } }
}
