import Skiff
import SkiffWire

/// The `virtio_net_hdr` that precedes each frame on a TAP with IFF_VNET_HDR or an AF_PACKET
/// socket with PACKET_VNET_HDR (Linux: `include/uapi/linux/virtio_net.h`, little-endian as the
/// kernel uses it for TAP on x86): flags, GSO type, header length, GSO size, checksum start and
/// offset — the same terms as Skiff's `FrameOffload`.
///
/// Receive: a TCP GSO frame (up to 64 KiB) and a partial or vouched-for checksum go to the NIC
/// whole with their `FrameOffload` (the NIC spreads a large frame over several receive buffers,
/// as virtio's mergeable buffers do, and the stack takes it as one large segment, as GRO would).
/// Linux: `virtio_net_hdr_from_skb()` / `virtio_net_hdr_to_skb()`.
enum VirtioNetHeader {
    static let size = 10

    /// Writes the header for a frame leaving Skiff.
    @inline(__always)
    static func write(_ o: FrameOffload, to p: UnsafeMutableRawPointer) {
        var flags: UInt8 = 0
        if o.needsChecksum { flags |= LinuxConstants.VIRTIO_NET_HDR_F_NEEDS_CSUM }
        if o.checksumValid { flags |= LinuxConstants.VIRTIO_NET_HDR_F_DATA_VALID }
        p.storeBytes(of: flags, toByteOffset: 0, as: UInt8.self)
        p.storeBytes(of: o.segmentSize > 0 ? LinuxConstants.VIRTIO_NET_HDR_GSO_TCPV4 : LinuxConstants.VIRTIO_NET_HDR_GSO_NONE,
                     toByteOffset: 1, as: UInt8.self)
        p.storeBytes(of: o.headerLength.littleEndian, toByteOffset: 2, as: UInt16.self)
        p.storeBytes(of: o.segmentSize.littleEndian, toByteOffset: 4, as: UInt16.self)
        p.storeBytes(of: o.checksumStart.littleEndian, toByteOffset: 6, as: UInt16.self)
        p.storeBytes(of: o.checksumOffset.littleEndian, toByteOffset: 8, as: UInt16.self)
    }

    /// Reads the header of a received frame; nil for what Skiff does not take (UDP GSO, bad
    /// offsets).
    @inline(__always)
    static func read(_ base: UnsafeRawPointer, frameLength n: Int) -> FrameOffload? {
        let flags = base.load(fromByteOffset: 0, as: UInt8.self)
        let gsoType = base.load(fromByteOffset: 1, as: UInt8.self) & ~LinuxConstants.VIRTIO_NET_HDR_GSO_ECN
        var o = FrameOffload()
        o.headerLength = UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
        o.segmentSize = UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
        o.checksumStart = UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 6, as: UInt16.self))
        o.checksumOffset = UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 8, as: UInt16.self))
        o.needsChecksum = flags & LinuxConstants.VIRTIO_NET_HDR_F_NEEDS_CSUM != 0
        o.checksumValid = flags & LinuxConstants.VIRTIO_NET_HDR_F_DATA_VALID != 0
        if o.needsChecksum && Int(o.checksumStart) + Int(o.checksumOffset) + 2 > n { return nil }
        switch gsoType {
        case LinuxConstants.VIRTIO_NET_HDR_GSO_NONE: o.segmentSize = 0
        case LinuxConstants.VIRTIO_NET_HDR_GSO_TCPV4: if o.segmentSize == 0 { return nil }
        default: return nil
        }
        return o
    }

    /// Hands one received frame (header first) to `emit` whole, with its offload information;
    /// a GSO frame longer than the NIC takes (`batch.maxReceiveFrame`) goes as several smaller
    /// GSO frames. Frames it cannot take count as errors in the batch and are dropped.
    static func deliver(_ frame: UnsafeMutableRawBufferPointer, l2: Int, batch: FrameBatch,
                        emit: (UnsafeRawBufferPointer, FrameOffload) -> Void) {
        guard frame.count > size, let base = frame.baseAddress,
              let o = read(base, frameLength: frame.count - size) else { batch.errors &+= 1; return }
        if o.segmentSize > 0 { batch.gsoFrames &+= 1 }
        if o.needsChecksum { batch.checksumsCompleted &+= 1 }
        let body = UnsafeMutableRawBufferPointer(start: base + size, count: frame.count - size)
        if o.segmentSize > 0 && body.count > batch.maxReceiveFrame {
            split(body, l2: l2, offload: o, limit: batch.maxReceiveFrame, batch: batch, emit: emit)
        } else {
            emit(UnsafeRawBufferPointer(body), o)
        }
    }

    /// Cuts a TCP/IPv4 GSO frame into GSO frames of at most `limit` bytes, each a whole number
    /// of segments, in place: each piece's headers are written over the tail of the piece before
    /// it, which the NIC has already copied. Each piece gets its IP total length, identification
    /// (advanced by the segments before it) and header checksum, its TCP sequence number,
    /// FIN/PSH only on the last piece and CWR only on the first, and the pseudo-header sum in the
    /// checksum field (still partial). Linux does the same cut when a GSO packet meets a smaller
    /// `gso_max_size` (`tcp_gso_segment()` with `SKB_GSO_PARTIAL`-like pieces).
    static func split(_ frame: UnsafeMutableRawBufferPointer, l2: Int, offload o: FrameOffload, limit: Int,
                      batch: FrameBatch, emit: (UnsafeRawBufferPointer, FrameOffload) -> Void) {
        guard let b = frame.baseAddress, frame.count >= l2 + 40 else { batch.errors &+= 1; return }
        let ip = b + l2
        let ihl = Int(ip.load(as: UInt8.self) & 0x0F) * 4
        guard ip.load(as: UInt8.self) >> 4 == 4, ihl >= 20, ip.load(fromByteOffset: 9, as: UInt8.self) == 6,
              frame.count >= l2 + ihl + 20 else { batch.errors &+= 1; return }
        let thl = Int(ip.load(fromByteOffset: ihl + 12, as: UInt8.self) >> 4) * 4
        let headers = l2 + ihl + thl
        let mss = Int(o.segmentSize)
        let perPiece = (limit - headers) / mss * mss
        guard thl >= 20, frame.count > headers, perPiece > 0 else { batch.errors &+= 1; return }
        let src = IPv4Address.read(from: ip + 12), dst = IPv4Address.read(from: ip + 16)
        let baseID = UInt16(bigEndian: ip.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
        let baseSeq = UInt32(bigEndian: ip.loadUnaligned(fromByteOffset: ihl + 4, as: UInt32.self))
        let tcpFlags = ip.load(fromByteOffset: ihl + 13, as: UInt8.self)
        let payload = frame.count - headers
        var piece = o
        piece.needsChecksum = true
        piece.checksumStart = UInt16(l2 + ihl)
        piece.checksumOffset = 16
        piece.headerLength = UInt16(headers)
        var off = 0
        while off < payload {
            let chunk = min(perPiece, payload - off)
            let start = b + off                          // headers go right before this piece's payload
            if off > 0 { start.copyMemory(from: b, byteCount: headers) }
            let pip = start + l2, ptcp = start + l2 + ihl
            pip.storeBytes(of: UInt16(ihl + thl + chunk).bigEndian, toByteOffset: 2, as: UInt16.self)
            pip.storeBytes(of: (baseID &+ UInt16(truncatingIfNeeded: off / mss)).bigEndian, toByteOffset: 4, as: UInt16.self)
            pip.storeBytes(of: 0, toByteOffset: 10, as: UInt16.self)
            let ic = InternetChecksum.fold(InternetChecksum.sum(UnsafeRawBufferPointer(start: pip, count: ihl)))
            pip.storeBytes(of: ic.bigEndian, toByteOffset: 10, as: UInt16.self)
            ptcp.storeBytes(of: (baseSeq &+ UInt32(off)).bigEndian, toByteOffset: 4, as: UInt32.self)
            var f = tcpFlags
            if off + chunk < payload { f &= ~0x09 }   // FIN, PSH only on the last piece
            if off > 0 { f &= ~0x80 }                 // CWR only on the first
            ptcp.storeBytes(of: f, toByteOffset: 13, as: UInt8.self)
            let ps = InternetChecksum.pseudoHeaderSum(source: src, destination: dst, protocol: 6, length: UInt16(thl + chunk))
            ptcp.storeBytes(of: (~InternetChecksum.fold(ps)).bigEndian, toByteOffset: 16, as: UInt16.self)
            piece.segmentSize = chunk > mss ? o.segmentSize : 0
            emit(UnsafeRawBufferPointer(start: start, count: headers + chunk), piece)
            off += chunk
        }
    }

}
