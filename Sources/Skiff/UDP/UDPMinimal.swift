import SkiffWire

extension NetworkStack {
    /// Receives a UDP datagram: length and checksum checked, delivered to a socket (or a
    /// `udpListeners` port) or answered with ICMP port unreachable. Linux: `udp_rcv()` →
    /// `__udp4_lib_rcv()`.
    func udpRcv(_ buffer: consuming PacketBuffer, source: IPv4Address, destination: IPv4Address, ipHeaderLength: Int) {
        tracer.record(buffer.meta.traceID, .udpRcv, contexts.current, now)
        if buffer.fragmentCount > 0 {
            // Keep the IP header in front through the copy, for an ICMP error's quote.
            buffer.push(ipHeaderLength)
            guard buffer.linearize() else { drops.count(.poolExhausted); return }
            buffer.pull(ipHeaderLength)
        }
        let view: UDPView
        do { view = try UDPView(checking: buffer.bytes) } catch {
            counters.udpInErrors &+= 1; drops.count(.udpMalformed); return
        }
        guard buffer.meta.checksumValid || view.verifyChecksum(source: source, destination: destination) else {
            counters.udpInErrors &+= 1; drops.count(.udpChecksum); return
        }
        let port = view.destinationPort
        let payload = view.length - 8
        // Sockets first (Linux: `__udp4_lib_lookup_skb()`); the datagram is cut to its UDP length
        // (Linux: `pskb_trim_rcsum()`).
        let sourcePort = view.sourcePort
        _ = buffer.trim(to: view.length)
        if udpIsMulticastDestination(destination) {
            if udpBroadcastDeliver(buffer, source: source, destination: destination, sourcePort: sourcePort, port: port) { return }
        } else if let s = udpLookup(source: source, sourcePort: sourcePort, destination: destination, port: port) {
            udpQueueRcv(s, buffer, source: source, sourcePort: sourcePort)
            return
        }
        if udpListeners.contains(port) {
            counters.udpInDatagrams &+= 1
            udpDelivered &+= 1
            udpDeliveredBytes &+= UInt64(payload)
            return
        }
        counters.udpNoPorts &+= 1
        drops.count(.udpNoSocket)
        if destination.isBroadcast { return }
        // Quote from the IP header, which is still in front of `data`.
        buffer.push(ipHeaderLength)
        icmpSendError(type: 3, code: 3, rest: 0, about: buffer)
    }

    /// Sends one UDP datagram whose payload the caller writes (no socket layer yet): route
    /// (cached), UDP header and checksum, then IP output. Linux: `udp_sendmsg()` →
    /// `udp_send_skb()` → `ip_send_skb()`. Runs in the caller's context; call inside
    /// `processContext` for accounting.
    @inline(__always) @discardableResult
    public func udpSend(to destination: IPv4Address, sourcePort: UInt16, destinationPort: UInt16, payloadLength: Int,
                        route cache: inout RouteCache, fill: (UnsafeMutableRawBufferPointer) -> Void) -> SendError? {
        guard payloadLength >= 0, payloadLength <= 65_507 else { return .tooLarge }
        guard let route = resolveRoute(destination, cache: &cache) else {
            counters.ipOutNoRoutes &+= 1; drops.count(.noRoute); return .noRoute
        }
        guard var b = pool.allocate(size: 8 + payloadLength) else { drops.count(.poolExhausted); return .noBuffers }
        b.meta.traceID = tracer.begin()
        tracer.record(b.meta.traceID, .udpSendmsg, contexts.current, now)
        let p = b.put(8 + payloadLength)
        fill(UnsafeMutableRawBufferPointer(start: p + 8, count: payloadLength))
        b.recordCopy(.userToBuffer, bytes: payloadLength)
        let length = UInt16(8 + payloadLength)
        p.storeBytes(of: sourcePort.bigEndian, as: UInt16.self)
        p.storeBytes(of: destinationPort.bigEndian, toByteOffset: 2, as: UInt16.self)
        p.storeBytes(of: length.bigEndian, toByteOffset: 4, as: UInt16.self)
        p.storeBytes(of: 0, toByteOffset: 6, as: UInt16.self)
        var sum = InternetChecksum.pseudoHeaderSum(source: route.source, destination: destination,
                                                   protocol: IPProtocol.udp, length: length)
        sum = InternetChecksum.sum(UnsafeRawBufferPointer(start: p, count: Int(length)), initial: sum)
        var c = InternetChecksum.fold(sum)
        if c == 0 { c = 0xFFFF }
        p.storeBytes(of: c.bigEndian, toByteOffset: 6, as: UInt16.self)
        counters.udpOutDatagrams &+= 1
        return ipQueueXmit(b, destination: destination, protocol: IPProtocol.udp, route: &cache)
    }
}
