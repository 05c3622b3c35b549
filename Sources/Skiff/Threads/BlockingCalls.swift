/// One descriptor of a `poll` call (Linux: `struct pollfd`).
public struct PollRequest: Sendable, Equatable {
    public var fd: Int32
    public var events: PollEvents
    public var returned: PollEvents = []
    public init(fd: Int32, events: PollEvents) { self.fd = fd; self.events = events }
}

extension PollEvents {
    /// The descriptor is not open (Linux: `POLLNVAL`).
    public static let invalid = PollEvents(rawValue: 0x020)
}

/// The socket calls, locked, and blocking where Linux's block.
extension SharedStack {
    /// Linux: `socket()`.
    public func socket(_ type: SocketType = .stream) -> Result<Int32, Errno> {
        withStack { s, _ in s.socket(type) }
    }

    /// Linux: `bind()`.
    public func bind(_ fd: Int32, _ address: SocketAddress) -> Errno? {
        withStack { s, _ in s.bind(fd, address) }
    }

    /// Linux: `listen()`.
    public func listen(_ fd: Int32, backlog: Int) -> Errno? {
        withStack { s, _ in s.listen(fd, backlog: backlog) }
    }

    /// Linux: `fcntl(F_SETFL, O_NONBLOCK)`, SO_RCVTIMEO, SO_SNDTIMEO.
    public func setFileOption(_ fd: Int32, _ option: FileOption) -> Errno? {
        withStack { s, _ in s.setFileOption(fd, option) }
    }

    /// Linux: `setsockopt()` for the TCP and socket-level options.
    public func setOption(_ fd: Int32, _ option: SocketOption) -> Errno? {
        withStack { s, t in s.setOption(fd, option, now: t) }
    }

    /// Linux: `accept()` → `inet_csk_accept()`: sleeps until a connection is ready (or the
    /// receive timeout: EAGAIN). The new socket inherits the listener's timeouts, not its
    /// O_NONBLOCK flag, as in Linux.
    public func accept(_ fd: Int32) -> Result<(Int32, SocketAddress), Errno> {
        blocking(fd, sending: false, dontWait: false) { s, _ in
            let r = s.accept(fd)
            switch r {
            case .failure(.EAGAIN): return .wouldBlock(r)
            case let .success((child, _)):
                if case let .success(parent) = s.fileState(fd) {
                    _ = s.setFileOption(child, .receiveTimeout(parent.receiveTimeout))
                    _ = s.setFileOption(child, .sendTimeout(parent.sendTimeout))
                }
                return .done(r)
            case .failure: return .done(r)
            }
        }
    }

    /// Linux: `connect()` → `inet_stream_connect()`: sends the SYN, then sleeps until the
    /// handshake ends (nil, or the failure: ECONNREFUSED, ETIMEDOUT…). A timeout (SO_SNDTIMEO)
    /// or a non-blocking socket returns EINPROGRESS and the handshake goes on.
    public func connect(_ fd: Int32, _ to: SocketAddress) -> Errno? {
        var started = false
        return blocking(fd, sending: true, dontWait: false) { s, t -> Attempt<Errno?> in
            if !started {
                started = true
                let e = s.connect(fd, to, now: t)
                return e == .EINPROGRESS ? .progressed(e) : .done(e)
            }
            guard s.tcpState(fd) != .synSent && s.tcpState(fd) != .synReceived else { return .wouldBlock(.EINPROGRESS) }
            // The handshake ended: connect again reports how (Linux: the second connect's answer).
            let e = s.connect(fd, to, now: t)
            return .done(e == .EISCONN ? nil : e)
        }
    }

    /// Linux: `send()` → `tcp_sendmsg()`: copies everything, sleeping while the send buffer is
    /// full (`sk_stream_wait_memory`). On timeout or error after a partial copy it returns the
    /// bytes copied, as Linux does.
    public func send(_ fd: Int32, _ data: UnsafeRawBufferPointer, flags: SendFlags = []) -> Result<Int, Errno> {
        var sent = 0
        return blocking(fd, sending: true, dontWait: flags.contains(.dontWait)) { s, t -> Attempt<Result<Int, Errno>> in
            let rest = UnsafeRawBufferPointer(rebasing: data[sent...])
            switch s.send(fd, rest, flags: flags, now: t) {
            case let .success(n):
                sent += n
                return sent == data.count ? .done(.success(sent)) : .progressed(.success(sent))
            case .failure(.EAGAIN):
                return .wouldBlock(sent > 0 ? .success(sent) : .failure(.EAGAIN))
            case let .failure(e):
                return .done(sent > 0 ? .success(sent) : .failure(e))
            }
        }
    }

    /// Linux: `sendto()` → `udp_sendmsg()` (or `tcp_sendmsg()` for a TCP socket). A UDP socket
    /// never sleeps: its EAGAIN is an autobind that found no free port, which Linux returns at
    /// once (`inet_autobind`).
    public func sendTo(_ fd: Int32, _ data: UnsafeRawBufferPointer, to: SocketAddress?, flags: SendFlags = []) -> Result<Int, Errno> {
        if to == nil { return send(fd, data, flags: flags) }
        return blocking(fd, sending: true, dontWait: flags.contains(.dontWait)) { s, t in
            let r = s.sendTo(fd, data, to: to, flags: flags, now: t)
            if case .failure(.EAGAIN) = r, s.udpSocket(fd) == nil { return .wouldBlock(r) }
            return .done(r)
        }
    }

    /// Linux: `recv()` → `tcp_recvmsg()`: sleeps until data, end of stream or an error. With
    /// MSG_WAITALL it keeps reading until the buffer is full (or end, error, timeout: then it
    /// returns what it has).
    public func recv(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, flags: ReceiveFlags = []) -> Result<Int, Errno> {
        let accumulate = flags.contains(.waitAll) && !flags.contains(.peek)
        var inner = flags
        if accumulate { inner.remove(.waitAll) }
        var got = 0
        return blocking(fd, sending: false, dontWait: flags.contains(.dontWait)) { s, t -> Attempt<Result<Int, Errno>> in
            let rest = UnsafeMutableRawBufferPointer(rebasing: buffer[got...])
            switch s.recv(fd, into: rest, flags: inner, now: t) {
            case let .success(n):
                if n == 0 || !accumulate { return .done(.success(got + n)) }
                got += n
                return got == buffer.count ? .done(.success(got)) : .progressed(.success(got))
            case .failure(.EAGAIN):
                return .wouldBlock(got > 0 ? .success(got) : .failure(.EAGAIN))
            case let .failure(e):
                return .done(got > 0 ? .success(got) : .failure(e))
            }
        }
    }

    /// Linux: `recvfrom()` → `udp_recvmsg()`: sleeps until a datagram arrives.
    public func receiveFrom(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer,
                            flags: ReceiveFlags = []) -> Result<(Int, SocketAddress), Errno> {
        blocking(fd, sending: false, dontWait: flags.contains(.dontWait)) { s, t in
            let r = s.receiveFrom(fd, into: buffer, flags: flags, now: t)
            if case .failure(.EAGAIN) = r { return .wouldBlock(r) }
            return .done(r)
        }
    }

    /// Linux: `poll()`. Sleeps until one descriptor is ready or `timeout` passes (nil: no
    /// limit, 0: look once). Errors and hang-ups are reported whether asked for or not; a
    /// descriptor that is not open reports `.invalid`. Returns how many are ready.
    public func poll(_ requests: inout [PollRequest], timeout: Nanoseconds?) -> Int {
        enterCall()
        defer { leaveCall() }
        let deadline = timeout.map { readClock() &+ $0 }
        let token = timeout == 0 ? nil : registerTimeout(deadline)
        defer { if let token { lock.removeDeadline(token) } }
        while true {
            var ready = 0
            for i in requests.indices {
                let fd = requests[i].fd
                if fd < 0 { requests[i].returned = []; continue }
                if case .failure = stack.fileState(fd) {
                    requests[i].returned = .invalid
                } else {
                    let always: PollEvents = [.error, .hangup]
                    requests[i].returned = stack.poll(fd).intersection(requests[i].events.union(always))
                }
                if !requests[i].returned.isEmpty { ready += 1 }
            }
            if ready > 0 { return ready }
            if let d = deadline, readClock() >= d { return 0 }
            sleep(untilMonotonic: timeSource == .monotonic ? deadline : nil)
        }
    }

    /// Linux: `epoll_wait()`: sleeps until an event or `timeout` (nil: no limit, 0: look once).
    public func epollWait(_ epfd: Int32, maxEvents: Int, timeout: Nanoseconds?) -> Result<[EpollEvent], Errno> {
        enterCall()
        defer { leaveCall() }
        let deadline = timeout.map { readClock() &+ $0 }
        let token = timeout == 0 ? nil : registerTimeout(deadline)
        defer { if let token { lock.removeDeadline(token) } }
        while true {
            let r = stack.epollWait(epfd, maxEvents: maxEvents)
            if case let .success(events) = r, events.isEmpty {
                if let d = deadline, readClock() >= d { return r }
                sleep(untilMonotonic: timeSource == .monotonic ? deadline : nil)
                continue
            }
            return r
        }
    }

    /// Linux: `shutdown()`.
    public func shutdown(_ fd: Int32, _ how: ShutdownHow) -> Errno? {
        withStack { s, t in s.shutdown(fd, how, now: t) }
    }

    /// Linux: `close()` → `tcp_close()`. With SO_LINGER on and a positive time on a blocking
    /// socket it sleeps until the FIN is acknowledged or the linger time passes
    /// (`sk_stream_wait_close`); the connection finishes on its own either way.
    public func close(_ fd: Int32) -> Errno? {
        enterCall()
        defer { leaveCall() }
        let socket = stack.tcpInfoSocket(fd)
        let file = (try? stack.fileState(fd).get()) ?? FileState()
        if let e = stack.close(fd, now: readClock()) { return e }
        guard let sock = socket, sock.options.linger.0, sock.options.linger.1 > 0, !file.nonBlocking else { return nil }
        let deadline = readClock() &+ UInt64(sock.options.linger.1) * Time.second
        let token = registerTimeout(deadline)
        defer { if let token { lock.removeDeadline(token) } }
        settle()
        while [.finWait1, .closing, .lastAck].contains(sock.state), readClock() < deadline {
            wakeEngineIfNeeded()
            sleep(untilMonotonic: timeSource == .monotonic ? deadline : nil)
        }
        return nil
    }
}
