import Testing
import Skiff
@testable import SkiffLinux
import SkiffWire

/// The virtio-net header in Skiff's terms: what the kernel hands a TAP (or an AF_PACKET socket)
/// with TUN_F_CSUM/TSO4 — partial checksums and 64 KiB TCP segments — reaches the NIC whole
/// with its `FrameOffload`, and what Skiff sends carries its own.
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

    static func deliver(_ frame: [UInt8]) -> ([([UInt8], FrameOffload)], FrameBatch) {
        let batch = FrameBatch(capacity: 1, slotSize: 70_000)
        var out: [([UInt8], FrameOffload)] = []
        var copy = frame
        copy.withUnsafeMutableBytes { b in
            VirtioNetHeader.deliver(b, l2: 14, batch: batch) { out.append((Array($0), $1)) }
        }
        return (out, batch)
    }

    @Test func aTCPGSOFrameGoesToTheNICWholeWithItsSegmentSizeAndPartialChecksum() {
        let payload = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        let frame = Self.gsoFrame(payload: payload, mss: 1448, flags: 0x80 | 0x18 | 0x01)
        let (out, batch) = Self.deliver(frame)
        #expect(out.count == 1)
        #expect(batch.gsoFrames == 1 && batch.checksumsCompleted == 1 && batch.errors == 0)
        #expect(out.first?.0 == Array(frame.dropFirst(10)))
        let o = out.first?.1
        #expect(o == FrameOffload(segmentSize: 1448, headerLength: 66, checksumStart: 34, checksumOffset: 16, needsChecksum: true))
    }

    /// A 64 KiB GSO frame is longer than the NIC's 16 receive buffers: it goes as pieces of
    /// whole segments, each a valid GSO frame whose partial checksum completes correctly.
    @Test func aGSOFrameLongerThanTheNICTakesGoesInPiecesOfWholeSegments() {
        let payload = (0..<60_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 8) }
        var frame = Self.gsoFrame(payload: payload, mss: 1448, flags: 0x80 | 0x18 | 0x01)
        let batch = FrameBatch(capacity: 1, slotSize: 70_000)
        batch.maxReceiveFrame = 16 * 1518
        var pieces: [([UInt8], FrameOffload)] = []
        frame.withUnsafeMutableBytes { b in
            VirtioNetHeader.deliver(b, l2: 14, batch: batch) { pieces.append((Array($0), $1)) }
        }
        #expect(pieces.count == 3)
        var joined: [UInt8] = []
        var nextSeq: UInt32 = 0x1000
        for (i, (p, o)) in pieces.enumerated() {
            #expect(p.count <= batch.maxReceiveFrame)
            #expect(o.needsChecksum && o.checksumStart == 34 && o.checksumOffset == 16 && o.headerLength == 66)
            let body = p.count - 66
            #expect(i == pieces.count - 1 || body % 1448 == 0)
            #expect(o.segmentSize == (body > 1448 ? 1448 : 0))
            #expect(Array(p[14..<34]).withUnsafeBytes { InternetChecksum.verify($0) })
            #expect(Int(p[16]) << 8 | Int(p[17]) == p.count - 14)
            let seq = UInt32(p[38]) << 24 | UInt32(p[39]) << 16 | UInt32(p[40]) << 8 | UInt32(p[41])
            #expect(seq == nextSeq)
            nextSeq &+= UInt32(body)
            let flags = p[47]
            #expect((flags & 0x80 != 0) == (i == 0))
            #expect((flags & 0x09 != 0) == (i == pieces.count - 1))
            // Complete the partial checksum as a receiver of CHECKSUM_PARTIAL would; it verifies.
            var tcp = Array(p[34...])
            let c = InternetChecksum.fold(tcp.withUnsafeBytes { InternetChecksum.sum($0) })
            tcp[16] = UInt8(c >> 8); tcp[17] = UInt8(c & 0xFF)
            let ps = InternetChecksum.pseudoHeaderSum(source: Self.src, destination: Self.dst, protocol: 6, length: UInt16(tcp.count))
            #expect(tcp.withUnsafeBytes { InternetChecksum.verify($0, initial: ps) })
            joined += p[66...]
        }
        #expect(joined == payload)
    }

    @Test func headersRoundTrip() {
        let offloads = [FrameOffload.none,
                        FrameOffload(segmentSize: 1448, headerLength: 66, checksumStart: 34, checksumOffset: 16, needsChecksum: true),
                        FrameOffload(checksumStart: 34, checksumOffset: 6, needsChecksum: true),
                        FrameOffload(checksumValid: true)]
        let p = UnsafeMutableRawPointer.allocate(byteCount: 16, alignment: 8)
        defer { p.deallocate() }
        for o in offloads {
            VirtioNetHeader.write(o, to: p)
            #expect(VirtioNetHeader.read(p, frameLength: 2000) == o)
        }
    }

    @Test func unsupportedOrTruncatedFramesCountAsErrorsAndNeverTrap() {
        var bad = Self.gsoFrame(payload: Array(repeating: 1, count: 100), mss: 1448, flags: 0x10)
        bad[1] = 3                                    // GSO_UDP: not negotiated
        #expect(Self.deliver(bad).0.isEmpty)
        #expect(Self.deliver(Array(bad.prefix(10))).1.errors == 1)
        var wrongStart = Self.gsoFrame(payload: [1, 2, 3], mss: 0, flags: 0x10, gso: false)
        wrongStart[6] = 0xFF; wrongStart[7] = 0xFF       // csum_start beyond the frame
        #expect(Self.deliver(wrongStart).1.errors == 1)
        for n in [0, 1, 10, 11, 40, 60] {
            _ = Self.deliver(Array(Self.gsoFrame(payload: Array(repeating: 9, count: 4000), mss: 1000, flags: 0x10).prefix(n)))
        }
    }
}
