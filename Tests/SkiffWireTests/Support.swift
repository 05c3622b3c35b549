import Foundation
import SkiffWire
import Testing

/// Golden traces captured from Linux by scripts/capture-golden.sh, stored
/// as text: `#` comment lines (tcpdump's summary of the next frame) and one
/// line of hex per frame.
enum Golden {
    struct LoadError: Error, CustomStringConvertible {
        var description: String
    }

    /// The frames of `Golden/<name>.hex`, in capture order.
    static func frames(_ name: String) throws -> [[UInt8]] {
        guard let url = Bundle.module.url(forResource: name, withExtension: "hex", subdirectory: "Golden") else {
            throw LoadError(description: "missing Golden/\(name).hex")
        }
        let text = try String(contentsOf: url, encoding: .utf8)
        return text.split(separator: "\n")
            .filter { !$0.hasPrefix("#") && !$0.allSatisfy(\.isWhitespace) }
            .map { hex(String($0)) }
    }

    static let names = [
        "arp-ping", "ping-fragmented", "ping-record-route", "udp", "port-unreachable",
        "tcp-handshake", "tcp-no-timestamps", "tcp-sack", "vlan",
    ]
}

/// Bytes from hex text; spaces, newlines and `|` are ignored.
func hex(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    var hi: UInt8?
    for c in s.utf8 {
        let v: UInt8
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): v = c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): v = c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): v = c - UInt8(ascii: "A") + 10
        default: continue
        }
        if let h = hi { out.append(h << 4 | v); hi = nil } else { hi = v }
    }
    precondition(hi == nil, "odd number of hex digits")
    return out
}

func hexString(_ b: some Sequence<UInt8>) -> String {
    b.map { String($0, radix: 16).leftPad(2) }.joined()
}

extension String {
    func leftPad(_ n: Int) -> String { String(repeating: "0", count: max(0, n - count)) + self }
}

/// Runs a parse and returns the WireError it threw, or nil on success.
/// (Closure literals are inferred as untyped `throws`; the parsers' own
/// signatures are typed, which the compiler checks elsewhere.)
func wireError<T>(_ body: () throws -> T) -> WireError? {
    do {
        _ = try body()
        return nil
    } catch let e as WireError {
        return e
    } catch {
        Issue.record("non-WireError thrown: \(error)")
        return nil
    }
}

/// Deterministic generator (SplitMix64) so random tests replay exactly.
struct SeededRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension Array where Element == UInt8 {
    /// Big-endian 16-bit read, for spot checks in tests.
    func be16(_ o: Int) -> UInt16 { UInt16(self[o]) << 8 | UInt16(self[o + 1]) }
}

/// A frame taken apart layer by layer with the header parsers.
struct Dissection {
    var ethernet: EthernetHeader
    var arp: ARPPacket?
    var ip: IPv4Header?
    var icmp: ICMPv4Header?
    var udp: UDPHeader?
    var tcp: TCPHeader?
    /// Offset of the IPv4 header within the frame.
    var ipOffset = 0
    /// Offset of the transport header within the frame.
    var transportOffset = 0
    /// Transport payload (or IPv4 payload for non-first fragments).
    var payload: [UInt8] = []
}

/// Ethernet → ARP | IPv4 → ICMP | UDP | TCP. Transport checksums are
/// verified (except on fragments, whose ICMP/UDP/TCP checksum covers the
/// whole datagram).
func dissect(_ frame: [UInt8]) throws(WireError) -> Dissection {
    do {
        return try frame.withUnsafeBytes { try dissect(bytes: $0) }
    } catch let e as WireError {
        throw e
    } catch {
        preconditionFailure("only WireError is thrown")
    }
}

func dissect(bytes b: UnsafeRawBufferPointer) throws(WireError) -> Dissection {
    do {
        let eth = try EthernetHeader.parse(b)
        var d = Dissection(ethernet: eth)
        let l3 = UnsafeRawBufferPointer(rebasing: b[eth.length...])
        switch eth.etherType {
        case EtherType.arp:
            d.arp = try ARPPacket.parse(l3)
        case EtherType.ipv4:
            let ipv = try IPv4View(checking: l3)
            let ip = ipv.header
            d.ip = ip
            d.ipOffset = eth.length
            d.transportOffset = eth.length + ip.headerLength
            let l4 = ipv.payload
            if ip.fragmentOffset != 0 {
                d.payload = Array(l4)
                break
            }
            let whole = !ip.isFragment
            switch ip.protocol {
            case IPProtocol.icmp:
                let v = try ICMPv4View(checking: l4, verifyChecksum: whole)
                d.icmp = v.header
                d.payload = Array(v.payload)
            case IPProtocol.udp:
                let v = try UDPView(checking: l4)
                if whole, !v.verifyChecksum(source: ip.source, destination: ip.destination) { throw .badChecksum }
                d.udp = v.header
                d.payload = Array(v.payload)
            case IPProtocol.tcp:
                let v = try TCPView(checking: l4)
                if whole, !v.verifyChecksum(source: ip.source, destination: ip.destination) { throw .badChecksum }
                d.tcp = v.header
                d.payload = Array(v.payload)
            default:
                d.payload = Array(l4)
            }
        default:
            break
        }
        return d
    }
}

/// Rebuilds a frame from a dissection with the emitters: Ethernet, ARP or
/// IPv4 (fresh header checksum), ICMP (fresh checksum over its payload),
/// UDP (stored checksum), TCP (stored checksum; Linux option layout).
func rebuild(_ d: Dissection, like original: [UInt8]) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: original.count)
    out.withUnsafeMutableBytes { o in
        d.ethernet.emit(into: o)
        if let arp = d.arp {
            arp.emit(into: UnsafeMutableRawBufferPointer(rebasing: o[d.ethernet.length...]))
            return
        }
        guard let ip = d.ip else {
            // Not ours: copy the payload as is.
            for i in d.ethernet.length..<original.count { o[i] = original[i] }
            return
        }
        ip.emit(into: UnsafeMutableRawBufferPointer(rebasing: o[d.ipOffset...]))
        let t = d.transportOffset
        let end = d.ipOffset + Int(ip.totalLength)
        var payloadStart = t
        if let icmp = d.icmp {
            payloadStart = t + ICMPv4Header.length
            for (i, byte) in d.payload.enumerated() { o[payloadStart + i] = byte }
            if ip.isFragment {
                // The checksum covers the reassembled message: keep Linux's.
                icmp.emit(into: UnsafeMutableRawBufferPointer(rebasing: o[t..<end]),
                          payload: UnsafeRawBufferPointer(start: nil, count: 0))
                o[t + 2] = original[t + 2]
                o[t + 3] = original[t + 3]
            } else {
                icmp.emit(into: UnsafeMutableRawBufferPointer(rebasing: o[t..<end]),
                          payload: UnsafeRawBufferPointer(rebasing: o[payloadStart..<end]))
            }
        } else if let udp = d.udp {
            udp.emit(into: UnsafeMutableRawBufferPointer(rebasing: o[t...]))
            payloadStart = t + UDPHeader.length
        } else if let tcp = d.tcp {
            tcp.emit(into: UnsafeMutableRawBufferPointer(rebasing: o[t...]))
            payloadStart = t + tcp.headerLength
        }
        if d.icmp == nil {
            for (i, byte) in d.payload.enumerated() { o[payloadStart + i] = byte }
        }
        // Ethernet padding after the IP datagram, if any.
        for i in end..<original.count { o[i] = original[i] }
    }
    return out
}
