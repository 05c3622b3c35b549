import Testing
@testable import SkiffLinux
import SkiffWire

/// The receive side of the vnet-header offloads: what the kernel hands a TAP (or an AF_PACKET
/// socket) with TUN_F_CSUM/TSO4 — partial checksums and 64 KiB TCP segments — becomes complete
/// MTU-sized frames before the NIC sees them.
@Suite struct VirtioNetHeaderTests {
    static let src = IPv4Address(10, 0, 0, 1), dst = IPv4Address(10, 0, 0, 2)

    /// A vnet header, then Ethernet + IPv4 + TCP (with 12 bytes of options) + payload. The TCP
    /// checksum field holds the pseudo-header sum, as CHECKSUM_PARTIAL leaves it.
    static func gsoFrame(payload: [UInt8], mss: Int, flags: UInt8, gso: Bool = true) -> [UInt8] {
        var f = [UInt8](repeating: 0, count: 10)
        f[0] = 1                                      // NEEDS_CSUM
        f[1] = gso ? 1 : 0                            // GSO_TCPV4
        let l4Start = 14 + 20
        f.withUnsafeMutableBytes { b in
            b.storeBytes(of: UInt16(14 + 20 + 32).littleEndian, toByteOffset: 2, as: UInt16.self)
            b.storeBytes(of: UInt16(gso ? mss : 0).littleEndian, toByteOffset: 4, as: UInt16.self)
            b.storeBytes(of: UInt16(l4Start).littleEndian, toByteOffset: 6, as: UInt16.self)
            b.storeBytes(of: UInt16(16).littleEndian, toByteOffset: 8, as: UInt16.self)
        }
        f += [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]
        let total = 20 + 32 + payload.count
        var ip: [UInt8] = [0x45, 0, UInt8(total >> 8 & 0xFF), UInt8(total & 0xFF), 0x12, 0x34, 0x40, 0, 64, 6, 0, 0]
        ip += [10, 0, 0, 1, 10, 0, 0, 2]
        let ic = InternetChecksum.fold(ip.withUnsafeBytes { InternetChecksum.sum($0) })
        ip[10] = UInt8(ic >> 8); ip[11] = UInt8(ic & 0xFF)
        var tcp: [UInt8] = [0x13, 0x89, 0xC0, 0x01, 0x00, 0x00, 0x10, 0x00, 0, 0, 0, 1, 0x80, flags, 0xFF, 0xFF, 0, 0, 0, 0]
        tcp += [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]
        let ps = InternetChecksum.pseudoHeaderSum(source: src, destination: dst, protocol: 6, length: UInt16(32 + payload.count))
        var folded = ps
        while folded > 0xFFFF { folded = (folded & 0xFFFF) + (folded >> 16) }
        tcp[16] = UInt8(folded >> 8); tcp[17] = UInt8(folded & 0xFF)
        return f + ip + tcp + payload
    }

    static func deliver(_ frame: [UInt8]) -> ([[UInt8]], FrameBatch) {
        let batch = FrameBatch(capacity: 1, slotSize: 70_000)
        var out: [[UInt8]] = []
        var copy = frame
        copy.withUnsafeMutableBytes { b in
            VirtioNetHeader.deliver(b, l2: 14, batch: batch) { out.append(Array($0)) }
        }
        return (out, batch)
    }

    static func verifies(_ seg: [UInt8]) -> Bool {
        let ip = Array(seg[14..<34])
        guard ip.withUnsafeBytes({ InternetChecksum.verify($0) }) else { return false }
        let l4 = Array(seg[34...])
        let ps = InternetChecksum.pseudoHeaderSum(source: src, destination: dst, protocol: 6, length: UInt16(l4.count))
        return l4.withUnsafeBytes { InternetChecksum.verify($0, initial: ps) }
    }

    @Test func aTCPGSOFrameBecomesMSSSizedSegmentsWithTheirOwnHeaders() {
        let payload = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        let (segs, batch) = Self.deliver(Self.gsoFrame(payload: payload, mss: 1448, flags: 0x80 | 0x18 | 0x01))
        #expect(segs.count == 4)
        #expect(batch.gsoFrames == 1 && batch.errors == 0)
        var joined: [UInt8] = []
        for (i, s) in segs.enumerated() {
            #expect(Self.verifies(s), "segment \(i) checksums")
            let seq = UInt32(s[38]) << 24 | UInt32(s[39]) << 16 | UInt32(s[40]) << 8 | UInt32(s[41])
            #expect(seq == 0x1000 &+ UInt32(i * 1448))
            let id = UInt16(s[18]) << 8 | UInt16(s[19])
            #expect(id == 0x1234 &+ UInt16(i))
            let totalLength = Int(s[16]) << 8 | Int(s[17])
            #expect(totalLength == s.count - 14)
            let flags = s[14 + 20 + 13]
            #expect((flags & 0x80 != 0) == (i == 0), "CWR only on the first")
            #expect((flags & 0x09 != 0) == (i == 3), "FIN and PSH only on the last")
            #expect(flags & 0x10 != 0, "ACK on all")
            joined += s[(14 + 20 + 32)...]
        }
        #expect(joined == payload)
        #expect(segs.dropLast().allSatisfy { $0.count == 14 + 20 + 32 + 1448 })
    }

    @Test func aPartialChecksumIsCompletedWithoutSegmentation() {
        let (segs, batch) = Self.deliver(Self.gsoFrame(payload: Array(repeating: 7, count: 300), mss: 0, flags: 0x18, gso: false))
        #expect(segs.count == 1)
        #expect(batch.checksumsCompleted == 1)
        #expect(segs.first.map(Self.verifies) == true)
    }

    @Test func truncatedOrUnsupportedFramesCountAsErrorsAndNeverTrap() {
        var bad = Self.gsoFrame(payload: Array(repeating: 1, count: 100), mss: 1448, flags: 0x10)
        bad[1] = 3                                    // GSO_UDP: not negotiated
        #expect(Self.deliver(bad).0.isEmpty)
        #expect(Self.deliver(Array(bad.prefix(12))).1.errors == 1)
        var wrongStart = Self.gsoFrame(payload: [1, 2, 3], mss: 0, flags: 0x10, gso: false)
        wrongStart[6] = 0xFF; wrongStart[7] = 0xFF       // csum_start beyond the frame
        #expect(Self.deliver(wrongStart).1.errors == 1)
        for n in [0, 1, 10, 11, 40, 60] {
            _ = Self.deliver(Array(Self.gsoFrame(payload: Array(repeating: 9, count: 4000), mss: 1000, flags: 0x10).prefix(n)))
        }
    }
}
