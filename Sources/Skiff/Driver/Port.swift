/// What the emulated NIC's wire side is plugged into: a simulated link, a TAP or TUN device, an
/// AF_PACKET socket, packetdrill, or nothing at all.
///
/// The NIC calls `transmit` once per frame with the frame's scatter-gather segments (already
/// translated through the IOMMU); the port copies or writes them out (or gathers them for one
/// write at `flush()`) and reports how many bytes it copied, which the NIC counts in the copy
/// ledger as port I/O. Received frames go the other
/// way through `NICModel.receive(frame:now:)`.
///
/// Cost: one dynamic call per frame through a class-bound protocol; nothing is allocated.
public protocol NetworkPort: AnyObject {
    /// Puts one frame on the wire. Returns the bytes copied (0 for a port that only looks).
    func transmit(_ segments: UnsafeBufferPointer<UnsafeRawBufferPointer>, length: Int, now: Nanoseconds) -> Int
    /// Puts one frame on the wire with its offload request: a TCP segment larger than the MTU
    /// to be cut on the far side, or a transport checksum still to fill in. Only ports that
    /// list the offload in `offloads` receive such frames; the default ignores `offload`.
    func transmit(_ segments: UnsafeBufferPointer<UnsafeRawBufferPointer>, length: Int, offload: FrameOffload,
                  now: Nanoseconds) -> Int
    /// What the far side of this port accepts unfinished (the virtio-net / TAP `IFF_VNET_HDR`
    /// features). A device's TSO and checksum features are enabled only where its port offers them.
    var offloads: PortOffloads { get }
    /// Frames the port may gather before it writes them together, with one system call
    /// (1: each frame goes out inside `transmit`). A port that gathers puts its frames out at
    /// `flush()` at the latest, so the memory of every frame given to `transmit` must stay
    /// valid until `flush()` returns. Linux: a driver's `xmit_more` batching, which rings the
    /// doorbell once for the frames of one `dev_hard_start_xmit()` burst. A NIC that transmits at
    /// the doorbell reads it when the port is plugged in (the deferred transmitter at each
    /// drain): it may fall to 1 later (a port giving up its batching), never rise. A gathered
    /// frame counts as copied when `transmit` takes it; one whose write then fails shows in the
    /// port's own error count.
    var framesPerFlush: Int { get }
    /// Puts out the frames gathered since the last flush (nothing for a port that does not
    /// gather). Linux: the doorbell write after the last frame of a burst (`!netdev_xmit_more()`).
    func flush()
}

extension NetworkPort {
    public func transmit(_ segments: UnsafeBufferPointer<UnsafeRawBufferPointer>, length: Int, offload: FrameOffload,
                         now: Nanoseconds) -> Int {
        transmit(segments, length: length, now: now)
    }
    public var offloads: PortOffloads { [] }
    public var framesPerFlush: Int { 1 }
    public func flush() {}
}

/// Offloads a port can take (Linux: the `VIRTIO_NET_F_CSUM` / `VIRTIO_NET_F_HOST_TSO4` features,
/// `TUNSETOFFLOAD`'s `TUN_F_CSUM` / `TUN_F_TSO4`).
public struct PortOffloads: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// Frames may leave with the transport checksum unfilled.
    public static let checksum = PortOffloads(rawValue: 1)
    /// TCP segments up to 64 KiB may leave whole, cut into MSS-sized frames beyond the port.
    public static let tcpSegmentation = PortOffloads(rawValue: 2)
}

/// The offload request that travels with one frame, in the terms of a virtio-net header
/// (Linux: `struct virtio_net_hdr`): GSO type and size, header length, checksum start and offset,
/// and the NEEDS_CSUM / DATA_VALID flags. Offsets count from the start of the frame.
public struct FrameOffload: Sendable, Equatable {
    /// Payload bytes per segment of a TCP GSO frame; 0 for a plain frame (`gso_size`).
    public var segmentSize: UInt16 = 0
    /// Bytes of link, IP and TCP header in front of the payload (`hdr_len`).
    public var headerLength: UInt16 = 0
    /// Where the transport header starts: the checksum covers from here (`csum_start`).
    public var checksumStart: UInt16 = 0
    /// Where the checksum field is, from `checksumStart` (`csum_offset`: 16 for TCP, 6 for UDP).
    public var checksumOffset: UInt16 = 0
    /// The checksum field holds the pseudo-header sum; the rest is still to add
    /// (`VIRTIO_NET_HDR_F_NEEDS_CSUM`, Linux `CHECKSUM_PARTIAL`).
    public var needsChecksum = false
    /// On receive: the sender vouches for the checksum (`VIRTIO_NET_HDR_F_DATA_VALID`,
    /// Linux `CHECKSUM_UNNECESSARY`).
    public var checksumValid = false

    public init(segmentSize: UInt16 = 0, headerLength: UInt16 = 0, checksumStart: UInt16 = 0, checksumOffset: UInt16 = 0,
                needsChecksum: Bool = false, checksumValid: Bool = false) {
        self.segmentSize = segmentSize; self.headerLength = headerLength
        self.checksumStart = checksumStart; self.checksumOffset = checksumOffset
        self.needsChecksum = needsChecksum; self.checksumValid = checksumValid
    }

    /// A frame with nothing left to do.
    public static let none = FrameOffload()
    public var isNone: Bool { segmentSize == 0 && !needsChecksum && !checksumValid }
}

/// A port that discards every frame: the "null port" of the benchmarks.
public final class NullPort: NetworkPort {
    @exclusivity(unchecked) public private(set) var frames: UInt64 = 0
    @exclusivity(unchecked) public private(set) var bytes: UInt64 = 0
    public init() {}
    public func transmit(_ segments: UnsafeBufferPointer<UnsafeRawBufferPointer>, length: Int, now: Nanoseconds) -> Int {
        frames &+= 1
        bytes &+= UInt64(length)
        return 0
    }
}
