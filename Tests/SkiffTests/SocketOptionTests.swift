import Testing
@testable import Skiff
import SkiffSim
import SkiffWire

@Suite struct SocketOptionTests {
    typealias P = Scenarios.SwitchedPair

    @Test func buffersAreDoubledAndClampedAsLinuxDoes() throws {
        let s = Scenarios.switchedPair()
        let fd = try s.a.socket().get()
        #expect(s.a.setOption(fd, .sendBuffer(100_000)) == nil)
        #expect(try s.a.option(fd, .sendBuffer).get() == .int(200_000))
        #expect(s.a.setOption(fd, .receiveBuffer(1)) == nil)
        #expect(try s.a.option(fd, .receiveBuffer).get() == .int(2304))
        #expect(s.a.setOption(fd, .sendBuffer(1 << 30)) == nil)
        #expect(try s.a.option(fd, .sendBuffer).get() == .int(s.a.tcpConfig.sendMemory.2 * 2))
        #expect(s.a.setOption(fd, .sendBuffer(-1)) == .EINVAL)
    }

    @Test func badValuesAndBadHandlesAreRejected() throws {
        let s = Scenarios.switchedPair()
        let fd = try s.a.socket().get()
        #expect(s.a.setOption(fd, .maxSegment(10)) == .EINVAL)
        #expect(s.a.setOption(fd, .keepIdle(seconds: 0)) == .EINVAL)
        #expect(s.a.setOption(fd, .keepCount(128)) == .EINVAL)
        #expect(s.a.setOption(fd, .userTimeout(milliseconds: -5)) == .EINVAL)
        #expect(s.a.setOption(fd, .linger(on: true, seconds: -1)) == .EINVAL)
        #expect(s.a.setOption(fd, .congestion("vegas")) == Errno(2))
        #expect(s.a.setOption(99, .noDelay(true)) == .EBADF)
        #expect(s.a.setOption(-1, .noDelay(true)) == .EBADF)
        if case .failure(let e) = s.a.option(12345, .error) { #expect(e == .EBADF) } else { Issue.record("expected EBADF") }
        if case .failure(let e) = s.a.tcpInfo(-3) { #expect(e == .EBADF) } else { Issue.record("expected EBADF") }
    }

    @Test func congestionControlCanBeChosenPerSocket() throws {
        let s = Scenarios.switchedPair()
        let fd = try s.a.socket().get()
        #expect(try s.a.option(fd, .congestion).get() == .string("cubic"))
        #expect(s.a.setOption(fd, .congestion("reno")) == nil)
        #expect(try s.a.option(fd, .congestion).get() == .string("reno"))
        #expect(try s.a.tcpInfo(fd).get().congestion == "reno")
    }

    @Test func soErrorReportsARefusedConnectionOnce() throws {
        let s = Scenarios.switchedPair()
        let fd = try s.a.socket().get()
        #expect(s.a.connect(fd, SocketAddress(P.bAddress, 9), now: s.world.now) == .EINPROGRESS)
        s.world.run(limit: s.world.now + 5 * Time.second) { s.a.tcpState(fd) == .closed }
        #expect(try s.a.option(fd, .error).get() == .error(.ECONNREFUSED))
        #expect(try s.a.option(fd, .error).get() == .error(nil))
    }

    @Test func tcpInfoDescribesAnEstablishedConnection() throws {
        let s = Scenarios.switchedPair()
        let t = BulkTransfer(world: s.world, sender: s.a, receiver: s.b, port: 7000, bytes: 64 << 20)
        #expect(t.start() == nil)
        s.world.run(limit: s.world.now + 5 * Time.second) { _ = t.step(); return t.received >= 128 * 1024 }
        let info = try s.a.tcpInfo(t.senderSocket).get()
        #expect(info.state == .established)
        #expect(info.sack && info.timestamps && info.windowScale)
        #expect(info.sendMSS == 1448 && info.advertisedMSS == 1460)
        #expect(info.rtt != nil && info.minRTT != nil)
        #expect(info.bytesAcked > 0 && info.segmentsOut > 0)
        #expect(info.rto >= 200 * Time.millisecond)
    }

    @Test func lingerZeroAbortsWithAReset() throws {
        let s = Scenarios.switchedPair()
        let t = BulkTransfer(world: s.world, sender: s.a, receiver: s.b, port: 7001, bytes: 64 * 1024)
        #expect(t.start() == nil)
        s.world.run(limit: s.world.now + 5 * Time.second) { _ = t.step(); return t.receiverSocket >= 0 && t.received > 0 }
        #expect(s.a.setOption(t.senderSocket, .linger(on: true, seconds: 0)) == nil)
        let rstBefore = s.a.tcpCounters.outRsts
        _ = s.a.close(t.senderSocket, now: s.world.now)
        #expect(s.a.tcpCounters.outRsts == rstBefore + 1)
        s.world.run(limit: s.world.now + Time.second) { s.b.tcpState(t.receiverSocket) == .closed }
        #expect(s.b.tcpState(t.receiverSocket) == .closed)
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        let r = buf.withUnsafeMutableBytes { s.b.recv(t.receiverSocket, into: $0, now: s.world.now) }
        // Whatever arrived can still be read; then the reset shows.
        if case let .success(n) = r { #expect(n > 0) }
        let r2 = buf.withUnsafeMutableBytes { s.b.recv(t.receiverSocket, into: $0, now: s.world.now) }
        if case let .failure(e) = r2 { #expect(e == .ECONNRESET) } else { Issue.record("expected ECONNRESET, got \(r2)") }
    }
}

@Suite struct ReceiveAutotuningTests {
    /// With a longer path the receive buffer grows as the reader keeps up (Linux's tcp_rmem
    /// auto-tuning), but not past tcp_rmem[2], and not at all once SO_RCVBUF was set.
    @Test func receiveBufferGrowsWithTheFlowUnlessLocked() throws {
        let s = Scenarios.switchedPair(impairments: Impairments(delay: Time.millisecond))
        let t = BulkTransfer(world: s.world, sender: s.a, receiver: s.b, port: 7100, bytes: 8 << 20)
        #expect(t.start() == nil)
        var initial = 0
        s.world.run(limit: s.world.now + 60 * Time.second) {
            let done = t.step()
            if initial == 0, t.receiverSocket >= 0, let r = s.b.tcpInfoSocket(t.receiverSocket) { initial = r.receiveBufferSize }
            return done
        }
        #expect(t.succeeded)
        #expect(initial == s.b.tcpConfig.receiveMemory.1 * 2)
        let grown = try #require(s.b.tcpInfoSocket(t.receiverSocket)).receiveBufferGrowths
        #expect(grown > 0)
    }

    @Test func setReceiveBufferLocksIt() throws {
        let s = Scenarios.switchedPair()
        let fd = try s.b.socket().get()
        #expect(s.b.setOption(fd, .receiveBuffer(65536)) == nil)
        let sock = try #require(s.b.tcpInfoSocket(fd))
        #expect(sock.receiveBufferLocked && sock.receiveBufferSize == 131_072)
    }
}
