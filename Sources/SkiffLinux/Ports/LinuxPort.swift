import Skiff
import SkiffWire

/// Transmit counters of a port (under the stack lock, like the NIC that calls it).
public struct PortTxStatistics: Sendable {
    public var frames: UInt64 = 0
    public var bytes: UInt64 = 0
    /// Writes the kernel refused (device down, no buffer space); the frame is lost on the wire.
    public var errors: UInt64 = 0
    /// Frames handed over whole as one TCP segment larger than the MTU (vnet-header TSO).
    public var gsoFrames: UInt64 = 0
    public var lastErrno: Int32 = 0
    /// io_uring submissions, each carrying the writes of several frames (0 without io_uring).
    public var batches: UInt64 = 0
    /// Frames now leave through io_uring.
    public var batching = false
    /// Why they do not: the errno that refused the ring's setup, failed the ring, or refused a
    /// non-blocking write (EOPNOTSUPP); 0 when batching was not asked for or is on.
    public var batchingError: Int32 = 0
    /// Times the port stopped batching and went back to one `writev` per frame.
    public var ringFailures: UInt64 = 0

    /// "on", "off", or "off (why)", for reports.
    public var batchingState: String {
        if batching { return "on" }
        return batchingError == 0 ? "off" : "off (\(PortError.text(batchingError)))"
    }
    public init() {}
}

/// A port onto a real Linux device: the emulated NIC's wire is a TAP or TUN file descriptor or
/// an AF_PACKET socket. Each queue has its own descriptor, polled by its own engine thread.
///
/// Threading: `receive(queue:into:)` runs on the queue's engine thread without the stack lock
/// (it touches only that queue's descriptor and batch); `deliver` and `transmit` run under the
/// stack lock, as the NIC that calls them.
public protocol LinuxPort: NetworkPort, Sendable {
    /// The kernel's name of the device (`tap0`, `veth1`).
    var name: String { get }
    var linkType: LinkType { get }
    var queueCount: Int { get }
    /// A MAC the kernel side does not use (Ethernet ports), for Skiff's own address.
    var suggestedMAC: MACAddress { get }
    /// The descriptor of a queue, for epoll.
    func fileDescriptor(queue: Int) -> Int32
    /// Reads up to `batch.capacity` frames without blocking; returns how many (0 when none
    /// waits). Linux: the part of a NIC's poll that takes completed descriptors off the ring.
    func receive(queue: Int, into batch: FrameBatch) -> Int
    /// Hands frame `index` of the batch to `emit` with its offload information (from a
    /// virtio-net header: a TCP GSO frame of up to 64 KiB, a checksum the kernel left partial or
    /// vouches for). Runs under the stack lock.
    func deliver(_ batch: FrameBatch, index: Int, emit: (UnsafeRawBufferPointer, FrameOffload) -> Void)
    /// Transmit counters.
    var txStatistics: PortTxStatistics { get }
    /// Closes the descriptors (after the engine threads stopped).
    func close()
}

/// A port that can read frames straight into the NIC's posted receive buffers (its read is the
/// NIC's DMA): used for TAP with a virtio-net header, where frames are up to 64 KiB and the copy
/// through a batch would double the receive copies.
public protocol DirectReceivePort: LinuxPort {
    /// Whether direct receive applies to this port as opened.
    var receivesDirectly: Bool { get }
    /// Reads up to `count` frames without blocking, frame k into `buffers[k]`; sets `lengths[k]`
    /// (-1 for a frame it could not use: truncated, bad header) and `offloads[k]`, and counts in
    /// the queue's `batch`. Returns how many buffers it used. Runs on the queue's engine thread
    /// without the stack lock.
    func receiveDirect(queue: Int, buffers: UnsafePointer<UnsafeMutableRawBufferPointer>, count: Int,
                       lengths: UnsafeMutablePointer<Int>, offloads: UnsafeMutablePointer<FrameOffload>,
                       batch: FrameBatch) -> Int
}

extension LinuxPort {
    /// The same frame, once: ports without a virtio header.
    @inline(__always)
    func deliverPlain(_ batch: FrameBatch, index: Int, emit: (UnsafeRawBufferPointer, FrameOffload) -> Void) {
        emit(UnsafeRawBufferPointer(batch.frame(index)), .none)
    }
}

/// A locally administered MAC derived from an interface name, so Skiff never takes the
/// kernel side's address.
func derivedMAC(_ name: String, salt: UInt64) -> MACAddress {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ salt
    for c in name.utf8 { h = (h ^ UInt64(c)) &* 0x100_0000_01B3 }
    return MACAddress(0x0253_0000_0000 | (h & 0xFFFF_FFFF))
}
