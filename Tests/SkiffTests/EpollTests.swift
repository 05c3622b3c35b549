import Testing
@testable import Skiff
import SkiffSim
import SkiffWire

/// The epoll interest set: level- versus edge-triggered reporting, one-shot, and `epoll_ctl`'s
/// errors, over UDP and TCP sockets.
@Suite struct EpollTests {
    typealias P = Scenarios.SwitchedPair

    func settle(_ s: P) { s.world.run(until: s.world.now + 10 * Time.millisecond) }

    func wait(_ st: NetworkStack, _ ep: Int32, max: Int = 16) -> [EpollEvent] {
        (try? st.epollWait(ep, maxEvents: max).get()) ?? [EpollEvent(fd: -1, userData: 0, events: .error)]
    }

    /// B's UDP socket on `port` and A's sender.
    func udpPair(_ s: P, port: UInt16 = 5000) throws -> (Int32, Int32) {
        let r = try s.b.socket(.datagram).get()
        #expect(s.b.udpBind(r, SocketAddress(.any, port)) == nil)
        return (r, try s.a.socket(.datagram).get())
    }

    func send(_ s: P, _ fd: Int32, _ bytes: [UInt8], port: UInt16 = 5000) {
        #expect(s.a.sendTo(fd, bytes, to: SocketAddress(P.bAddress, port), now: s.world.now) == .success(bytes.count))
    }

    func drainOne(_ s: P, _ fd: Int32) -> Bool {
        var b = [UInt8](repeating: 0, count: 2048)
        return b.withUnsafeMutableBytes { s.b.receiveFrom(fd, into: $0, now: s.world.now) }.isSuccess
    }

    @Test func levelTriggeredReportsWhileReady() throws {
        let s = Scenarios.switchedPair()
        let (r, w) = try udpPair(s)
        let ep = s.b.epollCreate()
        #expect(s.b.epollControl(ep, .add, r, events: .readable, userData: 77) == nil)
        #expect(wait(s.b, ep).isEmpty)
        send(s, w, [1]); send(s, w, [2])
        settle(s)
        #expect(wait(s.b, ep) == [EpollEvent(fd: r, userData: 77, events: .readable)])
        // Still ready: reported again, and again, until drained.
        #expect(wait(s.b, ep).count == 1)
        #expect(drainOne(s, r))
        #expect(wait(s.b, ep).count == 1)
        #expect(drainOne(s, r))
        #expect(wait(s.b, ep).isEmpty)
    }

    @Test func edgeTriggeredReportsOncePerNewEvent() throws {
        let s = Scenarios.switchedPair()
        let (r, w) = try udpPair(s)
        let ep = s.b.epollCreate()
        #expect(s.b.epollControl(ep, .add, r, events: .readable, edgeTriggered: true, userData: 5) == nil)
        send(s, w, [1]); send(s, w, [2])
        settle(s)
        // Two datagrams, one edge: reported once.
        #expect(wait(s.b, ep) == [EpollEvent(fd: r, userData: 5, events: .readable)])
        #expect(wait(s.b, ep).isEmpty)
        // Reading one (still readable) is no new event.
        #expect(drainOne(s, r))
        #expect(wait(s.b, ep).isEmpty)
        // A new arrival re-arms it even though the socket never stopped being readable.
        send(s, w, [3])
        settle(s)
        #expect(wait(s.b, ep).count == 1)
        #expect(wait(s.b, ep).isEmpty)
        // Drained, then data again: a new edge.
        while drainOne(s, r) {}
        #expect(wait(s.b, ep).isEmpty)
        send(s, w, [4])
        settle(s)
        #expect(wait(s.b, ep).count == 1)
        // Modify re-arms.
        #expect(s.b.epollControl(ep, .modify, r, events: .readable, edgeTriggered: true, userData: 6) == nil)
        #expect(wait(s.b, ep) == [EpollEvent(fd: r, userData: 6, events: .readable)])
        #expect(wait(s.b, ep).isEmpty)
    }

    @Test func edgeTriggeredWritableIsReportedOnceAndDataDoesNotReArmIt() throws {
        let s = Scenarios.switchedPair()
        let (r, w) = try udpPair(s)
        let ep = s.b.epollCreate()
        let lt = s.b.epollCreate()
        #expect(s.b.epollControl(ep, .add, r, events: .writable, edgeTriggered: true) == nil)
        #expect(s.b.epollControl(lt, .add, r, events: .writable) == nil)
        #expect(wait(s.b, ep).map(\.events) == [.writable])
        #expect(wait(s.b, ep).isEmpty)
        #expect(wait(s.b, lt).map(\.events) == [.writable])
        #expect(wait(s.b, lt).map(\.events) == [.writable])
        // A datagram is a readable wake-up; an item that asked only for writable is not re-armed.
        send(s, w, [1])
        settle(s)
        #expect(wait(s.b, ep).isEmpty)
        // An item asking for both gets both on the data edge.
        #expect(s.b.epollControl(ep, .modify, r, events: [.readable, .writable], edgeTriggered: true) == nil)
        #expect(wait(s.b, ep).map(\.events) == [[.readable, .writable]])
        send(s, w, [2])
        settle(s)
        #expect(wait(s.b, ep).map(\.events) == [[.readable, .writable]])
        #expect(wait(s.b, ep).isEmpty)
    }

    @Test func oneShotDisarmsUntilModified() throws {
        let s = Scenarios.switchedPair()
        let (r, w) = try udpPair(s)
        let ep = s.b.epollCreate()
        #expect(s.b.epollControl(ep, .add, r, events: .readable, oneShot: true) == nil)
        send(s, w, [1])
        settle(s)
        #expect(wait(s.b, ep).count == 1)
        #expect(wait(s.b, ep).isEmpty)
        send(s, w, [2])
        settle(s)
        #expect(wait(s.b, ep).isEmpty)
        #expect(s.b.epollControl(ep, .modify, r, events: .readable, oneShot: true) == nil)
        #expect(wait(s.b, ep).count == 1)
    }

    @Test func maxEventsTakesTurnsAndTheEpollHandleItselfPolls() throws {
        let s = Scenarios.switchedPair()
        let ep = s.b.epollCreate()
        var fds: [Int32] = []
        for i in 0..<3 {
            let fd = try s.b.socket(.datagram).get()
            #expect(s.b.udpBind(fd, SocketAddress(.any, UInt16(6000 + i))) == nil)
            #expect(s.b.epollControl(ep, .add, fd, events: .readable, userData: UInt64(i)) == nil)
            fds.append(fd)
        }
        #expect(s.b.poll(ep) == [])
        let w = try s.a.socket(.datagram).get()
        for i in 0..<3 { send(s, w, [UInt8(i)], port: UInt16(6000 + i)) }
        settle(s)
        #expect(s.b.poll(ep) == .readable)
        // Level-triggered, two at a time: every socket gets its turn.
        let first = wait(s.b, ep, max: 2).map(\.userData)
        let second = wait(s.b, ep, max: 2).map(\.userData)
        #expect(first == [0, 1] && second == [2, 0])
        #expect(try s.b.epollCount(ep).get() == 3)
    }

    @Test func closedSocketsLeaveTheSet() throws {
        let s = Scenarios.switchedPair()
        let (r, w) = try udpPair(s)
        let ep = s.b.epollCreate()
        #expect(s.b.epollControl(ep, .add, r, events: .readable) == nil)
        send(s, w, [1])
        settle(s)
        #expect(s.b.close(r, now: s.world.now) == nil)
        #expect(wait(s.b, ep).isEmpty)
        #expect(try s.b.epollCount(ep).get() == 0)
        // A new socket that reuses the handle number is not inherited.
        let again = try s.b.socket(.datagram).get()
        #expect(again == r)
        #expect(s.b.udpBind(again, SocketAddress(.any, 5000)) == nil)
        send(s, w, [2])
        settle(s)
        #expect(wait(s.b, ep).isEmpty)
        #expect(s.b.epollControl(ep, .add, again, events: .readable) == nil)
        #expect(wait(s.b, ep).count == 1)
        // Closing the epoll handle frees it.
        #expect(s.b.close(ep, now: s.world.now) == nil)
        #expect(s.b.epollWait(ep, maxEvents: 1).failureValue == .EBADF)
        #expect(s.b.close(ep, now: s.world.now) == .EBADF)
    }

    @Test func epollControlAndWaitRejectBadArguments() throws {
        let s = Scenarios.switchedPair()
        let ep = s.b.epollCreate()
        let u = try s.b.socket(.datagram).get()
        let t = try s.b.socket(.stream).get()
        #expect(s.b.epollControl(999, .add, u, events: .readable) == .EBADF)
        #expect(s.b.epollControl(-1, .add, u, events: .readable) == .EBADF)
        #expect(s.b.epollControl(u, .add, t, events: .readable) == .EINVAL)          // not an epoll handle
        #expect(s.b.epollControl(ep, .add, 999, events: .readable) == .EBADF)
        #expect(s.b.epollControl(ep, .add, -3, events: .readable) == .EBADF)
        #expect(s.b.epollControl(ep, .add, ep, events: .readable) == .EINVAL)        // itself
        #expect(s.b.epollControl(ep, .add, s.b.epollCreate(), events: .readable) == .EPERM)
        #expect(s.b.epollControl(ep, .modify, u, events: .readable) == .ENOENT)
        #expect(s.b.epollControl(ep, .delete, u) == .ENOENT)
        #expect(s.b.epollControl(ep, .add, u, events: .readable) == nil)
        #expect(s.b.epollControl(ep, .add, u, events: .writable) == .EEXIST)
        #expect(s.b.epollControl(ep, .add, t, events: .readable) == nil)
        #expect(s.b.epollControl(ep, .delete, u) == nil)
        #expect(s.b.epollControl(ep, .delete, u) == .ENOENT)
        #expect(s.b.epollWait(ep, maxEvents: 0).failureValue == .EINVAL)
        #expect(s.b.epollWait(ep, maxEvents: -1).failureValue == .EINVAL)
        #expect(s.b.epollWait(u, maxEvents: 1).failureValue == .EINVAL)
        #expect(s.b.epollWait(12345, maxEvents: 1).failureValue == .EBADF)
        #expect(s.b.epollCount(u).failureValue == .EINVAL)
        // An unconnected TCP socket is closed: hangup is reported though not asked for.
        #expect(wait(s.b, ep).map(\.events) == [[.readable, .hangup]])
    }

    @Test func tcpListenerAndConnectionThroughEpoll() throws {
        let s = Scenarios.switchedPair()
        let l = try s.b.socket().get()
        #expect(s.b.bind(l, SocketAddress(.any, 80)) == nil && s.b.listen(l, backlog: 8) == nil)
        let ep = s.b.epollCreate()
        #expect(s.b.epollControl(ep, .add, l, events: .readable, edgeTriggered: true, userData: 1) == nil)
        let c1 = try s.a.socket().get()
        #expect(s.a.connect(c1, SocketAddress(P.bAddress, 80), now: s.world.now) == .EINPROGRESS)
        settle(s)
        #expect(wait(s.b, ep).map(\.userData) == [1])
        #expect(wait(s.b, ep).isEmpty)
        // A second connection while the first is still unaccepted is a new edge.
        let c2 = try s.a.socket().get()
        #expect(s.a.connect(c2, SocketAddress(P.bAddress, 80), now: s.world.now) == .EINPROGRESS)
        settle(s)
        #expect(wait(s.b, ep).map(\.userData) == [1])
        let (conn, _) = try s.b.accept(l).get()
        _ = try s.b.accept(l).get()
        #expect(wait(s.b, ep).isEmpty)
        // The connection: writable at once; readable once data arrives.
        #expect(s.b.epollControl(ep, .add, conn, events: [.readable, .writable], edgeTriggered: true, userData: 2) == nil)
        #expect(wait(s.b, ep) == [EpollEvent(fd: conn, userData: 2, events: .writable)])
        #expect(wait(s.b, ep).isEmpty)
        _ = [UInt8](repeating: 1, count: 100).withUnsafeBytes { s.a.send(c1, $0, now: s.world.now) }
        settle(s)
        #expect(wait(s.b, ep) == [EpollEvent(fd: conn, userData: 2, events: [.readable, .writable])])
        #expect(wait(s.b, ep).isEmpty)
        // The peer closes: FIN is a new event (read hangup).
        #expect(s.a.close(c1, now: s.world.now) == nil)
        settle(s)
        let ev = wait(s.b, ep)
        #expect(ev.count == 1 && ev.first?.events.contains(.readable) == true)
        // Closing the connection (it lingers as an orphan) takes it out of the set at once.
        #expect(try s.b.epollCount(ep).get() == 2)
        #expect(s.b.close(conn, now: s.world.now) == nil)
        #expect(try s.b.epollCount(ep).get() == 1)
        #expect(s.b.epollControl(ep, .modify, conn, events: .readable) == .EBADF)
    }
}

extension Result {
    var isSuccess: Bool {
        if case .success = self { return true }
        return false
    }
}
