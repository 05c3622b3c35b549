import SkiffWire
import Testing

/// Feeds `b` to every parser and view at every layer boundary that could
/// apply, and checks that whatever parses re-emits consistently. Returns the
/// number of successful parses (so a test can see the input reached deep).
@discardableResult
func exerciseAllParsers(_ b: UnsafeRawBufferPointer) -> Int {
    var parsed = 0
    func slice(_ from: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: b[min(from, b.count)...])
    }

    if let eth = try? EthernetHeader.parse(b) {
        parsed += 1
        let v = try? EthernetView(checking: b)
        #expect(v?.header == eth && v?.headerLength == eth.length)
        var out = [UInt8](repeating: 0, count: eth.length)
        out.withUnsafeMutableBytes { eth.emit(into: $0) }
        #expect(out == Array(b[0..<eth.length]))
    }

    // Try each layer at the offsets where it would sit behind Ethernet
    // (14 or 18) and at offset 0 (raw input).
    for l3 in [0, 14, 18] {
        let p = slice(l3)
        if let arp = try? ARPPacket.parse(p) {
            parsed += 1
            var out = [UInt8](repeating: 0, count: 28)
            out.withUnsafeMutableBytes { arp.emit(into: $0) }
            #expect(out == Array(p[0..<28]))
        }
        var transports = [slice(l3 + 20)]
        if let ip = try? IPv4View(checking: p, verifyChecksum: false) {
            parsed += 1
            let h = ip.header
            #expect((try? IPv4Header.parse(p, verifyChecksum: false)) == h)
            #expect(h.headerLength == ip.headerLength && Int(h.totalLength) == ip.totalLength)
            #expect(ip.payload.count == ip.totalLength - ip.headerLength)
            var out = [UInt8](repeating: 0, count: h.headerLength)
            out.withUnsafeMutableBytes { h.emit(into: $0) }
            var expected = Array(p[0..<h.headerLength])
            expected[10] = out[10]
            expected[11] = out[11]
            #expect(out == expected)
            var again = h
            again.checksum = out.be16(10)
            let whole = out + Array(ip.payload)
            #expect(whole.withUnsafeBytes { try? IPv4Header.parse($0) } == again)
            transports.append(ip.payload)
            for (i, option) in h.options.enumerated() where i < 64 {
                #expect(option.offset + option.length <= h.options.count)
            }
        }
        for t in transports {
            if let icmp = try? ICMPv4View(checking: t, verifyChecksum: false) {
                parsed += 1
                let h = icmp.header
                var out = Array(t)
                out.withUnsafeMutableBytes { o in
                    h.emit(into: o, payload: UnsafeRawBufferPointer(rebasing: o[8...]))
                }
                #expect(out[0] == t[0] && out[1] == t[1] && Array(out[4..<8]) == Array(t[4..<8]))
                #expect(out.withUnsafeBytes { try? ICMPv4Header.parse($0) }?.message == h.message)
            }
            if let udp = try? UDPView(checking: t) {
                parsed += 1
                let h = udp.header
                var out = [UInt8](repeating: 0, count: 8)
                out.withUnsafeMutableBytes { h.emit(into: $0) }
                #expect(out == Array(t[0..<8]))
                #expect(udp.payload.count == udp.length - 8)
                _ = udp.verifyChecksum(source: .any, destination: .broadcast)
            }
            if let tcp = try? TCPView(checking: t) {
                parsed += 1
                var h = tcp.header
                #expect(h.headerLength <= 60)
                var out = [UInt8](repeating: 0, count: h.headerLength)
                out.withUnsafeMutableBytes { h.emit(into: $0) }
                #expect(Array(out[0..<12]) == Array(t[0..<12]) && Array(out[13..<20]) == Array(t[13..<20]))
                let back = out.withUnsafeBytes { try? TCPHeader.parse($0) }
                h.dataOffset = h.headerLength
                #expect(back == h)
                _ = tcp.verifyChecksum(source: .any, destination: .any)
                _ = tcp.payload.count
            }
        }
    }
    return parsed
}

@Suite("Random and mutated frames never trap")
struct RandomInputTests {
    static func mutate(_ frame: [UInt8], _ rng: inout SeededRNG) -> [UInt8] {
        var f = frame
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            switch Int.random(in: 0..<8, using: &rng) {
            case 0, 1:  // flip a bit
                if !f.isEmpty { f[Int.random(in: 0..<f.count, using: &rng)] ^= 1 << UInt8.random(in: 0..<8, using: &rng) }
            case 2:  // random byte
                if !f.isEmpty { f[Int.random(in: 0..<f.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            case 3:  // truncate
                f = Array(f.prefix(Int.random(in: 0...f.count, using: &rng)))
            case 4:  // extend
                f += (0..<Int.random(in: 1...40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 5:  // lie in a length-like field: IHL/total length, UDP length, TCP offset, option lengths
                let spots = [14, 16, 17, 38, 39, 46, 55, 56, 57, 59, 63]
                let at = spots.randomElement(using: &rng)!
                if at < f.count { f[at] = [0, 1, 2, 0x45, 0x4F, 0xF0, 0xFF, 40, 41].randomElement(using: &rng)! }
            case 6:  // repair the IPv4 header checksum so deeper layers are reached
                if f.count >= 34, f[14] >> 4 == 4 {
                    let hl = min(f.count - 14, Int(f[14] & 0xF) * 4)
                    f[24] = 0
                    f[25] = 0
                    let c = f.withUnsafeBytes { InternetChecksum.fold(InternetChecksum.sum(UnsafeRawBufferPointer(rebasing: $0[14..<(14 + hl)]))) }
                    f[24] = UInt8(c >> 8)
                    f[25] = UInt8(c & 0xFF)
                }
            default:  // VLAN-tag it
                if f.count >= 14 { f.insert(contentsOf: [0x81, 0x00, UInt8.random(in: 0...255, using: &rng), 5], at: 12) }
            }
        }
        return f
    }

    @Test func hundredThousandFrames() throws {
        var seeds: [[UInt8]] = []
        for name in Golden.names { seeds += try Golden.frames(name) }
        var rng = SeededRNG(seed: 0x5EED_F00D)
        var parses = 0
        for i in 0..<100_000 {
            let frame: [UInt8]
            if i % 4 == 0 {
                frame = (0..<Int.random(in: 0...120, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            } else {
                frame = Self.mutate(seeds.randomElement(using: &rng)!, &rng)
            }
            parses += frame.withUnsafeBytes { exerciseAllParsers($0) }
            _ = try? dissect(frame)
        }
        #expect(parses > 100_000)  // the inputs reached past the first layer
    }

    // The empty buffer (nil base address) goes through every entry point.
    @Test func emptyBuffer() {
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        #expect(wireError { try EthernetHeader.parse(empty) } == .truncated)
        #expect(wireError { try ARPPacket.parse(empty) } == .truncated)
        #expect(wireError { try IPv4Header.parse(empty) } == .truncated)
        #expect(wireError { try ICMPv4Header.parse(empty) } == .truncated)
        #expect(wireError { try UDPHeader.parse(empty) } == .truncated)
        #expect(wireError { try TCPHeader.parse(empty) } == .truncated)
        #expect(wireError { try TCPOptions.parse(empty) } == nil)
        #expect(wireError { try IPv4Options(bytes: empty) } == nil)
        #expect(InternetChecksum.sum(empty) == 0)
        #expect(exerciseAllParsers(empty) == 0)
    }
}
