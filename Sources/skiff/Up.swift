#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Skiff
import SkiffLinux

struct Up: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Bring a Skiff stack up on a TAP, TUN or AF_PACKET device and run services until SIGINT/SIGTERM.",
        discussion: """
        One engine thread per queue polls the device (the softirq/NAPI side); each service runs on its own threads with the blocking socket API (process context). On SIGINT or SIGTERM the final counters are printed.

        Examples:
          ip netns exec ns skiff up --tap tap0 --address 10.0.0.2/24 --serve echo:7,http:80=/srv/www
          skiff up --tap tap0 --address 10.0.0.2/24 --link-up --control /tmp/skiff.sock --pcap /tmp/s.pcap
          skiff up --tun tun0 --address 10.0.0.2/24 --mtu 9000 --serve discard:9
          skiff up --packet veth1 --address 10.0.0.2/24 --gateway 10.0.0.1 --serve chargen:19
          skiff up --tap tap0 --address 10.0.0.2/24 --queues 2 --offload --serve discard:9
        """
    )

    @OptionGroup var port: PortOptions
    @Option(help: ArgumentHelp("Services: echo:PORT, discard:PORT, chargen:PORT, http:PORT=DIR, comma-separated.", valueName: "list"))
    var serve: String?
    @Option(help: ArgumentHelp("Unix socket for `skiff stat` and `skiff trace`.", valueName: "path"))
    var control: String?

    func validate() throws {
        if let s = serve, case let .failure(e) = ServiceSpec.parseList(s) { throw ValidationError(e.description) }
    }

    func run() throws {
        let specs = try serve.map { try ServiceSpec.parseList($0).get() } ?? []
        // Block the stop signals before any thread starts, so only sigwait below takes them.
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        signal(SIGPIPE, SIG_IGN)

        let c = try port.configuration()
        let host: LinuxHost
        do { host = try LinuxHost(c) } catch { throw CLIError(error.description) }
        do { try host.start() } catch { host.close(); throw CLIError(error.description) }
        let services = ServiceRunner(shared: host.shared)
        if case let .failure(e) = services.start(specs, address: c.address) {
            host.close()
            throw CLIError(e.description)
        }
        var server: ControlServer? = nil
        if let path = control {
            do { server = try ControlServer(path: path, host: host, services: services) } catch { host.close(); throw CLIError(error.description) }
            server?.start()
        }
        let d = host.device
        print("skiff up: \(d.name) (\(c.attachment.kind)) \(c.address)/\(c.prefixLength) mac \(d.mac) mtu \(d.mtu) queues \(host.port.queueCount)"
              + (c.offload ? " offload" : "") + (specs.isEmpty ? "" : " serving \(specs.map(\.description).joined(separator: ","))")
              + (control.map { " control \($0)" } ?? ""))
        fflush(nil)

        var received: Int32 = 0
        sigwait(&signals, &received)
        print("skiff up: \(received == SIGINT ? "SIGINT" : "SIGTERM"), stopping")
        services.stop()
        server?.stop()
        host.stop()
        print(host.statusReport(services: services).text, terminator: "")
        fflush(nil)
        host.close()
    }
}
