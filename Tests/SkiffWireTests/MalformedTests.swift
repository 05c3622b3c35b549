import SkiffWire
import Testing

/// Calls `parse` on the first `n` bytes of `bytes`.
func errorOnPrefix(_ bytes: [UInt8], _ n: Int, _ parse: (UnsafeRawBufferPointer) throws -> Void) -> WireError? {
    bytes.withUnsafeBytes { b in wireError { try parse(UnsafeRawBufferPointer(rebasing: b[0..<n])) } }
}

func errorOf(_ bytes: [UInt8], _ parse: (UnsafeRawBufferPointer) throws -> Void) -> WireError? {
    errorOnPrefix(bytes, bytes.count, parse)
}

/// Re-computes the IPv4 header checksum of `b` (IHL taken from byte 0,
/// clamped to the buffer) so that a test reaches the check it aims at.
func fixIPv4Checksum(_ b: inout [UInt8]) {
    let hl = min(b.count, Int(b[0] & 0x0F) * 4)
    b[10] = 0
    b[11] = 0
    let c = b.withUnsafeBytes { InternetChecksum.fold(InternetChecksum.sum(UnsafeRawBufferPointer(rebasing: $0[0..<hl]))) }
    b[10] = UInt8(c >> 8)
    b[11] = UInt8(c & 0xFF)
}

@Suite("Malformed input is refused with a typed error")
struct MalformedTests {
    // Linux's echo request from Golden/arp-ping.hex, without Ethernet.
    static let echo = hex("""
        4500 0054 9a5d 4000 4001 8b83 0a63 0001 0a63 0002
        0800 7a22 1a13 0001 6c09 076b 0000 0000 3082 0100 0000 0000
        1011 1213 1415 1617 1819 1a1b 1c1d 1e1f 2021 2223 2425 2627
        2829 2a2b 2c2d 2e2f 3031 3233 3435 3637
        """)

    static func golden(_ name: String, _ i: Int) throws -> [UInt8] { try Golden.frames(name)[i] }

    // MARK: Ethernet

    @Test func ethernetTruncations() throws {
        let frame = try Self.golden("arp-ping", 0)
        for n in 0..<14 {
            #expect(errorOnPrefix(frame, n) { _ = try EthernetHeader.parse($0) } == .truncated, "\(n)")
            #expect(errorOnPrefix(frame, n) { _ = try EthernetView(checking: $0) } == .truncated, "\(n)")
        }
        #expect(errorOnPrefix(frame, 14) { _ = try EthernetHeader.parse($0) } == nil)
        let tagged = try Self.golden("vlan", 0)
        for n in 14..<18 {
            #expect(errorOnPrefix(tagged, n) { _ = try EthernetHeader.parse($0) } == .truncated, "\(n)")
        }
        #expect(errorOnPrefix(tagged, 18) { _ = try EthernetHeader.parse($0) } == nil)
    }

    // MARK: ARP

    @Test func arpTruncationsAndFields() throws {
        let arp = Array(try Self.golden("arp-ping", 1)[14...])
        for n in 0..<28 {
            #expect(errorOnPrefix(arp, n) { _ = try ARPPacket.parse($0) } == .truncated, "\(n)")
        }
        func mutated(_ i: Int, _ v: UInt8) -> WireError? {
            var m = arp
            m[i] = v
            return errorOf(m) { _ = try ARPPacket.parse($0) }
        }
        #expect(mutated(1, 6) == .badHardwareType)        // IEEE 802 (6)
        #expect(mutated(0, 1) == .badHardwareType)
        #expect(mutated(2, 0x86) == .badProtocolType)     // 0x8600
        #expect(mutated(3, 0xDD) == .badProtocolType)
        #expect(mutated(4, 8) == .badAddressLength)       // hw len 8
        #expect(mutated(4, 0) == .badAddressLength)
        #expect(mutated(5, 16) == .badAddressLength)      // proto len 16
        #expect(mutated(7, 3) == .badOperation)           // RARP request
        #expect(mutated(7, 0) == .badOperation)
        #expect(mutated(6, 1) == .badOperation)           // 0x0102
    }

    // MARK: IPv4

    @Test func ipv4Truncations() {
        for n in 0..<20 {
            #expect(errorOnPrefix(Self.echo, n) { _ = try IPv4Header.parse($0) } == .truncated, "\(n)")
        }
        // The header fits but total length (84) claims more than is there.
        for n in 20..<84 {
            #expect(errorOnPrefix(Self.echo, n) { _ = try IPv4Header.parse($0) } == .badTotalLength, "\(n)")
            #expect(errorOnPrefix(Self.echo, n) { _ = try IPv4View(checking: $0) } == .badTotalLength, "\(n)")
        }
        #expect(errorOf(Self.echo) { _ = try IPv4Header.parse($0) } == nil)
        // Ethernet padding after the datagram is fine.
        #expect(errorOf(Self.echo + [0, 0, 0, 0]) { _ = try IPv4Header.parse($0) } == nil)
    }

    @Test func ipv4WithOptionsTruncations() throws {
        let rr = Array(try Self.golden("ping-record-route", 0)[14...])  // IHL 15, total 124
        for n in 20..<60 {
            #expect(errorOnPrefix(rr, n) { _ = try IPv4Header.parse($0) } == .badHeaderLength, "\(n)")
        }
        for n in 60..<124 {
            #expect(errorOnPrefix(rr, n) { _ = try IPv4Header.parse($0) } == .badTotalLength, "\(n)")
        }
    }

    @Test func ipv4BadVersion() {
        for version in [0, 1, 5, 6, 15] as [UInt8] {
            var b = Self.echo
            b[0] = version << 4 | 5
            fixIPv4Checksum(&b)
            #expect(errorOf(b) { _ = try IPv4Header.parse($0) } == .badVersion, "\(version)")
        }
    }

    @Test func ipv4HeaderLengthBelowFive() {
        for ihl in 0..<5 as Range<UInt8> {
            var b = Self.echo
            b[0] = 0x40 | ihl
            #expect(errorOf(b) { _ = try IPv4Header.parse($0) } == .badHeaderLength, "\(ihl)")
        }
    }

    @Test func ipv4HeaderLengthBeyondBuffer() {
        var b = Array(Self.echo[0..<24])  // 24 bytes, IHL 15 wants 60
        b[0] = 0x4F
        b[2] = 0
        b[3] = 24
        #expect(errorOf(b) { _ = try IPv4Header.parse($0, verifyChecksum: false) } == .badHeaderLength)
    }

    @Test func ipv4TotalLengthLies() {
        for total in [0, 1, 19] as [UInt16] {  // below the header length
            var b = Self.echo
            b[2] = UInt8(total >> 8)
            b[3] = UInt8(total & 0xFF)
            fixIPv4Checksum(&b)
            #expect(errorOf(b) { _ = try IPv4Header.parse($0) } == .badTotalLength, "\(total)")
        }
        for total in [85, 1500, 65535] as [UInt16] {  // beyond the buffer
            var b = Self.echo
            b[2] = UInt8(total >> 8)
            b[3] = UInt8(total & 0xFF)
            fixIPv4Checksum(&b)
            #expect(errorOf(b) { _ = try IPv4Header.parse($0) } == .badTotalLength, "\(total)")
        }
        // IHL 6 with total length 20.
        var b = Self.echo
        b[0] = 0x46
        b[2] = 0
        b[3] = 20
        fixIPv4Checksum(&b)
        #expect(errorOf(b) { _ = try IPv4Header.parse($0) } == .badTotalLength)
    }

    @Test func ipv4BadChecksum() {
        for i in 0..<20 where i != 10 && i != 11 {
            var b = Self.echo
            b[i] ^= 0x01
            let e = errorOf(b) { _ = try IPv4Header.parse($0) }
            // Flipping IHL or total length trips an earlier check.
            let expected: WireError = i == 0 ? .badHeaderLength : (i == 2 || i == 3) ? .badTotalLength : .badChecksum
            #expect(e == expected, "\(i)")
            if i >= 1 && i != 2 && i != 3 {
                #expect(errorOf(b) { _ = try IPv4Header.parse($0, verifyChecksum: false) } == nil)
            }
        }
        var b = Self.echo
        b[11] ^= 0xFF
        #expect(errorOf(b) { _ = try IPv4Header.parse($0) } == .badChecksum)
    }

    /// An IHL-6 header whose 4 option bytes are `options`, checksum fixed.
    static func ipv4(options: [UInt8]) -> [UInt8] {
        var b = Array(echo[0..<20]) + options + Array(echo[20...])
        b[0] = 0x46
        b[3] += 4
        fixIPv4Checksum(&b)
        return b
    }

    @Test func ipv4OptionOverrun() {
        #expect(errorOf(Self.ipv4(options: [1, 1, 1, 0])) { _ = try IPv4Header.parse($0) } == nil)
        #expect(errorOf(Self.ipv4(options: [0x44, 4, 5, 0])) { _ = try IPv4Header.parse($0) } == nil)
        for bad: [UInt8] in [
            [0x07, 5, 4, 0],      // length 5 in 4 bytes
            [0x07, 255, 4, 0],    // length 255
            [1, 1, 0x83, 3],      // LSRR, length 3 from offset 2
            [1, 1, 1, 0x07],      // type with no length byte
            [0x07, 0, 0, 0],      // length 0
            [0x07, 1, 0, 0],      // length 1
            [1, 0x82, 1, 0],      // length 1 after NOP
        ] {
            #expect(errorOf(Self.ipv4(options: bad)) { _ = try IPv4Header.parse($0) } == .badOptionLength, "\(bad)")
        }
    }

    // MARK: ICMP

    @Test func icmpTruncationsAndChecksum() {
        let icmp = Array(Self.echo[20...])
        for n in 0..<8 {
            #expect(errorOnPrefix(icmp, n) { _ = try ICMPv4Header.parse($0) } == .truncated, "\(n)")
        }
        // Shorter messages fail the checksum unless the dropped tail sums to 0.
        for n in 8..<icmp.count {
            let ok = icmp.withUnsafeBytes { InternetChecksum.verify(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            #expect(errorOnPrefix(icmp, n) { _ = try ICMPv4Header.parse($0) } == (ok ? nil : .badChecksum), "\(n)")
            #expect(errorOnPrefix(icmp, n) { _ = try ICMPv4Header.parse($0, verifyChecksum: false) } == nil)
        }
        var bad = icmp
        bad[30] ^= 0x40
        #expect(errorOf(bad) { _ = try ICMPv4Header.parse($0) } == .badChecksum)
    }

    // MARK: UDP

    @Test func udpTruncationsAndLengthLies() throws {
        let udp = Array(try Self.golden("udp", 0)[34...])  // length 24
        for n in 0..<8 {
            #expect(errorOnPrefix(udp, n) { _ = try UDPHeader.parse($0) } == .truncated, "\(n)")
        }
        for n in 8..<24 {
            #expect(errorOnPrefix(udp, n) { _ = try UDPHeader.parse($0) } == .badLength, "\(n)")
            #expect(errorOnPrefix(udp, n) { _ = try UDPView(checking: $0) } == .badLength, "\(n)")
        }
        for length in [0, 1, 7] as [UInt8] {
            var b = udp
            b[4] = 0
            b[5] = length
            #expect(errorOf(b) { _ = try UDPHeader.parse($0) } == .badLength, "\(length)")
        }
        var long = udp
        long[5] = 25
        #expect(errorOf(long) { _ = try UDPHeader.parse($0) } == .badLength)
        #expect(!long.withUnsafeBytes {
            UDPHeader.verifyChecksum(datagram: $0, source: IPv4Address(10, 99, 0, 1), destination: IPv4Address(10, 99, 0, 2))
        })
        // Shorter length field than buffer: accepted, payload bounded by it.
        var short = udp
        short[5] = 10
        try short.withUnsafeBytes { b in
            let v = try UDPView(checking: b)
            #expect(v.payload.count == 2)
        }
        #expect([UInt8](repeating: 0, count: 7).withUnsafeBytes {
            !UDPHeader.verifyChecksum(datagram: $0, source: .any, destination: .any)
        })
    }

    // MARK: TCP

    @Test func tcpTruncationsAndDataOffset() throws {
        let syn = Array(try Self.golden("tcp-handshake", 0)[34...])  // data offset 40
        for n in 0..<20 {
            #expect(errorOnPrefix(syn, n) { _ = try TCPHeader.parse($0) } == .truncated, "\(n)")
        }
        for n in 20..<40 {
            #expect(errorOnPrefix(syn, n) { _ = try TCPHeader.parse($0) } == .badDataOffset, "\(n)")
            #expect(errorOnPrefix(syn, n) { _ = try TCPView(checking: $0) } == .badDataOffset, "\(n)")
        }
        for words in 0..<5 as Range<UInt8> {
            var b = syn
            b[12] = words << 4
            #expect(errorOf(b) { _ = try TCPHeader.parse($0) } == .badDataOffset, "\(words)")
        }
        var beyond = syn
        beyond[12] = 0xF0  // 60 bytes in a 40-byte segment
        #expect(errorOf(beyond) { _ = try TCPHeader.parse($0) } == .badDataOffset)
        #expect([UInt8](repeating: 0, count: 19).withUnsafeBytes {
            !TCPHeader.verifyChecksum(segment: $0, source: .any, destination: .any)
        })
    }

    /// A TCP header whose option area is `options` (padded with EOL to 4).
    static func tcp(options: [UInt8]) -> [UInt8] {
        let padded = options + [UInt8](repeating: 0, count: (4 - options.count % 4) % 4)
        var b = [UInt8](repeating: 0, count: 20) + padded
        b[12] = UInt8(b.count / 4) << 4
        return b
    }

    @Test func tcpOptionLengthZeroOneAndOverrun() {
        for kind: UInt8 in [2, 3, 4, 5, 8, 30, 254] {
            for len: UInt8 in [0, 1] {
                #expect(errorOf(Self.tcp(options: [kind, len, 0, 0])) { _ = try TCPHeader.parse($0) } == .badOptionLength,
                        "kind \(kind) len \(len)")
            }
            // The length runs past the end of the option area.
            #expect(errorOf(Self.tcp(options: [1, 1, kind, 3])) { _ = try TCPHeader.parse($0) } == .badOptionLength,
                    "kind \(kind) overrun")
            #expect(errorOf(Self.tcp(options: [kind, 41, 0, 0])) { _ = try TCPHeader.parse($0) } == .badOptionLength)
            // A kind byte with no room for its length byte.
            #expect(errorOf(Self.tcp(options: [1, 1, 1, kind])) { _ = try TCPHeader.parse($0) } == .badOptionLength)
        }
        // Every overrun of a real SYN's options: cut the area short.
        let synOptions = hex("020405b4 0402080a 6271dd82 00000000 0103030a")
        for cut in 1..<synOptions.count {
            let area = Array(synOptions[0..<cut])
            let e = area.withUnsafeBytes { b in wireError { try TCPOptions.parse(b) } }
            let boundaries = [4, 6, 16, 17, 20]  // where a whole option (or NOP) ends
            #expect(e == (boundaries.contains(cut) ? nil : .badOptionLength), "cut \(cut)")
        }
    }

    @Test func tcpKnownOptionsWithWrongLength() {
        for bad: [UInt8] in [
            [2, 3, 5, 0], [2, 5, 5, 180, 0, 0, 0, 0],                 // MSS not 4
            [3, 2, 1, 1], [3, 4, 7, 0],                               // window scale not 3
            [4, 3, 0, 1], [4, 4, 0, 0],                               // SACK-permitted not 2
            [8, 8, 0, 0, 0, 0, 0, 0], [8, 12] + [UInt8](repeating: 0, count: 10),  // timestamps not 10
            [5, 2, 1, 1],                                             // SACK with no block
            [5, 9] + [UInt8](repeating: 0, count: 7),                 // SACK not 2 + 8n
            [5, 11] + [UInt8](repeating: 0, count: 9),
            [5, 18 + 24] + [UInt8](repeating: 0, count: 38),          // 5 blocks
        ] {
            #expect(errorOf(Self.tcp(options: bad)) { _ = try TCPHeader.parse($0) } == .badOptionLength, "\(bad)")
        }
        // Unknown kinds with sane lengths are skipped.
        #expect(errorOf(Self.tcp(options: [30, 6, 1, 2, 3, 4, 254, 2])) { _ = try TCPHeader.parse($0) } == nil)
    }
}
