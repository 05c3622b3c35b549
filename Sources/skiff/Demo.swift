import ArgumentParser
import Skiff
import SkiffSim
import SkiffWire

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run two simulated hosts in memory and show a packet's path through the stack.",
        discussion: """
        Host A (10.0.0.1) and host B (10.0.0.2) sit on a simulated switch, on a virtual clock.
        A pings B: the first pings wait for ARP; a 4000-byte ping is fragmented and reassembled;
        then the stage trace of one echo request from IP output to its TX completion in the NET_RX
        softirq, and the counters that answer the article's questions for this run.

        Examples:
          skiff demo
          skiff demo --bytes 64M --loss 0.01 --reorder 0.01 --seed 7
          skiff demo --bytes 8M --mtu 576 --connections 10
        """
    )

    @Option(help: "Pings of 56 bytes to send.") var count = 4
    @Option(help: "Bytes to send over TCP (suffixes K, M, G; 0 skips the transfer).") var bytes = "16M"
    @Option(help: "Probability each frame is lost (0...1).") var loss = 0.0
    @Option(help: "Probability a frame is held back and overtaken (0...1).") var reorder = 0.0
    @Option(help: "Probability a frame is delivered twice (0...1).") var duplicate = 0.0
    @Option(help: "Probability a frame has one bit flipped (0...1).") var corrupt = 0.0
    @Option(help: "One-way link delay in milliseconds (virtual time).") var delay = 0.05
    @Option(help: "MTU of both hosts' devices (576...9000).") var mtu = 1500
    @Option(help: "Seed of the simulation.") var seed: UInt64 = 1
    @Option(help: "Parallel TCP connections (1...1000).") var connections = 1

    func validate() throws {
        guard (1...1000).contains(count) else { throw ValidationError("--count must be 1...1000") }
        guard let b = parseSize(bytes) else { throw ValidationError("--bytes '\(bytes)' is not a size (e.g. 64M, 512K, 1G)") }
        guard b <= 64 << 30 else { throw ValidationError("--bytes must be at most 64G") }
        for (name, p) in [("--loss", loss), ("--reorder", reorder), ("--duplicate", duplicate), ("--corrupt", corrupt)] {
            guard (0...0.5).contains(p) else { throw ValidationError("\(name) must be between 0 and 0.5") }
        }
        guard (0...10_000).contains(delay) else { throw ValidationError("--delay must be 0...10000 ms") }
        guard (576...9000).contains(mtu) else { throw ValidationError("--mtu must be 576...9000") }
        guard (1...1000).contains(connections) else { throw ValidationError("--connections must be 1...1000") }
    }

    func run() throws {
        let delayUs = Int(delay * 1000)
        let s = Scenarios.switchedPair(seed: seed, impairments: Impairments(delay: UInt64(delayUs) * Time.microsecond))
        let world = s.world
        let B = Scenarios.SwitchedPair.bAddress
        print("Skiff demo: hosts A \(Scenarios.SwitchedPair.aAddress) (\(Scenarios.SwitchedPair.aMAC)) and B \(B) (\(Scenarios.SwitchedPair.bMAC)) on a simulated switch, \(delayUs) µs per link, virtual clock\n")
        print("PING \(B): 56 data bytes")
        var sentAt: [UInt16: Nanoseconds] = [:]
        for seq in 1...count {
            let q = UInt16(seq)
            sentAt[q] = world.now
            _ = s.a.ping(B, identifier: 0x5a, sequence: q, now: world.now)
            world.run(until: world.now + Time.second)
        }
        for r in s.a.echoReplies {
            let rtt = Double(r.time - (sentAt[r.sequence] ?? r.time)) / 1e6
            print("\(r.payloadLength + 8) bytes from \(r.from): icmp_seq=\(r.sequence) time=\(fmt(rtt, 3)) ms")
        }
        let firstARP = s.a.counters.arpRequestsOut
        print("--- \(B) ping statistics ---")
        print("\(count) packets transmitted, \(s.a.echoReplies.count) received; ARP requests sent by A: \(firstARP)\n")

        let before = s.a.echoReplies.count
        let t0 = world.now
        _ = s.a.ping(B, identifier: 0x5a, sequence: 100, payloadSize: 4000, now: world.now)
        world.run(until: world.now + Time.second)
        if s.a.echoReplies.count > before, let r = s.a.echoReplies.last {
            print("4008 bytes from \(r.from): icmp_seq=100 time=\(fmt(Double(r.time - t0) / 1e6, 3)) ms  (sent as \(s.a.counters.ipFragCreates) fragments, reassembled by B, reply fragmented by B and reassembled by A)\n")
        } else {
            print("4000-byte ping: no reply\n")
        }

        let id = (try? s.a.ping(B, identifier: 0x5a, sequence: 200, now: world.now, trace: true).get()) ?? 0
        world.run(until: world.now + Time.second)
        print("Stage trace of one echo request on host A (time from its first stage, context, Linux function):")
        print(s.a.tracer.format(id), terminator: "")
        print("")
        Report.printHost(s.a, title: "Host A (the sender)")
        Report.printHost(s.b, title: "Host B (the receiver)")
        print("Why NET_RX outnumbers NET_TX on the sender: transmit completions (freeing sent buffers) run in the NET_RX softirq via NAPI; NET_TX runs only when a qdisc had to defer work (quota spent, queue stopped).")
        s.a.shutdownDevices(); s.b.shutdownDevices()
        let leaks = s.a.pool.statistics.inUse + s.b.pool.statistics.inUse
        let maps = s.a.devices[0].nic.iommu.activeMappings + s.b.devices[0].nic.iommu.activeMappings
        print("Teardown: buffers still in use \(leaks), DMA mappings left \(maps)")
        if leaks != 0 || maps != 0 || s.a.echoReplies.count < count { throw ExitCode(1) }
        let total = parseSize(bytes) ?? 0
        if total > 0 {
            print("")
            let demo = TCPDemo(bytes: total, loss: loss, reorder: reorder, duplicate: duplicate, corrupt: corrupt,
                               delayMs: delay, mtu: mtu, seed: seed, connections: connections)
            if !demo.run() { throw ExitCode(1) }
        }
    }
}

func fmt(_ x: Double, _ digits: Int) -> String {
    var m = 1.0
    for _ in 0..<digits { m *= 10 }
    let v = (x * m).rounded() / m
    var s = "\(v)"
    if let dot = s.firstIndex(of: ".") {
        let decimals = s.distance(from: dot, to: s.endIndex) - 1
        if decimals < digits { s += String(repeating: "0", count: digits - decimals) }
    } else { s += "." + String(repeating: "0", count: digits) }
    return s
}
