import SkiffWire

/// Readiness of a socket (Linux: `POLLIN`, `POLLOUT`, `POLLERR`, `POLLHUP`, `POLLRDHUP`).
public struct PollEvents: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let readable = PollEvents(rawValue: 0x001)
    public static let writable = PollEvents(rawValue: 0x004)
    public static let error = PollEvents(rawValue: 0x008)
    public static let hangup = PollEvents(rawValue: 0x010)
    public static let readHangup = PollEvents(rawValue: 0x2000)
}

/// Flags of `recv`/`recvmsg` (Linux: `MSG_*`).
public struct ReceiveFlags: OptionSet, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public static let peek = ReceiveFlags(rawValue: 0x2)        // MSG_PEEK
    public static let dontWait = ReceiveFlags(rawValue: 0x40)   // MSG_DONTWAIT
    public static let waitAll = ReceiveFlags(rawValue: 0x100)   // MSG_WAITALL
    /// MSG_ERRQUEUE: take a message from the error queue instead (`Socket/ErrorQueueAPI.swift`).
    public static let errorQueue = ReceiveFlags(rawValue: 0x2000)
}

/// `shutdown` directions (Linux: `SHUT_RD`, `SHUT_WR`, `SHUT_RDWR`).
public enum ShutdownHow: Int32, Sendable { case read = 0, write = 1, both = 2 }

/// A socket address.
public struct SocketAddress: Sendable, Equatable, CustomStringConvertible {
    public var address: IPv4Address
    public var port: UInt16
    public init(_ address: IPv4Address, _ port: UInt16) { self.address = address; self.port = port }
    public var description: String { "\(address):\(port)" }
}

/// The POSIX-shaped socket calls, non-blocking at this level: a call that would block returns
/// EAGAIN / EINPROGRESS, and the caller waits for readiness (`poll`) while the engine runs.
/// Linux: `net/socket.c` → `inet_stream_ops` → `tcp_prot`.
extension NetworkStack {
    /// Linux: `socket(AF_INET, SOCK_STREAM, 0)`; `.datagram` is `socket(AF_INET, SOCK_DGRAM, 0)`.
    public func socket(_ type: SocketType = .stream) -> Result<Int32, Errno> {
        if type == .datagram { return .success(newUDPSocket().handle) }
        return .success(newTCPSocket().handle)
    }

    /// Linux: `bind()` → `inet_bind()`. Port 0 picks an ephemeral port.
    public func bind(_ fd: Int32, _ address: SocketAddress) -> Errno? {
        guard let s = tcpSocket(fd) else { return udpSocket(fd) != nil ? udpBind(fd, address) : .EBADF }
        guard !s.bound, s.state == .closed else { return .EINVAL }
        if address.address != .any && !isLocalAddress(address.address) { return .EADDRNOTAVAIL }
        var port = address.port
        if port == 0 {
            guard let p = ephemeralPorts.next(isInUse: { tcpBoundPorts[$0] != nil }, destination: .any, destinationPort: 0)
            else { return .EADDRINUSE }
            port = p
        } else if let n = tcpBoundPorts[port], n > 0 {
            let reusable = s.options.reusePort || (s.options.reuseAddress && tcpListeners[port] == nil)
            if !reusable { return .EADDRINUSE }
        }
        s.localAddress = address.address
        s.localPort = port
        s.bound = true
        tcpBoundPorts[port, default: 0] += 1
        return nil
    }

    /// Linux: `listen()` → `inet_listen()`. The backlog bounds the accept queue.
    public func listen(_ fd: Int32, backlog: Int) -> Errno? {
        guard let s = tcpSocket(fd) else { return udpSocket(fd) != nil ? .EOPNOTSUPP : .EBADF }
        guard s.state == .closed || s.state == .listen else { return .EINVAL }
        if !s.bound, let e = bind(fd, SocketAddress(.any, 0)) { return e }
        if let other = tcpListeners[s.localPort], other != fd { return .EADDRINUSE }
        s.backlog = max(1, min(backlog, 4096))
        // Linux (__inet_listen_sk): with TFO_SERVER_WO_SOCKOPT1 every listener gets a Fast Open
        // queue as long as its backlog unless TCP_FASTOPEN gave it one.
        let tfo = tcpConfig.fastOpen
        if tfo & FastOpenFlags.serverWithoutSocketOption != 0 && tfo & FastOpenFlags.serverEnable != 0
            && s.fastOpen.maxQueue == 0 {
            fastOpenQueueTune(s, max(0, backlog))
        }
        s.state = .listen
        tcpListeners[s.localPort] = fd
        return nil
    }

    /// Linux: `accept()` → `inet_csk_accept()`. EAGAIN when no connection is ready.
    public func accept(_ fd: Int32) -> Result<(Int32, SocketAddress), Errno> {
        guard let l = tcpSocket(fd) else { return .failure(udpSocket(fd) != nil ? .EOPNOTSUPP : .EBADF) }
        guard l.state == .listen else { return .failure(.EINVAL) }
        while !l.acceptQueue.isEmpty {
            let h = l.acceptQueue.removeFirst()
            guard let c = tcpSocket(h) else { continue }
            c.parent = -1
            return .success((h, SocketAddress(c.remoteAddress, c.remotePort)))
        }
        return .failure(.EAGAIN)
    }

    /// Linux: `connect()` → `tcp_v4_connect()` → `tcp_connect()`. Returns EINPROGRESS once the
    /// SYN is out; EALREADY while it is in progress; EISCONN once connected; the failure
    /// (ECONNREFUSED, ETIMEDOUT) when it failed.
    public func connect(_ fd: Int32, _ to: SocketAddress, now t: Nanoseconds) -> Errno? {
        tcpConnect(fd, to, now: t, synData: nil).0
    }

    /// connect(), or with `synData` the connect of a Fast Open `sendto(MSG_FASTOPEN)`: returns the
    /// error (EINPROGRESS once the SYN is out; nil when TCP_FASTOPEN_CONNECT defers the SYN to
    /// the first write) and how many bytes of `synData` the SYN carries.
    func tcpConnect(_ fd: Int32, _ to: SocketAddress, now t: Nanoseconds, synData: UnsafeRawBufferPointer?) -> (Errno?, Int) {
        guard let s = tcpSocket(fd) else { return (udpSocket(fd) != nil ? udpConnect(fd, to, now: t) : .EBADF, 0) }
        var copied = 0
        let e = tcpConnectSocket(s, fd, to, now: t) {
            if let synData { copied = fastOpenSendSyn(s, synData); return .EINPROGRESS }
            if s.fastOpen.connect {
                // Linux: tcp_fastopen_defer_connect() — with a cookie the SYN waits for data.
                if fastOpenCookieAvailable(s) { s.fastOpen.deferred = true; return nil }
                let entry = fastOpenCache[s.remoteAddress.value]
                s.fastOpen.synOption = TCPFastOpenOption(cookie: .request, experimental: entry?.tryExperimental == 1)
            }
            tcpQueueControl(s, flags: TCPFlag.syn)
            return .EINPROGRESS
        }
        return (e, copied)
    }

    func tcpConnectSocket(_ s: TCPSocket, _ fd: Int32, _ to: SocketAddress, now t: Nanoseconds, sendSyn: () -> Errno?) -> Errno? {
        if let e = s.pendingError, s.state == .closed { s.pendingError = nil; return e }
        switch s.state {
        case .synSent where s.fastOpen.deferred: return .EISCONN   // Linux: DEFER_CONNECT, not from sendmsg
        case .synSent, .synReceived: return .EALREADY
        case .established, .closeWait, .finWait1, .finWait2, .closing, .lastAck, .timeWait: return .EISCONN
        case .listen: return .EINVAL
        case .closed: break
        }
        guard !to.address.isUnspecified, !to.address.isBroadcast, !to.address.isMulticast, to.port != 0 else { return .EINVAL }
        return processContext(now: t) { () -> Errno? in
            s.remoteAddress = to.address
            s.remotePort = to.port
            guard let route = resolveRoute(to.address, cache: &s.routeCache) else {
                s.remoteAddress = .any; s.remotePort = 0
                return .ENETUNREACH
            }
            if s.localAddress == .any { s.localAddress = route.source }
            if !s.bound {
                let local = s.localAddress
                guard let p = ephemeralPorts.next(isInUse: { port in
                    tcpConnections[ConnectionKey(localAddress: local.value, remoteAddress: to.address.value,
                                                 localPort: port, remotePort: to.port)] != nil || tcpListeners[port] != nil
                }, destination: to.address, destinationPort: to.port) else { return .EADDRNOTAVAIL }
                s.localPort = p
                s.bound = true
                tcpBoundPorts[p, default: 0] += 1
            }
            let key = connectionKey(s)
            if let other = tcpConnections[key], other != fd {
                guard let o = tcpSocket(other), o.state == .timeWait, tcpConfig.timeWaitReuse else { return .EADDRNOTAVAIL }
                tcpCounters.timeWaitRecycled &+= 1
                destroyTCPSocket(o)
            }
            initConnection(s)
            s.iss = isnGenerator.generate(localAddress: s.localAddress, localPort: s.localPort,
                                          remoteAddress: to.address, remotePort: to.port, now: now)
            s.sndUna = s.iss; s.sndNxt = s.iss; s.writeSeq = s.iss; s.pushedSeq = s.iss &+ 1
            s.state = .synSent
            tcpConnections[key] = fd
            tcpCounters.activeOpens &+= 1
            return sendSyn()
        }
    }

    /// Linux: `send()` → `tcp_sendmsg()`.
    public func send(_ fd: Int32, _ data: UnsafeRawBufferPointer, flags: SendFlags = [], now t: Nanoseconds) -> Result<Int, Errno> {
        guard let s = tcpSocket(fd) else {
            return udpSocket(fd) != nil ? sendTo(fd, data, to: nil, flags: flags, now: t) : .failure(.EBADF)
        }
        if data.count == 0 { return .success(0) }
        return processContext(now: t) { tcpSendmsg(s, data, flags: flags) }
    }

    /// Linux: `sendmsg()` with an I/O vector on a TCP socket → `tcp_sendmsg()`, one call over
    /// the whole vector (with MSG_ZEROCOPY each element is laid out as its own user pages).
    /// EBADF when `fd` is not a TCP socket.
    public func sendmsg(_ fd: Int32, _ parts: UnsafeBufferPointer<UnsafeRawBufferPointer>, flags: SendFlags = [],
                        now t: Nanoseconds) -> Result<Int, Errno> {
        guard let s = tcpSocket(fd) else { return .failure(.EBADF) }
        return processContext(now: t) { tcpSendmsg(s, parts, flags: flags) }
    }

    /// Linux: `recv()` → `tcp_recvmsg()`. 0 at end of stream; EAGAIN when nothing is there yet.
    public func recv(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, flags: ReceiveFlags = [], now t: Nanoseconds) -> Result<Int, Errno> {
        if flags.contains(.errorQueue) {
            // No control buffer: the message's control messages are cut (Linux: MSG_CTRUNC).
            return recvmsg(fd, into: buffer, control: UnsafeMutableRawBufferPointer(start: nil, count: 0), flags: flags, now: t)
                .map { $0.bytes }
        }
        guard let s = tcpSocket(fd) else {
            guard udpSocket(fd) != nil else { return .failure(.EBADF) }
            return receiveFrom(fd, into: buffer, flags: flags, now: t).map { $0.0 }
        }
        if buffer.count == 0 { return .success(0) }
        if flags.contains(.waitAll) && s.receiveQueueBytes < buffer.count && !s.finReceived && s.state.isSynchronized
            && s.pendingError == nil && s.receiveQueueBytes < s.receiveBufferSize / 2 {
            return .failure(.EAGAIN)   // not all there yet: the blocking layer waits
        }
        return processContext(now: t) { tcpRecvmsg(s, into: buffer, peek: flags.contains(.peek)) }
    }

    /// Linux: `shutdown()` → `tcp_shutdown()`.
    public func shutdown(_ fd: Int32, _ how: ShutdownHow, now t: Nanoseconds) -> Errno? {
        guard let s = tcpSocket(fd) else { return .EBADF }
        switch s.state {
        case .established, .closeWait, .synReceived, .finWait1, .finWait2, .closing, .lastAck, .timeWait: break
        case .listen where how != .write:
            return processContext(now: t) { tcpClose(s); return nil }
        default: return .ENOTCONN
        }
        if how != .write { s.shutdownRead = true }
        if how != .read && !s.shutdownWrite {
            processContext(now: t) { sendFin(s) }
        }
        return nil
    }

    func sendFin(_ s: TCPSocket) {
        s.shutdownWrite = true
        switch s.state {
        case .established, .synReceived: s.state = .finWait1
        case .closeWait: s.state = .lastAck
        default: return
        }
        s.finSent = true
        tcpQueueControl(s, flags: TCPFlag.fin | TCPFlag.ack)
    }

    /// Linux: `close()` → `tcp_close()`: unread data or SO_LINGER 0 abort with a RST; otherwise a
    /// FIN, and the socket finishes as an orphan (bounded by `tcp_max_orphans`).
    public func close(_ fd: Int32, now t: Nanoseconds) -> Errno? {
        guard let s = tcpSocket(fd) else { return closeNonTCP(fd, now: t) }
        processContext(now: t) { tcpClose(s) }
        return nil
    }

    func tcpClose(_ s: TCPSocket) {
        // Linux: sock_orphan() marks the socket dead: no more notifications, and nobody left to
        // read the error queue.
        purgeErrorQueue(s)
        s.zerocopy.removeAll()
        switch s.state {
        case .listen:
            for h in s.acceptQueue { if let c = tcpSocket(h) { abortConnection(c) } }
            s.acceptQueue.removeAll()
            // Children still in SYN-RECV go too.
            for entry in sockets { if case let .tcp(c) = entry, c.parent == s.handle { destroyTCPSocket(c) } }
            destroyTCPSocket(s)
        case .closed, .synSent:
            destroyTCPSocket(s)
        case .timeWait:
            s.orphaned = true; orphanCount += 1
        default:
            let unread = s.receiveQueueBytes > 0
            if unread || (s.options.linger.0 && s.options.linger.1 == 0) {
                abortConnection(s)
                return
            }
            s.orphaned = true
            orphanCount += 1
            if orphanCount > tcpConfig.maxOrphans {
                tcpCounters.orphansDropped &+= 1
                abortConnection(s)
                return
            }
            _ = tcpSlab.removeAll(&s.receiveQueue)
            sendFin(s)
            if s.state == .finWait2 { timers.arm(s.keepaliveTimer, at: now &+ tcpConfig.finTimeout) }
        }
    }

    /// Sends a RST and destroys the connection (Linux: `tcp_disconnect` / `tcp_send_active_reset`).
    func abortConnection(_ s: TCPSocket) {
        if s.state.isSynchronized {
            tcpSendActiveReset(s)
        } else if s.state == .synReceived {
            tcpSendReset(to: s.remoteAddress, port: s.remotePort, from: s.localAddress, port: s.localPort,
                         seq: s.sndNxt, ack: s.rcvNxt)
        }
        destroyTCPSocket(s)
    }

    /// Linux: `getsockname()`.
    public func localAddress(_ fd: Int32) -> Result<SocketAddress, Errno> {
        guard let s = tcpSocket(fd) else { return udpLocalAddress(fd) }
        return .success(SocketAddress(s.localAddress, s.localPort))
    }

    /// Linux: `getpeername()`.
    public func peerAddress(_ fd: Int32) -> Result<SocketAddress, Errno> {
        guard let s = tcpSocket(fd) else { return udpPeerAddress(fd) }
        guard s.state.isSynchronized || s.state == .synReceived else { return .failure(.ENOTCONN) }
        return .success(SocketAddress(s.remoteAddress, s.remotePort))
    }

    /// Linux: `poll()` → `tcp_poll()`.
    public func poll(_ fd: Int32) -> PollEvents {
        guard let s = tcpSocket(fd) else { return pollNonTCP(fd) }
        var e: PollEvents = []
        // Linux: tcp_poll() — EPOLLERR for sk_err or a message on the error queue.
        if s.pendingError != nil || !s.errorQueue.isEmpty { e.insert(.error) }
        switch s.state {
        case .listen:
            if !s.acceptQueue.isEmpty { e.insert(.readable) }
            return e
        case .synSent where s.fastOpen.deferred:
            e.insert(.writable)   // Linux (tcp_poll): a deferred Fast Open connect is writable
            return e
        case .synReceived where s.fastOpen.passiveChild:
            break                 // Linux (tcp_poll): a Fast Open child polls as connected
        case .synSent, .synReceived:
            return e
        case .closed:
            e.insert(.hangup); e.insert(.readable)
            // Linux (tcp_poll): with sending shut down (a connection that ended), POLLOUT too.
            if s.shutdownWrite { e.insert(.writable) }
            return e
        default: break
        }
        if s.receiveQueueBytes > 0 || s.finReceived || s.shutdownRead { e.insert(.readable) }
        if s.finReceived { e.insert(.readHangup) }
        if s.finReceived && s.shutdownWrite { e.insert(.hangup) }
        if !s.shutdownWrite {
            // Linux: tcp_poll() — writable by sk_stream_is_writeable(); if not, SOCK_NOSPACE so
            // that the ACK which frees space wakes the poller.
            if tcpStreamWriteable(s) { e.insert(.writable) } else { s.noSpace = true }
        }
        return e
    }

    /// The TCP state of a socket (for tests and `ss`).
    public func tcpState(_ fd: Int32) -> TCPState? { tcpSocket(fd)?.state }

    /// The socket object for inspection (`ss -ti`-like figures).
    public func tcpInfoSocket(_ fd: Int32) -> TCPSocket? { tcpSocket(fd) }
}
