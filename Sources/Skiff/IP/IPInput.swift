import SkiffWire

extension NetworkStack {
    /// Validates a received IPv4 datagram (version, header length, total length, checksum),
    /// trims link padding, runs PRE_ROUTING, and routes it: local delivery, forwarding, or drop.
    /// Linux: `ip_rcv()` → `ip_rcv_core()` → `ip_rcv_finish()`.
    func ipRcv(_ buffer: consuming PacketBuffer, device dev: NetDevice) {
        let id = buffer.meta.traceID
        tracer.record(id, .ipRcv, contexts.current, now)
        counters.ipInReceives &+= 1
        let hl: Int, total: Int, destination: IPv4Address
        do {
            let v = try IPv4View(checking: buffer.bytes, availableLength: buffer.length, verifyChecksum: true)
            hl = v.headerLength; total = v.totalLength; destination = v.destination
        } catch {
            counters.ipInHdrErrors &+= 1
            switch error {
            case .badChecksum: drops.count(.ipChecksum)
            case .truncated, .badTotalLength: drops.count(.ipTruncated)
            default: drops.count(.ipHeaderInvalid)
            }
            return
        }
        if buffer.length > total { _ = buffer.trim(to: total) }
        buffer.meta.networkOffset = 0
        if netfilter.isActive(.preRouting) {
            tracer.record(id, .netfilterPreRouting, contexts.current, now)
            if netfilterHook(.preRouting, buffer, inDevice: dev.index, outDevice: -1) != .accept {
                drops.count(.netfilter); counters.ipInDiscards &+= 1
                return
            }
        }
        tracer.record(id, .ipRcvFinish, contexts.current, now)
        if isLocalAddress(destination) || destination.isBroadcast
            || dev.addresses.contains(where: { $0.broadcast == destination }) {
            ipLocalDeliver(buffer, device: dev, headerLength: hl)
        } else if destination.isMulticast {
            drops.count(.ipOtherHost)
        } else if ipConfig.forwarding {
            ipForward(buffer, device: dev)
        } else {
            counters.ipInAddrErrors &+= 1
            drops.count(.ipNotForUs)
        }
    }

    /// Reassembles fragments, runs LOCAL_IN and hands the payload to its protocol.
    /// Linux: `ip_local_deliver()` → `ip_defrag()` → `ip_local_deliver_finish()`.
    func ipLocalDeliver(_ buffer: consuming PacketBuffer, device dev: NetDevice, headerLength: Int) {
        var id = buffer.meta.traceID
        tracer.record(id, .ipLocalDeliver, contexts.current, now)
        let b = buffer.bytes
        let fragField = UInt16(b[6]) << 8 | UInt16(b[7])
        var whole: PacketBuffer
        if fragField & 0x3FFF != 0 {
            tracer.record(id, .ipDefrag, contexts.current, now)
            guard let r = ipDefrag(buffer, device: dev) else { return }
            whole = r
            id = whole.meta.traceID
        } else {
            whole = buffer
        }
        if netfilter.isActive(.localIn) {
            tracer.record(id, .netfilterLocalIn, contexts.current, now)
            let verdict = netfilterHook(.localIn, whole, inDevice: dev.index, outDevice: -1)
            if verdict != .accept {
                drops.count(.netfilter); counters.ipInDiscards &+= 1
                if case let .reject(code) = verdict { icmpSendError(type: 3, code: code, rest: 0, about: whole) }
                return
            }
        }
        let h = whole.bytes
        let hl = Int(h[0] & 0x0F) * 4
        let proto = h[9]
        let source = IPv4Address(UInt32(h[12]) << 24 | UInt32(h[13]) << 16 | UInt32(h[14]) << 8 | UInt32(h[15]))
        let destination = IPv4Address(UInt32(h[16]) << 24 | UInt32(h[17]) << 16 | UInt32(h[18]) << 8 | UInt32(h[19]))
        counters.ipInDelivers &+= 1
        switch proto {
        case IPProtocol.icmp:
            whole.pull(hl)
            whole.meta.transportOffset = 0
            icmpRcv(whole, source: source, destination: destination, device: dev, ipHeaderLength: hl)
        case IPProtocol.udp:
            whole.pull(hl)
            whole.meta.transportOffset = 0
            udpRcv(whole, source: source, destination: destination, ipHeaderLength: hl)
        case IPProtocol.tcp:
            whole.pull(hl)
            whole.meta.transportOffset = 0
            tcpV4Rcv(whole, source: source, destination: destination)
        default:
            if let handler = transportHandlers[Int(proto)] {
                whole.pull(hl)
                whole.meta.transportOffset = 0
                handler.receive(whole, source: source, destination: destination, stack: self)
                return
            }
            // Linux: no handler → ICMP protocol unreachable (raw sockets aside).
            counters.ipInUnknownProtos &+= 1
            drops.count(.protocolUnreachable)
            icmpSendError(type: 3, code: 2, rest: 0, about: whole)
        }
    }

    /// Forwards a datagram not addressed to us: TTL check (ICMP time exceeded), TTL decrement
    /// with an incremental checksum update (RFC 1624), FORWARD hook, then output.
    /// Linux: `ip_forward()` → `ip_forward_finish()`.
    func ipForward(_ buffer: consuming PacketBuffer, device dev: NetDevice) {
        let id = buffer.meta.traceID
        tracer.record(id, .ipForward, contexts.current, now)
        let b = buffer.bytes
        let ttl = b[8]
        if ttl <= 1 {
            drops.count(.ttlExceeded)
            icmpSendError(type: 11, code: 0, rest: 0, about: buffer)
            return
        }
        let destination = IPv4Address(UInt32(b[16]) << 24 | UInt32(b[17]) << 16 | UInt32(b[18]) << 8 | UInt32(b[19]))
        var cache = RouteCache()
        guard let route = resolveRoute(destination, cache: &cache) else {
            counters.ipOutNoRoutes &+= 1
            drops.count(.noRoute)
            icmpSendError(type: 3, code: 0, rest: 0, about: buffer)
            return
        }
        if buffer.length > route.mtu && b[6] & 0x40 != 0 {
            drops.count(.fragmentationNeeded)
            icmpSendError(type: 3, code: 4, rest: UInt32(route.mtu & 0xFFFF), about: buffer)
            return
        }
        if netfilter.isActive(.forward) {
            tracer.record(id, .netfilterForward, contexts.current, now)
            let verdict = netfilterHook(.forward, buffer, inDevice: dev.index, outDevice: route.device)
            if verdict != .accept {
                drops.count(.netfilter)
                // REJECT answers the sender, as on INPUT (Linux: `ipt_REJECT` → `icmp_send()`).
                if case let .reject(code) = verdict { icmpSendError(type: 3, code: code, rest: 0, about: buffer) }
                return
            }
        }
        guard buffer.makeHeaderWritable(headroom: 32) else { drops.count(.poolExhausted); return }
        IPv4Header.setTTL(ttl - 1, inHeader: UnsafeMutableRawBufferPointer(start: buffer.data, count: 20))
        counters.ipForwDatagrams &+= 1
        buffer.meta.nextHop = route.nextHop.value
        if buffer.length > route.mtu {
            _ = ipFragment(buffer, mtu: route.mtu, device: devices[route.device], nextHop: route.nextHop, cache: &cache)
        } else {
            neighOutput(buffer, device: devices[route.device], nextHop: route.nextHop, cachedEntry: &cache.neighbour)
        }
    }
}

/// A transport protocol registered above IP (TCP, later). Linux: `struct net_protocol`.
public protocol TransportHandler: AnyObject {
    /// Receives a segment whose `data` starts at the transport header.
    func receive(_ buffer: consuming PacketBuffer, source: IPv4Address, destination: IPv4Address, stack: NetworkStack)
}
