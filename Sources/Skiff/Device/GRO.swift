import SkiffWire

/// One flow a NAPI context holds a merged packet for (Linux: an entry of `napi->gro_hash`).
struct GROFlow {
    var source: UInt32 = 0, destination: UInt32 = 0
    var ports: UInt32 = 0
    /// Where the held packet's IP and TCP headers start, and the TCP header length.
    var ipOffset = 0, tcpHeaderLength = 0
    /// Sequence number the next segment must carry; its ACK number; the first segment's size.
    var nextSeq: UInt32 = 0, ack: UInt32 = 0, segmentSize = 0
    var segments = 0
    var ipLength = 0
}

/// The packets a receive queue's NAPI context is merging (Linux: `napi->gro_hash`, at most
/// `MAX_GRO_SKBS` = 8 held).
final class GROTable {
    static let capacity = 8
    @exclusivity(unchecked) var held: UnsafeMutablePointer<PacketBuffer?>
    @exclusivity(unchecked) var flows: UnsafeMutablePointer<GROFlow>
    @exclusivity(unchecked) var count = 0
    /// Segments merged into another (Linux: the `gro_merged` idea), and packets passed up.
    @exclusivity(unchecked) var merged: UInt64 = 0
    @exclusivity(unchecked) var flushed: UInt64 = 0

    init() {
        held = .allocate(capacity: GROTable.capacity)
        for i in 0..<GROTable.capacity { (held + i).initialize(to: nil) }
        flows = .allocate(capacity: GROTable.capacity)
        flows.initialize(repeating: GROFlow(), count: GROTable.capacity)
    }

    deinit {
        held.deinitialize(count: GROTable.capacity)
        held.deallocate()
        flows.deallocate()
    }
}

extension NetworkStack {
    /// Generic receive offload: consecutive TCP segments of one flow that arrive in one NAPI poll
    /// are merged into one packet before the stack sees them: the first keeps its headers, the
    /// payload of the others is attached as fragments (no copy). A segment that cannot join
    /// (other flags, a gap, other options, a short one) ends the flow's packet. Every checksum is
    /// verified here, so the merged packet goes up as `CHECKSUM_UNNECESSARY`. Linux:
    /// `napi_gro_receive()` → `inet_gro_receive()` → `tcp_gro_receive()`.
    func groReceive(_ buffer: consuming PacketBuffer, device dev: NetDevice, queue q: Int, slot: Int) {
        let table = dev.rxQueues[q].gro
        guard let f = groParse(buffer, device: dev) else {
            // What cannot be merged goes up after everything held, so no flow is reordered.
            if table.count > 0 { groFlushAll(device: dev, queue: q) }
            netifReceive(buffer, device: dev, slot: slot)
            return
        }
        let payloadOffset = f.ipOffset + 20 + f.tcpHeaderLength
        let payload = buffer.length - payloadOffset
        var i = 0
        while i < table.count {
            let h = table.flows[i]
            if h.source == f.source && h.destination == f.destination && h.ports == f.ports { break }
            i += 1
        }
        if i < table.count {
            let h = table.flows[i]
            var join = f.nextSeq == h.nextSeq && f.ack == h.ack && f.tcpHeaderLength == h.tcpHeaderLength
                && payload <= h.segmentSize && h.ipLength + payload <= 65_535
            if join {
                // Options must be byte for byte the same (Linux compares every option word).
                join = table.held[i]!.withBytes(at: h.ipOffset + 20 + 20, count: h.tcpHeaderLength - 20) { a in
                    buffer.bytes[(f.ipOffset + 40)..<(f.ipOffset + 20 + f.tcpHeaderLength)].elementsEqual(a)
                }
            }
            if join, table.held[i]!.addFragments(of: buffer, offset: payloadOffset, length: payload) {
                table.flows[i].nextSeq &+= UInt32(payload)
                table.flows[i].segments += 1
                table.flows[i].ipLength += payload
                table.merged &+= 1
                let flags = buffer.bytes[f.ipOffset + 20 + 13]
                if flags & TCPFlag.psh != 0 {
                    table.held[i]!.orTCPFlags(TCPFlag.psh, at: h.ipOffset + 20)
                }
                // A PSH or a short segment ends the packet (Linux: flush on PSH, len < gso_size).
                if flags & TCPFlag.psh != 0 || payload < h.segmentSize { groFlush(table, index: i, device: dev, slot: slot) }
                return
            }
            groFlush(table, index: i, device: dev, slot: slot)
        }
        if table.count == GROTable.capacity { groFlush(table, index: 0, device: dev, slot: slot) }
        var g = f
        g.segmentSize = payload
        g.segments = 1
        g.nextSeq = f.nextSeq &+ UInt32(payload)
        table.flows[table.count] = g
        table.held[table.count] = .some(buffer)
        table.count += 1
    }

    /// Passes every held packet up (Linux: `napi_gro_flush()` at the end of a poll).
    func groFlushAll(device dev: NetDevice, queue q: Int) {
        let table = dev.rxQueues[q].gro
        while table.count > 0 { groFlush(table, index: 0, device: dev, slot: -1) }
    }

    /// Finishes one held packet — IP total length and checksum, the segment size, the checksum
    /// marked verified — and passes it up. Linux: `napi_gro_complete()` → `tcp4_gro_complete()`.
    func groFlush(_ table: GROTable, index i: Int, device dev: NetDevice, slot: Int) {
        guard var b = table.held[i].take() else { return }
        let f = table.flows[i]
        // Keep the others in arrival order.
        var k = i
        while k + 1 < table.count {
            table.held[k] = table.held[k + 1].take()
            table.flows[k] = table.flows[k + 1]
            k += 1
        }
        table.count -= 1
        if f.segments > 1 {
            b.setIPv4TotalLength(f.ipLength, at: f.ipOffset)
            b.meta.gsoSize = UInt16(truncatingIfNeeded: f.segmentSize)
            // As Linux's tcp4_gro_complete(): the TCP checksum field gets the pseudo-header sum
            // of the merged length and the checksum is left partial, so a forwarded packet is
            // finished by GSO or the NIC; local delivery trusts `checksumValid`.
            b.setPartialTCPChecksum(ipOffset: f.ipOffset, tcpLength: f.ipLength - 20)
            b.meta.checksumPartial = true
        }
        b.meta.checksumValid = true
        table.flushed &+= 1
        netifReceive(b, device: dev, slot: slot)
    }

    /// The flow of a segment GRO may merge: IPv4 without options or fragmentation, TCP with
    /// only ACK (and PSH) set and a payload, correct IP and TCP checksums. Nil otherwise.
    func groParse(_ b: borrowing PacketBuffer, device dev: NetDevice) -> GROFlow? {
        // A packet that is already large (a GSO frame from an offloading link) goes up as it is.
        guard dev.features.contains(.gro), b.fragmentCount == 0, b.meta.gsoSize == 0 else { return nil }
        let bytes = b.bytes
        var ip = 0
        if dev.linkType == .ethernet {
            guard bytes.count >= 14 + 40, bytes[12] == 0x08, bytes[13] == 0x00 else { return nil }
            ip = 14
        } else {
            guard bytes.count >= 40 else { return nil }
        }
        guard bytes[ip] == 0x45, bytes[ip + 9] == IPProtocol.tcp else { return nil }
        let total = Int(bytes[ip + 2]) << 8 | Int(bytes[ip + 3])
        guard total == bytes.count - ip, bytes[ip + 6] & 0x3F == 0, bytes[ip + 7] == 0 else { return nil }
        let tcp = ip + 20
        let doff = Int(bytes[tcp + 12] >> 4) * 4
        guard doff >= 20, tcp + doff < bytes.count else { return nil }
        let flags = bytes[tcp + 13]
        guard flags & ~(TCPFlag.ack | TCPFlag.psh) == 0, flags & TCPFlag.ack != 0 else { return nil }
        let header = UnsafeRawBufferPointer(rebasing: bytes[ip..<(ip + 20)])
        guard InternetChecksum.verify(header) else { return nil }
        var f = GROFlow()
        f.source = UInt32(bytes[ip + 12]) << 24 | UInt32(bytes[ip + 13]) << 16 | UInt32(bytes[ip + 14]) << 8 | UInt32(bytes[ip + 15])
        f.destination = UInt32(bytes[ip + 16]) << 24 | UInt32(bytes[ip + 17]) << 16 | UInt32(bytes[ip + 18]) << 8 | UInt32(bytes[ip + 19])
        if !b.meta.checksumValid {
            let segment = UnsafeRawBufferPointer(rebasing: bytes[tcp...])
            let ps = InternetChecksum.pseudoHeaderSum(source: IPv4Address(f.source), destination: IPv4Address(f.destination),
                                                      protocol: IPProtocol.tcp, length: UInt16(segment.count))
            guard InternetChecksum.fold(InternetChecksum.sum(segment, initial: ps)) == 0 else { return nil }
        }
        f.ports = UInt32(bytes[tcp]) << 24 | UInt32(bytes[tcp + 1]) << 16 | UInt32(bytes[tcp + 2]) << 8 | UInt32(bytes[tcp + 3])
        f.nextSeq = UInt32(bytes[tcp + 4]) << 24 | UInt32(bytes[tcp + 5]) << 16 | UInt32(bytes[tcp + 6]) << 8 | UInt32(bytes[tcp + 7])
        f.ack = UInt32(bytes[tcp + 8]) << 24 | UInt32(bytes[tcp + 9]) << 16 | UInt32(bytes[tcp + 10]) << 8 | UInt32(bytes[tcp + 11])
        f.ipOffset = ip
        f.tcpHeaderLength = doff
        f.ipLength = total
        return f
    }
}

extension PacketBuffer {
    /// Reads `count` linear bytes from `offset`.
    func withBytes<R>(at offset: Int, count: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        body(UnsafeRawBufferPointer(start: data + offset, count: count))
    }

    /// Sets a flag bit in the TCP header at `offset` of the linear part.
    mutating func orTCPFlags(_ f: UInt8, at offset: Int) {
        let p = data + offset + 13
        p.storeBytes(of: p.load(as: UInt8.self) | f, as: UInt8.self)
    }

    /// Puts the pseudo-header sum (source, destination, protocol, `tcpLength`) in the TCP
    /// checksum field of the IPv4 packet at `ipOffset` (Linux: `~tcp_v4_check(len, saddr, daddr, 0)`).
    mutating func setPartialTCPChecksum(ipOffset: Int, tcpLength: Int) {
        let ip = data + ipOffset
        let src = IPv4Address(UInt32(bigEndian: ip.loadUnaligned(fromByteOffset: 12, as: UInt32.self)))
        let dst = IPv4Address(UInt32(bigEndian: ip.loadUnaligned(fromByteOffset: 16, as: UInt32.self)))
        let ps = InternetChecksum.pseudoHeaderSum(source: src, destination: dst, protocol: IPProtocol.tcp,
                                                  length: UInt16(truncatingIfNeeded: tcpLength))
        (ip + 20).storeBytes(of: (~InternetChecksum.fold(ps)).bigEndian, toByteOffset: 16, as: UInt16.self)
    }

    /// Rewrites the IPv4 total length at `offset` and the header checksum.
    mutating func setIPv4TotalLength(_ length: Int, at offset: Int) {
        let ip = data + offset
        ip.storeBytes(of: UInt16(length).bigEndian, toByteOffset: 2, as: UInt16.self)
        ip.storeBytes(of: UInt16(0), toByteOffset: 10, as: UInt16.self)
        let c = InternetChecksum.fold(InternetChecksum.sum(UnsafeRawBufferPointer(start: ip, count: 20)))
        ip.storeBytes(of: c.bigEndian, toByteOffset: 10, as: UInt16.self)
    }
}
