/// An emulated IOMMU: the table of DMA mappings a driver creates so the NIC can reach buffer
/// memory. The NIC sees only I/O virtual addresses (IOVAs); unmapped or stale addresses fault.
///
/// Linux: `dma_map_single()` / `dma_unmap_single()` through an IOMMU domain.
///
/// A mapping leak is visible as `activeMappings` above zero after the device is torn down;
/// tests check it.
public struct DMAMapper {
    struct Mapping { var host: UnsafeMutableRawPointer?; var length: Int32; var generation: UInt16 }

    /// Address space each mapping gets (it holds one buffer of at most 64 KiB + slack).
    static let windowShift: UInt64 = 17

    private var table: [Mapping] = []
    private var free: [Int32] = []
    public private(set) var activeMappings = 0
    public private(set) var maps: UInt64 = 0
    public private(set) var unmaps: UInt64 = 0
    /// Accesses by the device to addresses with no mapping (Linux: an IOMMU fault).
    public private(set) var faults: UInt64 = 0

    public init(capacity: Int = 1024) {
        table.reserveCapacity(capacity)
        free.reserveCapacity(capacity)
    }

    /// Maps `length` bytes at `host` for device access; returns the IOVA.
    @inline(__always)
    public mutating func map(_ host: UnsafeMutableRawPointer, length: Int) -> UInt64 {
        let slot: Int32
        if let s = free.popLast() { slot = s } else {
            table.append(Mapping(host: nil, length: 0, generation: 0))
            slot = Int32(table.count - 1)
        }
        table[Int(slot)].host = host
        table[Int(slot)].length = Int32(length)
        activeMappings += 1
        maps &+= 1
        return (UInt64(slot) + 1) << DMAMapper.windowShift
    }

    /// Removes a mapping. Unmapping an address that is not mapped counts a fault.
    @inline(__always)
    public mutating func unmap(_ iova: UInt64) {
        let slot = Int(iova >> DMAMapper.windowShift) - 1
        guard slot >= 0, slot < table.count, table[slot].host != nil else { faults &+= 1; return }
        table[slot].host = nil
        table[slot].generation &+= 1
        free.append(Int32(slot))
        activeMappings -= 1
        unmaps &+= 1
    }

    /// The device's view: host memory behind `iova` for `length` bytes, or nil (a fault).
    @inline(__always)
    public mutating func translate(_ iova: UInt64, length: Int) -> UnsafeMutableRawPointer? {
        let slot = Int(iova >> DMAMapper.windowShift) - 1
        let offset = Int(iova & ((1 << DMAMapper.windowShift) - 1))
        guard slot >= 0, slot < table.count, let host = table[slot].host,
              offset + length <= Int(table[slot].length) else { faults &+= 1; return nil }
        return host + offset
    }
}
