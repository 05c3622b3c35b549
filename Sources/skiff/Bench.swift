import ArgumentParser
import CAllocCounter
import Skiff
import SkiffSim

/// Bytes of heap in use now (glibc `mallinfo2().uordblks`).
func heapInUse() -> Int { Int(skiff_heap_in_use()) }

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a benchmark and print its figures on one line as name=value unit pairs.",
        discussion: """
        Benchmarks (each is one line of output):
          tx-null-64      64-byte frames: udp_sendmsg → IP → neighbour → qdisc → driver → NIC → null port
          tx-null-1500    1500-byte IP packets on the same path
          tx-stages-64    cost of each stage for 64-byte frames (ns/packet), by starting the path lower
          tx-stages-1500  the same for 1500-byte packets
          tcp-bulk        bulk TCP between two simulated hosts on one core, MTU 1500 (Gbit/s of payload);
                          --offload gives the NICs TSO and checksum offload
          tcp-connect     TCP connections established per second, and memory per idle connection

        Examples:
          skiff bench --list
          skiff bench tx-null-64 --packets 20000000
          skiff bench tcp-bulk --bytes 1G --offload
        """
    )

    static let names = ["tx-null-64", "tx-null-1500", "tx-stages-64", "tx-stages-1500", "tcp-bulk", "tcp-connect"]

    @Flag(help: "List the benchmarks.") var list = false
    @Argument(help: "Benchmark name (see --list).") var name: String?
    @Option(help: "Packets to send in the measured run.") var packets = 5_000_000
    @Option(help: "Bytes for tcp-bulk (suffixes K, M, G).") var bytes = "1G"
    @Option(help: "Connections for tcp-connect.") var connections = 1000
    @Flag(help: "tcp-bulk: NICs with TSO and checksum offload on links that carry large segments whole (as virtio or veth).")
    var offload = false

    func validate() throws {
        if list { return }
        guard let n = name else { throw ValidationError("name a benchmark (skiff bench --list)") }
        guard Bench.names.contains(n) else { throw ValidationError("unknown benchmark '\(n)'; known: \(Bench.names.joined(separator: ", "))") }
        guard packets >= 64 && packets <= 1_000_000_000 else { throw ValidationError("--packets must be 64...1000000000") }
    }

    func run() throws {
        if list { Bench.names.forEach { print($0) }; return }
        switch name! {
        case "tx-null-64": single(ipLength: 46, label: "tx-null-64")
        case "tx-null-1500": single(ipLength: 1500, label: "tx-null-1500")
        case "tx-stages-64": stages(ipLength: 46, label: "tx-stages-64")
        case "tcp-bulk": tcpBulk()
        case "tcp-connect": tcpConnect()
        default: stages(ipLength: 1500, label: "tx-stages-1500")
        }
    }

    func tcpBulk() {
        let total = parseSize(bytes) ?? (1 << 30)
        let s = Scenarios.switchedPair(lineRate: 0, offloads: offload)
        for h in [s.a, s.b] { h.contexts.enabled = false }
        // Warm up: connection, pools and rings.
        let warm = BulkTransfer(world: s.world, sender: s.a, receiver: s.b, port: 5000, bytes: 8 << 20)
        warm.verify = false
        _ = warm.run(limit: 60 * Time.second)
        let t = BulkTransfer(world: s.world, sender: s.a, receiver: s.b, port: 5001, bytes: total)
        t.verify = false
        let a0 = skiff_allocation_count()
        let c0 = threadCPUTime()
        let ok = t.run(limit: 3600 * Time.second)
        let cpu = threadCPUTime() - c0
        let allocs = skiff_allocation_count() - a0
        let segments = max(1, s.a.tcpCounters.outSegs > 0 ? s.a.tcpCounters.outSegs : UInt64(total / 1448))
        let gbps = Double(total) * 8 / (Double(cpu) / 1e9) / 1e9
        print("bench=tcp-bulk offload=\(offload) ok=\(ok) bytes=\(total) cpu_s=\(fmt(Double(cpu) / 1e9, 3)) gbit_per_s=\(fmt(gbps, 2)) ns_per_byte=\(fmt(Double(cpu) / Double(total), 3)) allocs_per_segment=\(fmt(Double(allocs) / Double(segments), 4)) retrans=\(s.a.tcpCounters.retransSegs)")
    }

    func tcpConnect() {
        let s = Scenarios.switchedPair(lineRate: 0)
        for h in [s.a, s.b] { h.contexts.enabled = false }
        let l = try! s.b.socket().get()
        _ = s.b.bind(l, SocketAddress(.any, 80))
        _ = s.b.listen(l, backlog: 4096)
        // Resolve ARP first.
        _ = s.a.ping(Scenarios.SwitchedPair.bAddress, identifier: 1, sequence: 1, now: s.world.now)
        s.world.runUntilIdle(limit: s.world.now + Time.second)
        let n = connections
        var clients: [Int32] = []
        var accepted = 0
        let m0 = heapInUse()
        let c0 = threadCPUTime()
        for _ in 0..<n {
            let c = try! s.a.socket().get()
            _ = s.a.connect(c, SocketAddress(Scenarios.SwitchedPair.bAddress, 80), now: s.world.now)
            clients.append(c)
        }
        s.world.run(limit: s.world.now + 60 * Time.second) {
            while case .success = s.b.accept(l) { accepted += 1 }
            return accepted == n && clients.allSatisfy { s.a.tcpState($0) == .established }
        }
        let cpu = threadCPUTime() - c0
        // Heap in use (glibc's count of allocated bytes), per socket: both ends of each connection.
        let mem = Double(heapInUse() - m0) / Double(2 * n)
        print("bench=tcp-connect connections=\(n) established=\(accepted) per_s=\(Int(Double(n) / (Double(cpu) / 1e9))) heap_bytes_per_socket=\(Int(mem))")
    }

    struct Measure { var nsPerPacket: Double; var pps: Double; var allocsPerPacket: Double; var delivered: UInt64 }

    func measure(_ mode: PathBench.Mode, ipLength: Int, packets: Int) -> Measure {
        let b = PathBench(mode: mode, ipLength: ipLength)
        _ = b.run(packets: min(200_000, packets))      // warm up: pools, rings, caches
        let d0 = b.delivered
        let a0 = skiff_allocation_count()
        let ns = b.run(packets: packets)
        let a1 = skiff_allocation_count()
        let sent = Double((packets + b.batch - 1) / b.batch * b.batch)
        return Measure(nsPerPacket: Double(ns) / sent, pps: sent / (Double(ns) / 1e9),
                       allocsPerPacket: Double(a1 - a0) / sent, delivered: b.delivered - d0)
    }

    func single(ipLength: Int, label: String) {
        let m = measure(.full, ipLength: ipLength, packets: packets)
        let gbps = m.pps * Double(ipLength + 14) * 8 / 1e9
        print("bench=\(label) packets=\(m.delivered) pps=\(Int(m.pps)) ns_per_packet=\(fmt(m.nsPerPacket, 1)) gbit_per_s=\(fmt(gbps, 2)) allocs_per_packet=\(fmt(m.allocsPerPacket, 4))")
    }

    func stages(ipLength: Int, label: String) {
        var r: [PathBench.Mode: Measure] = [:]
        for mode in PathBench.Mode.allCases { r[mode] = measure(mode, ipLength: ipLength, packets: packets) }
        let full = r[.full]!.nsPerPacket, dev = r[.device]!.nsPerPacket
        let drv = r[.driver]!.nsPerPacket, pool = r[.pool]!.nsPerPacket
        print("bench=\(label) total_ns=\(fmt(full, 1)) udp_ip_neigh_ns=\(fmt(full - dev, 1)) qdisc_dev_ns=\(fmt(dev - drv, 1)) driver_nic_completion_ns=\(fmt(drv - pool, 1)) pool_alloc_free_ns=\(fmt(pool, 1)) allocs_per_packet=\(fmt(r[.full]!.allocsPerPacket, 4))")
    }
}
