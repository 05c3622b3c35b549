import SkiffWire

/// What one `receiveMessage` returned (Linux: `recvmsg()`'s return value with `msg_name` and
/// `msg_flags`).
public struct ReceivedDatagram: Sendable, Equatable {
    /// The call's return value: bytes copied, or the datagram's full length when `.truncate` was
    /// passed in the flags (Linux: `udp_recvmsg()` returns `ulen` under MSG_TRUNC).
    public var count: Int
    /// Bytes copied into the buffer.
    public var copied: Int
    /// Payload bytes of the whole datagram.
    public var length: Int
    /// The sender (Linux: `msg_name`).
    public var from: SocketAddress
    /// `.truncate` when the datagram did not fit (Linux: MSG_TRUNC in `msg_flags`).
    public var flags: ReceiveFlags
}

/// UDP socket calls, non-blocking like the TCP ones: a receive with nothing queued returns
/// EAGAIN, and the caller waits for readiness (`poll`, `epollWait`) while the engine runs.
/// Linux: `net/socket.c` → `inet_dgram_ops` → `udp_prot`.
extension NetworkStack {
    /// Looks up a UDP socket by handle.
    @inline(__always)
    func udpSocket(_ fd: Int32) -> UDPSocket? {
        guard fd >= 0, Int(fd) < sockets.count, case let .udp(s) = sockets[Int(fd)] else { return nil }
        return s
    }

    /// The UDP socket at `fd`, or the errno a UDP-only call reports: EBADF for no open handle,
    /// ENOTSOCK for an epoll handle, EOPNOTSUPP for a TCP socket.
    func udpSocketOrError(_ fd: Int32) -> Result<UDPSocket, Errno> {
        guard fd >= 0, Int(fd) < sockets.count else { return .failure(.EBADF) }
        switch sockets[Int(fd)] {
        case let .udp(s): return .success(s)
        case .tcp: return .failure(.EOPNOTSUPP)
        case .epoll: return .failure(.ENOTSOCK)
        case .free: return .failure(.EBADF)
        }
    }

    func newUDPSocket() -> UDPSocket {
        let h = allocateHandle()
        let s = UDPSocket(handle: h)
        sockets[Int(h)] = .udp(s)
        return s
    }

    /// The UDP socket object for inspection (`ss -u`-like figures).
    public func udpInfoSocket(_ fd: Int32) -> UDPSocket? { udpSocket(fd) }

    /// UDP counters that `counters` (IP/ICMP/UDP `nstat` names) does not carry.
    public var udpCounters: UDPCounters { udp.counters }

    // MARK: bind / connect

    /// Linux: `bind()` → `inet_bind()` → `udp_v4_get_port()`. Port 0 picks an ephemeral port.
    /// EINVAL when already bound (also when a send or connect bound it), EADDRNOTAVAIL for an
    /// address that is not local (broadcast and multicast addresses may be bound, as in Linux),
    /// EADDRINUSE when another socket holds the port on an overlapping address and the two do not
    /// both set SO_REUSEADDR (or both SO_REUSEPORT), or when no ephemeral port is free.
    public func udpBind(_ fd: Int32, _ address: SocketAddress) -> Errno? {
        let s: UDPSocket
        switch udpSocketOrError(fd) { case let .success(x): s = x; case let .failure(e): return e }
        guard !s.bound else { return .EINVAL }
        let a = address.address
        if a != .any && !a.isBroadcast && !a.isMulticast && !isLocalAddress(a) { return .EADDRNOTAVAIL }
        var port = address.port
        if port == 0 {
            guard let p = ephemeralPorts.next(destination: .any, destinationPort: 0, isInUse: {
                udpPortConflict($0, address: a, for: s)
            }) else { return .EADDRINUSE }
            port = p
        } else if udpPortConflict(port, address: a, for: s) {
            return .EADDRINUSE
        }
        s.addressLocked = a != .any
        s.portLocked = address.port != 0
        udpHash(s, address: a, port: port)
        return nil
    }

    /// Linux: `connect()` → `inet_dgram_connect()` → `__ip4_datagram_connect()`. Sets the default
    /// destination and, from then on, receives only the peer's datagrams. Binds an ephemeral port
    /// and the route's source address first when unbound. `nil` (AF_UNSPEC) dissolves the
    /// association (Linux: `udp_disconnect()`), releasing an address and port that connect chose.
    /// ENETUNREACH without a route (there is no loopback device: a local destination is
    /// unreachable too), EACCES for a broadcast address without SO_BROADCAST.
    public func udpConnect(_ fd: Int32, _ to: SocketAddress?, now t: Nanoseconds) -> Errno? {
        let s: UDPSocket
        switch udpSocketOrError(fd) { case let .success(x): s = x; case let .failure(e): return e }
        return processContext(now: t) { () -> Errno? in
            guard let to else {
                udpDisconnect(s)
                return nil
            }
            if !s.bound, let e = udpAutobind(s) { return e }
            s.routeCache = RouteCache()
            guard !to.address.isUnspecified, let route = resolveRoute(to.address, cache: &s.routeCache), !route.isLocal else {
                counters.ipOutNoRoutes &+= 1
                return .ENETUNREACH
            }
            if isBroadcastDestination(to.address) && !s.options.broadcast { return .EACCES }
            if s.localAddress == .any {
                // Linux: `inet_rcv_saddr = fl4->saddr` and a rehash.
                s.localAddress = route.source
            }
            s.remoteAddress = to.address
            s.remotePort = to.port
            s.connected = true
            return nil
        }
    }

    func udpDisconnect(_ s: UDPSocket) {
        s.connected = false
        s.remoteAddress = .any
        s.remotePort = 0
        s.routeCache = RouteCache()
        if !s.addressLocked { s.localAddress = .any }
        if !s.portLocked && s.bound { udpUnhash(s) }
    }

    // MARK: send

    /// Linux: `sendto()` → `udp_sendmsg()`. Sends `data` as one datagram to `to`, or to the
    /// connected peer when `to` is nil; with UDP_CORK set or `.more` in `flags` the bytes are
    /// appended to a pending datagram instead, which goes out when a send without `.more` arrives
    /// on an uncorked socket (or the cork is removed). While a datagram is pending, `to` is
    /// ignored, as Linux does. A TCP handle is sent to as by `send` (the address ignored).
    ///
    /// Errors: EBADF, ENOTSOCK; EMSGSIZE for more than 65507 payload bytes in one datagram (the
    /// pending one is then discarded); EDESTADDRREQ with no `to` on an unconnected socket; EINVAL
    /// for port 0; EACCES to a broadcast address without SO_BROADCAST; ENETUNREACH without a
    /// route; ENOBUFS when the buffer pool is empty; EPERM when netfilter drops it.
    public func sendTo(_ fd: Int32, _ data: UnsafeRawBufferPointer, to: SocketAddress? = nil,
                       flags: SendFlags = [], now t: Nanoseconds) -> Result<Int, Errno> {
        if tcpSocket(fd) != nil { return send(fd, data, flags: flags, now: t) }
        let s: UDPSocket
        switch udpSocketOrError(fd) { case let .success(x): s = x; case let .failure(e): return .failure(e) }
        return processContext(now: t) { udpSendmsg(s, data, to: to, flags: flags) }
    }

    /// `sendTo` for a byte array.
    public func sendTo(_ fd: Int32, _ bytes: [UInt8], to: SocketAddress? = nil, flags: SendFlags = [],
                       now t: Nanoseconds) -> Result<Int, Errno> {
        bytes.withUnsafeBytes { sendTo(fd, $0, to: to, flags: flags, now: t) }
    }

    // MARK: receive

    /// Linux: `recvfrom()` → `udp_recvmsg()`. Takes the next datagram (`.peek` leaves it queued);
    /// bytes beyond the buffer are discarded. Returns the bytes copied — or the datagram's full
    /// length when `.truncate` is in `flags` — and the sender. EAGAIN when nothing is queued
    /// (every call is non-blocking here, so `.dontWait` changes nothing); a pending error (an ICMP
    /// error on a connected socket) is reported first. A TCP handle is read as by `recv`, the
    /// address being the peer's.
    public func receiveFrom(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, flags: ReceiveFlags = [],
                            now t: Nanoseconds) -> Result<(Int, SocketAddress), Errno> {
        receiveMessage(fd, into: buffer, flags: flags, now: t).map { ($0.count, $0.from) }
    }

    /// Linux: `recvmsg()` → `udp_recvmsg()`, with the message flags (MSG_TRUNC when the datagram
    /// was cut short) and the datagram's full length.
    public func receiveMessage(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, flags: ReceiveFlags = [],
                               now t: Nanoseconds) -> Result<ReceivedDatagram, Errno> {
        if let tcp = tcpSocket(fd) {
            let peer = SocketAddress(tcp.remoteAddress, tcp.remotePort)
            return recv(fd, into: buffer, flags: flags.subtracting(.truncate), now: t).map {
                ReceivedDatagram(count: $0, copied: $0, length: $0, from: peer, flags: [])
            }
        }
        let s: UDPSocket
        switch udpSocketOrError(fd) { case let .success(x): s = x; case let .failure(e): return .failure(e) }
        return processContext(now: t) { udpRecvmsg(s, into: buffer, flags: flags) }
    }

    // MARK: options, names, poll, close

    /// Linux: `setsockopt()` for a UDP socket (`udp_lib_setsockopt()`, `sock_setsockopt()`).
    /// EINVAL for a negative buffer size.
    public func setUDPOption(_ fd: Int32, _ option: UDPSocketOption, now t: Nanoseconds = 0) -> Errno? {
        let s: UDPSocket
        switch udpSocketOrError(fd) { case let .success(x): s = x; case let .failure(e): return e }
        switch option {
        case let .cork(on):
            s.options.cork = on
            if !on && !s.pendingQueue.isEmpty {
                // Linux: clearing UDP_CORK calls `udp_push_pending_frames()`; its error is dropped.
                processContext(now: max(now, t)) { _ = udpPushPendingFrames(s) }
            }
        case let .reuseAddress(on): s.options.reuseAddress = on
        case let .reusePort(on): s.options.reusePort = on
        case let .broadcast(on): s.options.broadcast = on
        case let .receiveBuffer(v):
            guard v >= 0 else { return .EINVAL }
            s.receiveBufferSize = max(2304, min(v, 212_992) * 2)
        case let .sendBuffer(v):
            guard v >= 0 else { return .EINVAL }
            s.sendBufferSize = max(4608, min(v, 212_992) * 2)
        }
        return nil
    }

    /// UDP_CORK on or off (see `setUDPOption`).
    public func setUDPCork(_ fd: Int32, _ on: Bool, now t: Nanoseconds = 0) -> Errno? {
        setUDPOption(fd, .cork(on), now: t)
    }

    /// Linux: `getsockname()` for a UDP socket.
    public func udpLocalAddress(_ fd: Int32) -> Result<SocketAddress, Errno> {
        udpSocketOrError(fd).map { SocketAddress($0.localAddress, $0.localPort) }
    }

    /// Linux: `getpeername()` for a UDP socket: ENOTCONN unless connected.
    public func udpPeerAddress(_ fd: Int32) -> Result<SocketAddress, Errno> {
        switch udpSocketOrError(fd) {
        case let .success(s):
            guard s.connected else { return .failure(.ENOTCONN) }
            return .success(SocketAddress(s.remoteAddress, s.remotePort))
        case let .failure(e): return .failure(e)
        }
    }

    /// Linux: `udp_poll()` → `datagram_poll()`: readable with a datagram queued, error with one
    /// pending, always writable (sent datagrams are not charged to the socket).
    func udpPoll(_ s: UDPSocket) -> PollEvents {
        var e: PollEvents = [.writable]
        if s.pendingError != nil { e.insert(.error) }
        if !s.receiveQueue.isEmpty { e.insert(.readable) }
        return e
    }

    /// `poll` for a handle that is not a TCP socket: a UDP socket or an epoll instance.
    func pollNonTCP(_ fd: Int32) -> PollEvents {
        guard fd >= 0, Int(fd) < sockets.count else { return [.error] }
        switch sockets[Int(fd)] {
        case let .udp(s): return udpPoll(s)
        case let .epoll(ep): return epollPoll(ep)
        case .tcp, .free: return [.error]
        }
    }

    /// `close` for a handle that is not a TCP socket. Linux: `udp_lib_close()` →
    /// `sk_common_release()` (the pending datagram and the receive queue are freed), or the
    /// release of an epoll file.
    func closeNonTCP(_ fd: Int32, now t: Nanoseconds) -> Errno? {
        guard fd >= 0, Int(fd) < sockets.count else { return .EBADF }
        switch sockets[Int(fd)] {
        case let .udp(s):
            processContext(now: t) { destroyUDPSocket(s) }
            return nil
        case .epoll:
            sockets[Int(fd)] = .free
            freeHandles.append(fd)
            return nil
        case .tcp, .free:
            return .EBADF
        }
    }
}
