import SkiffWire

/// Why a send failed, with the errno Linux would return.
public enum SendError: Error, Equatable, Sendable {
    /// No route to the destination (Linux: `ENETUNREACH`).
    case noRoute
    /// Larger than the path MTU with DF set (Linux: `EMSGSIZE`).
    case messageTooLong(mtu: Int)
    /// The buffer pool is empty (Linux: `ENOBUFS`).
    case noBuffers
    /// A netfilter rule dropped or rejected the packet (Linux: `EPERM`).
    case filtered
    /// The payload is too large for one IP datagram (Linux: `EMSGSIZE`).
    case tooLarge

    public var errno: Int32 {
        switch self {
        case .noRoute: 101
        case .messageTooLong, .tooLarge: 90
        case .noBuffers: 105
        case .filtered: 1
        }
    }
}

extension NetworkStack {
    /// Resolves the route for `destination`, using the cache while the table is unchanged.
    /// Linux: `__sk_dst_check()` then `ip_route_output_ports()` on a miss.
    @inline(__always)
    public func resolveRoute(_ destination: IPv4Address, cache: inout RouteCache) -> RouteResult? {
        if cache.generation == routes.generation && cache.destination == destination, let r = cache.result {
            return r
        }
        cache.destination = destination
        cache.generation = routes.generation
        cache.neighbour = -1
        guard let route = routes.lookup(destination) else { cache.result = nil; return nil }
        let dev = devices[route.device]
        let source = route.source ?? dev.addresses.first?.address ?? .any
        let r = RouteResult(device: route.device, nextHop: route.gateway ?? destination, source: source,
                            mtu: route.mtu > 0 ? min(route.mtu, dev.mtu) : dev.mtu,
                            isLocal: isLocalAddress(destination))
        cache.result = r
        return r
    }

    /// Sends a transport segment (at `buffer.data`) as an IPv4 datagram: route lookup (cached),
    /// IP header, LOCAL_OUT and POST_ROUTING hooks, fragmentation if it exceeds the MTU, then the
    /// neighbour layer. Linux: `ip_queue_xmit()` → `ip_local_out()` → `ip_output()` →
    /// `ip_finish_output()`.
    @inline(__always) @discardableResult
    public func ipQueueXmit(_ buffer: consuming PacketBuffer, destination: IPv4Address, protocol proto: UInt8,
                            tos: UInt8 = 0, ttl: UInt8 = 0, dontFragment: Bool = false,
                            route cache: inout RouteCache) -> SendError? {
        let id = buffer.meta.traceID
        tracer.record(id, .ipQueueXmit, contexts.current, now)
        guard let route = resolveRoute(destination, cache: &cache), !route.isLocal else {
            counters.ipOutNoRoutes &+= 1
            drops.count(.noRoute)
            return .noRoute
        }
        let total = buffer.length + 20
        if total > 65535 { drops.count(.ipHeaderInvalid); return .tooLarge }
        // IP header (the fast-path form of `IPv4Header.emit`).
        let p = buffer.push(20)
        p.storeBytes(of: 0x45, as: UInt8.self)
        p.storeBytes(of: tos, toByteOffset: 1, as: UInt8.self)
        p.storeBytes(of: UInt16(total).bigEndian, toByteOffset: 2, as: UInt16.self)
        let ident = ipIdentifier
        ipIdentifier &+= 1
        p.storeBytes(of: ident.bigEndian, toByteOffset: 4, as: UInt16.self)
        p.storeBytes(of: (dontFragment ? UInt16(0x4000) : 0).bigEndian, toByteOffset: 6, as: UInt16.self)
        p.storeBytes(of: ttl == 0 ? ipConfig.defaultTTL : ttl, toByteOffset: 8, as: UInt8.self)
        p.storeBytes(of: proto, toByteOffset: 9, as: UInt8.self)
        p.storeBytes(of: 0, toByteOffset: 10, as: UInt16.self)
        p.storeBytes(of: route.source.value.bigEndian, toByteOffset: 12, as: UInt32.self)
        p.storeBytes(of: destination.value.bigEndian, toByteOffset: 16, as: UInt32.self)
        let c = InternetChecksum.fold(InternetChecksum.sum(UnsafeRawBufferPointer(start: p, count: 20)))
        p.storeBytes(of: c.bigEndian, toByteOffset: 10, as: UInt16.self)
        buffer.meta.networkOffset = 0
        buffer.meta.protocolType = EtherType.ipv4
        buffer.meta.ipProtocol = proto
        buffer.meta.nextHop = route.nextHop.value
        buffer.meta.priority = PfifoFast.rtTosToPriority(tos: tos)
        counters.ipOutRequests &+= 1
        return ipLocalOut(buffer, route: route, cache: &cache)
    }

    /// Linux: `ip_local_out()` (LOCAL_OUT hook) → `ip_output()` (POST_ROUTING hook) →
    /// `ip_finish_output()` (fragment if needed) → `ip_finish_output2()`.
    @inline(__always)
    func ipLocalOut(_ buffer: consuming PacketBuffer, route: RouteResult, cache: inout RouteCache) -> SendError? {
        let id = buffer.meta.traceID
        let dev = devices[route.device]
        tracer.record(id, .ipLocalOut, contexts.current, now)
        if !outputHookAccepts(.localOut, stage: .netfilterLocalOut, buffer, outDevice: route.device) { return .filtered }
        tracer.record(id, .ipOutput, contexts.current, now)
        if !outputHookAccepts(.postRouting, stage: .netfilterPostRouting, buffer, outDevice: route.device) { return .filtered }
        if buffer.length > route.mtu && buffer.meta.gsoSize == 0 {
            let df = buffer.bytes.count >= 8 && buffer.bytes[6] & 0x40 != 0
            if df {
                counters.ipFragFails &+= 1
                drops.count(.fragmentationNeeded)
                return .messageTooLong(mtu: route.mtu)
            }
            return ipFragment(buffer, mtu: route.mtu, device: dev, nextHop: route.nextHop, cache: &cache)
        }
        neighOutput(buffer, device: dev, nextHop: route.nextHop, cachedEntry: &cache.neighbour)
        return nil
    }

    /// Runs an output hook (LOCAL_OUT, POST_ROUTING) if it has rules; a packet it refuses is
    /// counted as an output discard. Linux: `NF_HOOK()` on the output path.
    @inline(__always)
    func outputHookAccepts(_ hook: NetfilterHook, stage: Stage, _ buffer: borrowing PacketBuffer, outDevice: Int) -> Bool {
        guard netfilter.isActive(hook) else { return true }
        tracer.record(buffer.meta.traceID, stage, contexts.current, now)
        if netfilterHook(hook, buffer, inDevice: -1, outDevice: outDevice) == .accept { return true }
        drops.count(.netfilter)
        counters.ipOutDiscards &+= 1
        return false
    }

    /// Splits a datagram larger than the MTU into fragments, each a new buffer with a copy of the
    /// header and its share of the payload (a multiple of 8 bytes); the copies are counted.
    /// Options not marked "copied" go in the first fragment only. Linux: `ip_do_fragment()`
    /// (slow path).
    func ipFragment(_ buffer: consuming PacketBuffer, mtu: Int, device dev: NetDevice, nextHop: IPv4Address,
                    cache: inout RouteCache) -> SendError? {
        let id = buffer.meta.traceID
        tracer.record(id, .ipFragment, contexts.current, now)
        let hdr = buffer.bytes
        let hl = Int(hdr[0] & 0x0F) * 4
        let total = buffer.length
        let payload = total - hl
        let originalFrag = UInt16(hdr[6]) << 8 | UInt16(hdr[7])
        let originalMF = originalFrag & 0x2000 != 0
        let baseOffset = Int(originalFrag & 0x1FFF) * 8
        // Header of later fragments: only options with the "copied" bit survive (built on the stack).
        return withUnsafeTemporaryAllocation(byteCount: 60, alignment: 4) { laterHeader -> SendError? in
            var laterHL = 20
            for i in 0..<20 { laterHeader[i] = hdr[i] }
            var o = 20
            while o < hl {
                let kind = hdr[o]
                if kind == 0 { break }
                if kind == 1 { o += 1; continue }
                guard o + 1 < hl else { break }
                let len = Int(hdr[o + 1])
                guard len >= 2, o + len <= hl else { break }
                if kind & 0x80 != 0 { for k in 0..<len { laterHeader[laterHL + k] = hdr[o + k] }; laterHL += len }
                o += len
            }
            while laterHL % 4 != 0 { laterHeader[laterHL] = 0; laterHL += 1 }
            laterHeader[0] = 0x40 | UInt8(laterHL / 4)
            var offset = 0
            var created = 0
            while offset < payload {
                let thisHL = offset == 0 ? hl : laterHL
                var chunk = min(payload - offset, (mtu - thisHL) & ~7)
                if chunk <= 0 { drops.count(.fragmentationNeeded); counters.ipFragFails &+= 1; return .messageTooLong(mtu: mtu) }
                let last = offset + chunk >= payload
                if last { chunk = payload - offset }
                guard var f = buffer.allocateSibling(size: thisHL + chunk) else {
                    drops.count(.poolExhausted); counters.ipFragFails &+= 1; return .noBuffers
                }
                let p = f.put(thisHL + chunk)
                if offset == 0 {
                    buffer.copyBytes(to: p, offset: 0, count: hl)
                } else {
                    p.copyMemory(from: laterHeader.baseAddress!, byteCount: laterHL)
                }
                buffer.copyBytes(to: p + thisHL, offset: hl + offset, count: chunk)
                f.recordCopy(.fragmentation, bytes: thisHL + chunk)
                p.storeBytes(of: UInt16(thisHL + chunk).bigEndian, toByteOffset: 2, as: UInt16.self)
                var field = UInt16((baseOffset + offset) / 8) | (originalFrag & 0x4000)
                if !last || originalMF { field |= 0x2000 }
                p.storeBytes(of: field.bigEndian, toByteOffset: 6, as: UInt16.self)
                p.storeBytes(of: 0, toByteOffset: 10, as: UInt16.self)
                let c = InternetChecksum.fold(InternetChecksum.sum(UnsafeRawBufferPointer(start: p, count: thisHL)))
                p.storeBytes(of: c.bigEndian, toByteOffset: 10, as: UInt16.self)
                f.meta = buffer.meta
                f.meta.networkOffset = 0
                if offset != 0 { f.meta.traceID = 0 }
                created += 1
                offset += chunk
                neighOutput(f, device: dev, nextHop: nextHop, cachedEntry: &cache.neighbour)
            }
            counters.ipFragOKs &+= 1
            counters.ipFragCreates &+= UInt64(created)
            return nil
        }
    }
}
