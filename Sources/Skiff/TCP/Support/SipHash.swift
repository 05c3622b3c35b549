/// A 128-bit SipHash key (Linux: `siphash_key_t`).
public struct SipHashKey: Sendable, Hashable {
    public var k0: UInt64
    public var k1: UInt64

    public init(_ k0: UInt64, _ k1: UInt64) {
        self.k0 = k0; self.k1 = k1
    }

    /// A key derived from a 64-bit seed by SplitMix64, for stacks seeded from one number.
    public init(seed: UInt64) {
        var s = seed
        k0 = SipHashKey.splitMix(&s)
        k1 = SipHashKey.splitMix(&s)
    }

    @inline(__always)
    static func splitMix(_ state: inout UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// SipHash-2-4 (Aumasson & Bernstein, "SipHash: a fast short-input PRF", 2012; Linux:
/// `lib/siphash.c`), streaming over bytes taken little-endian. Lives on the stack: nothing
/// allocates.
///
///     var h = SipHasher(key: key)
///     h.append(UInt32(a)); h.append(UInt32(b))
///     let x = h.finalize()
public struct SipHasher: Sendable {
    private var v0: UInt64, v1: UInt64, v2: UInt64, v3: UInt64
    /// Bytes not yet compressed, little-endian in the low `tailCount` bytes.
    private var tail: UInt64 = 0
    private var tailCount: Int = 0
    /// Total bytes appended (its low byte goes into the last block).
    private var length: UInt64 = 0

    public init(key: SipHashKey) {
        v0 = key.k0 ^ 0x736f_6d65_7073_6575
        v1 = key.k1 ^ 0x646f_7261_6e64_6f6d
        v2 = key.k0 ^ 0x6c79_6765_6e65_7261
        v3 = key.k1 ^ 0x7465_6462_7974_6573
    }

    @inline(__always)
    private static func rotl(_ x: UInt64, _ b: UInt64) -> UInt64 { (x << b) | (x >> (64 - b)) }

    @inline(__always)
    private mutating func round() {
        v0 &+= v1; v1 = Self.rotl(v1, 13); v1 ^= v0; v0 = Self.rotl(v0, 32)
        v2 &+= v3; v3 = Self.rotl(v3, 16); v3 ^= v2
        v0 &+= v3; v3 = Self.rotl(v3, 21); v3 ^= v0
        v2 &+= v1; v1 = Self.rotl(v1, 17); v1 ^= v2; v2 = Self.rotl(v2, 32)
    }

    /// c = 2 compression rounds for one 8-byte word.
    @inline(__always)
    private mutating func compress(_ m: UInt64) {
        v3 ^= m
        round(); round()
        v0 ^= m
    }

    /// Appends `count` (1...8) little-endian bytes of `bits`.
    @inline(__always)
    private mutating func appendBits(_ bits: UInt64, count: Int) {
        length &+= UInt64(count)
        let free = 8 - tailCount
        if count < free {
            tail |= bits << UInt64(tailCount * 8)
            tailCount += count
        } else {
            let word = tailCount == 0 ? bits : tail | bits << UInt64(tailCount * 8)
            compress(word)
            let left = count - free
            tail = left == 0 ? 0 : bits >> UInt64(free * 8)
            tailCount = left
        }
    }

    public mutating func append(_ x: UInt8) { appendBits(UInt64(x), count: 1) }
    /// Appends the 2 bytes of `x`, least significant first.
    public mutating func append(_ x: UInt16) { appendBits(UInt64(x), count: 2) }
    /// Appends the 4 bytes of `x`, least significant first (Linux `siphash_*u32` words).
    public mutating func append(_ x: UInt32) { appendBits(UInt64(x), count: 4) }
    /// Appends the 8 bytes of `x`, least significant first.
    public mutating func append(_ x: UInt64) { appendBits(x, count: 8) }

    public mutating func append(bytes: UnsafeRawBufferPointer) {
        for b in bytes { append(b) }
    }

    /// d = 4 finalization rounds; the 64-bit result.
    public consuming func finalize() -> UInt64 {
        let last = (length << 56) | tail
        compress(last)
        v2 ^= 0xff
        round(); round(); round(); round()
        return v0 ^ v1 ^ v2 ^ v3
    }

    /// SipHash-2-4 of `bytes`.
    public static func hash(key: SipHashKey, bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h = SipHasher(key: key)
        h.append(bytes: bytes)
        return h.finalize()
    }

    /// SipHash-2-4 of three 32-bit words (Linux: `siphash_3u32`).
    @inline(__always)
    public static func hash(key: SipHashKey, _ a: UInt32, _ b: UInt32, _ c: UInt32) -> UInt64 {
        var h = SipHasher(key: key)
        h.append(a); h.append(b); h.append(c)
        return h.finalize()
    }

    /// SipHash-2-4 of four 32-bit words (Linux: `siphash_4u32`).
    @inline(__always)
    public static func hash(key: SipHashKey, _ a: UInt32, _ b: UInt32, _ c: UInt32, _ d: UInt32) -> UInt64 {
        var h = SipHasher(key: key)
        h.append(a); h.append(b); h.append(c); h.append(d)
        return h.finalize()
    }
}
