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
          skiff demo --count 5 --delay-us 100 --seed 7
        """
    )

    @Option(help: "Pings of 56 bytes to send.") var count = 4
    @Option(help: "One-way link delay in microseconds (virtual time).") var delayUs = 50
    @Option(help: "Seed of the simulation.") var seed: UInt64 = 1

    func validate() throws {
        guard (1...1000).contains(count) else { throw ValidationError("--count must be 1...1000") }
        guard (0...1_000_000).contains(delayUs) else { throw ValidationError("--delay-us must be 0...1000000") }
    }

    func run() throws {
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
