// libFuzzer entry point for SkiffWire.
//
// Built by scripts/fuzz.sh together with Sources/SkiffWire/*.swift into one
// module (so no import), with -sanitize=fuzzer,address. Every input goes
// through every parser and checked view at every plausible layer offset;
// whatever parses is re-emitted and the result checked against the input
// with `precondition`, so an inconsistency is reported as a crash.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    WireFuzz.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

enum WireFuzz {
    static func run(_ b: UnsafeRawBufferPointer) {
        checksums(b)
        text(b)
        if let eth = try? EthernetHeader.parse(b) {
            let v = try? EthernetView(checking: b)
            precondition(v?.header == eth && v?.payload.count == b.count - eth.length)
            var out = [UInt8](repeating: 0, count: eth.length)
            out.withUnsafeMutableBytes { eth.emit(into: $0) }
            precondition(out.elementsEqual(b[0..<eth.length]), "Ethernet re-emit differs")
        }
        for offset in [0, 14, 18] where offset <= b.count {
            network(UnsafeRawBufferPointer(rebasing: b[offset...]))
        }
        _ = try? TCPOptions.parse(b)
        _ = try? IPv4Options(bytes: UnsafeRawBufferPointer(rebasing: b[0..<min(b.count, 40)]))
    }

    static func network(_ p: UnsafeRawBufferPointer) {
        if let arp = try? ARPPacket.parse(p) {
            var out = [UInt8](repeating: 0, count: ARPPacket.length)
            out.withUnsafeMutableBytes { arp.emit(into: $0) }
            precondition(out.elementsEqual(p[0..<ARPPacket.length]), "ARP re-emit differs")
            let v = try? ARPView(checking: p)
            precondition(v?.senderIP == arp.senderIP && v?.targetMAC == arp.targetMAC)
        }
        if p.count >= 20 {
            transport(UnsafeRawBufferPointer(rebasing: p[20...]))
        }
        guard let ip = try? IPv4View(checking: p, verifyChecksum: false) else { return }
        let h = ip.header
        precondition(h.headerLength == ip.headerLength && Int(h.totalLength) == ip.totalLength)
        var out = [UInt8](repeating: 0, count: h.headerLength)
        out.withUnsafeMutableBytes { h.emit(into: $0) }
        for i in 0..<h.headerLength where i != 10 && i != 11 {
            precondition(out[i] == p[i], "IPv4 re-emit differs at \(i)")
        }
        // Emitted header + original payload parses, checksum and all.
        let whole = out + Array(ip.payload)
        var expect = h
        expect.checksum = UInt16(out[10]) << 8 | UInt16(out[11])
        let again = whole.withUnsafeBytes { try? IPv4Header.parse($0) }
        precondition(again == expect, "IPv4 emit → parse differs")
        for option in h.options {
            precondition(option.length >= 1 && option.offset + option.length <= h.options.count)
        }
        _ = (try? IPv4View(checking: p, verifyChecksum: true))?.isFragment
        transport(ip.payload)
    }

    static func transport(_ t: UnsafeRawBufferPointer) {
        if let icmp = try? ICMPv4View(checking: t, verifyChecksum: false) {
            let h = icmp.header
            var out = Array(t)
            out.withUnsafeMutableBytes { o in
                h.emit(into: o, payload: UnsafeRawBufferPointer(rebasing: o[ICMPv4Header.length...]))
            }
            precondition(out[0] == t[0] && out[1] == t[1] && out[4..<8].elementsEqual(t[4..<8]), "ICMP re-emit differs")
            let back = out.withUnsafeBytes { try? ICMPv4Header.parse($0) }
            precondition(back?.message == h.message, "ICMP emit → parse differs")
            _ = icmp.payload.count
        }
        if let udp = try? UDPView(checking: t) {
            var out = [UInt8](repeating: 0, count: UDPHeader.length)
            out.withUnsafeMutableBytes { udp.header.emit(into: $0) }
            precondition(out.elementsEqual(t[0..<UDPHeader.length]), "UDP re-emit differs")
            precondition(udp.payload.count == udp.length - UDPHeader.length)
            _ = udp.verifyChecksum(source: IPv4Address(1), destination: IPv4Address(2))
        }
        if let tcp = try? TCPView(checking: t) {
            var h = tcp.header
            precondition(h.headerLength <= TCPHeader.maximumLength)
            var out = [UInt8](repeating: 0, count: h.headerLength)
            out.withUnsafeMutableBytes { h.emit(into: $0) }
            precondition(out[0..<12].elementsEqual(t[0..<12]) && out[13..<20].elementsEqual(t[13..<20]), "TCP re-emit differs")
            let back = out.withUnsafeBytes { try? TCPHeader.parse($0) }
            h.dataOffset = h.headerLength
            if var b = back, h.options.emittedSACKBlockCount < h.options.sackBlocks.count {
                // Linux's layout pads options (SACK behind two NOPs, Fast Open to 32 bits), so a
                // tightly packed input may not fit again: emit drops the SACK blocks that do not
                // fit, as Linux does, and nothing else may differ.
                precondition(b.options.sackBlocks.count == h.options.emittedSACKBlockCount, "TCP SACK blocks trimmed wrongly")
                for k in 0..<b.options.sackBlocks.count {
                    precondition(b.options.sackBlocks[k] == h.options.sackBlocks[k], "TCP SACK block \(k) differs")
                }
                b.options.sackBlocks = h.options.sackBlocks
                precondition(b == h, "TCP emit → parse differs")
            } else {
                precondition(back == h, "TCP emit → parse differs")
            }
            _ = tcp.verifyChecksum(source: IPv4Address(3), destination: IPv4Address(4))
            _ = tcp.payload.count
        }
    }

    static func checksums(_ b: UnsafeRawBufferPointer) {
        // Any split at an even offset chains to the same result.
        let whole = InternetChecksum.fold(InternetChecksum.sum(b))
        let cut = (b.count / 3) & ~1
        let s = InternetChecksum.sum(UnsafeRawBufferPointer(rebasing: b[0..<cut]))
        let chained = InternetChecksum.fold(InternetChecksum.sum(UnsafeRawBufferPointer(rebasing: b[cut...]), initial: s))
        precondition(whole == chained, "checksum chaining differs")
        if b.count >= 6 {
            // RFC 1624 update agrees with recomputation (up to ±0).
            var copy = Array(b)
            let old = UInt16(copy[2]) << 8 | UInt16(copy[3])
            let new = UInt16(copy[0]) << 8 | UInt16(copy[5])
            copy[2] = copy[0]
            copy[3] = copy[5]
            let updated = InternetChecksum.update(checksum: whole, old: old, new: new)
            let recomputed = copy.withUnsafeBytes { InternetChecksum.fold(InternetChecksum.sum($0)) }
            precondition(updated == recomputed || (updated | recomputed == 0xFFFF && updated & recomputed == 0),
                         "incremental checksum differs")
        }
    }

    static func text(_ b: UnsafeRawBufferPointer) {
        guard b.count <= 64 else { return }
        let s = String(decoding: b, as: UTF8.self)
        if let a = IPv4Address(s) {
            precondition(IPv4Address(a.description) == a)
        }
        if let m = MACAddress(s) {
            precondition(MACAddress(m.description) == m)
        }
    }
}
