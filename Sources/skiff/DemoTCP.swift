import ArgumentParser
import Skiff
import SkiffSim
import SkiffWire

/// Parses sizes like 64M, 512K, 1G (powers of two).
func parseSize(_ s: String) -> Int? {
    let t = String(s.filter { $0 != " " }).uppercased()
    guard let last = t.last else { return nil }
    var mult = 1
    var digits = t
    switch last {
    case "K": mult = 1 << 10; digits.removeLast()
    case "M": mult = 1 << 20; digits.removeLast()
    case "G": mult = 1 << 30; digits.removeLast()
    default: break
    }
    guard let n = Int(digits), n >= 0, n <= Int.max / mult else { return nil }
    return n * mult
}

/// The TCP part of the demo: one or more bulk transfers from A to B through the whole path,
/// with the report that answers the article's three questions.
struct TCPDemo {
    var bytes: Int
    var loss = 0.0, reorder = 0.0, duplicate = 0.0, corrupt = 0.0
    var delayMs = 0.05
    var mtu = 1500
    var seed: UInt64 = 1
    var connections = 1

    func run() -> Bool {
        let imp = Impairments(loss: loss, duplicate: duplicate, corrupt: corrupt, reorder: reorder,
                              delay: UInt64(delayMs * 1e6))
        let s = Scenarios.switchedPair(seed: seed, mtu: mtu, impairments: imp)
        let world = s.world
        // Per-host counters before the transfer, to report the transfer alone.
        let before = Snapshot(s.a)
        let beforeB = Snapshot(s.b)
        var transfers: [BulkTransfer] = []
        let per = bytes / connections
        for i in 0..<connections {
            let n = i == connections - 1 ? bytes - per * (connections - 1) : per
            let t = BulkTransfer(world: world, sender: s.a, receiver: s.b, port: UInt16(5001 + i), bytes: n,
                                 seed: seed &+ UInt64(i))
            t.traceFirstSegment = i == 0
            if let e = t.start() { print("connection \(i): \(e)"); return false }
            transfers.append(t)
        }
        let t0 = world.now
        let cpu0 = threadCPUTime()
        let finished = world.run(limit: world.now + 3600 * Time.second) {
            var all = true
            for t in transfers where !t.step() { all = false }
            return all
        }
        let cpu = Double(threadCPUTime() - cpu0) / 1e9
        let elapsed = Double(world.now - t0) / 1e9
        print("TCP transfer A → B: \(bytes) bytes over \(connections) connection(s), MTU \(mtu), link delay \(delayMs) ms, loss \(loss), reorder \(reorder), duplicate \(duplicate), corrupt \(corrupt), seed \(seed)\n")
        if let first = transfers.first, first.firstSegmentTrace != 0 {
            print("Stage trace of the first data segment on host A, from send() to the buffer's release:")
            print(s.a.tracer.format(first.firstSegmentTrace), terminator: "")
            print("")
        }
        let a = Snapshot(s.a) - before
        let b = Snapshot(s.b) - beforeB
        print("Q1. Softirqs on the sender (A) during the transfer: NET_RX \(a.netRX), NET_TX \(a.netTX), TASKLET \(a.tasklet), TIMER \(a.timer).")
        print("    NET_RX outnumbers NET_TX because the sender's NET_RX does two jobs: it receives B's ACKs and it cleans")
        print("    transmit completions (NAPI frees sent buffers); NET_TX runs only when the qdisc had to defer work")
        print("    (quota of 64 spent, or the queue stopped by a full ring): here \(a.quotaDeferrals) quota deferrals, \(a.ringStops) ring stops.")
        let tot = max(1, a.process + a.softirq + a.hardirq)
        print("Q2. CPU time on the sender by context: process (sys) \(ms(a.process)) ms (\(pct(a.process, tot))), softirq \(ms(a.softirq)) ms (\(pct(a.softirq, tot))), hardirq/NIC \(ms(a.hardirq)) ms (\(pct(a.hardirq, tot)))")
        print("    send() runs the path to the doorbell in process context; ACK processing, TX cleanup and the")
        print("    segments the ACKs release are sent from the NET_RX softirq, and what TCP Small Queues held back")
        print("    (\(a.throttles) times here) from the TASKLET softirq once the NIC freed the sender's frames.")
        let payload = Double(max(1, transfers.reduce(0) { $0 + $1.received }))
        print("Q3. Bytes copied per payload byte, by stage:")
        for st in CopyStage.allCases where a.ledger.bytes(st) + b.ledger.bytes(st) > 0 {
            print("    \(pad(st.name, 14)) sender \(fmt(Double(a.ledger.bytes(st)) / payload, 3))   receiver \(fmt(Double(b.ledger.bytes(st)) / payload, 3))")
        }
        print("    (user→buffer is the one copy of the data on the send path; port-io is the emulated NIC's DMA to and from the wire.)")
        let retrans = transfers.compactMap { s.a.tcpInfoSocket($0.senderSocket)?.totalRetransmits }.reduce(0, +)
        let gbps = elapsed > 0 ? Double(bytes) * 8 / elapsed / 1e9 : 0
        print("\nThroughput: \(fmt(gbps, 3)) Gbit/s of payload in \(fmt(elapsed, 3)) s of virtual time; \(fmt(Double(bytes) * 8 / max(cpu, 1e-9) / 1e9, 2)) Gbit/s per CPU-second of simulation (both hosts)")
        print("Retransmissions: \(s.a.tcpCounters.retransSegs) segments (fast retransmits \(s.a.tcpCounters.fastRetrans), RTOs \(s.a.tcpCounters.timeouts), loss probes \(s.a.tcpCounters.lossProbes)); per-socket \(retrans)")
        var ok = finished
        for (i, t) in transfers.enumerated() {
            let sh = t.senderHash.hexDigest(), rh = t.receiverHash.hexDigest()
            print("connection \(i): sent \(t.sent) received \(t.received) mismatches \(t.mismatches)\(t.error.map { " error \($0)" } ?? "")")
            print("  SHA-256 sent     \(sh)")
            print("  SHA-256 received \(rh)")
            if sh != rh || !t.succeeded { ok = false }
        }
        if !finished { print("transfer stalled (virtual time limit reached)") }
        print(ok ? "OK: every byte arrived intact" : "FAILED")
        return ok
    }

    func ms(_ ns: UInt64) -> String { fmt(Double(ns) / 1e6, 2) }
    func pct(_ x: UInt64, _ t: UInt64) -> String { fmt(Double(x) * 100 / Double(t), 1) + " %" }
}

/// Counters of one host at one moment.
struct Snapshot {
    var netRX: UInt64, netTX: UInt64, timer: UInt64, tasklet: UInt64, throttles: UInt64
    var process: UInt64, softirq: UInt64, hardirq: UInt64
    var ledger: CopyLedger
    var quotaDeferrals: UInt64, ringStops: UInt64
    init(_ s: NetworkStack) {
        netRX = s.softirq.count(.netRX); netTX = s.softirq.count(.netTX); timer = s.softirq.count(.timer)
        tasklet = s.softirq.count(.tasklet); throttles = s.tcpCounters.smallQueueThrottles
        process = s.contexts.cpuTime(.process); softirq = s.contexts.cpuTime(.softirq); hardirq = s.contexts.cpuTime(.hardirq)
        ledger = s.pool.ledger
        quotaDeferrals = s.devices.flatMap(\.txQueues).map(\.quotaDeferrals).reduce(0, +)
        ringStops = s.devices.flatMap(\.txQueues).map(\.ring.stops).reduce(0, +)
    }
    static func - (a: Snapshot, b: Snapshot) -> Snapshot {
        var r = a
        r.netRX -= b.netRX; r.netTX -= b.netTX; r.timer -= b.timer; r.tasklet -= b.tasklet; r.throttles -= b.throttles
        r.process -= b.process; r.softirq -= b.softirq; r.hardirq -= b.hardirq
        r.ledger = a.ledger.minus(b.ledger)
        r.quotaDeferrals -= b.quotaDeferrals; r.ringStops -= b.ringStops
        return r
    }
}

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
