/// A 48-bit IEEE 802 MAC address.
///
/// Stored in the low 48 bits of `value`; the first byte on the wire is the
/// most significant of those bits, so `value == 0x0200_0000_0001` prints as
/// `02:00:00:00:00:01`.
public struct MACAddress: Hashable, Sendable, CustomStringConvertible {
    /// The address in the low 48 bits; the top 16 bits are always zero.
    public var value: UInt64

    /// Bits above 48 are discarded.
    public init(_ value: UInt64) {
        self.value = value & 0xFFFF_FFFF_FFFF
    }

    public init(_ b0: UInt8, _ b1: UInt8, _ b2: UInt8, _ b3: UInt8, _ b4: UInt8, _ b5: UInt8) {
        value = UInt64(b0) << 40 | UInt64(b1) << 32 | UInt64(b2) << 24
            | UInt64(b3) << 16 | UInt64(b4) << 8 | UInt64(b5)
    }

    /// Parses six groups of one or two hex digits separated by `:` or `-`
    /// ("02:00:5e:10:00:01"). Returns `nil` for anything else.
    public init?(_ text: String) {
        var result: UInt64 = 0
        var groups = 0
        var digits = 0
        var current: UInt64 = 0
        var separator: UInt8 = 0
        for c in text.utf8 {
            if c == UInt8(ascii: ":") || c == UInt8(ascii: "-") {
                if separator == 0 { separator = c }
                guard c == separator, digits > 0, groups < 5 else { return nil }
                result = result << 8 | current
                groups += 1
                digits = 0
                current = 0
                continue
            }
            let nibble: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = c - UInt8(ascii: "A") + 10
            default: return nil
            }
            guard digits < 2 else { return nil }
            current = current << 4 | UInt64(nibble)
            digits += 1
        }
        guard groups == 5, digits > 0 else { return nil }
        value = result << 8 | current
    }

    /// ff:ff:ff:ff:ff:ff
    public static let broadcast = MACAddress(0xFFFF_FFFF_FFFF)
    /// 00:00:00:00:00:00
    public static let zero = MACAddress(0)

    public var isBroadcast: Bool { value == 0xFFFF_FFFF_FFFF }
    /// The I/G bit: least significant bit of the first byte. True for
    /// broadcast too.
    public var isMulticast: Bool { (value >> 40) & 1 == 1 }
    /// The U/L bit: second least significant bit of the first byte.
    public var isLocallyAdministered: Bool { (value >> 40) & 2 == 2 }

    /// Writes the 6 bytes in wire order. HAZARD: `p` must point at 6
    /// writable bytes.
    @inline(__always)
    public func write(to p: UnsafeMutableRawPointer) {
        p.storeBytes(of: UInt16(truncatingIfNeeded: value >> 32).bigEndian, as: UInt16.self)
        (p + 2).storeBytes(of: UInt32(truncatingIfNeeded: value).bigEndian, as: UInt32.self)
    }

    /// Reads 6 bytes in wire order. HAZARD: `p` must point at 6 readable
    /// bytes.
    @inline(__always)
    public static func read(from p: UnsafeRawPointer) -> MACAddress {
        let hi = UInt16(bigEndian: p.loadUnaligned(as: UInt16.self))
        let lo = UInt32(bigEndian: (p + 2).loadUnaligned(as: UInt32.self))
        return MACAddress(UInt64(hi) << 32 | UInt64(lo))
    }

    public var description: String {
        let hex: StaticString = "0123456789abcdef"
        var s = ""
        s.reserveCapacity(17)
        hex.withUTF8Buffer { h in
            for i in 0..<6 {
                let byte = UInt8(truncatingIfNeeded: value >> UInt64(40 - 8 * i))
                if i > 0 { s.unicodeScalars.append(":") }
                s.unicodeScalars.append(Unicode.Scalar(h[Int(byte >> 4)]))
                s.unicodeScalars.append(Unicode.Scalar(h[Int(byte & 0xF)]))
            }
        }
        return s
    }
}
