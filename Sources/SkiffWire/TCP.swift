/// A TCP header (RFC 9293 §3.1) with decoded options.
///
/// `dataOffset` is the header length in bytes as it was on the wire (for a
/// header built with `init`, the length its options encode to). `emit`
/// always writes ``headerLength`` = 20 + `options.encodedLength`, which
/// equals `dataOffset` for every segment whose options are laid out as
/// Linux lays them out; see ``TCPOptions``.
public struct TCPHeader: Equatable, Sendable {
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var sequenceNumber: UInt32
    public var acknowledgmentNumber: UInt32
    /// Header length in bytes as parsed (20...60, a multiple of 4).
    public var dataOffset: Int
    public var flags: TCPFlags
    public var window: UInt16
    /// As received or as set; `emit` writes it unchanged. Use
    /// ``fillChecksum(segment:source:destination:)`` after emitting.
    public var checksum: UInt16
    public var urgentPointer: UInt16
    public var options: TCPOptions

    public static let minimumLength = 20
    public static let maximumLength = 60

    public init(sourcePort: UInt16, destinationPort: UInt16, sequenceNumber: UInt32, acknowledgmentNumber: UInt32 = 0,
                flags: TCPFlags, window: UInt16, checksum: UInt16 = 0, urgentPointer: UInt16 = 0,
                options: TCPOptions = TCPOptions()) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.sequenceNumber = sequenceNumber
        self.acknowledgmentNumber = acknowledgmentNumber
        self.flags = flags
        self.window = window
        self.checksum = checksum
        self.urgentPointer = urgentPointer
        self.options = options
        dataOffset = Self.minimumLength + options.encodedLength
    }

    /// What ``emit(into:)`` writes: 20 + `options.encodedLength`.
    public var headerLength: Int { Self.minimumLength + options.encodedLength }

    /// Parses the header at the start of `b`, the TCP segment (exactly the
    /// IPv4 payload).
    ///
    /// Throws `.truncated` (< 20 bytes), `.badDataOffset` (offset < 5 words
    /// or beyond `b.count`), `.badOptionLength` (see ``TCPOptions``). The
    /// checksum is not verified here; see
    /// ``verifyChecksum(segment:source:destination:)``.
    public static func parse(_ b: UnsafeRawBufferPointer) throws(WireError) -> TCPHeader {
        try TCPView(checking: b).header
    }

    /// Writes `headerLength` bytes: the fixed header (checksum as stored)
    /// and the options in Linux's layout.
    ///
    /// HAZARD: traps if `buffer.count < headerLength`.
    public func emit(into buffer: UnsafeMutableRawBufferPointer) {
        let hl = headerLength
        precondition(buffer.count >= hl, "TCPHeader.emit: buffer too small")
        buffer.put16(sourcePort, at: 0)
        buffer.put16(destinationPort, at: 2)
        buffer.put32(sequenceNumber, at: 4)
        buffer.put32(acknowledgmentNumber, at: 8)
        buffer.put16(UInt16(hl / 4) << 12 | flags.rawValue, at: 12)
        buffer.put16(window, at: 14)
        buffer.put16(checksum, at: 16)
        buffer.put16(urgentPointer, at: 18)
        options.emit(into: UnsafeMutableRawBufferPointer(rebasing: buffer[Self.minimumLength..<hl]))
    }

    /// The checksum of a whole segment (header + data) with the IPv4
    /// pseudo-header, treating the checksum field as zero.
    ///
    /// HAZARD: traps if `segment.count < 20` or > 65535.
    public static func computeChecksum(segment: UnsafeRawBufferPointer, source: IPv4Address, destination: IPv4Address) -> UInt16 {
        precondition(segment.count >= minimumLength && segment.count <= 0xFFFF)
        var s = InternetChecksum.pseudoHeaderSum(source: source, destination: destination,
                                                 protocol: IPProtocol.tcp, length: UInt16(segment.count))
        s = InternetChecksum.sum(UnsafeRawBufferPointer(rebasing: segment[0..<16]), initial: s)
        s = InternetChecksum.sum(UnsafeRawBufferPointer(rebasing: segment[18...]), initial: s)
        return InternetChecksum.fold(s)
    }

    /// Computes the checksum of an emitted segment (the whole buffer is the
    /// segment) and stores it in bytes 16–17.
    ///
    /// HAZARD: traps if `segment.count < 20` or > 65535.
    public static func fillChecksum(segment: UnsafeMutableRawBufferPointer, source: IPv4Address, destination: IPv4Address) {
        let c = computeChecksum(segment: UnsafeRawBufferPointer(segment), source: source, destination: destination)
        segment.put16(c, at: 16)
    }

    /// True when the segment's checksum verifies against the pseudo-header.
    /// False (no trap) for segments shorter than 20 bytes.
    public static func verifyChecksum(segment: UnsafeRawBufferPointer, source: IPv4Address, destination: IPv4Address) -> Bool {
        guard segment.count >= minimumLength, segment.count <= 0xFFFF else { return false }
        let pseudo = InternetChecksum.pseudoHeaderSum(source: source, destination: destination,
                                                      protocol: IPProtocol.tcp, length: UInt16(segment.count))
        return InternetChecksum.verify(segment, initial: pseudo)
    }
}

/// A checked, non-owning view of a TCP segment in untrusted bytes.
///
/// `init(checking:)` validates the data offset and decodes the options
/// once; afterwards every accessor is in bounds. HAZARD: the view borrows
/// `bytes`; it must not outlive them.
public struct TCPView {
    public let bytes: UnsafeRawBufferPointer
    /// Validated: 20...60 and ≤ `bytes.count`.
    public let dataOffset: Int
    public let options: TCPOptions

    public init(checking bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard bytes.count >= TCPHeader.minimumLength else { throw .truncated }
        let off = Int(bytes.u8(12) >> 4) * 4
        guard off >= TCPHeader.minimumLength, off <= bytes.count else { throw .badDataOffset }
        options = try TCPOptions.parse(UnsafeRawBufferPointer(rebasing: bytes[TCPHeader.minimumLength..<off]))
        self.bytes = bytes
        dataOffset = off
    }

    public var sourcePort: UInt16 { bytes.u16(0) }
    public var destinationPort: UInt16 { bytes.u16(2) }
    public var sequenceNumber: UInt32 { bytes.u32(4) }
    public var acknowledgmentNumber: UInt32 { bytes.u32(8) }
    public var flags: TCPFlags { TCPFlags(rawValue: bytes.u16(12)) }
    public var window: UInt16 { bytes.u16(14) }
    public var checksum: UInt16 { bytes.u16(16) }
    public var urgentPointer: UInt16 { bytes.u16(18) }
    /// Raw option bytes.
    public var optionBytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[TCPHeader.minimumLength..<dataOffset])
    }
    /// Segment data after the header.
    public var payload: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[dataOffset...])
    }

    public var header: TCPHeader {
        var h = TCPHeader(sourcePort: sourcePort, destinationPort: destinationPort, sequenceNumber: sequenceNumber,
                          acknowledgmentNumber: acknowledgmentNumber, flags: flags, window: window,
                          checksum: checksum, urgentPointer: urgentPointer, options: options)
        h.dataOffset = dataOffset
        return h
    }

    public func verifyChecksum(source: IPv4Address, destination: IPv4Address) -> Bool {
        TCPHeader.verifyChecksum(segment: bytes, source: source, destination: destination)
    }
}
