/// IP protocol numbers (IANA "Assigned Internet Protocol Numbers").
public enum IPProtocol {
    public static let icmp: UInt8 = 1
    public static let tcp: UInt8 = 6
    public static let udp: UInt8 = 17
}

/// An IPv4 header (RFC 791 §3.1), options included.
///
/// `fragmentOffset` is in bytes (the wire field times 8). The reserved
/// flag bit (RFC 3514's "evil bit") is kept in `reservedFlag` so that
/// parse → emit is exact.
public struct IPv4Header: Equatable, Sendable {
    /// DSCP (high 6 bits) and ECN (low 2 bits, RFC 3168).
    public var tos: UInt8
    /// Header plus payload, in bytes.
    public var totalLength: UInt16
    public var identification: UInt16
    public var reservedFlag: Bool
    public var dontFragment: Bool
    public var moreFragments: Bool
    /// Offset of this fragment's data in bytes; a multiple of 8, at most
    /// 65528. Emit writes `fragmentOffset / 8`.
    public var fragmentOffset: UInt16
    public var ttl: UInt8
    public var `protocol`: UInt8
    /// As received. ``emit(into:)`` ignores this and writes a fresh one.
    public var checksum: UInt16
    public var source: IPv4Address
    public var destination: IPv4Address
    public var options: IPv4Options

    /// A header without options.
    public static let minimumLength = 20
    /// With 40 bytes of options.
    public static let maximumLength = 60

    public init(tos: UInt8 = 0, totalLength: UInt16, identification: UInt16 = 0,
                reservedFlag: Bool = false, dontFragment: Bool = true, moreFragments: Bool = false,
                fragmentOffset: UInt16 = 0, ttl: UInt8 = 64, protocol: UInt8, checksum: UInt16 = 0,
                source: IPv4Address, destination: IPv4Address, options: IPv4Options = IPv4Options()) {
        self.tos = tos
        self.totalLength = totalLength
        self.identification = identification
        self.reservedFlag = reservedFlag
        self.dontFragment = dontFragment
        self.moreFragments = moreFragments
        self.fragmentOffset = fragmentOffset
        self.ttl = ttl
        self.protocol = `protocol`
        self.checksum = checksum
        self.source = source
        self.destination = destination
        self.options = options
    }

    /// 20 + option bytes; what emit writes and IHL * 4.
    public var headerLength: Int { Self.minimumLength + options.count }

    /// True for any fragment, first included (MF set or offset non-zero).
    public var isFragment: Bool { moreFragments || fragmentOffset != 0 }

    /// Payload length claimed by the header (`totalLength - headerLength`,
    /// 0 if that would be negative).
    public var payloadLength: Int { max(0, Int(totalLength) - headerLength) }

    /// Parses and validates the header at the start of `b`.
    ///
    /// Throws, in this order: `.truncated` (< 20 bytes), `.badVersion`,
    /// `.badHeaderLength` (IHL < 5 or IHL * 4 > `b.count`),
    /// `.badTotalLength` (total length < IHL * 4 or > `b.count`),
    /// `.badChecksum` (when `verifyChecksum`), `.badOptionLength`.
    /// Bytes past `totalLength` (Ethernet padding) are allowed.
    public static func parse(_ b: UnsafeRawBufferPointer, verifyChecksum: Bool = true) throws(WireError) -> IPv4Header {
        try IPv4View(checking: b, verifyChecksum: verifyChecksum).header
    }

    /// Writes `headerLength` bytes at the start of `buffer`, with a freshly
    /// computed header checksum. The stored `checksum` is not used.
    ///
    /// HAZARD: traps if `buffer.count < headerLength`.
    public func emit(into buffer: UnsafeMutableRawBufferPointer) {
        let hl = headerLength
        precondition(buffer.count >= hl, "IPv4Header.emit: buffer too small")
        buffer.put8(0x40 | UInt8(hl / 4), at: 0)
        buffer.put8(tos, at: 1)
        buffer.put16(totalLength, at: 2)
        buffer.put16(identification, at: 4)
        var flagsFrag = (fragmentOffset >> 3) & 0x1FFF
        if reservedFlag { flagsFrag |= 0x8000 }
        if dontFragment { flagsFrag |= 0x4000 }
        if moreFragments { flagsFrag |= 0x2000 }
        buffer.put16(flagsFrag, at: 6)
        buffer.put8(ttl, at: 8)
        buffer.put8(`protocol`, at: 9)
        buffer.put16(0, at: 10)
        source.write(to: buffer.baseAddress! + 12)
        destination.write(to: buffer.baseAddress! + 16)
        options.withUnsafeBytes { o in
            if o.count > 0 {
                (buffer.baseAddress! + 20).copyMemory(from: o.baseAddress!, byteCount: o.count)
            }
        }
        let c = InternetChecksum.fold(InternetChecksum.sum(UnsafeRawBufferPointer(rebasing: buffer[0..<hl])))
        buffer.put16(c, at: 10)
    }

    /// Rewrites the TTL of an emitted header in place, patching its
    /// checksum incrementally (RFC 1624). HAZARD: `header` must hold at
    /// least 20 bytes of a valid IPv4 header.
    public static func setTTL(_ ttl: UInt8, inHeader header: UnsafeMutableRawBufferPointer) {
        precondition(header.count >= minimumLength)
        let ro = UnsafeRawBufferPointer(header)
        let old = ro.u16(8)
        let new = UInt16(ttl) << 8 | (old & 0xFF)
        header.put16(new, at: 8)
        header.put16(InternetChecksum.update(checksum: ro.u16(10), old: old, new: new), at: 10)
    }
}

/// A checked, non-owning view of an IPv4 packet in untrusted bytes.
///
/// `init(checking:)` performs every check ``IPv4Header/parse(_:verifyChecksum:)``
/// does; afterwards accessors read straight from the bytes and are in
/// bounds. HAZARD: the view borrows `bytes`; it must not outlive them.
public struct IPv4View {
    public let bytes: UnsafeRawBufferPointer
    /// IHL * 4, validated: 20...60 and ≤ `totalLength`.
    public let headerLength: Int
    /// Validated: ≥ `headerLength` and ≤ `bytes.count`.
    public let totalLength: Int

    public init(checking bytes: UnsafeRawBufferPointer, verifyChecksum: Bool = true) throws(WireError) {
        try self.init(checking: bytes, availableLength: bytes.count, verifyChecksum: verifyChecksum)
    }

    /// For a packet whose payload continues beyond `bytes` (a buffer with fragments):
    /// `availableLength` is the packet's whole length, which bounds `totalLength` instead of
    /// `bytes.count`; the header itself must lie in `bytes`. Only the header may be read through
    /// such a view.
    public init(checking bytes: UnsafeRawBufferPointer, availableLength: Int, verifyChecksum: Bool = true) throws(WireError) {
        guard bytes.count >= IPv4Header.minimumLength else { throw .truncated }
        let vihl = bytes.u8(0)
        guard vihl >> 4 == 4 else { throw .badVersion }
        let hl = Int(vihl & 0x0F) * 4
        guard hl >= IPv4Header.minimumLength, hl <= bytes.count else { throw .badHeaderLength }
        let tl = Int(bytes.u16(2))
        guard tl >= hl, tl <= max(bytes.count, availableLength) else { throw .badTotalLength }
        let header = UnsafeRawBufferPointer(rebasing: bytes[0..<hl])
        if verifyChecksum {
            guard InternetChecksum.verify(header) else { throw .badChecksum }
        }
        try IPv4Options.validate(UnsafeRawBufferPointer(rebasing: bytes[IPv4Header.minimumLength..<hl]))
        self.bytes = bytes
        headerLength = hl
        totalLength = tl
    }

    public var tos: UInt8 { bytes.u8(1) }
    public var identification: UInt16 { bytes.u16(4) }
    public var reservedFlag: Bool { bytes.u8(6) & 0x80 != 0 }
    public var dontFragment: Bool { bytes.u8(6) & 0x40 != 0 }
    public var moreFragments: Bool { bytes.u8(6) & 0x20 != 0 }
    /// In bytes.
    public var fragmentOffset: UInt16 { (bytes.u16(6) & 0x1FFF) << 3 }
    public var isFragment: Bool { moreFragments || fragmentOffset != 0 }
    public var ttl: UInt8 { bytes.u8(8) }
    public var `protocol`: UInt8 { bytes.u8(9) }
    public var checksum: UInt16 { bytes.u16(10) }
    public var source: IPv4Address { IPv4Address(bytes.u32(12)) }
    public var destination: IPv4Address { IPv4Address(bytes.u32(16)) }
    /// Raw option bytes (already validated).
    public var optionBytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[IPv4Header.minimumLength..<headerLength])
    }
    /// Bytes from the end of the header to `totalLength`; Ethernet padding
    /// beyond `totalLength` is excluded.
    public var payload: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[headerLength..<totalLength])
    }

    public var header: IPv4Header {
        // Validated in init, so this cannot throw; fall back to empty.
        let opts = (try? IPv4Options(bytes: optionBytes)) ?? IPv4Options()
        return IPv4Header(tos: tos, totalLength: UInt16(totalLength), identification: identification,
                          reservedFlag: reservedFlag, dontFragment: dontFragment, moreFragments: moreFragments,
                          fragmentOffset: fragmentOffset, ttl: ttl, protocol: `protocol`, checksum: checksum,
                          source: source, destination: destination, options: opts)
    }
}
