/// A stable hash of a packet's flow: addresses, protocol and ports.
/// Linux: `skb_get_hash()` over the flow dissector's keys (jhash); here a multiply-xorshift mix,
/// the same for both directions' packets only when addresses match (as Linux's is).
public enum FlowHash {
    @inline(__always)
    static func mix(_ x: UInt64) -> UInt32 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z = z ^ (z >> 31)
        let h = UInt32(truncatingIfNeeded: z) ^ UInt32(truncatingIfNeeded: z >> 32)
        return h == 0 ? 1 : h
    }

    /// Hash of an IPv4 packet starting at its IP header. Non-first fragments and short packets
    /// hash on addresses and protocol only.
    @inline(__always)
    public static func ipv4(packet p: UnsafeRawPointer, length: Int) -> UInt32 {
        guard length >= 20 else { return 1 }
        let ihl = Int(p.load(as: UInt8.self) & 0x0F) * 4
        let proto = p.load(fromByteOffset: 9, as: UInt8.self)
        let src = UInt64(p.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
        let dst = UInt64(p.loadUnaligned(fromByteOffset: 16, as: UInt32.self))
        var ports: UInt64 = 0
        let fragField = UInt16(p.load(fromByteOffset: 6, as: UInt8.self)) << 8 | UInt16(p.load(fromByteOffset: 7, as: UInt8.self))
        if (proto == 6 || proto == 17), fragField & 0x1FFF == 0, fragField & 0x2000 == 0, ihl >= 20, length >= ihl + 4 {
            ports = UInt64(p.loadUnaligned(fromByteOffset: ihl, as: UInt32.self))
        }
        return mix((src << 32 | dst) ^ (ports << 8) ^ UInt64(proto))
    }

    public static func ipv4(frame: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = frame.baseAddress else { return 1 }
        return ipv4(packet: base, length: frame.count)
    }
}
