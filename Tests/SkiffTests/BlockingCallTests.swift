import Foundation
import Testing
@testable import Skiff
import SkiffSim
import SkiffWire

/// Two simulated hosts shared between threads: application threads make blocking calls while a
/// driver thread moves virtual time forward, as packetdrill's main thread does.
final class SharedPair: @unchecked Sendable {
    let pair = Scenarios.switchedPair()
    let lock = StackLock()
    let a: SharedStack, b: SharedStack
    /// Virtual time moved by the driver, in 1 ms steps, at most this far.
    let horizon: Nanoseconds

    init(horizon: Nanoseconds = 30 * Time.second) {
        let world = pair.world
        a = SharedStack(manual: pair.a, lock: lock, clock: { world.now }, advance: { world.run(until: $0) })
        b = SharedStack(manual: pair.b, lock: lock, clock: { world.now }, advance: { world.run(until: $0) })
        self.horizon = horizon
    }

    var now: Nanoseconds { lock.withLock { pair.world.now } }

    /// Runs `apps` on their own threads while this thread advances time 1 ms at a time, until
    /// every app returns or the horizon passes. Returns whether all finished.
    @discardableResult
    func run(_ apps: [@Sendable () -> Void]) -> Bool {
        let done = ManagedCounter()
        var threads: [Thread] = []
        for app in apps {
            let t = Thread { app(); done.increment() }
            threads.append(t)
            t.start()
        }
        let start = now
        var steps = 0
        while done.value < apps.count && now < start + horizon && steps < 200_000 {
            a.advance(to: now + Time.millisecond)
            steps += 1
            if steps % 16 == 0 { usleep(50) }   // let app threads take the lock
        }
        // Give stragglers a bounded real-time grace (a thread may be between calls).
        var grace = 0
        while done.value < apps.count && grace < 2000 { usleep(1000); grace += 1 }
        return done.value == apps.count
    }
}

final class ManagedCounter: @unchecked Sendable {
    private let l = NSLock()
    private var v = 0
    func increment() { l.lock(); v += 1; l.unlock() }
    var value: Int { l.lock(); defer { l.unlock() }; return v }
}

final class Box<T>: @unchecked Sendable {
    var value: T
    init(_ v: T) { value = v }
}

@Suite("Blocking calls with timeouts (SharedStack)")
struct BlockingCallTests {
    static let server = SocketAddress(Scenarios.SwitchedPair.bAddress, 7000)

    @Test("blocking accept, connect, send and recv(MSG_WAITALL) move 300 KB through a small send buffer")
    func blockingTransfer() throws {
        let p = SharedPair()
        let size = 300_000
        let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        let listener = try p.b.socket().get()
        #expect(p.b.bind(listener, Self.server) == nil)
        #expect(p.b.listen(listener, backlog: 8) == nil)
        let received = Box([UInt8]())
        let sentCount = Box<Result<Int, Errno>>(.failure(.EINVAL))
        let connectResult = Box<Errno?>(.EINVAL)
        let ok = p.run([
            {
                guard case let .success((fd, _)) = p.b.accept(listener) else { return }
                var buf = [UInt8](repeating: 0, count: size)
                let r = buf.withUnsafeMutableBytes { p.b.recv(fd, into: $0, flags: .waitAll) }
                if case let .success(n) = r { received.value = Array(buf[0..<n]) }
                _ = p.b.close(fd)
            },
            {
                guard case let .success(fd) = p.a.socket() else { return }
                _ = p.a.setOption(fd, .sendBuffer(16_384))
                connectResult.value = p.a.connect(fd, Self.server)
                sentCount.value = payload.withUnsafeBytes { p.a.send(fd, $0) }
                _ = p.a.close(fd)
            },
        ])
        #expect(ok)
        #expect(connectResult.value == nil)
        #expect(sentCount.value == .success(size))
        #expect(received.value.count == size)
        #expect(received.value == payload)
    }

    @Test("recv with SO_RCVTIMEO 200 ms and no data returns EAGAIN once virtual time passes the timeout")
    func receiveTimeout() throws {
        let p = SharedPair(horizon: 5 * Time.second)
        let listener = try p.b.socket().get()
        _ = p.b.bind(listener, Self.server)
        _ = p.b.listen(listener, backlog: 8)
        let result = Box<Result<Int, Errno>>(.success(-1))
        let waited = Box<Nanoseconds>(0)
        let ok = p.run([{
            guard case let .success(fd) = p.a.socket() else { return }
            guard p.a.connect(fd, Self.server) == nil else { return }
            _ = p.a.setFileOption(fd, .receiveTimeout(200 * Time.millisecond))
            let start = p.a.now
            var buf = [UInt8](repeating: 0, count: 100)
            result.value = buf.withUnsafeMutableBytes { p.a.recv(fd, into: $0) }
            waited.value = p.a.now - start
        }])
        #expect(ok)
        #expect(result.value == .failure(.EAGAIN))
        #expect(waited.value >= 200 * Time.millisecond)
    }

    @Test("manual time stops at a timeout: a datagram arriving after it is not returned, even when one advance passes both")
    func timeStopsAtTheTimeout() throws {
        // 150 ms each way through the switch: A's datagram reaches B 300 ms after it leaves.
        let pair = Scenarios.switchedPair(impairments: Impairments(delay: 150 * Time.millisecond))
        pair.a.addPermanentNeighbour(Scenarios.SwitchedPair.bAddress, mac: Scenarios.SwitchedPair.bMAC, device: pair.aDevice)
        pair.b.addPermanentNeighbour(Scenarios.SwitchedPair.aAddress, mac: Scenarios.SwitchedPair.aMAC, device: pair.bDevice)
        let lock = StackLock()
        let world = pair.world
        let a = SharedStack(manual: pair.a, lock: lock, clock: { world.now }, advance: { world.run(until: $0) })
        let b = SharedStack(manual: pair.b, lock: lock, clock: { world.now }, advance: { world.run(until: $0) })
        let rx = try b.socket(.datagram).get()
        _ = b.bind(rx, SocketAddress(.any, 7100))
        _ = b.setFileOption(rx, .receiveTimeout(200 * Time.millisecond))
        let start = b.now
        let result = Box<Result<Int, Errno>>(.success(-1))
        let done = ManagedCounter()
        let t = Thread {
            var buf = [UInt8](repeating: 0, count: 16)
            result.value = buf.withUnsafeMutableBytes { b.receiveFrom(rx, into: $0) }.map { $0.0 }
            done.increment()
        }
        t.start()
        // Wait (bounded, real time) until the receiver sleeps with its timeout registered.
        var spins = 0
        while lock.withLock({ lock.earliestDeadline(after: start) == nil }) && spins < 2000 { usleep(500); spins += 1 }
        let tx = try a.socket(.datagram).get()
        _ = [UInt8](repeating: 9, count: 4).withUnsafeBytes { a.sendTo(tx, $0, to: SocketAddress(Scenarios.SwitchedPair.bAddress, 7100)) }
        // One advance past both the timeout (200 ms) and the datagram's arrival (300 ms).
        a.advance(to: start + Time.second)
        var grace = 0
        while done.value == 0 && grace < 2000 { usleep(500); grace += 1 }
        #expect(result.value == .failure(.EAGAIN))
        #expect(b.withStack { s, _ in s.udpInfoSocket(rx)?.queuedDatagrams } == 1)
    }

    @Test("accept with SO_RCVTIMEO times out with EAGAIN; O_NONBLOCK and MSG_DONTWAIT never wait")
    func nonBlockingAndAcceptTimeout() throws {
        let p = SharedPair(horizon: 5 * Time.second)
        let listener = try p.b.socket().get()
        _ = p.b.bind(listener, Self.server)
        _ = p.b.listen(listener, backlog: 8)
        // No driver thread runs here: a call that waited would hang the test.
        #expect(p.b.setFileOption(listener, .nonBlocking(true)) == nil)
        #expect(p.b.accept(listener).map { $0.0 } == .failure(.EAGAIN))
        #expect(p.b.setFileOption(listener, .nonBlocking(false)) == nil)
        let udp = try p.a.socket(.datagram).get()
        _ = p.a.bind(udp, SocketAddress(.any, 5000))
        var buf = [UInt8](repeating: 0, count: 10)
        #expect(buf.withUnsafeMutableBytes { p.a.recv(udp, into: $0, flags: .dontWait) } == .failure(.EAGAIN))
        var reqs = [PollRequest(fd: udp, events: .readable), PollRequest(fd: 999, events: .readable)]
        #expect(p.a.poll(&reqs, timeout: 0) == 1)
        #expect(reqs[0].returned == [])
        #expect(reqs[1].returned == .invalid)
        #expect(p.b.setFileOption(999, .nonBlocking(true)) == .EBADF)

        _ = p.b.setFileOption(listener, .receiveTimeout(300 * Time.millisecond))
        let result = Box<Result<Int32, Errno>>(.success(-1))
        let ok = p.run([{ result.value = p.b.accept(listener).map { $0.0 } }])
        #expect(ok)
        #expect(result.value == .failure(.EAGAIN))
    }

    @Test("blocking connect to a closed port reports ECONNREFUSED; to a silent host, EINPROGRESS after SO_SNDTIMEO")
    func connectOutcomes() throws {
        let p = SharedPair(horizon: 10 * Time.second)
        let refused = Box<Errno?>(nil), silent = Box<Errno?>(nil)
        let ok = p.run([
            {
                guard case let .success(fd) = p.a.socket() else { return }
                refused.value = p.a.connect(fd, SocketAddress(Scenarios.SwitchedPair.bAddress, 9))
            },
            {
                guard case let .success(fd) = p.a.socket() else { return }
                _ = p.a.setFileOption(fd, .sendTimeout(1 * Time.second))
                silent.value = p.a.connect(fd, SocketAddress(IPv4Address(10, 0, 0, 77), 80))
            },
        ])
        #expect(ok)
        #expect(refused.value == .ECONNREFUSED)
        #expect(silent.value == .EINPROGRESS)
    }

    @Test("poll sleeps until a datagram arrives; epoll_wait with a timeout returns empty, then the event")
    func pollAndEpollWait() throws {
        let p = SharedPair(horizon: 5 * Time.second)
        let rx = try p.b.socket(.datagram).get()
        _ = p.b.bind(rx, SocketAddress(.any, 6000))
        let ep = p.b.withStack { s, _ in s.epollCreate() }
        #expect(p.b.withStack { s, _ in s.epollControl(ep, .add, rx, events: .readable) } == nil)
        let empty = Box<Int>(-1), polled = Box<Int>(-1), events = Box<[EpollEvent]>([])
        let ok = p.run([
            {
                empty.value = (try? p.b.epollWait(ep, maxEvents: 4, timeout: 100 * Time.millisecond).get().count) ?? -2
                var reqs = [PollRequest(fd: rx, events: .readable)]
                polled.value = p.b.poll(&reqs, timeout: nil)
                events.value = (try? p.b.epollWait(ep, maxEvents: 4, timeout: nil).get()) ?? []
            },
            {
                usleep(20_000)
                guard case let .success(tx) = p.a.socket(.datagram) else { return }
                let msg: [UInt8] = Array("hello".utf8)
                _ = msg.withUnsafeBytes { p.a.sendTo(tx, $0, to: SocketAddress(Scenarios.SwitchedPair.bAddress, 6000)) }
            },
        ])
        #expect(ok)
        #expect(empty.value == 0)
        #expect(polled.value == 1)
        #expect(events.value.map(\.fd) == [rx])
    }

    @Test("a blocking UDP sendto whose autobind finds no free port returns EAGAIN at once, without sleeping (Linux: inet_autobind)")
    func udpSendToWithNoFreePortDoesNotSleep() throws {
        let p = SharedPair(horizon: 5 * Time.second)
        // One ephemeral port, taken: the next autobind has nowhere to go.
        p.a.withStack { s, _ in s.ephemeralPorts = EphemeralPorts(secret: SipHashKey(1, 2), range: 40000...40000) }
        let holder = try p.a.socket(.datagram).get()
        #expect(p.a.bind(holder, SocketAddress(.any, 40000)) == nil)
        let tx = try p.a.socket(.datagram).get()
        let before = p.lock.withLock { p.lock.wakeups }
        // On a thread of its own, so that a call that does sleep (it would for ever: no timeout,
        // no time moving) fails the test instead of hanging it.
        let result = Box<Result<Int, Errno>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread {
            result.value = [UInt8](repeating: 1, count: 8).withUnsafeBytes {
                p.a.sendTo(tx, $0, to: SocketAddress(Scenarios.SwitchedPair.bAddress, 6000))
            }
            done.signal()
        }.start()
        #expect(done.wait(timeout: .now() + 10) == .success, "sendto slept")
        #expect(result.value == .failure(.EAGAIN))
        #expect(p.lock.withLock { p.lock.wakeups } == before)   // no sleep in between
    }

    @Test("two callers blocked on nothing do not wake each other: they sleep until the stack changes")
    func blockedCallersDoNotPingPong() throws {
        let p = SharedPair(horizon: 5 * Time.second)
        let r1 = try p.b.socket(.datagram).get(), r2 = try p.b.socket(.datagram).get()
        _ = p.b.bind(r1, SocketAddress(.any, 6001))
        _ = p.b.bind(r2, SocketAddress(.any, 6002))
        let got = Box<[Int]>([])
        let lockForGot = NSLock()
        let threads = [r1, r2].map { fd in
            Thread {
                var buf = [UInt8](repeating: 0, count: 16)
                let n = (try? buf.withUnsafeMutableBytes { p.b.receiveFrom(fd, into: $0) }.get().0) ?? -1
                lockForGot.lock(); got.value.append(n); lockForGot.unlock()
            }
        }
        threads.forEach { $0.start() }
        usleep(50_000)   // both are asleep by now; nothing changes the stack meanwhile
        let wakeups = p.lock.withLock { p.lock.wakeups }
        #expect(wakeups < 10, "blocked callers kept waking each other: \(wakeups) wake-ups")
        // Now datagrams arrive for both; time moves so the world delivers them.
        let tx = try p.a.socket(.datagram).get()
        for port in [UInt16(6001), 6002] {
            _ = [UInt8](repeating: 1, count: 4).withUnsafeBytes { p.a.sendTo(tx, $0, to: SocketAddress(Scenarios.SwitchedPair.bAddress, port)) }
        }
        var steps = 0
        while steps < 2000 {
            lockForGot.lock(); let done = got.value.count == 2; lockForGot.unlock()
            if done { break }
            p.a.advance(to: p.now + Time.millisecond)
            usleep(100)
            steps += 1
        }
        lockForGot.lock(); defer { lockForGot.unlock() }
        #expect(got.value.sorted() == [4, 4])
        // Each receiver was woken by its own socket's datagram, not by looking on its own.
        #expect(p.b.withStack { _, _ in p.b.missedWakeups } == 0)
    }

    @Test("on the monotonic clock, a receive timeout expires in real time while a thread runs the engine")
    func monotonicTimeout() throws {
        let stack = NetworkStack(name: "solo")
        let shared = SharedStack(stack: stack)
        let fd = try shared.socket(.datagram).get()
        #expect(shared.bind(fd, SocketAddress(.any, 4000)) == nil)
        #expect(shared.setFileOption(fd, .receiveTimeout(30 * Time.millisecond)) == nil)
        let stop = Box(false)
        let engine = Thread {
            for _ in 0..<5_000 where !stop.value {
                shared.withStack { s, now in _ = s.run(now: now) }
                usleep(1000)
            }
        }
        engine.start()
        var buf = [UInt8](repeating: 0, count: 16)
        let r = buf.withUnsafeMutableBytes { shared.receiveFrom(fd, into: $0) }
        stop.value = true
        #expect(r.map { $0.0 } == .failure(.EAGAIN))
    }
}
