/// A set of one-shot timers ordered by deadline: a binary min-heap with lazy cancellation.
///
/// Linux: the timer wheel (`mod_timer`, `del_timer`, `run_timer_softirq`). A component takes a
/// timer slot once (`makeTimer`) and re-arms it as often as it likes; arming and expiry allocate
/// nothing once the heap has grown to the number of live timers.
public struct TimerQueue<Event> {
    struct Slot { var deadline: Nanoseconds; var generation: UInt32; var armed: Bool; var event: Event }
    struct Entry { var deadline: Nanoseconds; var slot: Int32; var generation: UInt32 }

    private var slots: [Slot] = []
    private var freeSlots: [Int32] = []
    private var heap: [Entry] = []

    public init() {}

    /// A timer slot that fires `event` when armed and due.
    public mutating func makeTimer(_ event: Event) -> TimerID {
        if let i = freeSlots.popLast() {
            slots[Int(i)].event = event
            slots[Int(i)].armed = false
            return TimerID(index: i)
        }
        slots.append(Slot(deadline: 0, generation: 0, armed: false, event: event))
        return TimerID(index: Int32(slots.count - 1))
    }

    /// Gives a slot back; it must not be used afterwards.
    public mutating func destroyTimer(_ id: TimerID) {
        cancel(id)
        freeSlots.append(id.index)
    }

    /// Arms (or re-arms) the timer for `deadline`. Linux: `mod_timer()`.
    public mutating func arm(_ id: TimerID, at deadline: Nanoseconds) {
        let i = Int(id.index)
        if slots[i].armed && slots[i].deadline == deadline { return }
        slots[i].generation &+= 1
        slots[i].deadline = deadline
        slots[i].armed = true
        push(Entry(deadline: deadline, slot: id.index, generation: slots[i].generation))
    }

    /// Disarms the timer. Linux: `del_timer()`.
    public mutating func cancel(_ id: TimerID) {
        let i = Int(id.index)
        if slots[i].armed { slots[i].armed = false; slots[i].generation &+= 1 }
    }

    public func isArmed(_ id: TimerID) -> Bool { slots[Int(id.index)].armed }
    public func deadline(of id: TimerID) -> Nanoseconds? {
        slots[Int(id.index)].armed ? slots[Int(id.index)].deadline : nil
    }

    /// The earliest armed deadline.
    public mutating func nextDeadline() -> Nanoseconds? {
        dropStale()
        return heap.first?.deadline
    }

    /// Removes and returns one due timer's event, or nil when none is due at `now`.
    public mutating func popExpired(now: Nanoseconds) -> Event? {
        dropStale()
        guard let top = heap.first, top.deadline <= now else { return nil }
        popTop()
        slots[Int(top.slot)].armed = false
        return slots[Int(top.slot)].event
    }

    /// Number of armed timers.
    public var armedCount: Int { slots.reduce(0) { $0 + ($1.armed ? 1 : 0) } }

    private mutating func dropStale() {
        while let top = heap.first {
            let s = slots[Int(top.slot)]
            if s.armed && s.generation == top.generation { return }
            popTop()
        }
    }

    private mutating func push(_ e: Entry) {
        heap.append(e)
        var i = heap.count - 1
        while i > 0 {
            let p = (i - 1) >> 1
            if heap[p].deadline <= heap[i].deadline { break }
            heap.swapAt(p, i); i = p
        }
    }

    private mutating func popTop() {
        let last = heap.removeLast()
        if heap.isEmpty { return }
        heap[0] = last
        var i = 0
        let n = heap.count
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < n && heap[l].deadline < heap[m].deadline { m = l }
            if r < n && heap[r].deadline < heap[m].deadline { m = r }
            if m == i { break }
            heap.swapAt(m, i); i = m
        }
    }
}

/// Handle of a timer slot in a `TimerQueue`.
public struct TimerID: Hashable, Sendable { public let index: Int32 }

