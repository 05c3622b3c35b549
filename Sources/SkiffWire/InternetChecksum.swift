/// The Internet checksum: the 16-bit ones-complement of the
/// ones-complement sum of 16-bit big-endian words (RFC 1071), with
/// incremental update per RFC 1624.
///
/// Typical use:
/// ```
/// var s = InternetChecksum.pseudoHeaderSum(source: a, destination: b, protocol: 6, length: n)
/// s = InternetChecksum.sum(segment, initial: s)   // checksum field zeroed first
/// let field = InternetChecksum.fold(s)
/// ```
public enum InternetChecksum {
    /// Adds `bytes` as big-endian 16-bit words to `initial` and returns the
    /// unfolded 32-bit ones-complement accumulator.
    ///
    /// An odd final byte is padded with a zero low byte (RFC 1071 §4.1).
    /// HAZARD: when chaining, every buffer except the last must have even
    /// length, or the words of the next buffer are misaligned by a byte.
    ///
    /// Processes 8 bytes per step with unaligned loads in native byte order
    /// (the ones-complement sum is byte-order independent, RFC 1071 §2(B)),
    /// and swaps once at the end.
    public static func sum(_ bytes: UnsafeRawBufferPointer, initial: UInt32 = 0) -> UInt32 {
        var acc: UInt64 = 0
        var i = 0
        let n = bytes.count
        if let base = bytes.baseAddress {
            if n >= 64 {
                // Long buffers: 32-bit halves into four independent 64-bit sums, which cannot
                // overflow below 2^32 words, so there is no carry chain between the additions.
                var a0: UInt64 = 0, a1: UInt64 = 0, a2: UInt64 = 0, a3: UInt64 = 0
                while i + 32 <= n {
                    let w0 = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                    let w1 = base.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self)
                    let w2 = base.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self)
                    let w3 = base.loadUnaligned(fromByteOffset: i + 24, as: UInt64.self)
                    a0 &+= (w0 & 0xFFFF_FFFF) &+ (w0 >> 32)
                    a1 &+= (w1 & 0xFFFF_FFFF) &+ (w1 >> 32)
                    a2 &+= (w2 & 0xFFFF_FFFF) &+ (w2 >> 32)
                    a3 &+= (w3 & 0xFFFF_FFFF) &+ (w3 >> 32)
                    i += 32
                }
                acc = add(add(a0, a1), add(a2, a3))
            }
            while i + 32 <= n {
                acc = add(acc, base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                acc = add(acc, base.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self))
                acc = add(acc, base.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self))
                acc = add(acc, base.loadUnaligned(fromByteOffset: i + 24, as: UInt64.self))
                i += 32
            }
            while i + 8 <= n {
                acc = add(acc, base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                i += 8
            }
            if i + 4 <= n {
                acc = add(acc, UInt64(base.loadUnaligned(fromByteOffset: i, as: UInt32.self)))
                i += 4
            }
            if i + 2 <= n {
                acc = add(acc, UInt64(base.loadUnaligned(fromByteOffset: i, as: UInt16.self)))
                i += 2
            }
            if i < n {
                // The odd byte is the high half of a big-endian word; in
                // native (memory-order) arithmetic that is this value.
                let b = base.load(fromByteOffset: i, as: UInt8.self)
                acc = add(acc, UInt64(UInt16(bigEndian: UInt16(b) << 8)))
            }
        }
        // Fold 64 -> 16 bits, still in memory order.
        var s = (acc & 0xFFFF_FFFF) + (acc >> 32)
        s = (s & 0xFFFF_FFFF) + (s >> 32)
        var t = UInt32(truncatingIfNeeded: s)
        t = (t & 0xFFFF) + (t >> 16)
        t = (t & 0xFFFF) + (t >> 16)
        let wordSum = UInt32(UInt16(bigEndian: UInt16(truncatingIfNeeded: t)))
        let (r, carry) = initial.addingReportingOverflow(wordSum)
        return carry ? r &+ 1 : r
    }

    @inline(__always)
    private static func add(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (r, carry) = a.addingReportingOverflow(b)
        return r &+ (carry ? 1 : 0)
    }

    /// Folds a 32-bit accumulator to 16 bits with end-around carry and
    /// complements it: the value to store in a checksum field.
    public static func fold(_ sum: UInt32) -> UInt16 {
        var s = sum
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        return ~UInt16(truncatingIfNeeded: s)
    }

    /// The TCP/UDP pseudo-header sum (RFC 9293 §3.1, RFC 768): source,
    /// destination, zero + protocol, and the transport length.
    public static func pseudoHeaderSum(
        source: IPv4Address, destination: IPv4Address, protocol: UInt8, length: UInt16
    ) -> UInt32 {
        (source.value >> 16) + (source.value & 0xFFFF)
            + (destination.value >> 16) + (destination.value & 0xFFFF)
            + UInt32(`protocol`) + UInt32(length)
    }

    /// Incrementally updates a checksum field when one 16-bit word changes
    /// from `old` to `new`: HC' = ~(~HC + ~m + m') (RFC 1624 eqn. 3).
    ///
    /// Equal to a full recomputation except when the new data sums to zero
    /// in every word (then this yields 0xFFFF where recomputation yields
    /// 0x0000's complement twin); both verify.
    public static func update(checksum: UInt16, old: UInt16, new: UInt16) -> UInt16 {
        fold(UInt32(~checksum) + UInt32(~old) + UInt32(new))
    }

    /// As ``update(checksum:old:new:)-(UInt16,UInt16,UInt16)`` for a 32-bit
    /// field (an IPv4 address, a sequence number) aligned on a 16-bit word.
    public static func update(checksum: UInt16, old: UInt32, new: UInt32) -> UInt16 {
        fold(UInt32(~checksum)
            + UInt32(~UInt16(truncatingIfNeeded: old >> 16)) + UInt32(~UInt16(truncatingIfNeeded: old))
            + (new >> 16) + (new & 0xFFFF))
    }

    /// True when the bytes, including their checksum field, sum to 0xFFFF
    /// (RFC 1071 §1 (3)). Pass a pseudo-header sum as `initial` for TCP/UDP.
    public static func verify(_ bytes: UnsafeRawBufferPointer, initial: UInt32 = 0) -> Bool {
        fold(sum(bytes, initial: initial)) == 0
    }
}
