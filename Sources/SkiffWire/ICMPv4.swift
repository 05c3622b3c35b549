/// An ICMPv4 message's type-specific header fields (RFC 792).
///
/// Only messages whose unused bits are zero and whose code is one RFC 792
/// defines for that type decode to the named cases; everything else is
/// ``other(type:code:rest:)`` with the raw second word, so that
/// parse → emit is exact.
public enum ICMPv4Message: Equatable, Sendable {
    /// Type 8, code 0.
    case echoRequest(identifier: UInt16, sequence: UInt16)
    /// Type 0, code 0.
    case echoReply(identifier: UInt16, sequence: UInt16)
    /// Type 3. `nextHopMTU` is meaningful for code 4 (fragmentation
    /// needed, RFC 1191); zero otherwise.
    case destinationUnreachable(code: UInt8, nextHopMTU: UInt16)
    /// Type 11; code 0 TTL exceeded, 1 reassembly time exceeded.
    case timeExceeded(code: UInt8)
    /// Anything else; `rest` is bytes 4..<8 of the header.
    case other(type: UInt8, code: UInt8, rest: UInt32)

    public var type: UInt8 {
        switch self {
        case .echoRequest: 8
        case .echoReply: 0
        case .destinationUnreachable: 3
        case .timeExceeded: 11
        case .other(let type, _, _): type
        }
    }

    public var code: UInt8 {
        switch self {
        case .echoRequest, .echoReply: 0
        case .destinationUnreachable(let code, _), .timeExceeded(let code): code
        case .other(_, let code, _): code
        }
    }

    /// Bytes 4..<8 of the header.
    public var rest: UInt32 {
        switch self {
        case .echoRequest(let id, let seq), .echoReply(let id, let seq): UInt32(id) << 16 | UInt32(seq)
        case .destinationUnreachable(_, let mtu): UInt32(mtu)
        case .timeExceeded: 0
        case .other(_, _, let rest): rest
        }
    }

    /// Decodes the first header word fields.
    public init(type: UInt8, code: UInt8, rest: UInt32) {
        let hi = UInt16(truncatingIfNeeded: rest >> 16)
        let lo = UInt16(truncatingIfNeeded: rest)
        switch (type, code) {
        case (8, 0): self = .echoRequest(identifier: hi, sequence: lo)
        case (0, 0): self = .echoReply(identifier: hi, sequence: lo)
        case (3, 0...15) where hi == 0: self = .destinationUnreachable(code: code, nextHopMTU: lo)
        case (11, 0...1) where rest == 0: self = .timeExceeded(code: code)
        default: self = .other(type: type, code: code, rest: rest)
        }
    }
}

/// Destination-unreachable codes (RFC 792, RFC 1122 §3.2.2.1).
public enum ICMPv4UnreachableCode {
    public static let network: UInt8 = 0
    public static let host: UInt8 = 1
    public static let `protocol`: UInt8 = 2
    public static let port: UInt8 = 3
    public static let fragmentationNeeded: UInt8 = 4
}

/// The 8-byte ICMPv4 header (RFC 792).
public struct ICMPv4Header: Equatable, Sendable {
    public var message: ICMPv4Message
    /// As received; ``emit(into:payload:)`` computes a fresh one.
    public var checksum: UInt16

    public static let length = 8

    public init(message: ICMPv4Message, checksum: UInt16 = 0) {
        self.message = message
        self.checksum = checksum
    }

    /// Parses `b`, the whole ICMP message (header and payload, exactly the
    /// IPv4 payload).
    ///
    /// Throws `.truncated` (< 8 bytes) or `.badChecksum` (checksum over all
    /// of `b`, when `verifyChecksum`).
    public static func parse(_ b: UnsafeRawBufferPointer, verifyChecksum: Bool = true) throws(WireError) -> ICMPv4Header {
        try ICMPv4View(checking: b, verifyChecksum: verifyChecksum).header
    }

    /// Writes the 8-byte header into the first 8 bytes of `buffer`, with the
    /// checksum computed over those 8 bytes followed by `payload`.
    ///
    /// `payload` may be the bytes right after the header in the same buffer
    /// (the usual case: build the payload in place, then emit the header).
    /// HAZARD: `payload` must not overlap the first 8 bytes of `buffer`;
    /// traps if `buffer.count < 8`.
    public func emit(into buffer: UnsafeMutableRawBufferPointer, payload: UnsafeRawBufferPointer) {
        precondition(buffer.count >= Self.length, "ICMPv4Header.emit: buffer too small")
        buffer.put8(message.type, at: 0)
        buffer.put8(message.code, at: 1)
        buffer.put16(0, at: 2)
        buffer.put32(message.rest, at: 4)
        let s = InternetChecksum.sum(UnsafeRawBufferPointer(rebasing: buffer[0..<Self.length]))
        buffer.put16(InternetChecksum.fold(InternetChecksum.sum(payload, initial: s)), at: 2)
    }
}

/// A checked, non-owning view of an ICMPv4 message in untrusted bytes.
///
/// HAZARD: the view borrows `bytes`; it must not outlive them.
public struct ICMPv4View {
    public let bytes: UnsafeRawBufferPointer

    public init(checking bytes: UnsafeRawBufferPointer, verifyChecksum: Bool = true) throws(WireError) {
        guard bytes.count >= ICMPv4Header.length else { throw .truncated }
        if verifyChecksum {
            guard InternetChecksum.verify(bytes) else { throw .badChecksum }
        }
        self.bytes = bytes
    }

    public var type: UInt8 { bytes.u8(0) }
    public var code: UInt8 { bytes.u8(1) }
    public var checksum: UInt16 { bytes.u16(2) }
    public var rest: UInt32 { bytes.u32(4) }
    public var message: ICMPv4Message { ICMPv4Message(type: type, code: code, rest: rest) }
    public var header: ICMPv4Header { ICMPv4Header(message: message, checksum: checksum) }
    /// Bytes after the 8-byte header (echo data, or the offending
    /// datagram's IP header + 8 bytes for errors).
    public var payload: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[ICMPv4Header.length...])
    }
}
