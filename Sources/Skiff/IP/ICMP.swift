import SkiffWire

/// ICMP error rate limiting: a global token bucket (Linux: `icmp_global_allow`, 1000/s burst 50)
/// and a per-destination bucket allowing a burst of 6 then one per `icmp_ratelimit`
/// (Linux: `inet_peer_xrlim_allow`).
struct ICMPRateLimiter: Sendable {
    var globalTokens = 50
    var globalStamp: Nanoseconds = 0
    var peers = [(IPv4Address, Nanoseconds, Nanoseconds)](repeating: (.any, 0, 0), count: 256)   // (dest, tokens, last)

    mutating func allow(_ dest: IPv4Address, now: Nanoseconds, config: IPConfiguration) -> Bool {
        let perToken = Time.second / Nanoseconds(max(1, config.icmpMessagesPerSecond))
        let refill = Int((now &- globalStamp) / perToken)
        if refill > 0 {
            globalTokens = min(config.icmpMessagesBurst, globalTokens + refill)
            globalStamp = now
        }
        guard globalTokens > 0 else { return false }
        let slot = Int(FlowHash.mix(UInt64(dest.value)) & 255)
        var (addr, tokens, last) = peers[slot]
        let burst = 6 * config.icmpRateLimit
        if addr != dest { addr = dest; tokens = burst; last = now }
        tokens = min(burst, tokens &+ (now &- last))
        last = now
        guard tokens >= config.icmpRateLimit else { peers[slot] = (addr, tokens, last); return false }
        tokens -= config.icmpRateLimit
        peers[slot] = (addr, tokens, last)
        globalTokens -= 1
        return true
    }
}

extension NetworkStack {
    /// Handles a received ICMP message: echo requests are answered, echo replies recorded,
    /// errors counted. Linux: `icmp_rcv()` → `icmp_echo()` / `icmp_unreach()`.
    func icmpRcv(_ buffer: consuming PacketBuffer, source: IPv4Address, destination: IPv4Address,
                 device dev: NetDevice, ipHeaderLength: Int) {
        let id = buffer.meta.traceID
        tracer.record(id, .icmpRcv, contexts.current, now)
        counters.icmpInMsgs &+= 1
        let message: ICMPv4Message
        do {
            message = try ICMPv4View(checking: buffer.bytes, verifyChecksum: true).message
        } catch {
            counters.icmpInErrors &+= 1
            drops.count(error == .badChecksum ? .icmpChecksum : .icmpMalformed)
            return
        }
        switch message {
        case let .echoRequest(ident, seq):
            counters.icmpInEchos &+= 1
            // Linux: icmp_echo() → icmp_reply(). Broadcast pings are ignored by default
            // (icmp_echo_ignore_broadcasts = 1).
            guard isLocalAddress(destination) else { return }
            // Nor is a request from a broadcast, multicast or zero source answered (Linux drops
            // such martian sources in `ip_route_input_slow()`): the reply would go to everyone.
            if source.isUnspecified || source.isBroadcast || source.isMulticast { return }
            for d in devices { for a in d.addresses where a.prefixLength < 31 && a.broadcast == source { return } }
            _ = ident; _ = seq
            icmpEchoReply(buffer, to: source, from: destination)
        case let .echoReply(ident, seq):
            counters.icmpInEchoReps &+= 1
            echoReplies.append(EchoReply(from: source, identifier: ident, sequence: seq,
                                         payloadLength: buffer.length - 8, time: now))
        case let .destinationUnreachable(code, _):
            counters.icmpInDestUnreachs &+= 1
            // Linux: icmp_unreach() → the protocol's err_handler (here UDP's __udp4_lib_err).
            let quote = UnsafeRawBufferPointer(rebasing: buffer.bytes[min(8, buffer.bytes.count)...])
            if quote.count >= 28 && quote[9] == IPProtocol.udp { udpErr(type: 3, code: code, quote: quote) }
        case .timeExceeded:
            counters.icmpInTimeExcds &+= 1
        case .other:
            break
        }
    }

    /// Turns an echo request into its reply in place: type 0, checksum patched (RFC 1624), sent
    /// back from the address it was sent to. Linux: `icmp_reply()` (which copies; Skiff reuses
    /// the request's buffer, so the reply costs no copy).
    func icmpEchoReply(_ request: consuming PacketBuffer, to: IPv4Address, from: IPv4Address) {
        guard request.makeHeaderWritable(headroom: 64) else { drops.count(.poolExhausted); return }
        let p = request.data
        let oldWord = UInt16(p.load(as: UInt8.self)) << 8 | UInt16(p.load(fromByteOffset: 1, as: UInt8.self))
        let oldSum = UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
        p.storeBytes(of: 0, as: UInt8.self)
        let newWord = oldWord & 0x00FF
        let sum = InternetChecksum.update(checksum: oldSum, old: oldWord, new: newWord)
        p.storeBytes(of: sum.bigEndian, toByteOffset: 2, as: UInt16.self)
        request.meta.traceID = tracer.begin() | request.meta.traceID
        tracer.record(request.meta.traceID, .icmpSend, contexts.current, now)
        counters.icmpOutMsgs &+= 1
        counters.icmpOutEchoReps &+= 1
        var cache = RouteCache()
        request.meta.gsoSize = 0
        _ = ipQueueXmitFrom(request, source: from, destination: to, protocol: IPProtocol.icmp, route: &cache)
    }

    /// `ipQueueXmit` with a fixed source address (replies go out from the address they were sent to).
    func ipQueueXmitFrom(_ buffer: consuming PacketBuffer, source: IPv4Address, destination: IPv4Address,
                         protocol proto: UInt8, route cache: inout RouteCache) -> SendError? {
        guard var r = resolveRoute(destination, cache: &cache) else {
            counters.ipOutNoRoutes &+= 1; drops.count(.noRoute); return .noRoute
        }
        if isLocalAddress(source) && r.source != source {
            r.source = source
            cache.result = r
        }
        return ipQueueXmit(buffer, destination: destination, protocol: proto, route: &cache)
    }

    /// Sends an ICMP error about `original` (which starts at its IP header) to its source:
    /// never about an ICMP error, a non-first fragment, or a broadcast/multicast; rate limited.
    /// The quote is the original header plus up to 576 bytes in all. Linux: `icmp_send()`.
    func icmpSendError(type: UInt8, code: UInt8, rest: UInt32, about original: borrowing PacketBuffer) {
        let b = original.bytes
        guard b.count >= 20 else { return }
        let hl = Int(b[0] & 0x0F) * 4
        guard hl >= 20, b.count >= hl else { return }
        let src = IPv4Address(UInt32(b[12]) << 24 | UInt32(b[13]) << 16 | UInt32(b[14]) << 8 | UInt32(b[15]))
        let dst = IPv4Address(UInt32(b[16]) << 24 | UInt32(b[17]) << 16 | UInt32(b[18]) << 8 | UInt32(b[19]))
        if src.isUnspecified || src.isBroadcast || src.isMulticast || dst.isBroadcast || dst.isMulticast { return }
        // Nor about a datagram sent to (or claiming to come from) a subnet's directed broadcast
        // address: every host on the subnet would answer (Linux: `icmp_send()` skips
        // RTCF_BROADCAST routes; a broadcast source is a martian).
        for d in devices { for a in d.addresses where a.prefixLength < 31 && (a.broadcast == dst || a.broadcast == src) { return } }
        if (UInt16(b[6]) << 8 | UInt16(b[7])) & 0x1FFF != 0 { return }
        if b[9] == IPProtocol.icmp && b.count > hl {
            // Errors about errors are never sent (only about echo/other queries).
            let t = b[hl]
            if t == 3 || t == 4 || t == 5 || t == 11 || t == 12 { return }
        }
        guard icmpLimiter.allow(src, now: now, config: ipConfig) else {
            counters.icmpOutRateLimited &+= 1
            return
        }
        let quote = min(b.count, 576 - 20 - 8)
        guard var e = pool.allocate(size: 8 + quote) else { drops.count(.poolExhausted); return }
        let p = e.put(8 + quote)
        (p + 8).copyMemory(from: b.baseAddress!, byteCount: quote)
        e.recordCopy(.icmpQuote, bytes: quote)
        let header = ICMPv4Header(message: ICMPv4Message(type: type, code: code, rest: rest))
        header.emit(into: UnsafeMutableRawBufferPointer(start: p, count: 8 + quote),
                    payload: UnsafeRawBufferPointer(start: p + 8, count: quote))
        counters.icmpOutMsgs &+= 1
        if type == 3 { counters.icmpOutDestUnreachs &+= 1 }
        if type == 11 { counters.icmpOutTimeExcds &+= 1 }
        var cache = RouteCache()
        _ = ipQueueXmit(e, destination: src, protocol: IPProtocol.icmp, tos: 0xC0, route: &cache)
    }

    /// Sends an ICMP echo request (what `ping` does through a raw or ping socket), in process
    /// context. The payload is a counting pattern, copied in as user data.
    /// Returns the trace id of the request (0 when not traced).
    @discardableResult
    public func ping(_ destination: IPv4Address, identifier: UInt16, sequence: UInt16, payloadSize: Int = 56,
                     now t: Nanoseconds, trace: Bool = false) -> Result<UInt32, SendError> {
        processContext(now: t) {
            guard payloadSize >= 0, payloadSize <= 65_507 else { return .failure(.tooLarge) }
            guard var b = pool.allocate(size: 8 + payloadSize) else { return .failure(.noBuffers) }
            if trace { tracer.armedCount += 1 }
            b.meta.traceID = tracer.begin()
            tracer.record(b.meta.traceID, .pingSend, .process, now)
            let p = b.put(8 + payloadSize)
            for i in 0..<payloadSize { (p + 8 + i).storeBytes(of: UInt8(truncatingIfNeeded: i), as: UInt8.self) }
            b.recordCopy(.userToBuffer, bytes: payloadSize)
            ICMPv4Header(message: .echoRequest(identifier: identifier, sequence: sequence))
                .emit(into: UnsafeMutableRawBufferPointer(start: p, count: 8 + payloadSize),
                      payload: UnsafeRawBufferPointer(start: p + 8, count: payloadSize))
            counters.icmpOutMsgs &+= 1
            counters.icmpOutEchos &+= 1
            let id = b.meta.traceID
            var cache = RouteCache()
            if let e = ipQueueXmit(b, destination: destination, protocol: IPProtocol.icmp, route: &cache) {
                return .failure(e)
            }
            return .success(id)
        }
    }
}
