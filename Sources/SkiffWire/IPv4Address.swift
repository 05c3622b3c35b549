/// An IPv4 address (RFC 791), stored as a host-order `UInt32`.
///
/// `10.0.0.1` has `value == 0x0A00_0001`. Ordering is numeric, which is
/// also lexicographic by octet.
public struct IPv4Address: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The address in host byte order.
    public var value: UInt32

    public init(_ value: UInt32) {
        self.value = value
    }

    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// Parses strict dotted-quad text ("192.0.2.1").
    ///
    /// Exactly four decimal octets 0...255; a leading zero ("01") is
    /// rejected, as glibc's `inet_pton` does, so the text cannot be
    /// mistaken for octal. Returns `nil` for anything else.
    public init?(_ text: String) {
        var result: UInt32 = 0
        var dots = 0
        var current: UInt32 = 0
        var digits = 0
        for c in text.utf8 {
            if c == UInt8(ascii: ".") {
                guard digits > 0, dots < 3 else { return nil }
                result = result << 8 | current
                dots += 1
                current = 0
                digits = 0
            } else if c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") {
                if digits > 0, current == 0 { return nil }
                current = current * 10 + UInt32(c - UInt8(ascii: "0"))
                digits += 1
                guard current <= 255 else { return nil }
            } else {
                return nil
            }
        }
        guard digits > 0, dots == 3 else { return nil }
        value = result << 8 | current
    }

    /// 0.0.0.0
    public static let any = IPv4Address(0)
    /// 255.255.255.255 (limited broadcast, RFC 919)
    public static let broadcast = IPv4Address(0xFFFF_FFFF)

    /// 224.0.0.0/4 (RFC 5771).
    public var isMulticast: Bool { value & 0xF000_0000 == 0xE000_0000 }
    /// Exactly 255.255.255.255. Directed broadcast needs a netmask and is
    /// not detected here.
    public var isBroadcast: Bool { value == 0xFFFF_FFFF }
    /// 127.0.0.0/8.
    public var isLoopback: Bool { value >> 24 == 127 }
    /// 0.0.0.0.
    public var isUnspecified: Bool { value == 0 }

    /// The four octets, most significant first.
    public var octets: (UInt8, UInt8, UInt8, UInt8) {
        (UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16),
         UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value))
    }

    /// True when `self` and `other` share the top `prefixLength` bits.
    /// `prefixLength` is clamped to 0...32.
    public func isInSameSubnet(as other: IPv4Address, prefixLength: Int) -> Bool {
        let p = max(0, min(32, prefixLength))
        if p == 0 { return true }
        let mask: UInt32 = p == 32 ? 0xFFFF_FFFF : ~(0xFFFF_FFFF >> UInt32(p))
        return value & mask == other.value & mask
    }

    public static func < (lhs: IPv4Address, rhs: IPv4Address) -> Bool {
        lhs.value < rhs.value
    }

    public var description: String {
        let o = octets
        return "\(o.0).\(o.1).\(o.2).\(o.3)"
    }

    /// Reads four bytes in network order. HAZARD: `p` must point at 4
    /// readable bytes.
    @inline(__always)
    public static func read(from p: UnsafeRawPointer) -> IPv4Address {
        IPv4Address(UInt32(bigEndian: p.loadUnaligned(as: UInt32.self)))
    }

    /// Writes four bytes in network order. HAZARD: `p` must point at 4
    /// writable bytes.
    @inline(__always)
    public func write(to p: UnsafeMutableRawPointer) {
        p.storeBytes(of: value.bigEndian, as: UInt32.self)
    }
}
