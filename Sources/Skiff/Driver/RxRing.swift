/// One receive descriptor (Linux: `union e1000_adv_rx_desc`): the driver posts an empty buffer's
/// IOVA; the NIC writes the frame there and writes back its length and the done bit.
public struct RxDescriptor: Sendable {
    public var address: UInt64 = 0
    public var length: UInt16 = 0
    public var done = false
    /// The frame's last buffer; a large (GSO) frame spans several buffers (Linux: `E1000_RXD_STAT_EOP`,
    /// virtio's mergeable receive buffers).
    public var endOfPacket = true
    /// Written on a frame's first buffer: its GSO segment size (0 for a plain frame) and whether
    /// the device vouched for its checksum.
    public var segmentSize: UInt16 = 0
    public var checksumValid = false
}

/// A receive descriptor ring with its posted buffers (Linux: `struct igb_ring` for RX and
/// `struct igb_rx_buffer`).
public final class RxRing {
    public let size: Int
    let mask: Int
    @exclusivity(unchecked) var descriptors: UnsafeMutablePointer<RxDescriptor>
    @exclusivity(unchecked) var buffers: UnsafeMutablePointer<PacketBuffer?>
    /// Next descriptor the driver cleans (Linux: `next_to_clean`).
    @exclusivity(unchecked) public internal(set) var nextToClean = 0
    /// Next descriptor the driver refills (Linux: `next_to_use` / `next_to_alloc`).
    @exclusivity(unchecked) public internal(set) var nextToUse = 0
    /// The NIC's head: next posted descriptor it writes into.
    @exclusivity(unchecked) var hardwareHead = 0
    /// Tail register: descriptors before it are posted to the NIC (Linux: `E1000_RDT`).
    @exclusivity(unchecked) public internal(set) var tailRegister = 0
    @exclusivity(unchecked) public internal(set) var packets: UInt64 = 0
    @exclusivity(unchecked) public internal(set) var bytes: UInt64 = 0
    /// Frames the NIC dropped because no descriptor was posted (Linux: `rx_missed_errors`/`rx_no_buffer_count`).
    @exclusivity(unchecked) public internal(set) var missed: UInt64 = 0
    /// Refill failures (pool empty) (Linux: `alloc_rx_buff_failed`).
    @exclusivity(unchecked) public internal(set) var allocFailed: UInt64 = 0

    public init(size: Int = 256) {
        precondition(size >= 16 && size & (size - 1) == 0, "ring size must be a power of two >= 16")
        self.size = size
        mask = size - 1
        descriptors = .allocate(capacity: size)
        descriptors.initialize(repeating: RxDescriptor(), count: size)
        buffers = .allocate(capacity: size)
        for i in 0..<size { (buffers + i).initialize(to: nil) }
    }

    deinit {
        descriptors.deallocate()
        buffers.deinitialize(count: size)
        buffers.deallocate()
    }

    /// Descriptors not posted to the NIC (Linux: `igb_desc_unused()`).
    @inline(__always)
    public var unused: Int { (nextToClean &- nextToUse &- 1) & mask }
}
