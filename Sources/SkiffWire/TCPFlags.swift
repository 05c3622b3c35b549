/// The TCP control bits (RFC 9293 §3.1, ECN bits RFC 3168, AE RFC 9768).
///
/// `rawValue` is the low 12 bits of header bytes 12–13 (everything but the
/// data offset), so the three reserved bits survive parse → emit.
public struct TCPFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue & 0x0FFF }

    public static let fin = TCPFlags(rawValue: 0x001)
    public static let syn = TCPFlags(rawValue: 0x002)
    public static let rst = TCPFlags(rawValue: 0x004)
    public static let psh = TCPFlags(rawValue: 0x008)
    public static let ack = TCPFlags(rawValue: 0x010)
    public static let urg = TCPFlags(rawValue: 0x020)
    public static let ece = TCPFlags(rawValue: 0x040)
    public static let cwr = TCPFlags(rawValue: 0x080)
    /// Accurate-ECN bit, formerly NS (RFC 3540, historic).
    public static let ae = TCPFlags(rawValue: 0x100)

    /// tcpdump's notation: `S`, `F`, `R`, `P`, `U`, `E`, `W`, then `.` for
    /// ACK; e.g. "S." for SYN-ACK, "none" for no flags.
    public var description: String {
        var s = ""
        if contains(.syn) { s += "S" }
        if contains(.fin) { s += "F" }
        if contains(.rst) { s += "R" }
        if contains(.psh) { s += "P" }
        if contains(.urg) { s += "U" }
        if contains(.ece) { s += "E" }
        if contains(.cwr) { s += "W" }
        if contains(.ae) { s += "e" }
        if contains(.ack) { s += "." }
        return s.isEmpty ? "none" : s
    }
}
