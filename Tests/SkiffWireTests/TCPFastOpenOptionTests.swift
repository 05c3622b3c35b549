import Testing
import SkiffWire

/// The Fast Open option (RFC 7413 §4.1.1, kind 34; kind 254 + magic 0xF989) in Linux's layout,
/// and how malformed ones are read (as Linux's `tcp_parse_fastopen_option`: ignored, not fatal).
@Suite struct TCPFastOpenOptionTests {
    static func parse(_ bytes: [UInt8]) throws -> TCPOptions {
        try bytes.withUnsafeBytes { b throws(WireError) in try TCPOptions.parse(b) }
    }

    static func emit(_ o: TCPOptions) -> [UInt8] {
        var out = [UInt8](repeating: 0xEE, count: o.encodedLength)
        out.withUnsafeMutableBytes { _ = o.emit(into: $0) }
        return out
    }

    static let cookie8 = [UInt8](arrayLiteral: 0x30, 0x21, 0xb9, 0xd8, 0x89, 0x01, 0x7e, 0xeb)

    /// Found by the fuzzer: four SACK blocks (34 bytes) and a 4-byte cookie (6 bytes) fill 40
    /// bytes packed tight, but Linux's layout pads both (NOP NOP before SACK, two NOPs after the
    /// cookie); re-emitted, the blocks that no longer fit are dropped, the cookie is kept.
    @Test func tightlyPackedSackAndCookieReEmitWithTheSackBlocksThatFit() throws {
        var area: [UInt8] = [5, 34]
        for k in 0..<8 { area += [0, 0, 0, UInt8(k + 1)] }
        area += [34, 6, 0xAA, 0xBB, 0xCC, 0xDD]
        #expect(area.count == 40)
        let o = try Self.parse(area)
        #expect(o.sackBlocks.count == 4 && o.fastOpen?.cookie.count == 4)
        #expect(o.emittedSACKBlockCount == 3 && o.encodedLength == 36)
        let again = try Self.parse(Self.emit(o))
        #expect(Array(again.sackBlocks) == Array(o.sackBlocks.prefix(3)))
        #expect(again.fastOpen == o.fastOpen)
    }

    @Test func kind34CookieIsPaddedWithTwoNops() throws {
        let c = try #require(Self.cookie8.withUnsafeBytes { TCPFastOpenCookie(bytes: $0) })
        let o = TCPOptions(fastOpen: TCPFastOpenOption(cookie: c, experimental: false))
        let bytes = Self.emit(o)
        #expect(bytes == [34, 10] + Self.cookie8 + [1, 1])
        #expect(try Self.parse(bytes) == o)
    }

    @Test func experimentalCookieCarriesTheMagic() throws {
        let c = try #require(Self.cookie8.withUnsafeBytes { TCPFastOpenCookie(bytes: $0) })
        let o = TCPOptions(fastOpen: TCPFastOpenOption(cookie: c, experimental: true))
        let bytes = Self.emit(o)
        #expect(bytes == [254, 12, 0xf9, 0x89] + Self.cookie8)
        #expect(try Self.parse(bytes) == o)
    }

    @Test func cookieRequestsInBothKinds() throws {
        #expect(Self.emit(TCPOptions(fastOpen: TCPFastOpenOption(cookie: .request, experimental: false))) == [34, 2, 1, 1])
        #expect(Self.emit(TCPOptions(fastOpen: TCPFastOpenOption(cookie: .request, experimental: true))) == [254, 4, 0xf9, 0x89])
        #expect(try Self.parse([34, 2, 1, 1]).fastOpen == TCPFastOpenOption(cookie: .request, experimental: false))
    }

    /// Linux's SYN-ACK layout: MSS, SACK-permitted with timestamps, window scale, then the cookie.
    @Test func cookieComesAfterTheOtherSynOptions() throws {
        let c = try #require(Self.cookie8.withUnsafeBytes { TCPFastOpenCookie(bytes: $0) })
        let o = TCPOptions(maximumSegmentSize: 1460, windowScale: 8, sackPermitted: true,
                           timestamp: TCPTimestamp(value: 1, echo: 2), fastOpen: TCPFastOpenOption(cookie: c, experimental: true))
        let bytes = Self.emit(o)
        #expect(bytes.count == 32)
        #expect(Array(bytes[20...]) == [254, 12, 0xf9, 0x89] + Self.cookie8)
    }

    @Test func cookieLengthsFollowRFC7413() {
        for n in 0...18 {
            let ok = [UInt8](repeating: 1, count: n).withUnsafeBytes { TCPFastOpenCookie(bytes: $0) } != nil
            #expect(ok == (n == 0 || (n >= 4 && n <= 16 && n % 2 == 0)), "length \(n)")
        }
    }

    /// Odd, too short or too long cookies, and kind 254 without the magic, leave the option out
    /// without failing the segment; the options around it are still read.
    @Test func malformedFastOpenOptionsAreIgnored() throws {
        let cases: [[UInt8]] = [
            [34, 5, 1, 2, 3, 1, 1, 1],                       // odd cookie length 3
            [34, 4, 1, 2],                                   // 2-byte cookie
            [34, 20] + [UInt8](repeating: 9, count: 18),     // 18-byte cookie
            [254, 12, 0x12, 0x34] + Self.cookie8,               // another experiment
            [254, 3, 0xf9, 1],                               // magic cut short
            [254, 7, 0xf9, 0x89, 1, 2, 3, 1],                // odd after the magic
        ]
        for c in cases {
            let o = try Self.parse([2, 4, 5, 0xb4] + c)
            #expect(o.fastOpen == nil, "\(c)")
            #expect(o.maximumSegmentSize == 1460)
        }
    }

    @Test func truncatedFastOpenOptionThrows() {
        for bytes: [UInt8] in [[34], [34, 10, 1, 2, 3], [254, 12, 0xf9, 0x89, 1], [34, 1]] {
            #expect(throws: WireError.badOptionLength) { try Self.parse(bytes) }
        }
    }
}
