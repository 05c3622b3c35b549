import Testing
@testable import Skiff
import SkiffSim
import SkiffWire

/// End-to-end transfers between two simulated hosts under seeded impairments, with SHA-256 of
/// both ends compared, and a thousand concurrent connections.
@Suite struct TCPStressTests {
    static let ms = Time.millisecond
    static let mib = 1 << 20

    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var impairments: Impairments
        var mtu = 1500
        var bytes: Int
        var seed: UInt64 = 11
        var testDescription: String { name }
    }

    static let delay: Nanoseconds = 100 * Time.microsecond

    /// 64 MiB each: in a debug build one case takes 30–45 s of real time (MTU 576 the longest),
    /// most of it hashing and checking the bytes.
    static let cases: [Case] = [
        Case(name: "clean 64 MiB", impairments: Impairments(delay: delay), bytes: 64 * mib),
        Case(name: "1% loss", impairments: Impairments(loss: 0.01, delay: delay), bytes: 64 * mib),
        Case(name: "5% loss", impairments: Impairments(loss: 0.05, delay: delay), bytes: 64 * mib),
        Case(name: "reordering", impairments: Impairments(reorder: 0.05, delay: delay, jitter: 50 * Time.microsecond), bytes: 64 * mib),
        Case(name: "duplication", impairments: Impairments(duplicate: 0.05, delay: delay), bytes: 64 * mib),
        Case(name: "corruption", impairments: Impairments(corrupt: 0.02, delay: delay), bytes: 64 * mib),
        Case(name: "MTU 576", impairments: Impairments(delay: delay), mtu: 576, bytes: 64 * mib),
        Case(name: "everything at once", impairments: Impairments(loss: 0.01, duplicate: 0.01, corrupt: 0.01, reorder: 0.02, delay: delay),
             bytes: 64 * mib),
    ]

    @Test(arguments: cases)
    func bulkTransferArrivesIntact(_ c: Case) throws {
        let s = Scenarios.switchedPair(seed: c.seed, mtu: c.mtu, impairments: c.impairments)
        let t = BulkTransfer(world: s.world, sender: s.a, receiver: s.b, port: 5001, bytes: c.bytes, seed: c.seed)
        #expect(t.run(limit: 3600 * Time.second), "\(c.name): error \(String(describing: t.error)), received \(t.received)")
        #expect(t.received == c.bytes && t.mismatches == 0)
        #expect(t.senderHash.hexDigest() == t.receiverHash.hexDigest())
        let a = s.a.tcpCounters, b = s.b.tcpCounters
        let linkLost = s.aLink.statistics.0.lost + s.aLink.statistics.1.lost + s.bLink.statistics.0.lost + s.bLink.statistics.1.lost
        if c.impairments.loss > 0 {
            #expect(linkLost > 0 && a.retransSegs > 0)
        }
        if c.impairments.loss == 0 && c.impairments.corrupt == 0 && c.impairments.reorder == 0 && c.impairments.duplicate == 0 {
            // A clean path needs no retransmission at all.
            #expect(a.retransSegs == 0 && a.timeouts == 0)
        }
        if c.impairments.corrupt > 0 {
            #expect(a.inCsumErrors + b.inCsumErrors + s.a.drops[.ipChecksum] + s.b.drops[.ipChecksum] > 0)
        }
        if c.impairments.duplicate > 0 {
            #expect(b.dsackSent > 0 || a.dsackRecv > 0)
        }
        if c.mtu == 576 {
            let sock = try #require(s.a.tcpInfoSocket(t.senderSocket))
            #expect(sock.mss == 536)
        }
        // Nothing leaks once TIME-WAIT is over.
        s.world.run(until: s.world.now + 61 * Time.second)
        #expect(s.a.openSocketCount == 0 && s.b.openSocketCount == 1)
        #expect(s.a.tcpSlab.count == 0 && s.b.tcpSlab.count == 0)
    }

    @Test func aThousandConcurrentConnectionsAllComplete() throws {
        let s = Scenarios.switchedPair(seed: 3, impairments: Impairments(delay: 50 * Time.microsecond))
        let n = 1000, size = 1000
        let l = try s.b.socket().get()
        #expect(s.b.bind(l, SocketAddress(.any, 7000)) == nil)
        #expect(s.b.listen(l, backlog: 1024) == nil)
        let to = SocketAddress(Scenarios.SwitchedPair.bAddress, 7000)
        var clients: [Int32] = []
        for _ in 0..<n {
            let c = try s.a.socket().get()
            #expect(s.a.connect(c, to, now: s.world.now) == .EINPROGRESS)
            clients.append(c)
        }
        #expect(Set(clients.map { try! s.a.localAddress($0).get().port }).count == n)
        // Client i sends pattern i; the server echoes what it read; the client checks it and closes.
        var wrote = [Bool](repeating: false, count: n)
        var replies = [[UInt8]](repeating: [], count: n)
        var clientDone = [Bool](repeating: false, count: n)
        var server: [Int32: [UInt8]] = [:]
        var serverDone = 0, accepted = 0, mismatches = 0
        var buf = [UInt8](repeating: 0, count: 4096)
        func recv(_ st: NetworkStack, _ fd: Int32) -> Result<[UInt8], Errno> {
            let r = buf.withUnsafeMutableBytes { st.recv(fd, into: $0, now: s.world.now) }
            return r.map { Array(buf[0..<$0]) }
        }
        for _ in 0..<20_000 {
            while case let .success((fd, _)) = s.b.accept(l) { server[fd] = []; accepted += 1 }
            for (fd, got) in server {
                var data = got
                var closed = false
                while true {
                    switch recv(s.b, fd) {
                    case let .success(bytes) where bytes.isEmpty: closed = true
                    case let .success(bytes):
                        data += bytes
                        continue
                    default: break
                    }
                    break
                }
                if data.count == size && got.count < size {
                    #expect(data.withUnsafeBytes { s.b.send(fd, $0, now: s.world.now) } == .success(size))
                }
                server[fd] = data
                if closed {
                    #expect(s.b.close(fd, now: s.world.now) == nil)
                    server[fd] = nil
                    serverDone += 1
                }
            }
            for i in 0..<n where !clientDone[i] {
                let c = clients[i]
                if !wrote[i] {
                    guard s.a.tcpState(c) == .established else { continue }
                    #expect(Lab.pattern(size, seed: i).withUnsafeBytes { s.a.send(c, $0, now: s.world.now) } == .success(size))
                    wrote[i] = true
                }
                if case let .success(bytes) = recv(s.a, c) { replies[i] += bytes }
                if replies[i].count == size {
                    if replies[i] != Lab.pattern(size, seed: i) { mismatches += 1 }
                    #expect(s.a.close(c, now: s.world.now) == nil)
                    clientDone[i] = true
                }
            }
            if serverDone == n && clientDone.allSatisfy({ $0 }) { break }
            s.world.run(until: s.world.now + Self.ms)
        }
        #expect(accepted == n && serverDone == n && clientDone.filter { $0 }.count == n)
        // The first burst of 1000 SYNs waits for ARP: what the neighbour queue cannot hold is
        // dropped and those SYNs go again after the 1 s initial RTO — the only retransmissions.
        #expect(s.a.tcpCounters.retransSegs == s.a.drops[.neighbourQueueFull])
        #expect(s.a.tcpCounters.retransSegs > 0 && s.world.now < 2 * Time.second)
        #expect(mismatches == 0)
        #expect(s.a.tcpCounters.activeOpens == UInt64(n) && s.b.tcpCounters.passiveOpens == UInt64(n))
        #expect(s.a.tcpCounters.attemptFails == 0 && s.a.tcpCounters.estabResets == 0 && s.b.tcpCounters.estabResets == 0)
        #expect(s.b.tcpCounters.synCookiesSent == 0 && s.b.tcpCounters.listenOverflows == 0)
        // The clients closed first: a thousand TIME-WAITs, gone after 60 s.
        #expect(s.a.openSocketCount == n)
        s.world.run(until: s.world.now + 61 * Time.second)
        #expect(s.a.openSocketCount == 0 && s.b.openSocketCount == 1)
        #expect(s.a.tcpSlab.count == 0 && s.b.tcpSlab.count == 0)
    }
}
