/// One transmit descriptor as the NIC reads it (Linux: `union e1000_adv_tx_desc`).
public struct TxDescriptor: Sendable {
    /// IOVA of the bytes to send.
    public var address: UInt64 = 0
    /// Bytes this descriptor covers.
    public var length: UInt16 = 0
    /// End of packet: the last descriptor of a frame (Linux: `E1000_TXD_CMD_EOP`).
    public var endOfPacket = false
    /// Written back by the NIC when done (Linux: `E1000_TXD_STAT_DD`).
    public var done = false
    /// The packet's offload request, on its first descriptor (the context descriptor of a real
    /// NIC: MSS, header length, checksum start and offset).
    public var offload = FrameOffload.none
}

/// Driver-side bookkeeping for one descriptor (Linux: `struct igb_tx_buffer`).
struct TxBufferInfo: ~Copyable {
    /// The buffer, kept on the first descriptor of its frame until completion.
    var buffer: PacketBuffer?
    /// The DMA mapping made for this descriptor, 0 if none.
    var dmaAddress: UInt64 = 0
    /// For the first descriptor of a frame: index of its last descriptor (Linux: `next_to_watch`), -1 otherwise.
    var nextToWatch: Int32 = -1
    var bytes: Int32 = 0
}

/// A transmit descriptor ring shared by the driver and the NIC: power-of-two size, indices
/// wrap with a mask. Linux: `struct igb_ring` for TX.
///
/// ```
///   next_to_clean ... (NIC owns, in flight) ... next_to_use ... (free) ... next_to_clean
/// ```
public final class TxRing {
    public let size: Int
    let mask: Int
    @exclusivity(unchecked) var descriptors: UnsafeMutablePointer<TxDescriptor>
    @exclusivity(unchecked) var info: UnsafeMutablePointer<TxBufferInfo>
    /// Next descriptor the driver fills (Linux: `next_to_use`).
    @exclusivity(unchecked) public internal(set) var nextToUse = 0
    /// Next descriptor the driver cleans (Linux: `next_to_clean`).
    @exclusivity(unchecked) public internal(set) var nextToClean = 0
    /// The NIC's head: next descriptor it will read.
    @exclusivity(unchecked) var hardwareHead = 0
    /// The tail register: descriptors before it belong to the NIC (Linux: `E1000_TDT`).
    @exclusivity(unchecked) public internal(set) var tailRegister = 0
    /// Doorbell writes (tail register updates).
    @exclusivity(unchecked) public internal(set) var doorbells: UInt64 = 0
    @exclusivity(unchecked) public internal(set) var packets: UInt64 = 0
    @exclusivity(unchecked) public internal(set) var bytes: UInt64 = 0
    /// Times the ring filled and stopped its queue (Linux: `tx_restart_queue` counts the wake side).
    @exclusivity(unchecked) public internal(set) var stops: UInt64 = 0
    @exclusivity(unchecked) public internal(set) var wakes: UInt64 = 0

    public init(size: Int = 256) {
        precondition(size >= 16 && size & (size - 1) == 0, "ring size must be a power of two >= 16")
        self.size = size
        mask = size - 1
        descriptors = .allocate(capacity: size)
        descriptors.initialize(repeating: TxDescriptor(), count: size)
        info = .allocate(capacity: size)
        for i in 0..<size { (info + i).initialize(to: TxBufferInfo()) }
    }

    deinit {
        descriptors.deallocate()
        info.deinitialize(count: size)
        info.deallocate()
    }

    /// Free descriptors (Linux: `igb_desc_unused()`).
    @inline(__always)
    public var unused: Int { (nextToClean &- nextToUse &- 1) & mask }
}
