import Foundation
import Testing
@testable import Skiff

/// Per-socket wake-ups (Linux: each socket's own wait queue, `sk_sleep(sk)`): a caller blocked on
/// one socket sleeps until that socket's wake-up marks move, not on every change to the stack.
@Suite struct KeyedWakeupTests {
    /// Starts a thread that sleeps on `lock` keyed to `key` with `marks`, and returns once it is
    /// asleep (bounded wait). `woke` is set when its sleep ends.
    static func sleeper(_ lock: StackLock, key: Int32, marks: StackLock.Marks, woke: Box<Bool>) -> Thread {
        let before = lock.withLock { lock.sleeperCount }
        let t = Thread {
            lock.lock()
            lock.wait(untilMonotonic: nil, key: key, marks: marks)
            woke.value = true
            lock.unlock()
        }
        t.start()
        for _ in 0..<2000 where lock.withLock({ lock.sleeperCount }) == before { usleep(1000) }
        return t
    }

    static func waitUntil(_ cond: () -> Bool) -> Bool {
        for _ in 0..<5000 where !cond() { usleep(1000) }
        return cond()
    }

    @Test("a change to socket 1's marks wakes its sleeper only; socket 2's and an unkeyed sleeper's turn come with their own change and with wakeAll")
    func onlyTheChangedSocketsSleeperWakes() {
        let lock = StackLock()
        let w1 = Box(false), w2 = Box(false), w3 = Box(false)
        _ = Self.sleeper(lock, key: 1, marks: (10, 0, 0), woke: w1)
        _ = Self.sleeper(lock, key: 2, marks: (20, 0, 0), woke: w2)
        #expect(lock.withLock { lock.sleeperCount } == 2)
        // Socket 1 got data (its data mark moved); socket 2 did not.
        lock.withLock {
            lock.wakeChanged(oneAtLeast: false) { key in key == 1 ? (11, 0, 0) : (20, 0, 0) }
            #expect(lock.signaledSleepers == 1)
            #expect(lock.keyedWakes == 1 && lock.keyedSkips == 1)
        }
        #expect(Self.waitUntil { lock.withLock { w1.value } })
        #expect(lock.withLock { !w2.value && lock.sleeperCount == 1 })
        // Nothing moved: no one wakes, however often the stack settles.
        for _ in 0..<10 { lock.withLock { lock.wakeChanged(oneAtLeast: false) { _ in (20, 0, 0) } } }
        #expect(lock.withLock { lock.signaledSleepers == 0 && lock.keyedSkips == 11 })
        // A write-space wake-up of socket 2 wakes it.
        lock.withLock { lock.wakeChanged(oneAtLeast: false) { _ in (20, 0, 1) } }
        #expect(Self.waitUntil { lock.withLock { w2.value } })
        // An unkeyed sleeper (poll, epoll_wait) wakes on any settle; wakeAll wakes everyone.
        _ = Self.sleeper(lock, key: -1, marks: (0, 0, 0), woke: w3)
        lock.withLock { lock.wakeChanged(oneAtLeast: false) { _ in (0, 0, 0) } }
        #expect(Self.waitUntil { lock.withLock { w3.value } })
        let w4 = Box(false)
        _ = Self.sleeper(lock, key: 7, marks: (1, 1, 1), woke: w4)
        lock.withLock { lock.wakeAll() }
        #expect(Self.waitUntil { lock.withLock { w4.value } })
        #expect(lock.withLock { lock.sleeperCount } == 0)
    }

    @Test("frames waiting for a caller: with oneAtLeast one sleeper wakes although no socket changed (the newest)")
    func oneSleeperWakesToTakeHandedOverFrames() {
        let lock = StackLock()
        let w1 = Box(false), w2 = Box(false)
        _ = Self.sleeper(lock, key: 1, marks: (0, 0, 0), woke: w1)
        _ = Self.sleeper(lock, key: 2, marks: (0, 0, 0), woke: w2)
        lock.withLock {
            lock.wakeChanged(oneAtLeast: true) { _ in (0, 0, 0) }
            #expect(lock.signaledSleepers == 1)
            // Already one awake: a second settle leaves the other asleep.
            lock.wakeChanged(oneAtLeast: true) { _ in (0, 0, 0) }
            #expect(lock.signaledSleepers == 1)
        }
        #expect(Self.waitUntil { lock.withLock { w2.value } })
        #expect(lock.withLock { !w1.value })
        lock.withLock { lock.wakeAll() }
        #expect(Self.waitUntil { lock.withLock { w1.value } })
    }

    @Test("a keyed sleep with a deadline ends at the deadline, unsignalled")
    func keyedSleepTimesOut() {
        let lock = StackLock()
        lock.lock()
        let signaled = lock.wait(untilMonotonic: MonotonicClock.read() + 5 * Time.millisecond, key: 3, marks: (1, 2, 3))
        lock.unlock()
        #expect(!signaled)
        #expect(lock.withLock { lock.sleeperCount } == 0)
    }
}
