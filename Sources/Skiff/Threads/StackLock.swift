#if canImport(Glibc)
import Glibc
#endif

/// The one lock that makes a stack safe to share between threads, and the wait queue its
/// blocked callers sleep on.
///
/// Linux takes a socket lock per socket (`lock_sock`), a qdisc lock per queue and disables
/// bottom halves per CPU; Skiff folds them into one mutex per stack (or per group of stacks that
/// one simulation drives). A caller that must wait (a blocking `recv`, `accept`, `connect`…)
/// sleeps on a condition variable of its own. A caller blocked on one socket names it (its
/// *key*) with the socket's wake-up marks as it goes to sleep, and a change to the stack wakes it
/// only when those marks moved (Linux: `sk_wait_event()` on `sk_sleep(sk)`, woken by
/// `sk_data_ready` / `sk_write_space` / `sk_state_change` of that socket alone). Callers
/// waiting on many descriptors (`poll`, `epoll_wait`) or on the stack as a whole have no key and
/// wake on every change. The sleep is a real futex wait, so a tool that inspects the thread
/// (packetdrill) sees it blocked.
public final class StackLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    /// Threads sleeping in `wait`, each on its own condition variable; under the lock.
    private var waiting: [Waiter] = []
    /// Waiters not in use (a thread takes one for each sleep).
    private var spare: [Waiter] = []
    /// Times a sleeper woke (read under the lock): a measure of how often blocked callers re-check.
    public private(set) var wakeups: UInt64 = 0
    /// Keyed sleepers woken because their socket's marks moved, and ones left asleep because
    /// they had not (read under the lock).
    public private(set) var keyedWakes: UInt64 = 0
    public private(set) var keyedSkips: UInt64 = 0

    /// The wake-up marks of a socket (Linux has no such value: they stand for the wake-ups of
    /// its wait queue): data or a connection to accept, state or error, write space.
    public typealias Marks = (data: UInt64, state: UInt64, write: UInt64)

    /// One sleeping thread: its condition variable and what ends its sleep.
    final class Waiter {
        let condition: UnsafeMutablePointer<pthread_cond_t>
        /// The descriptor whose wake-ups end the sleep, in `stack`; -1: every change.
        var key: Int32 = -1
        var marks: Marks = (0, 0, 0)
        /// The stack the key belongs to (one lock may serve several stacks); alive while its
        /// caller sleeps inside a call on it.
        unowned(unsafe) var stack: NetworkStack? = nil
        /// The `SharedStack` whose caller sleeps here (it puts handed-over frames on the port
        /// when it wakes); nil for other waits (packetdrill's clock).
        var owner: ObjectIdentifier? = nil
        var signaled = false

        init() {
            condition = .allocate(capacity: 1)
            var attributes = pthread_condattr_t()
            pthread_condattr_init(&attributes)
            pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
            pthread_cond_init(condition, &attributes)
            pthread_condattr_destroy(&attributes)
        }

        deinit {
            pthread_cond_destroy(condition)
            condition.deallocate()
        }

        @inline(__always)
        func signal() {
            signaled = true
            pthread_cond_signal(condition)
        }
    }

    public init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    @inline(__always) public func lock() { pthread_mutex_lock(mutex) }
    @inline(__always) public func unlock() { pthread_mutex_unlock(mutex) }

    @inline(__always)
    public func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    // MARK: Timeouts on manual time

    /// Deadlines of callers sleeping with a timeout on manual time, by token (under the lock).
    private var deadlines: [UInt64: Nanoseconds] = [:]
    private var nextToken: UInt64 = 0

    /// Registers a sleeper's deadline so that advancing time stops there (call with the lock held).
    func registerDeadline(_ d: Nanoseconds) -> UInt64 {
        nextToken &+= 1
        deadlines[nextToken] = d
        return nextToken
    }

    func removeDeadline(_ token: UInt64) { deadlines[token] = nil }

    /// The earliest registered deadline after `t`.
    func earliestDeadline(after t: Nanoseconds) -> Nanoseconds? {
        var best: Nanoseconds? = nil
        for d in deadlines.values where d > t { best = min(best ?? d, d) }
        return best
    }

    /// Some sleeper's deadline is at or before `t` and it has not left yet.
    func hasDeadline(atOrBefore t: Nanoseconds) -> Bool { deadlines.values.contains { $0 <= t } }

    /// Some thread sleeps in `wait` (read under the lock).
    public var hasSleepers: Bool { !waiting.isEmpty }
    /// Sleepers, and those of them already signalled (under the lock; for tests).
    var sleeperCount: Int { waiting.count }
    var signaledSleepers: Int { waiting.reduce(0) { $0 + ($1.signaled ? 1 : 0) } }

    /// Callers sleeping on the device instead of the condition variable (`SharedStack.DeviceSleep`),
    /// and how to wake them (read and written under the lock).
    var deviceSleepers = 0
    var wakeDeviceSleepers: (@Sendable () -> Void)?

    /// Wakes every sleeper, keyed or not (call with the lock held). Free when nobody sleeps.
    @inline(__always)
    public func wakeAll() {
        if !waiting.isEmpty { for w in waiting where !w.signaled { w.signal() } }
        if deviceSleepers > 0, let wake = wakeDeviceSleepers { wake() }
    }

    /// After a change (call with the lock held): wakes the sleepers without a key, and the
    /// keyed ones whose socket's marks moved since they went to sleep; the others sleep on.
    /// `unkeyed: false` leaves the sleepers without a key alone (a try that changed nothing of
    /// theirs). `oneAtLeastFor`: frames wait for a caller of that `SharedStack` to put them on
    /// the port, so one of its sleepers at least is awake afterwards. Free when nobody sleeps.
    @inline(__always)
    func wakeChanged(unkeyed: Bool = true, oneAtLeastFor owner: ObjectIdentifier? = nil) {
        if !waiting.isEmpty { wakeChangedSlow(unkeyed: unkeyed, oneAtLeastFor: owner) }
        if unkeyed && deviceSleepers > 0, let wake = wakeDeviceSleepers { wake() }
    }

    private func wakeChangedSlow(unkeyed: Bool, oneAtLeastFor owner: ObjectIdentifier?) {
        for w in waiting where !w.signaled {
            guard w.key >= 0, let stack = w.stack else {
                if unkeyed { w.signal() }
                continue
            }
            let m = stack.wakeMarks(w.key)
            if m.data != w.marks.data || m.state != w.marks.state || m.write != w.marks.write {
                keyedWakes &+= 1
                w.signal()
            } else {
                keyedSkips &+= 1
            }
        }
        if let owner { wakeOneCaller(of: owner) }
    }

    /// Wakes one sleeping caller of `owner` unless one is awake already (frames wait for it).
    func wakeOneCaller(of owner: ObjectIdentifier) {
        var newest: Waiter? = nil
        for w in waiting where w.owner == owner {
            if w.signaled { return }
            newest = w
        }
        newest?.signal()
    }

    /// Sleeps until woken or until the monotonic clock passes `deadline` (nil: no limit).
    /// With a `key` (a descriptor and its marks now) only a change of those marks, or `wakeAll`,
    /// wakes it. Call with the lock held; it is held again on return. Wake-ups may be spurious:
    /// callers re-check their condition. Returns whether a waker signalled it (false: the
    /// deadline passed).
    @discardableResult
    public func wait(untilMonotonic deadline: Nanoseconds?) -> Bool {
        wait(untilMonotonic: deadline, key: -1, marks: (0, 0, 0), stack: nil, owner: nil)
    }

    /// `wait` for a caller of a `SharedStack` (`owner`), keyed to descriptor `key` of `stack`
    /// with its marks `marks` (key -1: woken by every change).
    @discardableResult
    func wait(untilMonotonic deadline: Nanoseconds?, key: Int32, marks: Marks, stack: NetworkStack?,
              owner: ObjectIdentifier?) -> Bool {
        let w = spare.popLast() ?? Waiter()
        w.key = key
        w.marks = marks
        w.stack = stack
        w.owner = owner
        w.signaled = false
        waiting.append(w)
        defer {
            if let i = waiting.firstIndex(where: { $0 === w }) { waiting.remove(at: i) }
            w.stack = nil
            spare.append(w)
            wakeups &+= 1
        }
        guard let deadline else {
            while !w.signaled { pthread_cond_wait(w.condition, mutex) }
            return true
        }
        var ts = timespec()
        ts.tv_sec = Int(deadline / Time.second)
        ts.tv_nsec = Int(deadline % Time.second)
        while !w.signaled {
            if pthread_cond_timedwait(w.condition, mutex, &ts) == ETIMEDOUT { break }
        }
        return w.signaled
    }
}
