/// What the emulated NIC's wire side is plugged into: a simulated link, a TAP or TUN device, an
/// AF_PACKET socket, packetdrill, or nothing at all.
///
/// The NIC calls `transmit` once per frame with the frame's scatter-gather segments (already
/// translated through the IOMMU); the port copies or writes them out and reports how many bytes
/// it copied, which the NIC counts in the copy ledger as port I/O. Received frames go the other
/// way through `NICModel.receive(frame:now:)`.
///
/// Cost: one dynamic call per frame through a class-bound protocol; nothing is allocated.
public protocol NetworkPort: AnyObject {
    /// Puts one frame on the wire. Returns the bytes copied (0 for a port that only looks).
    func transmit(_ segments: UnsafeBufferPointer<UnsafeRawBufferPointer>, length: Int, now: Nanoseconds) -> Int
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
