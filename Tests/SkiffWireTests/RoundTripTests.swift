import SkiffWire
import Testing

/// Emits `build` into a zeroed buffer of `count` bytes.
func emitted(_ count: Int, _ build: (UnsafeMutableRawBufferPointer) -> Void) -> [UInt8] {
    var b = [UInt8](repeating: 0, count: count)
    b.withUnsafeMutableBytes(build)
    return b
}

@Suite("Emit then parse")
struct RoundTripTests {
    let a = IPv4Address(192, 0, 2, 1)
    let b = IPv4Address(198, 51, 100, 7)

    @Test func ethernetUntaggedAndTagged() throws {
        let plain = EthernetHeader(destination: .broadcast, source: MACAddress(0x02, 0, 0, 0, 0, 9), etherType: EtherType.arp)
        let bytes = emitted(14) { plain.emit(into: $0) }
        #expect(bytes == hex("ffffffffffff 020000000009 0806"))
        #expect(try bytes.withUnsafeBytes { try EthernetHeader.parse($0) } == plain)

        for (pcp, dei, vid) in [(0, false, 1), (7, true, 4095), (5, false, 0), (3, true, 2048)] {
            let tag = VLANTag(pcp: UInt8(pcp), dei: dei, vid: UInt16(vid))
            let h = EthernetHeader(destination: MACAddress(1), source: MACAddress(2), vlan: tag, etherType: EtherType.ipv6)
            #expect(h.length == 18)
            let bytes = emitted(18) { h.emit(into: $0) }
            #expect(bytes[12] == 0x81 && bytes[13] == 0x00 && bytes.be16(14) == tag.tci && bytes.be16(16) == 0x86DD)
            #expect(try bytes.withUnsafeBytes { try EthernetHeader.parse($0) } == h)
            #expect(VLANTag(tci: tag.tci) == tag)
        }
        #expect(VLANTag(pcp: 0xFF, vid: 0xFFFF).tci == 0xEFFF)  // out-of-range bits masked, DEI untouched
    }

    @Test func arpRequestReplyAndGratuitous() throws {
        let g = ARPPacket.gratuitous(mac: MACAddress(0x02, 0, 0, 0, 0, 1), ip: a)
        #expect(g.operation == .request && g.senderIP == a && g.targetIP == a && g.targetMAC == .zero)
        let bytes = emitted(28) { g.emit(into: $0) }
        #expect(bytes == hex("0001 0800 06 04 0001 020000000001 c0000201 000000000000 c0000201"))
        #expect(try bytes.withUnsafeBytes { try ARPPacket.parse($0) } == g)

        let reply = ARPPacket(operation: .reply, senderMAC: MACAddress(7), senderIP: b, targetMAC: MACAddress(8), targetIP: a)
        let r = emitted(60) { reply.emit(into: $0) }  // with Ethernet-minimum padding after it
        try r.withUnsafeBytes { buf in
            #expect(try ARPPacket.parse(buf) == reply)
            let v = try ARPView(checking: buf)
            #expect(v.operation == .reply && v.senderMAC == MACAddress(7) && v.targetIP == a)
        }
    }

    @Test func ipv4AllFieldsAndOptions() throws {
        let rr = hex("07 0b 08 c0000201 00000000")  // Record Route, 2 slots: 11 bytes
        let opts = try rr.withUnsafeBytes { try IPv4Options(bytes: $0) }
        #expect(opts.count == 12)  // padded with one EOL
        #expect(Array(opts) == [IPv4Options.Option(type: 7, offset: 0, length: 11)])
        #expect(opts[11] == 0)

        var h = IPv4Header(tos: 0xB8, totalLength: 32 + 4, identification: 0xBEEF, reservedFlag: true, dontFragment: false,
                           moreFragments: true, fragmentOffset: 8 * 1000, ttl: 1, protocol: IPProtocol.udp,
                           source: a, destination: b, options: opts)
        #expect(h.headerLength == 32 && h.isFragment && h.payloadLength == 4)
        let bytes = emitted(36) { h.emit(into: $0) }
        #expect(bytes[0] == 0x48 && bytes.be16(6) == 0x8000 | 0x2000 | 1000)
        let parsed = try bytes.withUnsafeBytes { try IPv4Header.parse($0) }
        h.checksum = bytes.be16(10)
        #expect(parsed == h)
        try bytes.withUnsafeBytes { buf in
            let v = try IPv4View(checking: buf)
            #expect(v.payload.count == 4 && v.optionBytes.count == 12 && v.fragmentOffset == 8000)
        }

        // The largest fragment offset the field can hold.
        let last = IPv4Header(totalLength: 20, dontFragment: false, fragmentOffset: 65528, protocol: 1, source: a, destination: b)
        let lb = emitted(20) { last.emit(into: $0) }
        #expect(try lb.withUnsafeBytes { try IPv4Header.parse($0) }.fragmentOffset == 65528)
    }

    @Test func ipv4OptionsLimits() throws {
        #expect(try [UInt8]().withUnsafeBytes { try IPv4Options(bytes: $0) } == IPv4Options())
        let full = [UInt8](repeating: 1, count: 40)  // 40 NOPs
        #expect(try full.withUnsafeBytes { try IPv4Options(bytes: $0) }.count == 40)
        let tooMany = [UInt8](repeating: 1, count: 41)
        #expect(tooMany.withUnsafeBytes { b in wireError { try IPv4Options(bytes: b) } } == .badOptionLength)
        // Bytes after EOL are padding and are kept verbatim.
        let eol = hex("00 ff ff ff")
        let o = try eol.withUnsafeBytes { try IPv4Options(bytes: $0) }
        #expect(Array(o).isEmpty && o[1] == 0xFF && o.count == 4)
        #expect(o[-1] == 0 && o[40] == 0)
    }

    @Test("ICMP messages", arguments: [
        ICMPv4Message.echoRequest(identifier: 1, sequence: 0xFFFF),
        .echoReply(identifier: 0xABCD, sequence: 2),
        .destinationUnreachable(code: 4, nextHopMTU: 1400),
        .destinationUnreachable(code: 3, nextHopMTU: 0),
        .timeExceeded(code: 0),
        .timeExceeded(code: 1),
        .other(type: 5, code: 1, rest: 0xC000_0201),  // redirect
        .other(type: 8, code: 1, rest: 0),             // echo with non-zero code
        .other(type: 3, code: 3, rest: 0x0001_0000),   // unused bits set
        .other(type: 11, code: 0, rest: 1),
        .other(type: 3, code: 16, rest: 0),
    ])
    func icmp(message: ICMPv4Message) throws {
        let payload: [UInt8] = Array("odd-length payload!".utf8)
        var bytes = [UInt8](repeating: 0, count: 8) + payload
        bytes.withUnsafeMutableBytes { buf in
            ICMPv4Header(message: message).emit(into: buf, payload: UnsafeRawBufferPointer(rebasing: buf[8...]))
        }
        #expect(bytes[0] == message.type && bytes[1] == message.code)
        let parsed = try bytes.withUnsafeBytes { try ICMPv4Header.parse($0) }
        #expect(parsed.message == message)
        #expect(ICMPv4Message(type: message.type, code: message.code, rest: message.rest) == message)
        // A separate payload buffer gives the same checksum.
        var header = [UInt8](repeating: 0, count: 8)
        header.withUnsafeMutableBytes { h in
            payload.withUnsafeBytes { ICMPv4Header(message: message).emit(into: h, payload: $0) }
        }
        #expect(header == Array(bytes[0..<8]))
    }

    @Test func udpWithChecksum() throws {
        let data = Array("abc".utf8)
        var d = emitted(8 + data.count) { buf in
            UDPHeader(sourcePort: 53, destinationPort: 33333, length: 11).emit(into: buf)
        }
        for (i, x) in data.enumerated() { d[8 + i] = x }
        d.withUnsafeMutableBytes { UDPHeader.fillChecksum(datagram: $0, source: a, destination: b) }
        try d.withUnsafeBytes { buf in
            let h = try UDPHeader.parse(buf)
            #expect(h.sourcePort == 53 && h.destinationPort == 33333 && h.length == 11 && h.checksum != 0)
            #expect(UDPHeader.verifyChecksum(datagram: buf, source: a, destination: b))
            #expect(!UDPHeader.verifyChecksum(datagram: buf, source: b, destination: a) || a.value &+ b.value == b.value &+ a.value)
            #expect(!UDPHeader.verifyChecksum(datagram: buf, source: a, destination: IPv4Address(1)))
            let v = try UDPView(checking: buf)
            #expect(Array(v.payload) == data)
        }
        // Checksum zero means "none".
        d[6] = 0
        d[7] = 0
        #expect(d.withUnsafeBytes { UDPHeader.verifyChecksum(datagram: $0, source: IPv4Address(1), destination: IPv4Address(2)) })
    }

    // A datagram whose checksum computes to zero is sent as ffff (RFC 768).
    @Test func udpZeroChecksumBecomesFFFF() {
        // Find a payload word that makes the sum 0xffff, then check.
        let src = IPv4Address(0), dst = IPv4Address(0)
        var d = emitted(10) { UDPHeader(sourcePort: 0, destinationPort: 0, length: 10).emit(into: $0) }
        let partial = InternetChecksum.pseudoHeaderSum(source: src, destination: dst, protocol: 17, length: 10) + 10
        var s = partial
        while s >> 16 != 0 { s = (s & 0xFFFF) + (s >> 16) }
        let fill = 0xFFFF - UInt16(s)
        d[8] = UInt8(fill >> 8)
        d[9] = UInt8(fill & 0xFF)
        d.withUnsafeMutableBytes { UDPHeader.fillChecksum(datagram: $0, source: src, destination: dst) }
        #expect(d.be16(6) == 0xFFFF)
        #expect(d.withUnsafeBytes { UDPHeader.verifyChecksum(datagram: $0, source: src, destination: dst) })
    }

    @Test func tcpFlagsAllBits() throws {
        for raw in [UInt16(0), 0x002, 0x012, 0x011, 0x004, 0x018, 0x0C2, 0x1FF, 0xFFF] {
            let h = TCPHeader(sourcePort: 1, destinationPort: 2, sequenceNumber: 3, flags: TCPFlags(rawValue: raw), window: 4)
            let bytes = emitted(20) { h.emit(into: $0) }
            #expect(bytes.be16(12) == 0x5000 | raw)
            #expect(try bytes.withUnsafeBytes { try TCPHeader.parse($0) }.flags.rawValue == raw)
        }
        #expect(TCPFlags([.syn, .ack]).description == "S.")
        #expect(TCPFlags([.fin, .psh, .ack]).description == "FP.")
        #expect(TCPFlags().description == "none")
        #expect(TCPFlags(rawValue: 0xF012) == [.syn, .ack])  // data-offset bits are not flags
    }

    @Test("TCP option sets", arguments: [
        TCPOptions(),
        TCPOptions(maximumSegmentSize: 1460),
        TCPOptions(maximumSegmentSize: 536, windowScale: 14, sackPermitted: true, timestamp: TCPTimestamp(value: 1, echo: 0)),
        TCPOptions(maximumSegmentSize: 1460, windowScale: 7, sackPermitted: true),
        TCPOptions(sackPermitted: true),
        TCPOptions(windowScale: 0),
        TCPOptions(timestamp: TCPTimestamp(value: .max, echo: 12345)),
        TCPOptions(timestamp: TCPTimestamp(value: 9, echo: 8), sackBlocks: blocks(3)),
        TCPOptions(sackBlocks: blocks(4)),
        TCPOptions(sackBlocks: blocks(1)),
    ])
    func tcpOptions(options: TCPOptions) throws {
        let h = TCPHeader(sourcePort: 45000, destinationPort: 80, sequenceNumber: 0xFFFF_FFFF, acknowledgmentNumber: 7,
                          flags: .ack, window: 512, urgentPointer: 9, options: options)
        #expect(h.headerLength % 4 == 0 && h.headerLength <= 60 && h.dataOffset == h.headerLength)
        var seg = emitted(h.headerLength + 5) { h.emit(into: $0) }
        seg.withUnsafeMutableBytes { TCPHeader.fillChecksum(segment: $0, source: a, destination: b) }
        try seg.withUnsafeBytes { buf in
            var parsed = try TCPHeader.parse(buf)
            #expect(TCPHeader.verifyChecksum(segment: buf, source: a, destination: b))
            parsed.checksum = 0
            #expect(parsed == h)
            let v = try TCPView(checking: buf)
            #expect(v.payload.count == 5 && v.optionBytes.count == options.encodedLength)
            #expect(v.urgentPointer == 9 && v.window == 512 && v.sequenceNumber == 0xFFFF_FFFF)
        }
    }

    static func blocks(_ n: Int) -> SACKBlocks {
        var s = SACKBlocks()
        for i in 0..<n { s.append(SACKBlock(left: UInt32(i) * 1000, right: UInt32(i) * 1000 + 500)) }
        return s
    }

    // With timestamps, only three SACK blocks fit in 40 bytes (as in Linux).
    @Test func fourSACKBlocksWithTimestampsEmitThree() throws {
        let o = TCPOptions(timestamp: TCPTimestamp(value: 1, echo: 2), sackBlocks: Self.blocks(4))
        #expect(o.emittedSACKBlockCount == 3 && o.encodedLength == 40)
        let bytes = emitted(40) { o.emit(into: $0) }
        #expect(Array(bytes[0..<4]) == [1, 1, 8, 10] && Array(bytes[12..<16]) == [1, 1, 5, 26])
        let back = try bytes.withUnsafeBytes { try TCPOptions.parse($0) }
        #expect(back.sackBlocks.count == 3 && back.sackBlocks[2] == SACKBlock(left: 2000, right: 2500))
        var full = Self.blocks(4)
        let appended = full.append(SACKBlock(left: 1, right: 2))
        #expect(!appended)
        #expect(full.count == 4)
    }

    @Test func tcpOptionsParseAnyOrder() throws {
        // wscale first, unknown kind 30 (len 4), NOPs, EOL then garbage.
        let raw = hex("030307 1e04abcd 01 080a00000001 00000002 020405dc 00 ffff")
        let o = try raw.withUnsafeBytes { try TCPOptions.parse($0) }
        #expect(o == TCPOptions(maximumSegmentSize: 1500, windowScale: 7, timestamp: TCPTimestamp(value: 1, echo: 2)))
        // The last of a repeated option wins.
        let twice = hex("02040100 02040200")
        #expect(try twice.withUnsafeBytes { try TCPOptions.parse($0) }.maximumSegmentSize == 0x200)
    }
}
