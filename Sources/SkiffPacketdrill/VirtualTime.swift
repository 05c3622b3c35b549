#if canImport(Glibc)
import Glibc
#endif
import Skiff

/// Threads blocked in a system call, as virtual time needs to know them.
///
/// Each sleeper records the last change it has seen (`seen`, compared with `epoch`) and when
/// its call times out (`deadline`, virtual). A thread that changes the stack bumps `epoch`,
/// wakes everyone and waits until every sleeper has re-checked its condition (`quiesce`), so
/// that a call the change completes returns — and does what it does, such as sending more
/// data — at the virtual time of the change, before time moves on. Time itself stops at every
/// sleeper's deadline on the way, so a timeout ends at its own time.
struct Sleepers {
    struct Entry {
        var seen: UInt64
        var deadline: Nanoseconds?
    }
    var epoch: UInt64 = 0
    var entries: [Int: Entry] = [:]
    var nextID = 0
    /// Threads waiting in `quiesce`: sleepers wake them when they go back to sleep.
    var quiescers = 0

    var allSettled: Bool { entries.values.allSatisfy { $0.seen == epoch } }
    /// The earliest sleeper deadline after `t` (earlier ones are being handled).
    func earliestDeadline(after t: Nanoseconds) -> Nanoseconds? {
        entries.values.compactMap { $0.deadline.flatMap { $0 > t ? $0 : nil } }.min()
    }
}

/// What one try of a blocking call came to.
enum Attempt<R> {
    /// Finished with this result.
    case done(R)
    /// Must wait; if it stops waiting (non-blocking, timeout) it returns this.
    case wouldBlock(R)
}

/// How long a thread changing the stack waits, in real time, for blocked threads to re-check.
/// They need microseconds; the bound only keeps a stuck thread from hanging packetdrill.
private let quiesceRealTimeLimit: Nanoseconds = 500 * Time.millisecond

extension PacketdrillHost {
    /// After a change to the stack (call with the lock held): wake the sleepers and wait until
    /// each has re-checked its condition and either returned or gone back to sleep.
    func quiesce() {
        sleepers.epoch &+= 1
        shared.lock.wakeAll()
        if sleepers.entries.isEmpty { return }
        let limit = MonotonicClock.read() &+ quiesceRealTimeLimit
        sleepers.quiescers += 1
        defer { sleepers.quiescers -= 1 }
        while !sleepers.allSettled {
            let t = MonotonicClock.read()
            if t >= limit { break }
            shared.lock.wait(untilMonotonic: min(limit, t &+ 10 * Time.millisecond))
        }
    }

    /// Moves virtual time to `target` (call with the lock held), stopping at every stack timer
    /// and every sleeper's deadline on the way; at each stop the stack runs what is due and the
    /// sleepers re-check. Linux: what real time does to timers and to `sk_wait_event` timeouts.
    func advance(to target: Nanoseconds) {
        var steps = 0
        while steps < 100_000 {
            var next = target
            if let d = stack.nextDeadline(), d < next { next = d }
            if let d = sleepers.earliestDeadline(after: stack.now), d < next { next = d }
            if next >= target { break }
            stack.run(now: max(next, stack.now))
            quiesce()
            steps += 1
        }
        stack.run(now: max(target, stack.now))
        quiesce()
    }

    /// Runs a call that may block, as Linux's blocking socket calls do (`sk_wait_event` under
    /// `lock_sock`): try; if it would block and the descriptor blocks, sleep until the stack
    /// changes or `timeout` (virtual, 0 = none) passes, and try again.
    func blockingCall<R>(wait: Bool, timeout: Nanoseconds, _ attempt: () -> Attempt<R>) -> R {
        let deadline: Nanoseconds? = timeout > 0 ? now &+ timeout : nil
        var id: Int? = nil
        defer {
            if let id { sleepers.entries[id] = nil }
            if sleepers.quiescers > 0 { shared.lock.wakeAll() }
        }
        while true {
            switch attempt() {
            case let .done(r):
                return r
            case let .wouldBlock(r):
                if !wait { return r }
                if let d = deadline, now >= d { return r }
            }
            if id == nil {
                id = sleepers.nextID
                sleepers.nextID &+= 1
            }
            sleepers.entries[id!] = Sleepers.Entry(seen: sleepers.epoch, deadline: deadline)
            // A thread waiting for us to settle can go on now.
            if sleepers.quiescers > 0 { shared.lock.wakeAll() }
            shared.lock.wait(untilMonotonic: nil)
        }
    }
}
