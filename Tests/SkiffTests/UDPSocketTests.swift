import Testing
@testable import Skiff
import SkiffSim
import SkiffWire

/// UDP sockets between two simulated hosts (Linux `udp_sendmsg` / `udp_recvmsg` semantics), and
/// their argument checking.
@Suite struct UDPSocketTests {
    typealias P = Scenarios.SwitchedPair
    static let ms = Time.millisecond

    /// A UDP socket, bound to `port` on the wildcard address when given.
    func udpSocket(_ st: NetworkStack, port: UInt16? = nil, reuse: Bool = false) throws -> Int32 {
        let fd = try st.socket(.datagram).get()
        if reuse { #expect(st.setUDPOption(fd, .reuseAddress(true)) == nil) }
        if let port { #expect(st.udpBind(fd, SocketAddress(.any, port)) == nil) }
        return fd
    }

    func send(_ s: P, _ st: NetworkStack, _ fd: Int32, _ bytes: [UInt8], to: SocketAddress? = nil,
              flags: SendFlags = []) -> Result<Int, Errno> {
        st.sendTo(fd, bytes, to: to, flags: flags, now: s.world.now)
    }

    /// The next datagram, or the errno.
    func receive(_ s: P, _ st: NetworkStack, _ fd: Int32, max: Int = 70_000,
                 flags: ReceiveFlags = []) -> Result<([UInt8], SocketAddress), Errno> {
        var buf = [UInt8](repeating: 0, count: max)
        let r = buf.withUnsafeMutableBytes { st.receiveFrom(fd, into: $0, flags: flags, now: s.world.now) }
        return r.map { n, from in (Array(buf.prefix(min(n, max))), from) }
    }

    func settle(_ s: P, _ d: Nanoseconds = 10 * Time.millisecond) { s.world.run(until: s.world.now + d) }

    // MARK: Sending and receiving

    @Test func datagramsCrossTheSwitchBothWaysAndTheCopiesAreCounted() throws {
        let s = Scenarios.switchedPair()
        let server = try udpSocket(s.b, port: 5353)
        let client = try udpSocket(s.a)
        let ledgerA = s.a.pool.ledger, ledgerB = s.b.pool.ledger
        #expect(send(s, s.a, client, Array("hello".utf8), to: SocketAddress(P.bAddress, 5353)) == .success(5))
        // Sending bound the client to an ephemeral port (Linux: inet_autobind).
        let local = try s.a.udpLocalAddress(client).get()
        #expect(local.address == .any && local.port >= 32768)
        #expect(receive(s, s.b, server).failureValue == .EAGAIN)
        settle(s)
        #expect(s.b.poll(server) == [.readable, .writable])
        let (bytes, from) = try receive(s, s.b, server).get()
        #expect(bytes == Array("hello".utf8))
        #expect(from == SocketAddress(P.aAddress, local.port))
        #expect(s.b.poll(server) == [.writable])
        // The reply goes back to the sender's port.
        #expect(send(s, s.b, server, Array("world!".utf8), to: from) == .success(6))
        settle(s)
        let (reply, replyFrom) = try receive(s, s.a, client).get()
        #expect(reply == Array("world!".utf8) && replyFrom == SocketAddress(P.bAddress, 5353))
        #expect(s.a.counters.udpOutDatagrams == 1 && s.b.counters.udpOutDatagrams == 1)
        // UdpInDatagrams counts at read time, as Linux's udp_recvmsg does.
        #expect(s.a.counters.udpInDatagrams == 1 && s.b.counters.udpInDatagrams == 1)
        let copiedA = s.a.pool.ledger.minus(ledgerA), copiedB = s.b.pool.ledger.minus(ledgerB)
        #expect(copiedA.bytes(.userToBuffer) == 5 && copiedA.operations(.userToBuffer) == 1)
        #expect(copiedA.bytes(.bufferToUser) == 6 && copiedA.operations(.bufferToUser) == 1)
        #expect(copiedB.bytes(.userToBuffer) == 6 && copiedB.bytes(.bufferToUser) == 5)
        #expect(s.a.udpInfoSocket(client)?.datagramsSent == 1 && s.b.udpInfoSocket(server)?.datagramsReceived == 1)
        #expect(s.a.drops.total == 0 && s.b.drops.total == 0)
    }

    @Test func anEmptyDatagramIsADatagram() throws {
        let s = Scenarios.switchedPair()
        let server = try udpSocket(s.b, port: 9), client = try udpSocket(s.a)
        #expect(send(s, s.a, client, [], to: SocketAddress(P.bAddress, 9)) == .success(0))
        settle(s)
        #expect(s.b.poll(server).contains(.readable))
        let (bytes, from) = try receive(s, s.b, server).get()
        #expect(bytes.isEmpty && from.address == P.aAddress)
        #expect(receive(s, s.b, server).failureValue == .EAGAIN)
    }

    @Test func theLargestDatagramIsFragmentedAndReassembledAndOneByteMoreIsEMSGSIZE() throws {
        let s = Scenarios.switchedPair()
        let server = try udpSocket(s.b, port: 7000), client = try udpSocket(s.a)
        let big = Lab.pattern(65_507)
        #expect(send(s, s.a, client, big, to: SocketAddress(P.bAddress, 7000)) == .success(65_507))
        #expect(send(s, s.a, client, Lab.pattern(65_508), to: SocketAddress(P.bAddress, 7000)) == .failure(.EMSGSIZE))
        #expect(send(s, s.a, client, Lab.pattern(70_000), to: SocketAddress(P.bAddress, 7000)) == .failure(.EMSGSIZE))
        settle(s)
        #expect(try receive(s, s.b, server).get().0 == big)
        #expect(s.a.counters.udpOutDatagrams == 1 && s.a.counters.ipFragCreates > 40)
    }

    // MARK: Argument errors

    @Test func sendErrorsAreLinuxErrnos() throws {
        let s = Scenarios.switchedPair()
        let fd = try udpSocket(s.a)
        // No destination and not connected.
        #expect(send(s, s.a, fd, [1, 2, 3]) == .failure(.EDESTADDRREQ))
        // Port 0.
        #expect(send(s, s.a, fd, [1], to: SocketAddress(P.bAddress, 0)) == .failure(.EINVAL))
        // No route; and no loopback: a local or unspecified destination is unreachable too.
        #expect(send(s, s.a, fd, [1], to: SocketAddress(IPv4Address(192, 168, 9, 9), 53)) == .failure(.ENETUNREACH))
        #expect(send(s, s.a, fd, [1], to: SocketAddress(P.aAddress, 53)) == .failure(.ENETUNREACH))
        #expect(send(s, s.a, fd, [1], to: SocketAddress(.any, 53)) == .failure(.ENETUNREACH))
        #expect(s.a.counters.ipOutNoRoutes == 3)
        // Broadcast without SO_BROADCAST.
        #expect(send(s, s.a, fd, [1], to: SocketAddress(IPv4Address(10, 0, 0, 255), 53)) == .failure(.EACCES))
        #expect(send(s, s.a, fd, [1], to: SocketAddress(IPv4Address(255, 255, 255, 255), 53)) == .failure(.ENETUNREACH))
        // Bad handles: none, closed, an epoll instance.
        #expect(send(s, s.a, 999, [1], to: SocketAddress(P.bAddress, 53)) == .failure(.EBADF))
        #expect(send(s, s.a, -1, [1], to: SocketAddress(P.bAddress, 53)) == .failure(.EBADF))
        let ep = s.a.epollCreate()
        #expect(send(s, s.a, ep, [1], to: SocketAddress(P.bAddress, 53)) == .failure(.ENOTSOCK))
        let closed = try udpSocket(s.a)
        #expect(s.a.close(closed, now: s.world.now) == nil)
        #expect(send(s, s.a, closed, [1], to: SocketAddress(P.bAddress, 53)) == .failure(.EBADF))
        #expect(s.a.close(closed, now: s.world.now) == .EBADF)
        #expect(s.a.counters.udpOutDatagrams == 0)
    }

    @Test func receiveErrorsAndEdgeCases() throws {
        let s = Scenarios.switchedPair()
        let server = try udpSocket(s.b, port: 4444), client = try udpSocket(s.a)
        #expect(receive(s, s.b, server).failureValue == .EAGAIN)
        #expect(receive(s, s.b, server, flags: [.dontWait, .peek]).failureValue == .EAGAIN)
        #expect(receive(s, s.b, 12345).failureValue == .EBADF)
        #expect(receive(s, s.b, -7).failureValue == .EBADF)
        #expect(receive(s, s.b, s.b.epollCreate()).failureValue == .ENOTSOCK)
        // An unbound socket receives nothing, and says EAGAIN.
        let unbound = try udpSocket(s.b)
        #expect(receive(s, s.b, unbound).failureValue == .EAGAIN)
        // A zero-length buffer still takes the datagram, reporting it truncated.
        _ = send(s, s.a, client, [9, 9, 9], to: SocketAddress(P.bAddress, 4444))
        settle(s)
        let r = s.b.receiveMessage(server, into: UnsafeMutableRawBufferPointer(start: nil, count: 0), now: s.world.now)
        #expect(try r.get().count == 0 && r.get().length == 3 && r.get().flags.contains(.truncate))
        #expect(receive(s, s.b, server).failureValue == .EAGAIN)
    }

    @Test func bindChecksPortsAddressesAndReuse() throws {
        let s = Scenarios.switchedPair()
        s.b.addAddress(IPv4Address(10, 0, 0, 22), prefixLength: 24, device: s.bDevice)
        let a = try udpSocket(s.b, port: 8000)
        let b = try s.b.socket(.datagram).get()
        #expect(s.b.udpBind(b, SocketAddress(.any, 8000)) == .EADDRINUSE)
        #expect(s.b.udpBind(b, SocketAddress(P.bAddress, 8000)) == .EADDRINUSE)   // overlaps the wildcard
        #expect(s.b.udpBind(b, SocketAddress(IPv4Address(10, 9, 9, 9), 8001)) == .EADDRNOTAVAIL)
        #expect(s.b.udpBind(b, SocketAddress(.any, 8001)) == nil)
        #expect(s.b.udpBind(b, SocketAddress(.any, 8002)) == .EINVAL)               // already bound
        // Two specific addresses do not overlap.
        let c = try s.b.socket(.datagram).get(), d = try s.b.socket(.datagram).get()
        #expect(s.b.udpBind(c, SocketAddress(P.bAddress, 8100)) == nil)
        #expect(s.b.udpBind(d, SocketAddress(IPv4Address(10, 0, 0, 22), 8100)) == nil)
        // SO_REUSEADDR on both sockets shares the port; on one only it does not.
        let e = try udpSocket(s.b, port: 8200, reuse: true)
        let f = try udpSocket(s.b, reuse: false)
        #expect(s.b.udpBind(f, SocketAddress(.any, 8200)) == .EADDRINUSE)
        #expect(s.b.setUDPOption(f, .reuseAddress(true)) == nil)
        #expect(s.b.udpBind(f, SocketAddress(.any, 8200)) == nil)
        // SO_REUSEPORT likewise.
        let g = try s.b.socket(.datagram).get(), h = try s.b.socket(.datagram).get()
        #expect(s.b.setUDPOption(g, .reusePort(true)) == nil && s.b.setUDPOption(h, .reusePort(true)) == nil)
        #expect(s.b.udpBind(g, SocketAddress(.any, 8300)) == nil && s.b.udpBind(h, SocketAddress(.any, 8300)) == nil)
        // Port 0: an ephemeral port, distinct each time.
        let p = try udpSocket(s.b, port: 0), q = try udpSocket(s.b, port: 0)
        let pp = try s.b.udpLocalAddress(p).get().port, qp = try s.b.udpLocalAddress(q).get().port
        #expect(pp >= 32768 && qp >= 32768 && pp != qp)
        // Closing releases the port.
        #expect(s.b.close(a, now: s.world.now) == nil)
        let again = try s.b.socket(.datagram).get()
        #expect(s.b.udpBind(again, SocketAddress(.any, 8000)) == nil)
        // Wrong kinds of handle.
        let tcp = try s.b.socket(.stream).get()
        #expect(s.b.udpBind(tcp, SocketAddress(.any, 9000)) == .EOPNOTSUPP)
        #expect(s.b.udpBind(777, SocketAddress(.any, 9000)) == .EBADF)
        #expect(s.b.udpBind(s.b.epollCreate(), SocketAddress(.any, 9000)) == .ENOTSOCK)
        #expect(s.b.setUDPOption(tcp, .cork(true)) == .EOPNOTSUPP)
        #expect(s.b.setUDPOption(e, .receiveBuffer(-1)) == .EINVAL)
        #expect(s.b.setUDPOption(e, .sendBuffer(-1)) == .EINVAL)
        #expect(s.b.setUDPOption(e, .sendBuffer(1)) == nil && s.b.udpInfoSocket(e)?.sendBufferSize == 4608)
        #expect(s.b.setUDPOption(e, .receiveBuffer(1 << 30)) == nil && s.b.udpInfoSocket(e)?.receiveBufferSize == 425_984)
        _ = d
    }

    // MARK: connect

    @Test func connectSetsTheDefaultDestinationAndFiltersOtherSenders() throws {
        let s = Scenarios.switchedPair()
        let b = try udpSocket(s.b, port: 6000)
        #expect(s.b.udpPeerAddress(b).failureValue == .ENOTCONN)
        #expect(s.b.udpConnect(b, SocketAddress(P.aAddress, 7000), now: s.world.now) == nil)
        #expect(try s.b.udpPeerAddress(b).get() == SocketAddress(P.aAddress, 7000))
        // connect chose the route's source address for the wildcard bind.
        #expect(try s.b.udpLocalAddress(b).get() == SocketAddress(P.bAddress, 6000))
        let peer = try udpSocket(s.a, port: 7000), other = try udpSocket(s.a, port: 7001)
        _ = send(s, s.a, peer, [1], to: SocketAddress(P.bAddress, 6000))
        _ = send(s, s.a, other, [2], to: SocketAddress(P.bAddress, 6000))
        settle(s)
        // Only the peer's datagram arrives; the other sender hears port unreachable.
        #expect(try receive(s, s.b, b).get().0 == [1])
        #expect(receive(s, s.b, b).failureValue == .EAGAIN)
        #expect(s.b.counters.udpNoPorts == 1 && s.b.counters.icmpOutDestUnreachs == 1)
        #expect(s.a.counters.icmpInDestUnreachs == 1)
        // send without an address goes to the peer; sendto with one still may go elsewhere.
        #expect(send(s, s.b, b, [3, 3]) == .success(2))
        #expect(send(s, s.b, b, [4], to: SocketAddress(P.aAddress, 7001)) == .success(1))
        settle(s)
        #expect(try receive(s, s.a, peer).get().0 == [3, 3])
        let (four, fourFrom) = try receive(s, s.a, other).get()
        #expect(four == [4] && fourFrom == SocketAddress(P.bAddress, 6000))
        // Disconnecting (AF_UNSPEC) accepts everyone again; the bound port stays.
        #expect(s.b.udpConnect(b, nil, now: s.world.now) == nil)
        #expect(s.b.udpPeerAddress(b).failureValue == .ENOTCONN)
        #expect(try s.b.udpLocalAddress(b).get() == SocketAddress(.any, 6000))
        #expect(send(s, s.b, b, [5]) == .failure(.EDESTADDRREQ))
        _ = send(s, s.a, other, [6], to: SocketAddress(P.bAddress, 6000))
        settle(s)
        #expect(try receive(s, s.b, b).get().0 == [6])
    }

    @Test func aConnectedSocketBeatsAWildcardOneForItsPeer() throws {
        let s = Scenarios.switchedPair()
        let wildcard = try udpSocket(s.b, port: 6000, reuse: true)
        let connected = try udpSocket(s.b, port: 6000, reuse: true)
        #expect(s.b.udpConnect(connected, SocketAddress(P.aAddress, 7000), now: s.world.now) == nil)
        let peer = try udpSocket(s.a, port: 7000), other = try udpSocket(s.a, port: 7001)
        _ = send(s, s.a, peer, [1], to: SocketAddress(P.bAddress, 6000))
        _ = send(s, s.a, other, [2], to: SocketAddress(P.bAddress, 6000))
        settle(s)
        #expect(try receive(s, s.b, connected).get().0 == [1])
        #expect(try receive(s, s.b, wildcard).get().0 == [2])
        #expect(receive(s, s.b, connected).failureValue == .EAGAIN)
        #expect(receive(s, s.b, wildcard).failureValue == .EAGAIN)
    }

    @Test func connectAutobindsAndDisconnectReleasesWhatConnectChose() throws {
        let s = Scenarios.switchedPair()
        let fd = try udpSocket(s.a)
        #expect(s.a.udpConnect(fd, SocketAddress(P.bAddress, 53), now: s.world.now) == nil)
        let local = try s.a.udpLocalAddress(fd).get()
        #expect(local.address == P.aAddress && local.port >= 32768)
        #expect(s.a.udp.ports[local.port] != nil)
        #expect(s.a.udpConnect(fd, nil, now: s.world.now) == nil)
        #expect(try s.a.udpLocalAddress(fd).get() == SocketAddress(.any, 0))
        #expect(s.a.udp.ports[local.port] == nil)
        // Errors.
        #expect(s.a.udpConnect(fd, SocketAddress(IPv4Address(172, 16, 0, 1), 53), now: s.world.now) == .ENETUNREACH)
        #expect(s.a.udpConnect(fd, SocketAddress(IPv4Address(10, 0, 0, 255), 53), now: s.world.now) == .EACCES)
        #expect(s.a.setUDPOption(fd, .broadcast(true)) == nil)
        #expect(s.a.udpConnect(fd, SocketAddress(IPv4Address(10, 0, 0, 255), 53), now: s.world.now) == nil)
        #expect(s.a.udpConnect(4242, SocketAddress(P.bAddress, 53), now: s.world.now) == .EBADF)
        #expect(s.a.udpConnect(try s.a.socket().get(), SocketAddress(P.bAddress, 53), now: s.world.now) == .EOPNOTSUPP)
        #expect(s.a.udpPeerAddress(4242).failureValue == .EBADF)
        #expect(s.a.udpLocalAddress(4242).failureValue == .EBADF)
    }

    @Test func broadcastReachesEverySocketOnThePort() throws {
        let s = Scenarios.switchedPair()
        let one = try udpSocket(s.b, port: 9999, reuse: true), two = try udpSocket(s.b, port: 9999, reuse: true)
        let sender = try udpSocket(s.a)
        #expect(s.a.setUDPOption(sender, .broadcast(true)) == nil)
        #expect(send(s, s.a, sender, [7, 7], to: SocketAddress(IPv4Address(10, 0, 0, 255), 9999)) == .success(2))
        settle(s)
        #expect(try receive(s, s.b, one).get().0 == [7, 7])
        #expect(try receive(s, s.b, two).get().0 == [7, 7])
        // Nobody on the port: broadcasts are not answered with ICMP.
        _ = send(s, s.a, sender, [1], to: SocketAddress(IPv4Address(10, 0, 0, 255), 9998))
        settle(s)
        #expect(s.b.counters.udpNoPorts == 1 && s.b.counters.icmpOutDestUnreachs == 0)
    }

    // MARK: Cork

    @Test func udpCorkJoinsSendsIntoOneDatagram() throws {
        let s = Scenarios.switchedPair()
        let server = try udpSocket(s.b, port: 5000), client = try udpSocket(s.a)
        #expect(s.a.setUDPCork(client, true) == nil)
        #expect(send(s, s.a, client, Array("abc".utf8), to: SocketAddress(P.bAddress, 5000)) == .success(3))
        // Later destinations are ignored while a datagram is pending, as in Linux.
        #expect(send(s, s.a, client, Array("def".utf8), to: SocketAddress(P.bAddress, 5001)) == .success(3))
        #expect(s.a.udpInfoSocket(client)?.pendingBytes == 6)
        settle(s)
        #expect(receive(s, s.b, server).failureValue == .EAGAIN)
        #expect(s.a.counters.udpOutDatagrams == 0)
        #expect(s.a.setUDPCork(client, false, now: s.world.now) == nil)
        #expect(s.a.udpInfoSocket(client)?.pendingBytes == nil)
        settle(s)
        #expect(try receive(s, s.b, server).get().0 == Array("abcdef".utf8))
        #expect(receive(s, s.b, server).failureValue == .EAGAIN)
        #expect(s.a.counters.udpOutDatagrams == 1)
        #expect(s.a.udpSlab.count == 0)
    }

    @Test func msgMoreAppendsUntilASendWithoutIt() throws {
        let s = Scenarios.switchedPair()
        let server = try udpSocket(s.b, port: 5000), client = try udpSocket(s.a)
        #expect(send(s, s.a, client, [1, 2], to: SocketAddress(P.bAddress, 5000), flags: .more) == .success(2))
        #expect(send(s, s.a, client, [], flags: .more) == .success(0))
        #expect(send(s, s.a, client, [3, 4]) == .success(2))
        #expect(send(s, s.a, client, [5], to: SocketAddress(P.bAddress, 5000)) == .success(1))
        settle(s)
        #expect(try receive(s, s.b, server).get().0 == [1, 2, 3, 4])
        #expect(try receive(s, s.b, server).get().0 == [5])
        #expect(s.a.counters.udpOutDatagrams == 2)
    }

    @Test func aCorkedDatagramPastTheLimitIsDiscardedWithEMSGSIZE() throws {
        let s = Scenarios.switchedPair()
        let server = try udpSocket(s.b, port: 5000), client = try udpSocket(s.a)
        #expect(s.a.setUDPCork(client, true) == nil)
        #expect(send(s, s.a, client, Lab.pattern(60_000), to: SocketAddress(P.bAddress, 5000)) == .success(60_000))
        #expect(send(s, s.a, client, Lab.pattern(6_000)) == .failure(.EMSGSIZE))
        #expect(s.a.udpInfoSocket(client)?.pendingBytes == nil)
        // The next send starts afresh, and needs a destination again.
        #expect(send(s, s.a, client, [1]) == .failure(.EDESTADDRREQ))
        #expect(send(s, s.a, client, [1], to: SocketAddress(P.bAddress, 5000)) == .success(1))
        #expect(s.a.setUDPCork(client, false, now: s.world.now) == nil)
        settle(s)
        #expect(try receive(s, s.b, server).get().0 == [1])
        // Closing a corked socket frees the pending datagram.
        #expect(s.a.setUDPCork(client, true) == nil)
        _ = send(s, s.a, client, [2], to: SocketAddress(P.bAddress, 5000))
        #expect(s.a.udpSlab.count == 1)
        #expect(s.a.close(client, now: s.world.now) == nil)
        #expect(s.a.udpSlab.count == 0)
    }

    // MARK: Truncation and peeking

    @Test func aShortBufferTruncatesAndMsgTruncReportsTheFullLength() throws {
        let s = Scenarios.switchedPair()
        let server = try udpSocket(s.b, port: 5000), client = try udpSocket(s.a)
        for _ in 0..<3 { _ = send(s, s.a, client, Lab.pattern(100), to: SocketAddress(P.bAddress, 5000)) }
        settle(s)
        // Peek leaves the datagram queued.
        var small = [UInt8](repeating: 0, count: 10)
        let peeked = small.withUnsafeMutableBytes { s.b.receiveMessage(server, into: $0, flags: .peek, now: s.world.now) }
        #expect(try peeked.get().count == 10 && peeked.get().flags == .truncate && small == Array(Lab.pattern(100).prefix(10)))
        #expect(s.b.udpInfoSocket(server)?.queuedDatagrams == 3)
        // recvfrom returns the bytes copied; the rest of the datagram is gone.
        let n = small.withUnsafeMutableBytes { s.b.receiveFrom(server, into: $0, now: s.world.now) }
        #expect(try n.get().0 == 10)
        #expect(s.b.udpInfoSocket(server)?.queuedDatagrams == 2)
        // With MSG_TRUNC the call returns the datagram's length.
        let m = small.withUnsafeMutableBytes { s.b.receiveMessage(server, into: $0, flags: .truncate, now: s.world.now) }
        #expect(try m.get().count == 100 && m.get().copied == 10 && m.get().length == 100 && m.get().flags == .truncate)
        // A buffer that fits: no flag.
        let whole = s.b.receiveMessage(server, into: UnsafeMutableRawBufferPointer.allocate(byteCount: 100, alignment: 1),
                                        now: s.world.now)
        #expect(try whole.get().count == 100 && whole.get().flags == [])
        #expect(s.b.pool.ledger.bytes(.bufferToUser) == 30 + 100)
        #expect(s.b.udpInfoSocket(server)?.receiveMemory == 0)
    }

    // MARK: Receive buffer

    @Test func aFullReceiveBufferDropsAndCountsRcvbufErrors() throws {
        let s = Scenarios.switchedPair()
        let server = try udpSocket(s.b, port: 5000), client = try udpSocket(s.a)
        #expect(s.b.setUDPOption(server, .receiveBuffer(1)) == nil)
        let sock = try #require(s.b.udpInfoSocket(server))
        #expect(sock.receiveBufferSize == 2304)
        for i in 0..<6 { _ = send(s, s.a, client, [UInt8(i)], to: SocketAddress(P.bAddress, 5000)) }
        settle(s)
        let queued = sock.queuedDatagrams
        let dropped = Int(s.b.udpCounters.udpRcvbufErrors)
        #expect(queued >= 1 && dropped >= 1 && queued + dropped == 6)
        #expect(sock.datagramsDropped == UInt64(dropped) && s.b.counters.udpInErrors == UInt64(dropped))
        // The first datagrams are kept, in order.
        for i in 0..<queued { #expect(try receive(s, s.b, server).get().0 == [UInt8(i)]) }
        // Reading made room again.
        _ = send(s, s.a, client, [42], to: SocketAddress(P.bAddress, 5000))
        settle(s)
        #expect(try receive(s, s.b, server).get().0 == [42])
        #expect(s.b.udpSlab.count == 0)
    }

    // MARK: ICMP

    @Test func noSocketMeansPortUnreachableAndAClosedSocketStopsReceiving() throws {
        let s = Scenarios.switchedPair()
        let server = try udpSocket(s.b, port: 5000), client = try udpSocket(s.a)
        _ = send(s, s.a, client, [1], to: SocketAddress(P.bAddress, 5000))
        settle(s)
        #expect(s.b.counters.icmpOutDestUnreachs == 0)
        // Queued datagrams go with the socket.
        #expect(s.b.udpSlab.count == 1)
        #expect(s.b.close(server, now: s.world.now) == nil)
        #expect(s.b.udpSlab.count == 0 && s.b.openSocketCount == 0)
        _ = send(s, s.a, client, [2], to: SocketAddress(P.bAddress, 5000))
        settle(s)
        #expect(s.b.counters.udpNoPorts == 1 && s.b.drops[.udpNoSocket] == 1)
        #expect(s.b.counters.icmpOutDestUnreachs == 1 && s.a.counters.icmpInDestUnreachs == 1)
        // The legacy listener ports still count deliveries when no socket wants the datagram.
        s.b.udpListeners.insert(5000)
        _ = send(s, s.a, client, [3], to: SocketAddress(P.bAddress, 5000))
        settle(s)
        #expect(s.b.udpDelivered == 1 && s.b.counters.icmpOutDestUnreachs == 1)
    }

    @Test func anICMPErrorReachesOnlyAConnectedSocket() throws {
        let s = Scenarios.switchedPair()
        let connected = try udpSocket(s.a)
        #expect(s.a.udpConnect(connected, SocketAddress(P.bAddress, 9), now: s.world.now) == nil)
        let local = try s.a.udpLocalAddress(connected).get()
        // The quote of a datagram A sent to B:9, as B's port unreachable carries it.
        let quote = Lab.ipv4(Lab.udp([1, 2, 3], from: P.aAddress, to: P.bAddress, sourcePort: local.port, destinationPort: 9),
                             from: P.aAddress, to: P.bAddress, protocol: IPProtocol.udp)
        quote.withUnsafeBytes { s.a.udpErr(type: 3, code: 3, quote: $0) }
        #expect(s.a.poll(connected).contains(.error))
        #expect(receive(s, s.a, connected).failureValue == .ECONNREFUSED)
        #expect(receive(s, s.a, connected).failureValue == .EAGAIN)
        // Soft errors (fragmentation needed) and short or malformed quotes change nothing.
        quote.withUnsafeBytes { s.a.udpErr(type: 3, code: 4, quote: $0) }
        quote.prefix(24).withUnsafeBytes { s.a.udpErr(type: 3, code: 3, quote: $0) }
        [0x41, 0, 0].withUnsafeBytes { s.a.udpErr(type: 3, code: 3, quote: $0) }
        #expect(!s.a.poll(connected).contains(.error))
        // An unconnected socket on the port ignores it.
        let plain = try udpSocket(s.a, port: 5555)
        let q2 = Lab.ipv4(Lab.udp([1], from: P.aAddress, to: P.bAddress, sourcePort: 5555, destinationPort: 9),
                          from: P.aAddress, to: P.bAddress, protocol: IPProtocol.udp)
        q2.withUnsafeBytes { s.a.udpErr(type: 3, code: 3, quote: $0) }
        #expect(!s.a.poll(plain).contains(.error))
        // A pending error is also what the next send reports.
        quote.withUnsafeBytes { s.a.udpErr(type: 3, code: 1, quote: $0) }
        #expect(send(s, s.a, connected, [1]) == .failure(.EHOSTUNREACH))
        #expect(send(s, s.a, connected, [1]) == .success(1))
    }

    // MARK: Malformed input

    @Test func malformedDatagramsNeverReachASocket() throws {
        let h = Lab.Host(name: "B")
        h.stack.addPermanentNeighbour(Lab.aIP, mac: Lab.aMAC, device: h.dev)
        let fd = try h.stack.socket(.datagram).get()
        #expect(h.stack.udpBind(fd, SocketAddress(.any, 7)) == nil)
        func receive() -> [UInt8]? {
            var buf = [UInt8](repeating: 0, count: 2048)
            guard case let .success((n, _)) = buf.withUnsafeMutableBytes({ h.stack.receiveFrom(fd, into: $0, now: h.now) })
            else { return nil }
            return Array(buf.prefix(n))
        }
        // Bad checksum.
        h.inject(Lab.ethernet(Lab.ipv4(Lab.udp(Lab.pattern(40), destinationPort: 7, checksum: 0x1234), protocol: IPProtocol.udp)))
        // Length field beyond the packet, and below the header size.
        var long = Lab.udp(Lab.pattern(40), destinationPort: 7)
        long[4] = 0x01; long[5] = 0x00
        h.inject(Lab.ethernet(Lab.ipv4(long, protocol: IPProtocol.udp)))
        var short = Lab.udp(Lab.pattern(40), destinationPort: 7, checksum: 0)
        short[4] = 0; short[5] = 4
        h.inject(Lab.ethernet(Lab.ipv4(short, protocol: IPProtocol.udp)))
        // A truncated header.
        h.inject(Lab.ethernet(Lab.ipv4([0, 7, 0], protocol: IPProtocol.udp)))
        #expect(receive() == nil)
        #expect(h.stack.counters.udpInErrors == 4)
        // A length field shorter than the IP payload: the datagram is cut to it (trailing bytes
        // are not data). No checksum (0) is accepted, as RFC 768 allows.
        var padded = Lab.udp(Lab.pattern(10), destinationPort: 7, checksum: 0) + [0xEE, 0xEE, 0xEE]
        padded[4] = 0; padded[5] = 18
        h.inject(Lab.ethernet(Lab.ipv4(padded, protocol: IPProtocol.udp)))
        #expect(receive() == Lab.pattern(10))
        #expect(h.shutdownIsClean())
    }
}

extension Result {
    var failureValue: Failure? {
        if case let .failure(e) = self { return e }
        return nil
    }
}
