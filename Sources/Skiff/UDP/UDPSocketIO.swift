import SkiffWire

/// Largest UDP payload in one IPv4 datagram: 65535 − 20 (IP header) − 8 (UDP header).
let udpMaxPayload = 65_507

extension NetworkStack {
    // MARK: Port hash

    /// True when binding `s` to `address:port` would clash with a socket already there: the
    /// addresses overlap (equal, or either is the wildcard) and the two do not both allow sharing.
    /// Linux: `udp_lib_lport_inuse()`.
    func udpPortConflict(_ port: UInt16, address: IPv4Address, for s: UDPSocket) -> Bool {
        guard let list = udp.ports[port] else { return false }
        for h in list where h != s.handle {
            guard let o = udpSocket(h) else { continue }
            let overlap = o.localAddress == .any || address == .any || o.localAddress == address
            if !overlap { continue }
            if o.options.reuseAddress && s.options.reuseAddress { continue }
            if o.options.reusePort && s.options.reusePort { continue }
            return true
        }
        return false
    }

    func udpHash(_ s: UDPSocket, address: IPv4Address, port: UInt16) {
        s.localAddress = address
        s.localPort = port
        s.bound = true
        udp.ports[port, default: []].append(s.handle)
    }

    func udpUnhash(_ s: UDPSocket) {
        guard s.bound else { return }
        if var list = udp.ports[s.localPort] {
            list.removeAll { $0 == s.handle }
            udp.ports[s.localPort] = list.isEmpty ? nil : list
        }
        s.bound = false
        s.localPort = 0
    }

    /// Binds an unbound socket to an ephemeral port on the wildcard address. Linux:
    /// `inet_autobind()`, which fails with EAGAIN when no port is free.
    func udpAutobind(_ s: UDPSocket) -> Errno? {
        guard !s.bound else { return nil }
        let a = s.localAddress
        guard let p = ephemeralPorts.next(destination: .any, destinationPort: 0, isInUse: {
            udpPortConflict($0, address: a, for: s)
        }) else { return .EAGAIN }
        udpHash(s, address: a, port: p)
        return nil
    }

    /// The limited broadcast address or the directed broadcast address of a local subnet
    /// (Linux: a route of type `RTN_BROADCAST`).
    func isBroadcastDestination(_ a: IPv4Address) -> Bool {
        if a.isBroadcast { return true }
        for d in devices { for x in d.addresses where x.prefixLength < 31 && x.broadcast == a { return true } }
        return false
    }

    /// Frees a UDP socket: pending datagram, receive queue, hash entry and handle
    /// (Linux: `udp_destroy_sock()` → `udp_flush_pending_frames()`, `udp_lib_unhash()`,
    /// `sk_common_release()`).
    func destroyUDPSocket(_ s: UDPSocket) {
        _ = udpSlab.removeAll(&s.pendingQueue)
        _ = udpSlab.removeAll(&s.receiveQueue)
        s.receiveMemory = 0
        udpUnhash(s)
        s.connected = false
        sockets[Int(s.handle)] = .free
        freeHandles.append(s.handle)
    }

    // MARK: udp_sendmsg

    /// Linux: `udp_sendmsg()`. Resolves the destination (given, or the connected peer), routes,
    /// and either builds and sends one datagram (`ip_make_skb()` → `udp_send_skb()`) or appends to
    /// the pending one while corked (`ip_append_data()`, `udp_push_pending_frames()`).
    func udpSendmsg(_ s: UDPSocket, _ data: UnsafeRawBufferPointer, to: SocketAddress?, flags: SendFlags) -> Result<Int, Errno> {
        if data.count > 0xFFFF { return .failure(.EMSGSIZE) }
        // Linux: `sock_alloc_send_pskb()` reports a pending error (`sock_error()`).
        if let e = s.pendingError { s.pendingError = nil; return .failure(e) }
        let corkRequested = s.options.cork || flags.contains(.more)
        if s.pendingQueue.isEmpty {
            let destination: SocketAddress
            if let to {
                guard to.port != 0 else { return .failure(.EINVAL) }
                destination = to
            } else {
                guard s.connected else { return .failure(.EDESTADDRREQ) }
                destination = SocketAddress(s.remoteAddress, s.remotePort)
            }
            if !s.bound, let e = udpAutobind(s) { return .failure(e) }
            guard !destination.address.isUnspecified, let route = resolveRoute(destination.address, cache: &s.routeCache),
                  !route.isLocal else {
                counters.ipOutNoRoutes &+= 1
                drops.count(.noRoute)
                return .failure(.ENETUNREACH)
            }
            if isBroadcastDestination(destination.address) && !s.options.broadcast { return .failure(.EACCES) }
            let source = s.localAddress == .any || s.localAddress.isBroadcast || s.localAddress.isMulticast
                ? route.source : s.localAddress
            if !corkRequested {
                // The lockless fast path: one buffer, filled and sent (Linux: `ip_make_skb()`).
                if data.count > udpMaxPayload { return .failure(.EMSGSIZE) }
                guard var b = pool.allocate(size: 8 + data.count) else {
                    udp.counters.udpSndbufErrors &+= 1
                    drops.count(.poolExhausted)
                    return .failure(.ENOBUFS)
                }
                b.meta.traceID = tracer.begin()
                tracer.record(b.meta.traceID, .socketSend, contexts.current, now)
                tracer.record(b.meta.traceID, .udpSendmsg, contexts.current, now)
                b.put(8)
                if data.count > 0 { b.append(data, stage: .userToBuffer) }
                if let e = udpSendSkb(s, b, source: source, destination: destination) { return .failure(e) }
                return .success(data.count)
            }
            // Cork: a pending datagram with room for the largest payload, so appends never move it.
            guard !udpSlab.isFull, var b = pool.allocate(size: 8 + udpMaxPayload) else {
                udp.counters.udpSndbufErrors &+= 1
                drops.count(.poolExhausted)
                return .failure(.ENOBUFS)
            }
            b.meta.traceID = tracer.begin()
            tracer.record(b.meta.traceID, .socketSend, contexts.current, now)
            b.put(8)
            udpSlab.pushBack(b, onto: &s.pendingQueue)
            s.pendingDestination = destination
            s.pendingSource = source
        }
        // Append to the pending datagram (Linux: `do_append_data:` → `ip_append_data()`).
        let slot = s.pendingQueue.head
        if udpSlab.length(at: slot) - 8 + data.count > udpMaxPayload {
            udpFlushPendingFrames(s)
            return .failure(.EMSGSIZE)
        }
        if data.count > 0 {
            udpSlab.withBuffer(at: slot) { $0.append(data, stage: .userToBuffer) }
            PacketSlab.adjust(&s.pendingQueue, bytes: data.count)
        }
        if !corkRequested, let e = udpPushPendingFrames(s) { return .failure(e) }
        return .success(data.count)
    }

    /// Sends the pending datagram (Linux: `udp_push_pending_frames()` → `ip_finish_skb()` →
    /// `udp_send_skb()`).
    @discardableResult
    func udpPushPendingFrames(_ s: UDPSocket) -> Errno? {
        guard var b = udpSlab.popFront(&s.pendingQueue) else { return nil }
        tracer.record(b.meta.traceID, .udpSendmsg, contexts.current, now)
        b.meta.gsoSize = 0
        return udpSendSkb(s, b, source: s.pendingSource, destination: s.pendingDestination)
    }

    /// Discards the pending datagram (Linux: `udp_flush_pending_frames()`).
    func udpFlushPendingFrames(_ s: UDPSocket) {
        _ = udpSlab.removeAll(&s.pendingQueue)
    }

    /// Fills in the UDP header and checksum of a datagram whose data starts at the (still empty)
    /// header, then hands it to IP. ENOBUFS from below is counted and not reported, as Linux does
    /// without IP_RECVERR. Linux: `udp_send_skb()` → `ip_send_skb()`.
    func udpSendSkb(_ s: UDPSocket, _ buffer: consuming PacketBuffer, source: IPv4Address,
                    destination: SocketAddress) -> Errno? {
        let length = buffer.length
        let p = buffer.data
        p.storeBytes(of: s.localPort.bigEndian, as: UInt16.self)
        p.storeBytes(of: destination.port.bigEndian, toByteOffset: 2, as: UInt16.self)
        p.storeBytes(of: UInt16(length).bigEndian, toByteOffset: 4, as: UInt16.self)
        p.storeBytes(of: 0, toByteOffset: 6, as: UInt16.self)
        var sum = InternetChecksum.pseudoHeaderSum(source: source, destination: destination.address,
                                                   protocol: IPProtocol.udp, length: UInt16(length))
        sum = InternetChecksum.sum(UnsafeRawBufferPointer(start: p, count: length), initial: sum)
        var c = InternetChecksum.fold(sum)
        if c == 0 { c = 0xFFFF }
        p.storeBytes(of: c.bigEndian, toByteOffset: 6, as: UInt16.self)
        let error: SendError?
        if s.localAddress == source {
            error = ipQueueXmitFrom(buffer, source: source, destination: destination.address,
                                    protocol: IPProtocol.udp, route: &s.routeCache)
        } else {
            error = ipQueueXmit(buffer, destination: destination.address, protocol: IPProtocol.udp, route: &s.routeCache)
        }
        switch error {
        case nil:
            counters.udpOutDatagrams &+= 1
            s.datagramsSent &+= 1
            s.bytesSent &+= UInt64(length - 8)
            return nil
        case .noBuffers?:
            udp.counters.udpSndbufErrors &+= 1
            return nil
        case let e?:
            return e.socketErrno
        }
    }

    // MARK: Receive

    /// The socket a datagram to `destination:port` from `source:sourcePort` belongs to: the best
    /// match, a socket bound to the exact address and connected to the sender beating a
    /// wildcard one, newest first among equals. Linux: `__udp4_lib_lookup()` with
    /// `compute_score()`.
    func udpLookup(source: IPv4Address, sourcePort: UInt16, destination: IPv4Address, port: UInt16) -> UDPSocket? {
        guard let list = udp.ports[port] else { return nil }
        var best: UDPSocket? = nil
        var bestScore = -1
        var i = list.count - 1
        while i >= 0 {
            defer { i -= 1 }
            guard let s = udpSocket(list[i]) else { continue }
            let score = udpScore(s, source: source, sourcePort: sourcePort, destination: destination)
            if score > bestScore { best = s; bestScore = score }
        }
        return best
    }

    /// Linux: `compute_score()`: −1 when the socket cannot take the datagram, else 4 for each
    /// field (bound address, peer address, peer port) that matched exactly.
    @inline(__always)
    func udpScore(_ s: UDPSocket, source: IPv4Address, sourcePort: UInt16, destination: IPv4Address) -> Int {
        var score = 0
        if s.localAddress != .any {
            if s.localAddress != destination { return -1 }
            score += 4
        }
        if s.connected {
            if s.remoteAddress != source || s.remotePort != sourcePort { return -1 }
            score += 8
        }
        return score
    }

    /// True when `destination` reaches every socket on the port rather than the best one: the
    /// limited or a directed broadcast address, or a multicast group.
    @inline(__always)
    func udpIsMulticastDestination(_ destination: IPv4Address) -> Bool {
        destination.isBroadcast || destination.isMulticast || isBroadcastDestination(destination)
    }

    /// Delivers a broadcast or multicast datagram (data at the UDP header) to every socket that
    /// matches, a clone each. Returns false when none did. Linux: `__udp4_lib_mcast_deliver()`.
    func udpBroadcastDeliver(_ buffer: borrowing PacketBuffer, source: IPv4Address, destination: IPv4Address,
                             sourcePort: UInt16, port: UInt16) -> Bool {
        guard let list = udp.ports[port] else { return false }
        var delivered = false
        var i = list.count - 1
        while i >= 0 {
            defer { i -= 1 }
            guard let s = udpSocket(list[i]) else { continue }
            if s.localAddress != .any && s.localAddress != destination { continue }
            if s.connected && (s.remoteAddress != source || s.remotePort != sourcePort) { continue }
            udpQueueRcv(s, buffer.clone(), source: source, sourcePort: sourcePort)
            delivered = true
        }
        return delivered
    }

    /// Queues a datagram to a socket, unless its receive memory is already over the receive
    /// buffer: then it is dropped and counted in `udpRcvbufErrors` and `udpInErrors`. One
    /// datagram is always let in, so a buffer smaller than a datagram still receives. Linux:
    /// `udp_queue_rcv_skb()` → `__udp_queue_rcv_skb()` → `__udp_enqueue_schedule_skb()`.
    func udpQueueRcv(_ s: UDPSocket, _ buffer: consuming PacketBuffer, source: IPv4Address, sourcePort: UInt16) {
        var b = buffer
        if s.receiveMemory > s.receiveBufferSize || udpSlab.isFull {
            udp.counters.udpRcvbufErrors &+= 1
            counters.udpInErrors &+= 1
            s.datagramsDropped &+= 1
            return
        }
        b.pull(8)
        b.meta.udpSourceAddress = source
        b.meta.udpSourcePort = sourcePort
        b.meta.timestamp = now
        s.receiveMemory += b.trueSize
        s.datagramsQueued &+= 1
        udpSlab.pushBack(b, onto: &s.receiveQueue)
    }

    /// Linux: `udp_recvmsg()`: copies the head datagram (as much as fits), frees it unless
    /// peeking, and counts `UdpInDatagrams` — at read time, as Linux does.
    func udpRecvmsg(_ s: UDPSocket, into dest: UnsafeMutableRawBufferPointer, flags: ReceiveFlags) -> Result<ReceivedDatagram, Errno> {
        if let e = s.pendingError { s.pendingError = nil; return .failure(e) }
        let slot = s.receiveQueue.head
        guard slot != PacketSlab.none else { return .failure(.EAGAIN) }
        let length = udpSlab.length(at: slot)
        let copied = min(length, dest.count)
        let meta = udpSlab.meta(at: slot)
        if copied > 0, let base = dest.baseAddress {
            udpSlab.withBuffer(at: slot) { b in
                b.copyBytes(to: base, offset: 0, count: copied)
                b.recordCopy(.bufferToUser, bytes: copied)
            }
        }
        let from = SocketAddress(meta.udpSourceAddress, meta.udpSourcePort)
        if !flags.contains(.peek) {
            if let b = udpSlab.popFront(&s.receiveQueue) { s.receiveMemory -= b.trueSize }
            counters.udpInDatagrams &+= 1
            s.datagramsReceived &+= 1
            s.bytesReceived &+= UInt64(length)
        }
        let truncated = copied < length
        return .success(ReceivedDatagram(count: flags.contains(.truncate) ? length : copied, copied: copied,
                                         length: length, from: from, flags: truncated ? .truncate : []))
    }

    // MARK: ICMP errors

    /// An ICMP error about a datagram this host sent: `quote` starts at the quoted IP header.
    /// A connected socket whose peer the datagram was for records a hard error (ECONNREFUSED for
    /// port unreachable, ENETUNREACH / EHOSTUNREACH / ENOPROTOOPT for the other destination
    /// unreachables), which its next receive reports; unconnected sockets ignore it, as Linux
    /// does without IP_RECVERR. Linux: `__udp4_lib_err()` (via `icmp_unreach()`).
    func udpErr(type: UInt8, code: UInt8, quote: UnsafeRawBufferPointer) {
        guard quote.count >= 20 else { return }
        let hl = Int(quote[0] & 0x0F) * 4
        guard hl >= 20, quote.count >= hl + 8 else { return }
        func u32(_ o: Int) -> UInt32 {
            UInt32(quote[o]) << 24 | UInt32(quote[o + 1]) << 16 | UInt32(quote[o + 2]) << 8 | UInt32(quote[o + 3])
        }
        let src = IPv4Address(u32(12)), dst = IPv4Address(u32(16))
        let sport = UInt16(quote[hl]) << 8 | UInt16(quote[hl + 1])
        let dport = UInt16(quote[hl + 2]) << 8 | UInt16(quote[hl + 3])
        // The socket the datagram came from: the roles reversed (Linux looks up with daddr/saddr swapped).
        guard let s = udpLookup(source: dst, sourcePort: dport, destination: src, port: sport) else { return }
        // Linux: `icmp_err_convert[]`; only the fatal ("hard") ones reach a socket without
        // IP_RECVERR, and then only a connected one (`if (!harderr || sk->sk_state !=
        // TCP_ESTABLISHED) goto out;`). Fragmentation needed and time exceeded are soft.
        guard type == 3, s.connected else { return }
        switch code {
        case 0, 6, 7: s.pendingError = .ENETUNREACH
        case 1: s.pendingError = .EHOSTUNREACH
        case 2: s.pendingError = .ENOPROTOOPT
        case 3: s.pendingError = .ECONNREFUSED
        default: return
        }
    }
}
