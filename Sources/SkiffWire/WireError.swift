/// Why a parser refused a buffer.
///
/// Every parser and checked view in SkiffWire reports malformed or short
/// input by throwing one of these cases; none of them traps on untrusted
/// bytes. The convention for length problems:
///
/// - ``truncated``: the buffer is shorter than the *fixed* part of the
///   header (for example fewer than 20 bytes for IPv4 or TCP).
/// - A field-specific case (``badHeaderLength``, ``badTotalLength``,
///   ``badDataOffset``, ``badLength``, ``badOptionLength``): a length field
///   in the packet is impossible or disagrees with the buffer it arrived in.
public enum WireError: Error, Equatable, Sendable {
    /// Fewer bytes than the fixed header needs.
    case truncated
    /// IPv4 version field is not 4.
    case badVersion
    /// IPv4 IHL below 5, or IHL * 4 beyond the buffer.
    case badHeaderLength
    /// IPv4 total length below the header length, or beyond the buffer.
    case badTotalLength
    /// A ones-complement checksum did not verify.
    case badChecksum
    /// An IPv4 or TCP option has a length byte below 2, a length that
    /// overruns the option area, or a wrong length for a known kind.
    case badOptionLength
    /// An option that is well-formed in length but semantically invalid.
    case badOption
    /// UDP length field below 8 or beyond the datagram buffer.
    case badLength
    /// ARP hardware type is not Ethernet (1).
    case badHardwareType
    /// ARP protocol type is not IPv4 (0x0800).
    case badProtocolType
    /// ARP hardware/protocol address length is not 6/4.
    case badAddressLength
    /// ARP operation is neither request (1) nor reply (2).
    case badOperation
    /// TCP data offset below 5 words or beyond the segment buffer.
    case badDataOffset
    /// Valid on the wire but not handled by SkiffWire.
    case unsupported
}
