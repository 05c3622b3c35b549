import SkiffWire

/// The `virtio_net_hdr` that precedes each frame on a TAP with IFF_VNET_HDR or an AF_PACKET
/// socket with PACKET_VNET_HDR (Linux: `include/uapi/linux/virtio_net.h`, little-endian on
/// x86 in the legacy layout the kernel uses for TAP).
///
/// Receive side: a frame the kernel left with a partial checksum
/// (`VIRTIO_NET_HDR_F_NEEDS_CSUM`) gets it completed; a TCP GSO frame (`GSO_TCPV4`, up to
/// 64 KiB) is cut into MSS-sized segments with their own headers and checksums before the NIC
/// sees them — the emulated NIC's receive buffers are MTU-sized, like a NIC without LRO.
/// Linux: `virtio_net_hdr_to_skb()`, then `skb_gso_segment()` → `tcp_gso_segment()`.
enum VirtioNetHeader {
    static let size = 10

    /// Writes a header announcing a complete frame (no offload), as Linux's `virtio_net_hdr_from_skb`
    /// does for a CHECKSUM_COMPLETE/NONE non-GSO skb.
    @inline(__always)
    static func writePlain(to p: UnsafeMutableRawPointer) {
        p.storeBytes(of: 0, toByteOffset: 0, as: UInt64.self)
        p.storeBytes(of: 0, toByteOffset: 8, as: UInt16.self)
    }

    /// Writes a header announcing a TCP/IPv4 GSO frame whose checksums are complete per segment
    /// once the kernel segments it (we set NEEDS_CSUM so the kernel recomputes each segment's).
    @inline(__always)
    static func writeTCPv4GSO(to p: UnsafeMutableRawPointer, headerLength: Int, mss: Int, l4Start: Int) {
        p.storeBytes(of: LinuxConstants.VIRTIO_NET_HDR_F_NEEDS_CSUM, toByteOffset: 0, as: UInt8.self)
        p.storeBytes(of: LinuxConstants.VIRTIO_NET_HDR_GSO_TCPV4, toByteOffset: 1, as: UInt8.self)
        p.storeBytes(of: UInt16(headerLength).littleEndian, toByteOffset: 2, as: UInt16.self)
        p.storeBytes(of: UInt16(mss).littleEndian, toByteOffset: 4, as: UInt16.self)
        p.storeBytes(of: UInt16(l4Start).littleEndian, toByteOffset: 6, as: UInt16.self)
        p.storeBytes(of: UInt16(16).littleEndian, toByteOffset: 8, as: UInt16.self)
    }

    /// Turns one received frame (header first) into complete frames for `emit`. `l2` is the
    /// link header length (14 for Ethernet, 0 for bare IP). Frames it cannot handle count as
    /// errors in the batch and are dropped.
    static func deliver(_ frame: UnsafeMutableRawBufferPointer, l2: Int, batch: FrameBatch,
                        emit: (UnsafeRawBufferPointer) -> Void) {
        guard frame.count > size, let base = frame.baseAddress else { batch.errors &+= 1; return }
        let flags = base.load(fromByteOffset: 0, as: UInt8.self)
        let gsoType = base.load(fromByteOffset: 1, as: UInt8.self) & ~LinuxConstants.VIRTIO_NET_HDR_GSO_ECN
        let gsoSize = Int(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 4, as: UInt16.self)))
        let csumStart = Int(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 6, as: UInt16.self)))
        let csumOffset = Int(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 8, as: UInt16.self)))
        let p = base + size
        let n = frame.count - size
        if gsoType == LinuxConstants.VIRTIO_NET_HDR_GSO_NONE {
            if flags & LinuxConstants.VIRTIO_NET_HDR_F_NEEDS_CSUM != 0 {
                guard csumStart + csumOffset + 2 <= n else { batch.errors &+= 1; return }
                let sum = InternetChecksum.sum(UnsafeRawBufferPointer(start: p + csumStart, count: n - csumStart))
                var c = InternetChecksum.fold(sum)
                // UDP sends 0 as 0xFFFF; TCP's 0 and 0xFFFF verify alike.
                if c == 0 { c = 0xFFFF }
                (p + csumStart + csumOffset).storeBytes(of: c.bigEndian, as: UInt16.self)
                batch.checksumsCompleted &+= 1
            }
            emit(UnsafeRawBufferPointer(start: p, count: n))
            return
        }
        guard gsoType == LinuxConstants.VIRTIO_NET_HDR_GSO_TCPV4, gsoSize > 0 else { batch.errors &+= 1; return }
        segmentTCPv4(UnsafeMutableRawBufferPointer(start: p, count: n), l2: l2, mss: gsoSize, batch: batch, emit: emit)
    }

    /// Cuts a TCP/IPv4 frame into segments of `mss` payload bytes in the batch's scratch frame,
    /// one at a time: IP total length, identification (+1 per segment) and header checksum; TCP
    /// sequence number, FIN/PSH on the last segment only, CWR on the first only, full checksum.
    /// Linux: `tcp_gso_segment()` / `inet_gso_segment()`.
    static func segmentTCPv4(_ frame: UnsafeMutableRawBufferPointer, l2: Int, mss: Int, batch: FrameBatch,
                             emit: (UnsafeRawBufferPointer) -> Void) {
        guard let b = frame.baseAddress, frame.count >= l2 + 40 else { batch.errors &+= 1; return }
        let ip = b + l2
        let ihl = Int(ip.load(as: UInt8.self) & 0x0F) * 4
        guard ihl >= 20, ip.load(fromByteOffset: 9, as: UInt8.self) == 6, frame.count >= l2 + ihl + 20 else {
            batch.errors &+= 1; return
        }
        let thl = Int(ip.load(fromByteOffset: ihl + 12, as: UInt8.self) >> 4) * 4
        let headers = l2 + ihl + thl
        guard thl >= 20, frame.count >= headers, headers + mss <= batch.scratchSize else { batch.errors &+= 1; return }
        let src = IPv4Address.read(from: ip + 12), dst = IPv4Address.read(from: ip + 16)
        let baseID = UInt16(bigEndian: ip.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
        let baseSeq = UInt32(bigEndian: ip.loadUnaligned(fromByteOffset: ihl + 4, as: UInt32.self))
        let tcpFlags = ip.load(fromByteOffset: ihl + 13, as: UInt8.self)
        let payload = frame.count - headers
        let out = batch.scratch
        out.copyMemory(from: b, byteCount: headers)
        let oip = out + l2, otcp = out + l2 + ihl
        var off = 0, n = 0
        batch.gsoFrames &+= 1
        while off < payload || (payload == 0 && n == 0) {
            let chunk = min(mss, payload - off)
            (out + headers).copyMemory(from: b + headers + off, byteCount: chunk)
            oip.storeBytes(of: UInt16(ihl + thl + chunk).bigEndian, toByteOffset: 2, as: UInt16.self)
            oip.storeBytes(of: (baseID &+ UInt16(truncatingIfNeeded: n)).bigEndian, toByteOffset: 4, as: UInt16.self)
            oip.storeBytes(of: 0, toByteOffset: 10, as: UInt16.self)
            let ic = InternetChecksum.fold(InternetChecksum.sum(UnsafeRawBufferPointer(start: oip, count: ihl)))
            oip.storeBytes(of: ic.bigEndian, toByteOffset: 10, as: UInt16.self)
            otcp.storeBytes(of: (baseSeq &+ UInt32(off)).bigEndian, toByteOffset: 4, as: UInt32.self)
            var f = tcpFlags
            if off + chunk < payload { f &= ~0x09 }   // FIN, PSH only on the last segment
            if n > 0 { f &= ~0x80 }                   // CWR only on the first
            otcp.storeBytes(of: f, toByteOffset: 13, as: UInt8.self)
            otcp.storeBytes(of: 0, toByteOffset: 16, as: UInt16.self)
            let segLen = UInt16(thl + chunk)
            let ps = InternetChecksum.pseudoHeaderSum(source: src, destination: dst, protocol: 6, length: segLen)
            let c = InternetChecksum.fold(InternetChecksum.sum(UnsafeRawBufferPointer(start: otcp, count: Int(segLen)), initial: ps))
            otcp.storeBytes(of: c.bigEndian, toByteOffset: 16, as: UInt16.self)
            emit(UnsafeRawBufferPointer(start: out, count: headers + chunk))
            off += chunk
            n += 1
            if chunk == 0 { break }
        }
    }
}
