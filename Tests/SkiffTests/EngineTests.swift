import Testing
@testable import Skiff
import SkiffSim

@Suite struct EngineTests {
    @Test func timersFireInDeadlineOrderAndRearmReplaces() {
        var q = TimerQueue<String>()
        let a = q.makeTimer("a"), b = q.makeTimer("b"), c = q.makeTimer("c")
        q.arm(a, at: 300)
        q.arm(b, at: 100)
        q.arm(c, at: 200)
        q.arm(a, at: 50)          // mod_timer: the earlier deadline replaces the later one
        q.cancel(c)               // del_timer
        #expect(q.nextDeadline() == 50)
        #expect(q.popExpired(now: 49) == nil)
        #expect(q.popExpired(now: 1000) == "a")
        #expect(q.popExpired(now: 1000) == "b")
        #expect(q.popExpired(now: 1000) == nil)   // c was cancelled, a's old entry is stale
        #expect(q.armedCount == 0)
        q.arm(c, at: 5)
        #expect(q.deadline(of: c) == 5 && q.isArmed(c))
    }

    @Test func virtualClockOnlyMovesForward() {
        let c = VirtualClock(start: 10)
        c.advance(to: 5)
        #expect(c.now == 10)
        c.advance(by: 7)
        #expect(c.now == 17)
        #expect(MonotonicClock().now > 0)
    }

    @Test func softirqBitsAndCounts() {
        var s = SoftirqState()
        s.raise(.netRX)
        s.raise(.netRX)
        s.raise(.timer)
        #expect(s.isPending(.netRX) && s.isPending(.timer) && !s.isPending(.netTX))
        let p = s.takePending()
        #expect(p == (1 << 3 | 1 << 1))
        #expect(s.pending == 0)
        s.countRun(.netRX)
        #expect(s.count(.netRX) == 1 && s.raises[SoftirqVector.netRX.rawValue] == 2)
        #expect(SoftirqVector.allCases.map(\.name) == ["TIMER", "NET_TX", "NET_RX", "TASKLET"])
    }

    @Test func contextTimeGoesToTheInnermostContext() {
        var acc = ContextAccounting()
        acc.enter(.process)
        var x = 0
        for i in 0..<200_000 { x &+= i &* i }        // some CPU in process context
        acc.enter(.softirq)
        for i in 0..<200_000 { x &+= i ^ 3 }         // some in softirq
        acc.leave()
        acc.leave()
        #expect(x != 42)
        #expect(acc.cpuTime(.process) > 0 && acc.cpuTime(.softirq) > 0)
        #expect(acc.cpuTime(.hardirq) == 0)
        #expect(acc.entries == [1, 1, 0])
        #expect(acc.current == .process)
    }

    /// Linux's `__do_softirq` restarts at most 10 times; work raised beyond that waits for the
    /// next run (ksoftirqd) and is counted as a deferral.
    @Test func softirqRestartLimitDefersToNextRun() {
        let s = Scenarios.switchedPair(lineRate: 0)
        _ = s.a.ping(Scenarios.SwitchedPair.bAddress, identifier: 1, sequence: 1, now: 0)
        #expect(s.world.runUntilIdle())
        #expect(s.a.softirq.deferrals == 0)
        // Every NET_RX run leaves one NAPI context scheduled by forcing weight 0.
        s.a.devices[0].rxQueues[0].napi.weight = 0
        s.a.napiSchedule(device: s.a.devices[0], queue: 0)
        _ = s.a.run(now: s.world.now)
        #expect(s.a.softirq.deferrals == 1)
        #expect(s.a.softirq.count(.netRX) >= 10)
        #expect(s.a.nextDeadline() == s.world.now)     // work left: run again now
    }
}
