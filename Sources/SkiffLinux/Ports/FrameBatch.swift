#if canImport(Glibc)
import Glibc
#endif
import CSkiffLinux

/// Frames read from a port in one wake-up, before they are handed to the NIC under the stack
/// lock. One batch per engine thread (per queue), allocated once: reading needs no lock and
/// allocates nothing. Linux counterpart: the frames one NAPI poll takes off a ring, here read
/// with one system call per frame (TAP/TUN) or per batch (`recvmmsg` on AF_PACKET).
public final class FrameBatch {
    /// Frames a batch holds.
    public let capacity: Int
    /// Bytes per slot: the longest frame a read may return (a 64 KiB GSO frame plus headers).
    public let slotSize: Int
    /// Longest frame the NIC takes whole (a GSO frame spread over its receive buffers); longer
    /// GSO frames are cut into pieces. Set by the engine from the device's buffer size.
    public var maxReceiveFrame = 16 * 1536
    /// Frames in the batch now.
    public internal(set) var count = 0
    let storage: UnsafeMutableRawPointer
    /// Where a direct read puts a frame's virtio-net header.
    let directHeader: UnsafeMutableRawPointer
    let lengths: UnsafeMutablePointer<Int>
    // recvmmsg bookkeeping for AF_PACKET (unused by TAP/TUN).
    let iovecs: UnsafeMutablePointer<iovec>
    let messages: UnsafeMutablePointer<skiff_mmsghdr>

    /// Receive counters of this queue (Linux: the `rx_*` fields of `ethtool -S`).
    public internal(set) var frames: UInt64 = 0
    public internal(set) var bytes: UInt64 = 0
    public internal(set) var reads: UInt64 = 0
    /// Frames the port could not use: truncated, or offload metadata it does not handle.
    public internal(set) var errors: UInt64 = 0
    /// TCP GSO frames (up to 64 KiB) received whole (offload on).
    public internal(set) var gsoFrames: UInt64 = 0
    /// Frames whose transport checksum the kernel left unfilled (VIRTIO_NET_HDR_F_NEEDS_CSUM).
    public internal(set) var checksumsCompleted: UInt64 = 0

    public init(capacity: Int = 64, slotSize: Int = 65_536 + 256) {
        self.capacity = max(1, capacity)
        self.slotSize = slotSize
        storage = .allocate(byteCount: self.capacity * slotSize, alignment: 64)
        directHeader = .allocate(byteCount: 16, alignment: 8)
        lengths = .allocate(capacity: self.capacity)
        lengths.initialize(repeating: 0, count: self.capacity)
        iovecs = .allocate(capacity: self.capacity)
        messages = .allocate(capacity: self.capacity)
        for i in 0..<self.capacity {
            iovecs[i] = iovec(iov_base: storage + i * slotSize, iov_len: slotSize)
            var m = skiff_mmsghdr()
            m.msg_hdr.msg_iov = iovecs + i
            m.msg_hdr.msg_iovlen = 1
            messages[i] = m
        }
    }

    deinit {
        storage.deallocate()
        directHeader.deallocate()
        lengths.deallocate()
        iovecs.deallocate()
        messages.deallocate()
    }

    @inline(__always)
    func slot(_ i: Int) -> UnsafeMutableRawPointer { storage + i * slotSize }

    /// Frame `i` of the batch.
    @inline(__always)
    public func frame(_ i: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: slot(i), count: lengths[i])
    }
}
