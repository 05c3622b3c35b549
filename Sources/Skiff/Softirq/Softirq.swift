/// The softirq vectors Skiff runs, numbered as in Linux's `enum` in `include/linux/interrupt.h`
/// (HI=0, TIMER=1, NET_TX=2, NET_RX=3, …, TASKLET=6).
public enum SoftirqVector: Int, CaseIterable, Sendable {
    case timer = 1
    case netTX = 2
    case netRX = 3
    /// Tasklets; Skiff's only one is TCP Small Queues' (Linux: `tsq_tasklet`).
    case tasklet = 6

    /// The name `/proc/softirqs` prints.
    public var name: String {
        switch self {
        case .timer: "TIMER"
        case .netTX: "NET_TX"
        case .netRX: "NET_RX"
        case .tasklet: "TASKLET"
        }
    }
}

/// Per-CPU softirq bookkeeping: pending bits and how often each vector ran.
/// Linux: `irq_stat[cpu].__softirq_pending` and the counts in `/proc/softirqs`.
public struct SoftirqState: Sendable {
    /// Bit `v.rawValue` set = vector `v` is pending (Linux: `local_softirq_pending()`).
    public private(set) var pending: UInt32 = 0
    /// Times each vector's handler ran, indexed by raw value (as `/proc/softirqs`).
    public private(set) var counts: [UInt64] = Array(repeating: 0, count: 10)
    /// Times each vector was raised.
    public private(set) var raises: [UInt64] = Array(repeating: 0, count: 10)
    /// Times `do_softirq` stopped with work left and handed it to the next run
    /// (Linux: waking `ksoftirqd`).
    public internal(set) var deferrals: UInt64 = 0

    /// Linux: `MAX_SOFTIRQ_RESTART`.
    public static let maxRestart = 10
    /// Linux: `MAX_SOFTIRQ_TIME` (2 ms).
    public static let maxTime: Nanoseconds = 2 * Time.millisecond

    public init() {}

    /// Marks `v` pending. Linux: `raise_softirq_irqoff()`.
    @inline(__always)
    public mutating func raise(_ v: SoftirqVector) {
        pending |= 1 << UInt32(v.rawValue)
        raises[v.rawValue] &+= 1
    }

    @inline(__always)
    public func isPending(_ v: SoftirqVector) -> Bool { pending & (1 << UInt32(v.rawValue)) != 0 }

    /// Takes every pending bit, as `__do_softirq` does before running the handlers.
    @inline(__always)
    mutating func takePending() -> UInt32 {
        let p = pending
        pending = 0
        return p
    }

    @inline(__always)
    mutating func countRun(_ v: SoftirqVector) { counts[v.rawValue] &+= 1 }

    /// Times `v` ran.
    public func count(_ v: SoftirqVector) -> UInt64 { counts[v.rawValue] }
}
