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
          skiff up --tap tap0 --address 10.0.0.2/24 --serve echo:7 --control /tmp/skiff.sock
          skiff send --tap tap0 --address 10.0.0.2/24 --to 10.0.0.1:5001 --bytes 256M
          skiff recv --tap tap0 --address 10.0.0.2/24 --port 5001
          skiff stat --control /tmp/skiff.sock
        """,
        subcommands: [Demo.self, Bench.self, Up.self, Send.self, Recv.self, Stat.self, Trace.self]
    )
}
