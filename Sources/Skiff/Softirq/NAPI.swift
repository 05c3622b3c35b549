/// NAPI: interrupt mitigation by polling (Linux: `net/core/dev.c`, `napi_schedule`, `net_rx_action`).
extension NetworkStack {
    /// Puts a queue's NAPI context on the poll list and raises NET_RX. Linux: `napi_schedule()`.
    func napiSchedule(device dev: NetDevice, queue q: Int) {
        if dev.rxQueues[q].napi.scheduled { return }
        dev.rxQueues[q].napi.scheduled = true
        pollList.append(dev.index << 16 | q)
        softirq.raise(.netRX)
    }

    /// The NET_RX softirq handler. Linux: `net_rx_action()`: polls each scheduled NAPI context
    /// with its weight (64) until the budget (300) or the time limit (2 ms) is spent; contexts
    /// that used their whole weight go to the back of the list, and if work remains the softirq
    /// is raised again (`time_squeeze`).
    func netRxAction() {
        var budget = netdevBudget
        // The time limit is checked on the coarse clock, as Linux checks it against jiffies.
        let start = coarseMonotonicTime()
        var polled = 0
        // Poll the contexts present at entry once each (Linux splices the list first).
        var remaining = pollList.count
        while remaining > 0 && !pollList.isEmpty {
            if budget <= 0 || coarseMonotonicTime() &- start > netdevBudgetTime {
                timeSqueeze &+= 1
                break
            }
            remaining -= 1
            let key = pollList.removeFirst()
            let dev = devices[key >> 16], q = key & 0xFFFF
            let weight = dev.rxQueues[q].napi.weight
            let work = napiPoll(device: dev, queue: q, budget: weight)
            polled += 1
            budget -= work
            if work >= weight {
                // Still scheduled: more work waits; repoll at the tail.
                dev.rxQueues[q].napi.fullPolls &+= 1
                pollList.append(key)
            }
        }
        if !pollList.isEmpty { softirq.raise(.netRX) }
    }

    /// Linux: `napi_complete_done()`: takes the context off the poll list and unmasks its
    /// interrupt; if the NIC asserted meanwhile, the interrupt is delivered again.
    func napiComplete(device dev: NetDevice, queue q: Int) {
        dev.rxQueues[q].napi.scheduled = false
        dev.nic.vectors[q].masked = false
        // An interrupt asserted while masked is still on the pending list; the next
        // `deliverInterrupts` fires it.
    }
}
