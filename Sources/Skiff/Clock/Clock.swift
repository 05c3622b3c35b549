#if canImport(Glibc)
import Glibc
#endif

/// Nanoseconds on a stack's clock. Stages never read a clock: the engine passes `now` in.
public typealias Nanoseconds = UInt64

public enum Time {
    public static let microsecond: Nanoseconds = 1_000
    public static let millisecond: Nanoseconds = 1_000_000
    public static let second: Nanoseconds = 1_000_000_000
}

/// Where the engine gets `now` from.
public protocol StackClock: AnyObject {
    /// The current time in nanoseconds.
    var now: Nanoseconds { get }
}

/// The real monotonic clock (Linux: `ktime_get()` / `CLOCK_MONOTONIC`).
public final class MonotonicClock: StackClock {
    public init() {}
    public var now: Nanoseconds { MonotonicClock.read() }

    @inline(__always)
    public static func read() -> Nanoseconds {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
}

/// A clock that moves only when told: tests, simulation and packetdrill run on it.
public final class VirtualClock: StackClock {
    public private(set) var now: Nanoseconds

    public init(start: Nanoseconds = 0) { now = start }

    /// Moves time forward to `t` (never backwards).
    public func advance(to t: Nanoseconds) { if t > now { now = t } }

    /// Moves time forward by `d`.
    public func advance(by d: Nanoseconds) { now &+= d }
}

/// CPU time consumed by the calling thread (Linux: `CLOCK_THREAD_CPUTIME_ID`).
@inline(__always)
public func threadCPUTime() -> Nanoseconds {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// The coarse monotonic clock: updated each scheduler tick, read without a timer access
/// (Linux: `jiffies`, `CLOCK_MONOTONIC_COARSE`).
@inline(__always)
public func coarseMonotonicTime() -> Nanoseconds {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}
