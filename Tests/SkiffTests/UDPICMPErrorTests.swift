import Testing
@testable import Skiff
import SkiffSim
import SkiffWire

/// ICMP errors reach the UDP socket they are about (Linux: icmp_unreach → __udp4_lib_err).
@Suite struct UDPICMPErrorTests {
    typealias P = Scenarios.SwitchedPair

    @Test func portUnreachableRefusesAConnectedSocketOnly() throws {
        let s = Scenarios.switchedPair()
        let connected = try s.a.socket(.datagram).get()
        let unconnected = try s.a.socket(.datagram).get()
        #expect(s.a.udpConnect(connected, SocketAddress(P.bAddress, 9999), now: s.world.now) == nil)
        #expect(try s.a.sendTo(connected, [1, 2, 3], now: s.world.now).get() == 3)
        #expect(try s.a.sendTo(unconnected, [4, 5], to: SocketAddress(P.bAddress, 9998), now: s.world.now).get() == 2)
        s.world.run(until: s.world.now + Time.second)
        #expect(s.b.counters.icmpOutDestUnreachs == 2)
        #expect(s.a.counters.icmpInDestUnreachs == 2)
        var buf = [UInt8](repeating: 0, count: 64)
        let r = buf.withUnsafeMutableBytes { s.a.receiveFrom(connected, into: $0, flags: .dontWait, now: s.world.now) }
        if case let .failure(e) = r { #expect(e == .ECONNREFUSED) } else { Issue.record("expected ECONNREFUSED, got \(r)") }
        let r2 = buf.withUnsafeMutableBytes { s.a.receiveFrom(unconnected, into: $0, flags: .dontWait, now: s.world.now) }
        if case let .failure(e) = r2 { #expect(e == .EAGAIN) } else { Issue.record("expected EAGAIN, got \(r2)") }
        #expect(Errno.ECONNREFUSED.description == "ECONNREFUSED" && Errno(2).description == "ENOENT")
    }
}

/// The generic socket calls work on UDP handles as Linux's do on SOCK_DGRAM sockets.
@Suite struct GenericCallsOnUDPTests {
    typealias P = Scenarios.SwitchedPair

    @Test func bindConnectSendRecvAndNamesDispatchToUDP() throws {
        let s = Scenarios.switchedPair()
        let server = try s.b.socket(.datagram).get()
        #expect(s.b.bind(server, SocketAddress(.any, 5353)) == nil)
        #expect(s.b.listen(server, backlog: 1) == .EOPNOTSUPP)
        if case let .failure(e) = s.b.accept(server) { #expect(e == .EOPNOTSUPP) } else { Issue.record("accept on UDP") }
        let client = try s.a.socket(.datagram).get()
        #expect(s.a.connect(client, SocketAddress(P.bAddress, 5353), now: s.world.now) == nil)
        #expect(try s.a.peerAddress(client).get() == SocketAddress(P.bAddress, 5353))
        #expect(try s.a.localAddress(client).get().address == P.aAddress)
        let r = [UInt8]("hello".utf8).withUnsafeBytes { s.a.send(client, $0, now: s.world.now) }
        #expect(try r.get() == 5)
        s.world.run(until: s.world.now + 10 * Time.millisecond)
        var buf = [UInt8](repeating: 0, count: 16)
        let n = try buf.withUnsafeMutableBytes { try s.b.recv(server, into: $0, now: s.world.now).get() }
        #expect(n == 5 && Array(buf[0..<5]) == [UInt8]("hello".utf8))
        if case let .failure(e) = s.b.peerAddress(server) { #expect(e == .ENOTCONN) } else { Issue.record("unconnected peer") }
        #expect(s.a.bind(999, SocketAddress(.any, 1)) == .EBADF)
    }
}
