import SkiffWire
import Testing

@Suite("Internet checksum (RFC 1071, RFC 1624)")
struct ChecksumTests {
    /// Straightforward reference: 16-bit big-endian words, end-around carry.
    static func reference(_ b: [UInt8]) -> UInt16 {
        var s: UInt32 = 0
        var i = 0
        while i + 1 < b.count {
            s += UInt32(b[i]) << 8 | UInt32(b[i + 1])
            i += 2
        }
        if i < b.count { s += UInt32(b[i]) << 8 }
        while s >> 16 != 0 { s = (s & 0xFFFF) + (s >> 16) }
        return ~UInt16(s)
    }

    static func checksum(_ b: [UInt8], initial: UInt32 = 0) -> UInt16 {
        b.withUnsafeBytes { InternetChecksum.fold(InternetChecksum.sum($0, initial: initial)) }
    }

    // RFC 1071 §3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2 (folded),
    // so the checksum field is ~ddf2 = 220d.
    @Test func rfc1071Example() {
        let b: [UInt8] = [0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7]
        #expect(Self.checksum(b) == 0x220D)
        var with = b + [0x22, 0x0D]
        #expect(with.withUnsafeBytes { InternetChecksum.verify($0) })
        with[0] ^= 1
        #expect(!with.withUnsafeBytes { InternetChecksum.verify($0) })
    }

    // The IPv4 header of Linux's echo request in Golden/arp-ping.hex: 8b83.
    @Test func linuxIPv4Header() {
        let h = hex("4500 0054 9a5d 4000 4001 0000 0a63 0001 0a63 0002")
        #expect(Self.checksum(h) == 0x8B83)
    }

    @Test func emptyAndOddLengths() {
        #expect(Self.checksum([]) == 0xFFFF)
        #expect(Self.checksum([0xAB]) == ~UInt16(0xAB00))
        #expect(Self.checksum([0x12, 0x34, 0x56]) == ~UInt16(0x1234 + 0x5600))
    }

    @Test func matchesReferenceForEveryLengthAndAlignment() {
        var rng = SeededRNG(seed: 1071)
        let pool = (0..<300).map { _ in UInt8.random(in: 0...255, using: &rng) }
        for length in 0..<200 {
            for start in 0..<8 {
                let slice = Array(pool[start..<(start + length)])
                let got = pool.withUnsafeBytes {
                    InternetChecksum.fold(InternetChecksum.sum(UnsafeRawBufferPointer(rebasing: $0[start..<(start + length)])))
                }
                #expect(got == Self.reference(slice), "length \(length) start \(start)")
            }
        }
    }

    /// Long buffers take the four-accumulator path: random MSS-sized and jumbo payloads, at
    /// every alignment, against the word-by-word reference.
    @Test func longBuffersMatchReference() {
        var rng = SeededRNG(seed: 1448)
        let pool = (0..<9_100).map { _ in UInt8.random(in: 0...255, using: &rng) }
        for length in [64, 65, 95, 96, 1448, 1460, 4099, 9001] {
            for start in 0..<8 {
                let slice = Array(pool[start..<(start + length)])
                #expect(Self.checksum(slice) == Self.reference(slice), "length \(length) start \(start)")
            }
        }
    }

    @Test func allOnesDoesNotOverflow() {
        let b = [UInt8](repeating: 0xFF, count: 65536)
        #expect(Self.checksum(b) == Self.reference(b))
        #expect(Self.checksum(b, initial: 0xFFFF_FFFF) == Self.reference(b + [0xFF, 0xFF, 0xFF, 0xFF]))
    }

    @Test func chainingEvenPiecesEqualsWhole() {
        var rng = SeededRNG(seed: 7)
        let b = (0..<1001).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let split = b.withUnsafeBytes { all -> UInt16 in
            var s = InternetChecksum.sum(UnsafeRawBufferPointer(rebasing: all[0..<100]))
            s = InternetChecksum.sum(UnsafeRawBufferPointer(rebasing: all[100..<602]), initial: s)
            s = InternetChecksum.sum(UnsafeRawBufferPointer(rebasing: all[602...]), initial: s)
            return InternetChecksum.fold(s)
        }
        #expect(split == Self.reference(b))
    }

    @Test func pseudoHeader() {
        let s = InternetChecksum.pseudoHeaderSum(source: IPv4Address(10, 99, 0, 1), destination: IPv4Address(10, 99, 0, 2),
                                                 protocol: 6, length: 40)
        #expect(s == 0x0A63 + 0x0001 + 0x0A63 + 0x0002 + 6 + 40)
    }

    // RFC 1624 eqn 3 against a full recompute, over seeded random edits of
    // random 16- and 32-bit fields.
    @Test func incrementalUpdateEqualsRecompute() {
        var rng = SeededRNG(seed: 1624)
        for _ in 0..<2000 {
            let n = Int.random(in: 4...64, using: &rng) & ~1
            var b = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            var c = Self.reference(b)
            for _ in 0..<8 {
                if Bool.random(using: &rng) {
                    let at = Int.random(in: 0..<(n / 2), using: &rng) * 2
                    let old = b.be16(at)
                    let new = UInt16.random(in: 0...0xFFFF, using: &rng)
                    b[at] = UInt8(new >> 8)
                    b[at + 1] = UInt8(new & 0xFF)
                    c = InternetChecksum.update(checksum: c, old: old, new: new)
                } else {
                    let at = Int.random(in: 0..<(n / 2 - 1), using: &rng) * 2
                    let old = UInt32(b.be16(at)) << 16 | UInt32(b.be16(at + 2))
                    let new = UInt32.random(in: 0...UInt32.max, using: &rng)
                    for k in 0..<4 { b[at + k] = UInt8(truncatingIfNeeded: new >> UInt32(24 - 8 * k)) }
                    c = InternetChecksum.update(checksum: c, old: old, new: new)
                }
                #expect(c == Self.reference(b))
            }
        }
    }

    // Decrementing a TTL: the classic RFC 1624 case, on a real header.
    @Test func ttlDecrementInPlace() throws {
        var h = hex("4500 0054 9a5d 4000 4001 8b83 0a63 0001 0a63 0002")
        h.withUnsafeMutableBytes { IPv4Header.setTTL(63, inHeader: $0) }
        #expect(h[8] == 63)
        #expect(h.withUnsafeBytes { InternetChecksum.verify($0) })
        var fresh = h
        fresh[10] = 0
        fresh[11] = 0
        #expect(h.be16(10) == Self.checksum(fresh))
    }
}
