import Skiff

/// Text reports of a stack's counters, shaped like the Linux tools that show the same things.
enum Report {
    static func printHost(_ s: NetworkStack, title: String) {
        print("\(title):")
        let sc = SoftirqVector.allCases.map { "\($0.name) \(s.softirq.count($0))" }.joined(separator: "  ")
        print("  softirqs (as /proc/softirqs):  \(sc)")
        let cpu = ExecutionContext.allCases.map { "\($0.name) \(fmt(Double(s.contexts.cpuTime($0)) / 1000, 1)) µs" }
        print("  CPU time by context:           \(cpu.joined(separator: "  "))")
        let ledger = s.pool.ledger
        let copies = CopyStage.allCases.filter { ledger.bytes($0) > 0 }.map { "\($0.name) \(ledger.bytes($0)) B/\(ledger.operations($0))" }
        print("  bytes copied by stage:         \(copies.isEmpty ? "none" : copies.joined(separator: "  "))")
        for d in s.devices {
            let st = d.stats
            print("  \(d.name): tx \(st.txPackets) pkts \(st.txBytes) B, rx \(st.rxPackets) pkts \(st.rxBytes) B, qdisc \(d.txQueues[0].qdisc.kind), ring doorbells \(d.txQueues[0].ring.doorbells), IRQs \(d.nic.vectors.map(\.count).reduce(0, +))")
        }
        let nz = s.drops.nonzero.map { "\($0.0.name)=\($0.1)" }
        print("  drops:                         \(nz.isEmpty ? "none" : nz.joined(separator: " "))")
        print("")
    }
}
