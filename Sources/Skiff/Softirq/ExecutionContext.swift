/// Where code runs, as Linux distinguishes it.
public enum ExecutionContext: Int, CaseIterable, Sendable {
    /// The application's own thread in a system call (Linux: process context, counted as `sys`).
    case process
    /// Softirq handlers: NET_RX, NET_TX, TIMER (Linux: counted as `si` in `top`).
    case softirq
    /// Interrupt handlers and the emulated NIC (Linux: `hi`).
    case hardirq

    public var name: String {
        switch self {
        case .process: "process"
        case .softirq: "softirq"
        case .hardirq: "hardirq"
        }
    }
}

/// CPU time by execution context, measured with the thread CPU clock at each context switch.
///
/// Entering a context charges the time since the last switch to the context being left, so
/// nested contexts (a softirq run at the end of a system call, an interrupt inside a softirq)
/// are accounted to the innermost one, as Linux's `irqtime_account_irq` does.
public enum AccountingClock: Sendable { case threadCPU, monotonic }

public struct ContextAccounting: Sendable {
    /// CPU nanoseconds by context.
    public private(set) var cpu: [Nanoseconds] = [0, 0, 0]
    /// Times each context was entered.
    public private(set) var entries: [UInt64] = [0, 0, 0]
    /// Set false to skip the clock reads (benchmarks of a single stage).
    public var enabled = true
    /// Which clock measures the time: the thread's CPU clock (exact CPU time, but a system call
    /// per switch) or the monotonic clock through the vDSO (cheap; equal to CPU time while the
    /// thread is not preempted, as in a simulation pinned to one core).
    public var clock: AccountingClock = .threadCPU

    private var stack: [ExecutionContext] = []
    private var last: Nanoseconds = 0

    public init() { stack.reserveCapacity(8) }

    /// The context code runs in now (process when nothing was entered).
    public var current: ExecutionContext { stack.last ?? .process }

    public mutating func enter(_ c: ExecutionContext) {
        entries[c.rawValue] &+= 1
        if enabled {
            let t = clock == .threadCPU ? threadCPUTime() : MonotonicClock.read()
            if let top = stack.last { cpu[top.rawValue] &+= t &- last }
            last = t
        }
        stack.append(c)
    }

    public mutating func leave() {
        guard let top = stack.popLast() else { return }
        if enabled {
            let t = clock == .threadCPU ? threadCPUTime() : MonotonicClock.read()
            cpu[top.rawValue] &+= t &- last
            last = t
        }
    }

    public func cpuTime(_ c: ExecutionContext) -> Nanoseconds { cpu[c.rawValue] }
}
