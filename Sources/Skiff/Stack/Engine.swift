/// The engine: timers, interrupts and softirqs, run at `now`.
extension NetworkStack {
    /// Runs everything due at `now`: expired timers (TIMER softirq), interrupts the NICs asserted,
    /// and pending softirqs. Returns when the stack next needs to run: `now` if work remains
    /// (softirqs deferred to the next run, as Linux defers to `ksoftirqd`), a timer deadline, or
    /// nil when it is idle.
    @discardableResult
    public func run(now t: Nanoseconds) -> Nanoseconds? {
        if t > now { now = t }
        if let d = timers.nextDeadline(), d <= now { softirq.raise(.timer) }
        deliverInterrupts()
        raiseTaskletIfQueued()
        if softirq.pending != 0 { doSoftirq() }
        return nextDeadline()
    }

    /// When the stack next needs `run(now:)`.
    public func nextDeadline() -> Nanoseconds? {
        if softirq.pending != 0 || !transmitCompletions.isEmpty { return now }
        for key in pendingInterrupts {
            let v = devices[key >> 16].nic.vectors[key & 0xFFFF]
            if !v.masked && v.asserted && v.lastFire &+ devices[key >> 16].nic.interruptThrottle <= now { return now }
        }
        return timers.nextDeadline()
    }

    /// Runs `body` in process context (a system call), then does what `local_bh_enable()` does on
    /// the way out: delivers interrupts and runs the softirqs the call raised.
    @inline(__always)
    public func processContext<R>(now t: Nanoseconds, _ body: () throws -> R) rethrows -> R {
        if t > now { now = t }
        contexts.enter(.process)
        defer {
            contexts.leave()
            localBHEnable()
        }
        return try body()
    }

    /// Linux: `local_bh_enable()` — run pending softirqs now, in the caller's thread.
    @inline(__always)
    func localBHEnable() {
        deliverInterrupts()
        raiseTaskletIfQueued()
        if softirq.pending != 0 { doSoftirq() }
    }

    /// A freed buffer put a throttled socket on the completion list: the TASKLET softirq runs.
    /// (Linux raises it in the destructor itself, `tcp_wfree()` → `tasklet_schedule()`; a
    /// Skiff buffer cannot reach its stack, so the stack looks wherever softirqs may run.)
    @inline(__always)
    func raiseTaskletIfQueued() {
        if !transmitCompletions.isEmpty && !softirq.isPending(.tasklet) { softirq.raise(.tasklet) }
    }

    /// Linux: `__do_softirq()`. Runs pending vectors in order (TIMER, NET_TX, NET_RX, TASKLET), restarting
    /// while new work is raised, at most `MAX_SOFTIRQ_RESTART` times; what is left waits for the
    /// next run (Linux: wakes `ksoftirqd`).
    func doSoftirq() {
        contexts.enter(.softirq)
        var restarts = SoftirqState.maxRestart
        repeat {
            let p = softirq.takePending()
            if p & (1 << UInt32(SoftirqVector.timer.rawValue)) != 0 {
                softirq.countRun(.timer)
                runTimers()
            }
            if p & (1 << UInt32(SoftirqVector.netTX.rawValue)) != 0 {
                softirq.countRun(.netTX)
                netTxAction()
            }
            if p & (1 << UInt32(SoftirqVector.netRX.rawValue)) != 0 {
                softirq.countRun(.netRX)
                netRxAction()
            }
            if p & (1 << UInt32(SoftirqVector.tasklet.rawValue)) != 0 {
                softirq.countRun(.tasklet)
                tcpTaskletAction()
            }
            deliverInterrupts()
            raiseTaskletIfQueued()
            restarts -= 1
        } while softirq.pending != 0 && restarts > 0
        if softirq.pending != 0 { softirq.deferrals &+= 1 }
        contexts.leave()
    }

    /// Linux: `run_timer_softirq()` — fires every timer due at `now`.
    func runTimers() {
        var fired = 0
        while let event = timers.popExpired(now: now) {
            fired += 1
            switch event {
            case let .neighbour(i): neighbourTimer(entry: Int(i))
            case let .reassembly(i): reassemblyExpired(queue: Int(i))
            case let .qdiscWatchdog(d, q): netifSchedule(devices[Int(d)].txQueues[Int(q)])
            case let .interrupt(d, v):
                // A throttled interrupt may fire, or a transmit completion time has come.
                let dev = devices[Int(d)]
                dev.nic.assertInterrupt(vector: Int(v), now: now)
                deliverInterrupts()
            case let .tcp(handle, kind):
                tcpTimer(handle: handle, kind: kind)
            }
            if fired > 10_000 { softirq.raise(.timer); break }
        }
    }

    // MARK: Interrupts

    /// Called by a NIC when it asserts a vector.
    func interruptAsserted(device: Int, vector: Int) {
        pendingInterrupts.append(device << 16 | vector)
    }

    /// Delivers asserted interrupts whose vector is unmasked and whose throttle interval passed;
    /// throttled ones arm a timer. Masked ones wait for NAPI to finish.
    @inline(__always)
    func deliverInterrupts() {
        if pendingInterrupts.isEmpty { return }
        var i = 0
        while i < pendingInterrupts.count {
            let key = pendingInterrupts[i]
            let dev = devices[key >> 16], v = key & 0xFFFF
            let vec = dev.nic.vectors[v]
            if !vec.asserted { pendingInterrupts.swapAt(i, pendingInterrupts.count - 1); pendingInterrupts.removeLast(); continue }
            if vec.masked { i += 1; continue }
            let due = vec.lastFire &+ dev.nic.interruptThrottle
            if vec.count == 0 || due <= now {
                pendingInterrupts.swapAt(i, pendingInterrupts.count - 1); pendingInterrupts.removeLast()
                hardIRQ(device: dev, vector: v)
            } else {
                timers.arm(dev.nic.vectorTimers[v], at: due)
                i += 1
            }
        }
    }

    /// The hard interrupt handler of a queue vector (Linux: `igb_msix_ring`): masks the vector and
    /// schedules NAPI, which raises NET_RX.
    func hardIRQ(device dev: NetDevice, vector v: Int) {
        contexts.enter(.hardirq)
        dev.nic.vectors[v].asserted = false
        dev.nic.vectors[v].masked = true
        dev.nic.vectors[v].lastFire = now
        dev.nic.vectors[v].count &+= 1
        if v < dev.rxQueues.count { napiSchedule(device: dev, queue: v) }
        contexts.leave()
    }
}
