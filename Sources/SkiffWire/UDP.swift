/// The 8-byte UDP header (RFC 768).
public struct UDPHeader: Equatable, Sendable {
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    /// Header plus data, in bytes.
    public var length: UInt16
    /// As received or as set; 0 means "no checksum" on IPv4.
    public var checksum: UInt16

    public static let length = 8

    public init(sourcePort: UInt16, destinationPort: UInt16, length: UInt16, checksum: UInt16 = 0) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.length = length
        self.checksum = checksum
    }

    /// Parses the header of `b`, the UDP datagram (exactly the IPv4
    /// payload).
    ///
    /// Throws `.truncated` (< 8 bytes) or `.badLength` (length field < 8 or
    /// > `b.count`). A length field shorter than `b` is accepted; the
    /// datagram ends there (RFC 768). The checksum is not verified here;
    /// see ``verifyChecksum(datagram:source:destination:)``.
    public static func parse(_ b: UnsafeRawBufferPointer) throws(WireError) -> UDPHeader {
        try UDPView(checking: b).header
    }

    /// Writes the 8 header bytes, checksum field as stored.
    ///
    /// HAZARD: traps if `buffer.count < 8`.
    public func emit(into buffer: UnsafeMutableRawBufferPointer) {
        precondition(buffer.count >= Self.length, "UDPHeader.emit: buffer too small")
        buffer.put16(sourcePort, at: 0)
        buffer.put16(destinationPort, at: 2)
        buffer.put16(length, at: 4)
        buffer.put16(checksum, at: 6)
    }

    /// Checks the datagram's checksum with the IPv4 pseudo-header.
    ///
    /// A zero checksum field means the sender computed none: returns true.
    /// Sums `length`-field bytes; false if the datagram is shorter than 8
    /// bytes or than its length field.
    public static func verifyChecksum(datagram: UnsafeRawBufferPointer, source: IPv4Address, destination: IPv4Address) -> Bool {
        guard datagram.count >= length else { return false }
        let len = Int(datagram.u16(4))
        guard len >= length, len <= datagram.count else { return false }
        if datagram.u16(6) == 0 { return true }
        let pseudo = InternetChecksum.pseudoHeaderSum(source: source, destination: destination,
                                                      protocol: IPProtocol.udp, length: UInt16(len))
        return InternetChecksum.verify(UnsafeRawBufferPointer(rebasing: datagram[0..<len]), initial: pseudo)
    }

    /// Computes and stores the checksum of a datagram whose header is
    /// already written; the whole buffer is summed and its count is the UDP
    /// length. A computed zero is sent as 0xFFFF (RFC 768).
    ///
    /// HAZARD: traps if `datagram.count < 8` or > 65535.
    public static func fillChecksum(datagram: UnsafeMutableRawBufferPointer, source: IPv4Address, destination: IPv4Address) {
        precondition(datagram.count >= length && datagram.count <= 0xFFFF)
        datagram.put16(0, at: 6)
        let pseudo = InternetChecksum.pseudoHeaderSum(source: source, destination: destination,
                                                      protocol: IPProtocol.udp, length: UInt16(datagram.count))
        let c = InternetChecksum.fold(InternetChecksum.sum(UnsafeRawBufferPointer(datagram), initial: pseudo))
        datagram.put16(c == 0 ? 0xFFFF : c, at: 6)
    }
}

/// A checked, non-owning view of a UDP datagram in untrusted bytes.
///
/// HAZARD: the view borrows `bytes`; it must not outlive them.
public struct UDPView {
    public let bytes: UnsafeRawBufferPointer
    /// Validated: 8 ≤ length ≤ `bytes.count`.
    public let length: Int

    public init(checking bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard bytes.count >= UDPHeader.length else { throw .truncated }
        let len = Int(bytes.u16(4))
        guard len >= UDPHeader.length, len <= bytes.count else { throw .badLength }
        self.bytes = bytes
        length = len
    }

    public var sourcePort: UInt16 { bytes.u16(0) }
    public var destinationPort: UInt16 { bytes.u16(2) }
    public var checksum: UInt16 { bytes.u16(6) }
    public var header: UDPHeader {
        UDPHeader(sourcePort: sourcePort, destinationPort: destinationPort, length: UInt16(length), checksum: checksum)
    }
    /// Data bytes, bounded by the length field.
    public var payload: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[UDPHeader.length..<length])
    }

    public func verifyChecksum(source: IPv4Address, destination: IPv4Address) -> Bool {
        UDPHeader.verifyChecksum(datagram: bytes, source: source, destination: destination)
    }
}
