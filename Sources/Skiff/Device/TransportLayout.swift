import SkiffWire

/// Where an outgoing IPv4 packet's transport header sits in a frame, read from its IP header
/// (Linux: `skb_transport_offset()`, `skb_checksum_start_offset()` and `csum_offset` as the
/// stack sets them for `CHECKSUM_PARTIAL`).
struct TransportLayout {
    /// Offset of the transport header from the start of the frame.
    var start: Int
    var ipProtocol: UInt8
    /// Offset of the checksum field inside the transport header (16 for TCP, 6 for UDP).
    var checksumOffset: Int
    /// Link, IP and transport header bytes together (TCP: with its options).
    var headerLength: Int

    /// Reads the layout from the linear bytes of a frame whose link header is `l2` bytes; nil
    /// when the headers are not all in the linear part or the protocol is neither TCP nor UDP.
    init?(_ b: UnsafeRawBufferPointer, linkHeader l2: Int) {
        guard b.count >= l2 + 20 else { return nil }
        let ihl = Int(b[l2] & 0x0F) * 4
        let proto = b[l2 + 9]
        let s = l2 + ihl
        switch proto {
        case IPProtocol.tcp:
            guard ihl >= 20, b.count >= s + 20 else { return nil }
            checksumOffset = 16
            headerLength = s + Int(b[s + 12] >> 4) * 4
        case IPProtocol.udp:
            guard ihl >= 20, b.count >= s + 8 else { return nil }
            checksumOffset = 6
            headerLength = s + 8
        default:
            return nil
        }
        start = s
        ipProtocol = proto
    }
}
