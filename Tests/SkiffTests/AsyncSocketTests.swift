import Testing
@testable import Skiff
import SkiffSim
import SkiffWire

/// The `async` socket layer over a simulated world: tasks await readiness while the driver
/// steps the world.
@MainActor
@Suite struct AsyncSocketTests {
    typealias P = Scenarios.SwitchedPair

    /// An echo server on B: accepts `connections` connections, echoing each in its own task.
    func startEchoServer(_ d: AsyncStackDriver, _ s: P, port: UInt16, connections: Int) throws {
        let l = try s.b.socket().get()
        #expect(s.b.bind(l, SocketAddress(.any, port)) == nil)
        #expect(s.b.listen(l, backlog: 16) == nil)
        let b = s.b
        d.spawn {
            for _ in 0..<connections {
                guard let (c, _) = try? await d.accept(b, l) else { return }
                d.spawn {
                    do {
                        for try await chunk in d.chunks(b, c) { try await d.write(b, c, chunk) }
                    } catch {
                        Issue.record("echo server: \(error)")
                    }
                    _ = b.close(c, now: d.now)
                }
            }
            _ = b.close(l, now: d.now)
        }
    }

    /// Sends `message` over a new connection, half-closes, and collects the echo.
    func echo(_ d: AsyncStackDriver, _ s: P, port: UInt16, _ message: [UInt8]) async throws -> [UInt8] {
        let a = s.a
        let c = try await d.connect(a, to: SocketAddress(P.bAddress, port))
        #expect(a.tcpState(c) == .established)
        var got: [UInt8] = []
        // Write in pieces while reading what is already back.
        var offset = 0
        while offset < message.count {
            let n = min(10_000, message.count - offset)
            try await d.write(a, c, Array(message[offset..<offset + n]))
            offset += n
        }
        #expect(a.shutdown(c, .write, now: d.now) == nil)
        for try await chunk in d.chunks(a, c, upTo: 4096) {
            #expect(chunk.count <= 4096)
            got += chunk
        }
        #expect(a.close(c, now: d.now) == nil)
        return got
    }

    @Test func echoBetweenTwoHosts() async throws {
        let s = Scenarios.switchedPair()
        let d = AsyncStackDriver(s.world)
        try startEchoServer(d, s, port: 7, connections: 1)
        let message = Lab.pattern(200_000, seed: 3)
        let t0 = s.world.now
        let echoed = try await d.run(until: t0 + 30 * Time.second) {
            try await self.echo(d, s, port: 7, message)
        }
        #expect(echoed == message)
        #expect(d.steps > 0 && s.world.now > t0)
        #expect(d.waitingTasks == 0)
        #expect(s.a.tcpCounters.activeOpens == 1 && s.b.tcpCounters.passiveOpens == 1)
    }

    @Test func concurrentClientsAreServedTogether() async throws {
        let s = Scenarios.switchedPair(impairments: Impairments(loss: 0.01, delay: 100 * Time.microsecond))
        let d = AsyncStackDriver(s.world)
        try startEchoServer(d, s, port: 7, connections: 3)
        let results = try await d.run(until: s.world.now + 120 * Time.second) { () async throws -> [[UInt8]] in
            let clients = (0..<3).map { i in
                d.spawn { try await self.echo(d, s, port: 7, Lab.pattern(30_000 + i * 1000, seed: i)) }
            }
            var out: [[UInt8]] = []
            for c in clients { out.append(try await c.value) }
            return out
        }
        for i in 0..<3 { #expect(results[i] == Lab.pattern(30_000 + i * 1000, seed: i)) }
    }

    @Test func udpRequestAndReplyAsync() async throws {
        let s = Scenarios.switchedPair()
        let d = AsyncStackDriver(s.world)
        let server = try s.b.socket(.datagram).get()
        #expect(s.b.udpBind(server, SocketAddress(.any, 53)) == nil)
        let b = s.b
        d.spawn {
            guard let (query, from) = try? await d.receiveFrom(b, server) else { return }
            try? await d.write(b, server, query.reversed(), to: from)
        }
        let reply = try await d.run(until: s.world.now + Time.second) { () async throws -> ([UInt8], SocketAddress) in
            let c = try s.a.socket(.datagram).get()
            #expect(s.a.udpConnect(c, SocketAddress(P.bAddress, 53), now: d.now) == nil)
            try await d.write(s.a, c, [1, 2, 3])
            return try await d.receiveFrom(s.a, c)
        }
        #expect(reply.0 == [3, 2, 1] && reply.1 == SocketAddress(P.bAddress, 53))
    }

    @Test func waitsEndWithErrorsWhenNothingCanHappen() async throws {
        let s = Scenarios.switchedPair()
        let d = AsyncStackDriver(s.world)
        let fd = try s.b.socket(.datagram).get()
        #expect(s.b.udpBind(fd, SocketAddress(.any, 99)) == nil)
        // Nothing will ever arrive: the world goes idle and the read times out.
        let e1 = try await d.run(until: s.world.now + Time.second) { () async -> Errno? in
            do { _ = try await d.read(s.b, fd); return nil } catch { return error as? Errno }
        }
        #expect(e1 == .ETIMEDOUT)
        // Refused connection.
        let e2 = try await d.run(until: s.world.now + 10 * Time.second) { () async -> Errno? in
            do { _ = try await d.connect(s.a, to: SocketAddress(P.bAddress, 81)); return nil } catch { return error as? Errno }
        }
        #expect(e2 == .ECONNREFUSED)
        #expect(s.a.openSocketCount == 0)
        // Bad arguments.
        let e3 = try await d.run(until: s.world.now + Time.second) { () async -> [Errno?] in
            var out: [Errno?] = []
            for op in 0..<5 {
                do {
                    switch op {
                    case 0: _ = try await d.read(s.b, fd, upTo: 0)
                    case 1: _ = try await d.read(s.b, 4321)
                    case 2: _ = try await d.accept(s.b, fd)
                    case 3: try await d.write(s.b, 4321, [1])
                    default: for try await _ in d.chunks(s.b, 4321) {}
                    }
                    out.append(nil)
                } catch { out.append(error as? Errno) }
            }
            return out
        }
        // accept on a UDP socket answers EOPNOTSUPP, as Linux's does.
        #expect(e3 == [.EINVAL, .EBADF, .EOPNOTSUPP, .EBADF, .EBADF])
        // A server left waiting after a run is released by cancelWaiters.
        let reader = d.spawn { () async throws -> [UInt8] in try await d.read(s.b, fd) }
        _ = try await d.run(until: s.world.now) { () async in }
        #expect(d.waitingTasks == 1 && !reader.isFinished)
        d.cancelWaiters()
        let released = try await d.run(until: s.world.now) { () async -> Errno? in
            do { _ = try await reader.value; return nil } catch { return error as? Errno }
        }
        #expect(released == .ECANCELED && d.waitingTasks == 0)
    }
}
