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
public enum AccountingClock: Sendable {
    case threadCPU, monotonic
    /// The thread's CPU clock read only when the outermost context is entered and left (two
    /// system calls per stack entry instead of two per switch); the switches in between are
    /// timed on the monotonic clock and each context's share of the span is scaled to the CPU
    /// time the thread really used in it. For threads that share a stack (the engine threads and
    /// application threads of a real host), where a switch per frame would cost a system call.
    case threadCPUScaled
}

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
    /// `.threadCPUScaled`: wall time per context in the current span, and the span's start on
    /// the thread's CPU clock.
    private var spanWall: (Nanoseconds, Nanoseconds, Nanoseconds) = (0, 0, 0)
    private var spanCPUStart: Nanoseconds = 0
    /// `.threadCPUScaled`: a span opened by `openSpan` stays open across outermost contexts.
    private var spanHeld = false

    public init() { stack.reserveCapacity(8) }

    /// The context code runs in now (process when nothing was entered).
    public var current: ExecutionContext { stack.last ?? .process }

    public mutating func enter(_ c: ExecutionContext) {
        entries[c.rawValue] &+= 1
        if enabled && clock == .threadCPUScaled {
            let t = MonotonicClock.read()
            if let top = stack.last { addSpan(top, t &- last) } else if !spanHeld { spanCPUStart = threadCPUTime() }
            last = t
        } else if enabled {
            let t = clock == .threadCPU ? threadCPUTime() : MonotonicClock.read()
            if let top = stack.last { cpu[top.rawValue] &+= t &- last }
            last = t
        }
        stack.append(c)
    }

    public mutating func leave() {
        guard let top = stack.popLast() else { return }
        if enabled && clock == .threadCPUScaled {
            let t = MonotonicClock.read()
            addSpan(top, t &- last)
            last = t
            if stack.isEmpty && !spanHeld { closeSpan() }
        } else if enabled {
            let t = clock == .threadCPU ? threadCPUTime() : MonotonicClock.read()
            cpu[top.rawValue] &+= t &- last
            last = t
        }
    }

    public func cpuTime(_ c: ExecutionContext) -> Nanoseconds { cpu[c.rawValue] }

    /// `.threadCPUScaled`: keeps one span open over a batch of outermost contexts (an engine
    /// thread's frames, each delivered in hard-IRQ context), so the thread's CPU clock is read
    /// twice per batch instead of twice per frame. CPU used between the contexts counts in the
    /// span but no context's wall time, so it is not charged to any. Outside any context only.
    public mutating func openSpan() {
        guard enabled, clock == .threadCPUScaled, stack.isEmpty, !spanHeld else { return }
        spanHeld = true
        spanCPUStart = threadCPUTime()
    }

    /// Ends the span `openSpan` began.
    public mutating func closeHeldSpan() {
        guard spanHeld else { return }
        spanHeld = false
        if stack.isEmpty { closeSpan() }
    }

    @inline(__always)
    private mutating func addSpan(_ c: ExecutionContext, _ d: Nanoseconds) {
        switch c {
        case .process: spanWall.0 &+= d
        case .softirq: spanWall.1 &+= d
        case .hardirq: spanWall.2 &+= d
        }
    }

    /// Ends a span: its CPU time, split by each context's share of its wall time.
    private mutating func closeSpan() {
        let used = threadCPUTime() &- spanCPUStart
        let wall = spanWall.0 &+ spanWall.1 &+ spanWall.2
        if wall > 0 {
            // CPU time never exceeds wall time; when the thread was preempted it is less.
            let scale = min(1.0, Double(used) / Double(wall))
            cpu[0] &+= Nanoseconds(Double(spanWall.0) * scale)
            cpu[1] &+= Nanoseconds(Double(spanWall.1) * scale)
            cpu[2] &+= Nanoseconds(Double(spanWall.2) * scale)
        }
        spanWall = (0, 0, 0)
    }
}
