import ArgumentParser

@main
struct SkiffCLI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "skiff",
        abstract: "A user-space TCP/IP stack that sends packets the way Linux does, with every stage observable.",
        discussion: """
        Examples:
          skiff demo                 two simulated hosts: ARP, pings, a fragmented ping, the stage trace
          skiff bench --list         name the benchmarks
          skiff bench tx-null-64     packets/s through IP → neighbour → qdisc → driver → NIC → null port
        """,
        subcommands: [Demo.self, Bench.self]
    )
}
