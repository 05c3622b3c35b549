import Skiff

/// A simulated world drives `AsyncStackDriver`: one step is one round of `runUntilIdle` — every
/// host's engine runs and one due frame is delivered, or the clock moves to the next event.
extension SimWorld: StackEventLoop {
    public func step(limit: Nanoseconds) -> Bool {
        var next: Nanoseconds? = heap.first?.time
        for h in hosts { if let d = h.nextDeadline() { next = min(next ?? d, d) } }
        guard let n = next, n <= limit else { return false }
        runUntilIdle(limit: max(n, now), maxSteps: 1)
        return true
    }
}
