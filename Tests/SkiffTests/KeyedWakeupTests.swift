import Foundation
import Testing
@testable import Skiff

/// Per-socket wake-ups (Linux: each socket's own wait queue, `sk_sleep(sk)`): a caller blocked on
/// one socket sleeps until that socket's wake-up marks move, not on every change to the stack.
@Suite struct KeyedWakeupTests {
    /// A stack with two UDP sockets (their marks are what the test moves).
    static func stackWithTwoSockets() -> (NetworkStack, Int32, Int32) {
        let stack = NetworkStack(name: "keyed")
        let a = (try? stack.socket(.datagram).get()) ?? -1
        let b = (try? stack.socket(.datagram).get()) ?? -1
        return (stack, a, b)
    }

    /// Starts a thread that sleeps on `lock` keyed to `key` of `stack` (-1: no key) and returns
    /// once it is asleep (bounded wait). `woke` is set when its sleep ends.
    static func sleeper(_ lock: StackLock, _ stack: NetworkStack, key: Int32, owner: ObjectIdentifier? = nil,
                        woke: Box<Bool>) {
        let before = lock.withLock { lock.sleeperCount }
        nonisolated(unsafe) let stack = stack   // used under the lock only
        let t = Thread {
            lock.lock()
            let marks = key >= 0 ? stack.wakeMarks(key) : (0, 0, 0)
            lock.wait(untilMonotonic: nil, key: key, marks: marks, stack: key >= 0 ? stack : nil, owner: owner)
            woke.value = true
            lock.unlock()
        }
        t.start()
        for _ in 0..<2000 where lock.withLock({ lock.sleeperCount }) == before { usleep(1000) }
    }

    static func waitUntil(_ cond: () -> Bool) -> Bool {
        for _ in 0..<5000 where !cond() { usleep(1000) }
        return cond()
    }

    @Test("a datagram queued on socket A wakes A's sleeper only; B's wakes with B's own change; an unkeyed sleeper wakes on any settle; wakeAll wakes all")
    func onlyTheChangedSocketsSleeperWakes() {
        let (stack, a, b) = Self.stackWithTwoSockets()
        let lock = StackLock()
        let wa = Box(false), wb = Box(false)
        Self.sleeper(lock, stack, key: a, woke: wa)
        Self.sleeper(lock, stack, key: b, woke: wb)
        #expect(lock.withLock { lock.sleeperCount } == 2)
        lock.withLock {
            stack.udpSocket(a)!.datagramsQueued &+= 1   // sk_data_ready on A
            lock.wakeChanged()
            #expect(lock.signaledSleepers == 1)
            #expect(lock.keyedWakes == 1 && lock.keyedSkips == 1)
        }
        #expect(Self.waitUntil { lock.withLock { wa.value } })
        #expect(lock.withLock { !wb.value && lock.sleeperCount == 1 })
        // Nothing of B's moved: B sleeps on, however often the stack settles.
        for _ in 0..<10 { lock.withLock { lock.wakeChanged() } }
        #expect(lock.withLock { lock.signaledSleepers == 0 && lock.keyedSkips == 11 })
        // B's socket is closed by another thread: its marks move, B wakes (to find EBADF).
        lock.withLock {
            _ = stack.close(b, now: 0)
            lock.wakeChanged()
        }
        #expect(Self.waitUntil { lock.withLock { wb.value } })
        // Without a key: woken by any settle. wakeAll wakes keyed sleepers too.
        let wu = Box(false), wk = Box(false)
        Self.sleeper(lock, stack, key: -1, woke: wu)
        lock.withLock { lock.wakeChanged() }
        #expect(Self.waitUntil { lock.withLock { wu.value } })
        Self.sleeper(lock, stack, key: a, woke: wk)
        lock.withLock { lock.wakeChanged(unkeyed: true) }
        #expect(lock.withLock { !wk.value })
        lock.withLock { lock.wakeAll() }
        #expect(Self.waitUntil { lock.withLock { wk.value } })
        #expect(lock.withLock { lock.sleeperCount } == 0)
    }

    @Test("a handle closed and opened again is another socket to the caller that slept on it: it wakes")
    func aReusedHandleWakesItsOldSleeper() {
        let (stack, a, _) = Self.stackWithTwoSockets()
        let lock = StackLock()
        let w = Box(false)
        Self.sleeper(lock, stack, key: a, woke: w)
        lock.withLock {
            _ = stack.close(a, now: 0)
            let again = (try? stack.socket(.datagram).get()) ?? -1
            #expect(again == a)   // the same number, a new file
            lock.wakeChanged()
        }
        #expect(Self.waitUntil { lock.withLock { w.value } })
    }

    @Test("frames waiting for a caller of this stack: one of its sleepers wakes although no socket changed (the newest), and only one")
    func oneCallerWakesToTakeHandedOverFrames() {
        let (stack, a, b) = Self.stackWithTwoSockets()
        let lock = StackLock()
        let me = ObjectIdentifier(lock), other = ObjectIdentifier(stack)
        let wa = Box(false), wb = Box(false), wo = Box(false)
        Self.sleeper(lock, stack, key: a, owner: me, woke: wa)
        Self.sleeper(lock, stack, key: b, owner: me, woke: wb)
        Self.sleeper(lock, stack, key: a, owner: other, woke: wo)   // another stack's caller
        lock.withLock {
            lock.wakeChanged(oneAtLeastFor: me)
            #expect(lock.signaledSleepers == 1)
            lock.wakeChanged(oneAtLeastFor: me)   // one is awake already: no second
            lock.wakeOneCaller(of: me)
            #expect(lock.signaledSleepers == 1)
        }
        #expect(Self.waitUntil { lock.withLock { wb.value } })
        #expect(lock.withLock { !wa.value && !wo.value })
        lock.withLock { lock.wakeAll() }
        #expect(Self.waitUntil { lock.withLock { wa.value && wo.value } })
    }

    @Test("a keyed sleep with a deadline ends at the deadline, unsignalled")
    func keyedSleepTimesOut() {
        let (stack, a, _) = Self.stackWithTwoSockets()
        let lock = StackLock()
        lock.lock()
        let signaled = lock.wait(untilMonotonic: MonotonicClock.read() + 5 * Time.millisecond, key: a,
                                 marks: stack.wakeMarks(a), stack: stack, owner: nil)
        lock.unlock()
        #expect(!signaled)
        #expect(lock.withLock { lock.sleeperCount } == 0)
    }
}
