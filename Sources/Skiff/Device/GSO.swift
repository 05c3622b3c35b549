import SkiffWire

extension NetworkStack {
    /// Software segmentation: a TCP packet larger than the MTU (`meta.gsoSize` = MSS) is cut
    /// into MSS-sized segments, each with its own copy of the headers, sequence number, IP length,
    /// identification and checksums; FIN and PSH stay on the last segment, CWR on the first.
    /// UDP GSO packets become datagrams of `gsoSize` payload each. Linux: `skb_gso_segment()` →
    /// `tcp_gso_segment()` / `__udp_gso_segment()` (payload copied here; counted as segmentation).
    func gsoSegmentAndXmit(_ buffer: consuming PacketBuffer, device dev: NetDevice, queue txq: TxQueue,
                           more: Bool) -> PacketBuffer? {
        let id = buffer.meta.traceID
        tracer.record(id, .gsoSegment, contexts.current, now, queue: txq.index)
        let l2 = dev.headerLength
        let b = buffer.bytes
        guard b.count >= l2 + 20 else { drops.count(.ipHeaderInvalid); return nil }
        let ihl = Int(b[l2] & 0x0F) * 4
        let proto = b[l2 + 9]
        let l4: Int
        if proto == IPProtocol.tcp {
            guard b.count >= l2 + ihl + 20 else { drops.count(.tcpMalformed); return nil }
            l4 = Int(b[l2 + ihl + 12] >> 4) * 4
        } else if proto == IPProtocol.udp {
            l4 = 8
        } else { drops.count(.ipHeaderInvalid); return nil }
        let headers = l2 + ihl + l4
        guard b.count >= headers else { drops.count(.ipHeaderInvalid); return nil }
        let mss = Int(buffer.meta.gsoSize)
        let payload = buffer.length - headers
        let segments = (payload + mss - 1) / mss
        // One pass puts at most what an empty ring holds (keeping the driver's reserve); a packet
        // with more segments goes in parts, the unsent tail handed back as a smaller GSO packet
        // to be requeued (Linux requeues the unsent rest of the segment list). Otherwise it
        // would wait for room that never comes and stall the queue for good.
        let reserve = 2 + NetworkStack.descriptorsNeeded
        // A segment takes one descriptor for its headers and, when its payload stays in the
        // original (scatter-gather), one per piece of the original it spans: one if the original
        // is linear, two or more where a segment crosses the edge of one of its fragments.
        let gather = dev.features.contains(.scatterGather)
        let room = txq.ring.size - 1 - reserve
        var sendNow = 0, descriptorsNow = 0
        var scan = 0
        while scan < payload {
            let chunk = min(mss, payload - scan)
            let d = 1 + (gather ? buffer.pieces(offset: headers + scan, length: chunk) : 0)
            if sendNow > 0 && descriptorsNow + d > room { break }
            sendNow += 1
            descriptorsNow += d
            scan += chunk
        }
        if txq.ring.unused < descriptorsNow + min(reserve, max(0, txq.ring.size - 1 - descriptorsNow)) {
            stopQueue(txq)
            return buffer
        }
        let src = IPv4Address(UInt32(b[l2 + 12]) << 24 | UInt32(b[l2 + 13]) << 16 | UInt32(b[l2 + 14]) << 8 | UInt32(b[l2 + 15]))
        let dst = IPv4Address(UInt32(b[l2 + 16]) << 24 | UInt32(b[l2 + 17]) << 16 | UInt32(b[l2 + 18]) << 8 | UInt32(b[l2 + 19]))
        let baseID = UInt16(b[l2 + 4]) << 8 | UInt16(b[l2 + 5])
        let baseSeq = proto == IPProtocol.tcp ? UInt32(b[l2 + ihl + 4]) << 24 | UInt32(b[l2 + ihl + 5]) << 16
            | UInt32(b[l2 + ihl + 6]) << 8 | UInt32(b[l2 + ihl + 7]) : 0
        let flags = proto == IPProtocol.tcp ? b[l2 + ihl + 13] : 0
        // What the packet is charged to its socket goes to the segments (and the rest) by
        // payload, so the socket gets it back as each one is freed.
        let charged = buffer.chargedToSocket
        var rest: PacketBuffer? = nil
        if sendNow < segments {
            let restOff = sendNow * mss, restLen = payload - restOff
            guard var r = buffer.allocateSibling(size: headers + restLen) else {
                drops.count(.poolExhausted); dev.stats.txDropped &+= 1; return nil
            }
            let p = r.put(headers + restLen)
            buffer.copyBytes(to: p, offset: 0, count: headers)
            buffer.copyBytes(to: p + headers, offset: headers + restOff, count: restLen)
            r.recordCopy(.segmentation, bytes: headers + restLen)
            // The rest continues the numbering: IP identification, TCP sequence; CWR stays first.
            (p + l2).storeBytes(of: UInt16(ihl + l4 + restLen).bigEndian, toByteOffset: 2, as: UInt16.self)
            (p + l2).storeBytes(of: (baseID &+ UInt16(truncatingIfNeeded: sendNow)).bigEndian, toByteOffset: 4, as: UInt16.self)
            if proto == IPProtocol.tcp {
                (p + l2 + ihl).storeBytes(of: (baseSeq &+ UInt32(restOff)).bigEndian, toByteOffset: 4, as: UInt32.self)
                (p + l2 + ihl).storeBytes(of: flags & ~0x80, toByteOffset: 13, as: UInt8.self)
            }
            r.meta = buffer.meta
            r.meta.traceID = 0
            r.takeCharge(charged * restLen / payload, from: &buffer)
            rest = .some(r)
        }
        var off = 0
        var n = 0
        while off < payload && n < sendNow {
            let chunk = min(mss, payload - off)
            // Each segment: its own copy of the headers, and its payload as a fragment that
            // points into the original (Linux: skb_segment() with frags: no payload copy). A
            // source that is not linear gets its payload copied instead.
            var zeroCopy = dev.features.contains(.scatterGather)
            guard var s = buffer.allocateSibling(size: headers + chunk) else {
                drops.count(.poolExhausted); return nil
            }
            let p = s.put(headers)
            buffer.copyBytes(to: p, offset: 0, count: headers)
            if zeroCopy && !s.addFragments(of: buffer, offset: headers + off, length: chunk) { zeroCopy = false }
            if zeroCopy {
                s.recordCopy(.segmentation, bytes: headers)
            } else {
                buffer.copyBytes(to: s.put(chunk), offset: headers + off, count: chunk)
                s.recordCopy(.segmentation, bytes: headers + chunk)
            }
            let ip = p + l2
            ip.storeBytes(of: UInt16(ihl + l4 + chunk).bigEndian, toByteOffset: 2, as: UInt16.self)
            ip.storeBytes(of: (baseID &+ UInt16(truncatingIfNeeded: n)).bigEndian, toByteOffset: 4, as: UInt16.self)
            ip.storeBytes(of: 0, toByteOffset: 10, as: UInt16.self)
            let ic = InternetChecksum.fold(InternetChecksum.sum(UnsafeRawBufferPointer(start: ip, count: ihl)))
            ip.storeBytes(of: ic.bigEndian, toByteOffset: 10, as: UInt16.self)
            let t = ip + ihl
            let last = off + chunk >= payload
            let segLen = UInt16(l4 + chunk)
            if proto == IPProtocol.tcp {
                t.storeBytes(of: (baseSeq &+ UInt32(off)).bigEndian, toByteOffset: 4, as: UInt32.self)
                var f = flags
                if !last { f &= ~0x09 }          // FIN, PSH only on the last segment
                if n > 0 { f &= ~0x80 }          // CWR only on the first
                t.storeBytes(of: f, toByteOffset: 13, as: UInt8.self)
                t.storeBytes(of: 0, toByteOffset: 16, as: UInt16.self)
                let ps = InternetChecksum.pseudoHeaderSum(source: src, destination: dst, protocol: proto, length: segLen)
                let c = InternetChecksum.fold(s.checksumSum(from: l2 + ihl, initial: ps))
                t.storeBytes(of: c.bigEndian, toByteOffset: 16, as: UInt16.self)
            } else {
                t.storeBytes(of: segLen.bigEndian, toByteOffset: 4, as: UInt16.self)
                t.storeBytes(of: 0, toByteOffset: 6, as: UInt16.self)
                let ps = InternetChecksum.pseudoHeaderSum(source: src, destination: dst, protocol: proto, length: segLen)
                var c = InternetChecksum.fold(s.checksumSum(from: l2 + ihl, initial: ps))
                if c == 0 { c = 0xFFFF }
                t.storeBytes(of: c.bigEndian, toByteOffset: 6, as: UInt16.self)
            }
            s.meta = buffer.meta
            s.takeCharge(n == sendNow - 1 ? charged : charged * chunk / payload, from: &buffer)
            s.meta.gsoSize = 0
            s.meta.checksumPartial = false
            if s.meta.txTimestamps != 0 && (proto != IPProtocol.tcp || buffer.meta.txTimestampKey &- (baseSeq &+ UInt32(off)) >= UInt32(chunk)) {
                // Linux: tcp_gso_tstamp() — only the segment holding the key is stamped.
                s.meta.txTimestamps = 0
            }
            if n > 0 { s.meta.traceID = 0 }
            off += chunk
            n += 1
            if !taps.isEmpty { for tap in taps { tap.capture(s, device: dev, direction: .transmit, now: now) } }
            // The last segment of this pass rings the doorbell when a rest is handed back.
            let moreNow = n < sendNow || (sendNow == segments && more)
            if let back = driverXmit(s, device: dev, queue: txq, more: moreNow) {
                // Cannot happen after the room check above; count it rather than trap.
                drops.count(.qdisc); _ = consume back
            }
        }
        if let r = rest {
            // Wake (and run the qdisc again) once the ring has drained.
            stopQueue(txq)
            return r
        }
        return nil
    }
}
