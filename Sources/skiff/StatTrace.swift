import ArgumentParser
import SkiffLinux

struct Stat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a running stack's state over its control socket.",
        discussion: """
        Interfaces (as ip -s link), qdiscs (tc -s qdisc), rings (ethtool -S), softirqs (/proc/softirqs), CPU time by context, copies by stage, IP/ICMP/TCP/UDP counters (nstat), sockets (ss -tin), neighbours and routes.

        Examples:
          skiff stat --control /tmp/skiff.sock
          skiff stat --control /tmp/skiff.sock --json | python3 -m json.tool
        """
    )
    @Option(help: ArgumentHelp("The --control socket of a running `skiff up`.", valueName: "path")) var control: String
    @Flag(help: "Print JSON instead of text.") var json = false

    func run() throws {
        switch ControlClient.request(path: control, json ? "stat json" : "stat") {
        case let .success(s): print(s, terminator: "")
        case let .failure(e): throw CLIError(e.description)
        }
    }
}

struct Trace: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Trace the next packets through the stages of a running stack.",
        discussion: """
        Arms the stage tracer for the next N packets sent or received (at most 64) and prints each one's stages with their Linux names, the context they ran in and the time since the first.

        Examples:
          skiff trace --control /tmp/skiff.sock
          skiff trace --control /tmp/skiff.sock --count 5
        """
    )
    @Option(help: ArgumentHelp("The --control socket of a running `skiff up`.", valueName: "path")) var control: String
    @Option(help: "Packets to trace (1...64).") var count = 1

    func validate() throws {
        guard (1...64).contains(count) else { throw ValidationError("--count must be 1...64") }
    }

    func run() throws {
        switch ControlClient.request(path: control, "trace \(count)") {
        case let .success(s): print(s, terminator: "")
        case let .failure(e): throw CLIError(e.description)
        }
    }
}
