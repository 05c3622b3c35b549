import ArgumentParser
import CAllocCounter
import Skiff

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a benchmark and print its figures on one line as name=value unit pairs.",
        discussion: """
        Benchmarks (each is one line of output):
          tx-null-64      64-byte frames: udp_sendmsg → IP → neighbour → qdisc → driver → NIC → null port
          tx-null-1500    1500-byte IP packets on the same path
          tx-stages-64    cost of each stage for 64-byte frames (ns/packet), by starting the path lower
          tx-stages-1500  the same for 1500-byte packets

        Examples:
          skiff bench --list
          skiff bench tx-null-64 --packets 20000000
        """
    )

    static let names = ["tx-null-64", "tx-null-1500", "tx-stages-64", "tx-stages-1500"]

    @Flag(help: "List the benchmarks.") var list = false
    @Argument(help: "Benchmark name (see --list).") var name: String?
    @Option(help: "Packets to send in the measured run.") var packets = 5_000_000

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
        default: stages(ipLength: 1500, label: "tx-stages-1500")
        }
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
