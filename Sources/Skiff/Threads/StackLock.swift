#if canImport(Glibc)
import Glibc
#endif

/// The one lock that makes a stack safe to share between threads, and the wait queue its
/// blocked callers sleep on.
///
/// Linux takes a socket lock per socket (`lock_sock`), a qdisc lock per queue and disables
/// bottom halves per CPU; Skiff folds them into one mutex per stack (or per group of stacks that
/// one simulation drives). A caller that must wait (a blocking `recv`, `accept`, `connect`…)
/// sleeps on the condition variable, which every change to the stack broadcasts (Linux:
/// `sk_wait_event()` on `sk_sleep(sk)`, woken by `sk_data_ready` / `sk_write_space` /
/// `sk_state_change`). The sleep is a real futex wait, so a tool that inspects the thread
/// (packetdrill) sees it blocked.
public final class StackLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    /// Threads sleeping in `wait`; read under the lock.
    private var sleepers = 0
    /// Times a sleeper woke (read under the lock): a measure of how often blocked callers re-check.
    public private(set) var wakeups: UInt64 = 0

    public init() {
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
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
    public var hasSleepers: Bool { sleepers > 0 }

    /// Callers sleeping on the device instead of the condition variable (`SharedStack.DeviceSleep`),
    /// and how to wake them (read and written under the lock).
    var deviceSleepers = 0
    var wakeDeviceSleepers: (@Sendable () -> Void)?

    /// Wakes every sleeper (call with the lock held). Free when nobody sleeps.
    @inline(__always)
    public func wakeAll() {
        if sleepers > 0 { pthread_cond_broadcast(condition) }
        if deviceSleepers > 0, let wake = wakeDeviceSleepers { wake() }
    }

    /// Sleeps until `wakeAll` or until the monotonic clock passes `deadline` (nil: no limit).
    /// Call with the lock held; it is held again on return. Wake-ups may be spurious: callers
    /// re-check their condition.
    public func wait(untilMonotonic deadline: Nanoseconds?) {
        sleepers += 1
        defer { sleepers -= 1; wakeups &+= 1 }
        guard let deadline else {
            pthread_cond_wait(condition, mutex)
            return
        }
        var ts = timespec()
        ts.tv_sec = Int(deadline / Time.second)
        ts.tv_nsec = Int(deadline % Time.second)
        pthread_cond_timedwait(condition, mutex, &ts)
    }
}
