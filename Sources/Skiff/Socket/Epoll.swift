import SkiffWire

/// `epollControl` operations (Linux: `EPOLL_CTL_ADD`, `EPOLL_CTL_MOD`, `EPOLL_CTL_DEL`).
public enum EpollOperation: Sendable { case add, modify, delete }

/// One ready descriptor as `epollWait` reports it (Linux: `struct epoll_event`).
public struct EpollEvent: Sendable, Equatable {
    public var fd: Int32
    /// The value given at registration (Linux: `epoll_data`).
    public var userData: UInt64
    public var events: PollEvents
    public init(fd: Int32, userData: UInt64, events: PollEvents) {
        self.fd = fd; self.userData = userData; self.events = events
    }
}

/// One registered descriptor (Linux: `struct epitem`).
struct EpollItem {
    let fd: Int32
    /// The socket registered (Linux: `epitem->ffd.file`). When the handle no longer refers to it
    /// the socket was closed and the item is dropped, as Linux removes a file's items on its
    /// last close.
    let file: AnyObject
    var events: PollEvents
    var edgeTriggered: Bool
    var oneShot: Bool
    var userData: UInt64
    /// Edge trigger: the events last reported that are still ready, and the wake-up marks seen
    /// then. Ready bits outside `reported`, or new marks, are a new edge.
    var reported: PollEvents = []
    var dataMark: UInt64 = 0
    var stateMark: UInt64 = 0
    var writeMark: UInt64 = 0
    /// EPOLLONESHOT fired: nothing is reported until `modify` re-arms the item.
    var disarmed = false
}

/// An epoll instance: the interest list (Linux: `struct eventpoll` with its `rbr` tree of
/// `epitem`s). There is no ready list: `epollWait` polls every item, which is what Linux's
/// `ep_send_events()` does for the items on its ready list.
final class EpollInstance {
    let handle: Int32
    var items: [EpollItem] = []
    /// Where the next scan starts, so that with `maxEvents` smaller than the ready set every
    /// item gets its turn (Linux moves level-triggered items to the tail of the ready list).
    var cursor = 0
    init(handle: Int32) { self.handle = handle }
}

/// Readiness notification over many sockets (Linux: `epoll_create1()`, `epoll_ctl()`,
/// `epoll_wait()`), non-blocking at this level: `epollWait` returns what is ready now.
///
/// Level-triggered items are reported on every wait while ready. Edge-triggered ones (EPOLLET)
/// are reported when an event becomes ready that was not ready at the last report, or when the
/// socket had a new wake-up since — new data or a new connection to accept, a state change or
/// an error — as Linux's `ep_poll_callback()` queues the item again on every wake-up of the
/// socket's wait queue. Readable-only wake-ups re-arm only items that asked for `.readable`
/// (Linux's keyed wake-ups). `.error` and `.hangup` are always reported.
extension NetworkStack {
    /// Linux: `epoll_create1(0)`. The handle lives in the socket table; `close` frees it.
    public func epollCreate() -> Int32 {
        let h = allocateHandle()
        sockets[Int(h)] = .epoll(EpollInstance(handle: h))
        return h
    }

    func epollInstance(_ fd: Int32) -> Result<EpollInstance, Errno> {
        guard fd >= 0, Int(fd) < sockets.count else { return .failure(.EBADF) }
        switch sockets[Int(fd)] {
        case let .epoll(ep): return .success(ep)
        case .free: return .failure(.EBADF)
        case .tcp, .udp: return .failure(.EINVAL)
        }
    }

    /// The socket object behind an open handle, for identity checks. A TCP socket the
    /// application closed may live on as an orphan under its handle; it counts as closed.
    func socketObject(_ fd: Int32) -> AnyObject? {
        guard fd >= 0, Int(fd) < sockets.count else { return nil }
        switch sockets[Int(fd)] {
        case let .tcp(s): return s.orphaned ? nil : s
        case let .udp(s): return s
        case let .epoll(ep): return ep
        case .free: return nil
        }
    }

    /// Linux: `epoll_ctl()`. Errors as Linux's: EBADF when `epfd` or `fd` is not an open handle;
    /// EINVAL when `epfd` is not an epoll instance or `fd == epfd`; EPERM for an epoll handle as
    /// `fd` (Linux allows nesting epoll sets; Skiff does not); EEXIST to add what is there;
    /// ENOENT to modify or delete what is not. `modify` re-arms an edge-triggered or one-shot item.
    public func epollControl(_ epfd: Int32, _ op: EpollOperation, _ fd: Int32, events: PollEvents = [],
                             edgeTriggered: Bool = false, oneShot: Bool = false, userData: UInt64 = 0) -> Errno? {
        let ep: EpollInstance
        switch epollInstance(epfd) { case let .success(x): ep = x; case let .failure(e): return e }
        guard let file = socketObject(fd) else { return .EBADF }
        if fd == epfd { return .EINVAL }
        if file is EpollInstance { return .EPERM }
        epollPurge(ep)
        let index = ep.items.firstIndex { $0.fd == fd }
        switch op {
        case .add:
            if index != nil { return .EEXIST }
            ep.items.append(EpollItem(fd: fd, file: file, events: events, edgeTriggered: edgeTriggered,
                                      oneShot: oneShot, userData: userData))
        case .modify:
            guard let i = index else { return .ENOENT }
            ep.items[i].events = events
            ep.items[i].edgeTriggered = edgeTriggered
            ep.items[i].oneShot = oneShot
            ep.items[i].userData = userData
            ep.items[i].reported = []
            ep.items[i].disarmed = false
        case .delete:
            guard let i = index else { return .ENOENT }
            ep.items.remove(at: i)
            if ep.cursor > i { ep.cursor -= 1 }
        }
        return nil
    }

    /// Linux: `epoll_wait()` with a zero timeout: up to `maxEvents` ready items, in registration
    /// order starting after the last one reported. EBADF / EINVAL for a bad `epfd`, EINVAL for
    /// `maxEvents` < 1.
    public func epollWait(_ epfd: Int32, maxEvents: Int) -> Result<[EpollEvent], Errno> {
        let ep: EpollInstance
        switch epollInstance(epfd) { case let .success(x): ep = x; case let .failure(e): return .failure(e) }
        guard maxEvents > 0 else { return .failure(.EINVAL) }
        var out: [EpollEvent] = []
        epollScan(ep, maxEvents: maxEvents, commit: true) { out.append($0) }
        return .success(out)
    }

    /// Number of descriptors an epoll instance watches (stale ones dropped first).
    public func epollCount(_ epfd: Int32) -> Result<Int, Errno> {
        epollInstance(epfd).map { ep in epollPurge(ep); return ep.items.count }
    }

    /// An epoll handle is readable when a wait would report something (Linux: `ep_eventpoll_poll()`).
    func epollPoll(_ ep: EpollInstance) -> PollEvents {
        var ready = false
        epollScan(ep, maxEvents: 1, commit: false) { _ in ready = true }
        return ready ? [.readable] : []
    }

    /// Drops items whose socket was closed (Linux: `eventpoll_release()` on the file's last close).
    func epollPurge(_ ep: EpollInstance) {
        var i = 0
        while i < ep.items.count {
            if socketObject(ep.items[i].fd) === ep.items[i].file { i += 1; continue }
            ep.items.remove(at: i)
            if ep.cursor > i { ep.cursor -= 1 }
        }
    }

    /// Linux: `ep_send_events()`: polls the items, reports the ready ones, and (when `commit`)
    /// records what edge-triggered and one-shot items have reported.
    func epollScan(_ ep: EpollInstance, maxEvents: Int, commit: Bool, _ report: (EpollEvent) -> Void) {
        epollPurge(ep)
        let n = ep.items.count
        guard n > 0 else { return }
        var reported = 0
        var k = 0
        let start = ep.cursor % n
        while k < n && reported < maxEvents {
            let i = (start + k) % n
            k += 1
            var item = ep.items[i]
            if item.disarmed { continue }
            let ready = poll(item.fd).intersection(item.events.union([.error, .hangup]))
            if ready.isEmpty {
                if commit && !item.reported.isEmpty { ep.items[i].reported = [] }
                continue
            }
            if item.edgeTriggered {
                let (data, state, write) = wakeMarks(item.fd)
                let newBits = !ready.isSubset(of: item.reported)
                let dataWake = data != item.dataMark && !item.events.intersection([.readable, .readHangup]).isEmpty
                let stateWake = state != item.stateMark
                let writeWake = write != item.writeMark && item.events.contains(.writable)
                if !newBits && !dataWake && !stateWake && !writeWake {
                    // Still ready, no new edge; forget bits that went away so their return is one.
                    if commit { ep.items[i].reported = item.reported.intersection(ready) }
                    continue
                }
                item.reported = ready
                item.dataMark = data
                item.stateMark = state
                item.writeMark = write
            }
            if item.oneShot { item.disarmed = true }
            report(EpollEvent(fd: item.fd, userData: item.userData, events: ready))
            reported += 1
            if commit {
                ep.items[i] = item
                ep.cursor = (i + 1) % n
            }
        }
    }

    /// Counters that move on each wake-up of a socket's wait queue: `data` for new data or a new
    /// connection to accept (Linux: `sk_data_ready`), `state` for a state change, a shutdown or
    /// an error (`sk_state_change`, `sk_error_report`), `write` for space freed for a writer that
    /// found the send buffer full (`sk_stream_write_space`) or, for one that found no buffer,
    /// any change of the pool. A handle closed (all marks at their maximum) or opened again
    /// (its generation is in `state`) moves them too. The blocking calls sleep on them
    /// (`StackLock`); epoll's edge trigger reads them.
    func wakeMarks(_ fd: Int32) -> (data: UInt64, state: UInt64, write: UInt64) {
        guard fd >= 0, Int(fd) < sockets.count else { return (.max, .max, .max) }
        let opened = handleGenerations[Int(fd)] << 44
        switch sockets[Int(fd)] {
        case let .tcp(s):
            let accepts = UInt64(s.acceptQueue.count) << 40
                ^ UInt64(UInt32(bitPattern: s.acceptQueue.last ?? -1)) << 8
            let data = s.bytesReceived ^ accepts
            var state = UInt64(tcpStateCode(s.state)) ^ opened
            if s.finReceived { state ^= 1 << 60 }
            if s.shutdownRead { state ^= 1 << 61 }
            if s.shutdownWrite { state ^= 1 << 62 }
            if let e = s.pendingError { state ^= UInt64(UInt32(bitPattern: e.rawValue)) << 32 }
            // Every message queued on the error queue wakes the waiters (Linux: sk_error_report()),
            // even one merged into the tail's zerocopy range.
            state &+= s.errorQueue.reports << 8
            var write = s.writeSpaceWakes
            if s.waitingForBuffers { write ^= UInt64(truncatingIfNeeded: pool.statistics.inUse) << 40 }
            return (data, state, write)
        case let .udp(s):
            var state: UInt64 = (s.connected ? 1 : 0) ^ opened
            if let e = s.pendingError { state ^= UInt64(UInt32(bitPattern: e.rawValue)) << 32 }
            return (s.datagramsQueued, state, 0)
        case .epoll:
            return (0, opened, 0)
        case .free:
            return (.max, .max, .max)
        }
    }

    /// A writer blocked on `fd` would be woken now (Linux: `sk_stream_is_writeable`, which
    /// `sk_stream_write_space` checks): a third of the send buffer is free. Always true for a
    /// descriptor that is not a TCP socket.
    func sendWakeCondition(_ fd: Int32) -> Bool {
        guard let s = tcpSocket(fd) else { return true }
        return s.waitingForBuffers || tcpStreamWriteable(s)
    }

    @inline(__always)
    func tcpStateCode(_ s: TCPState) -> Int {
        switch s {
        case .closed: 0
        case .listen: 1
        case .synSent: 2
        case .synReceived: 3
        case .established: 4
        case .finWait1: 5
        case .finWait2: 6
        case .closeWait: 7
        case .closing: 8
        case .lastAck: 9
        case .timeWait: 10
        }
    }
}
