import ArgumentParser
import Skiff
import SkiffLinux
import SkiffWire

/// The options that put a Skiff stack on a real device; shared by `up`, `send` and `recv`.
struct PortOptions: ParsableArguments {
    @Option(help: ArgumentHelp("TAP device to run on (created if it does not exist).", valueName: "name"))
    var tap: String?
    @Option(help: ArgumentHelp("TUN device to run on (created if it does not exist); IP packets, no ARP.", valueName: "name"))
    var tun: String?
    @Option(help: ArgumentHelp("Existing interface to run on through an AF_PACKET socket (e.g. one end of a veth pair).", valueName: "iface"))
    var packet: String?
    @Option(help: ArgumentHelp("Skiff's address and prefix length.", valueName: "A/PREFIX"))
    var address: String
    @Option(help: ArgumentHelp("Default gateway.", valueName: "G"))
    var gateway: String?
    @Option(help: "Skiff's MTU (68...65535).")
    var mtu = 1500
    @Option(help: "Queues: one descriptor and one engine thread each (TAP/TUN with IFF_MULTI_QUEUE).")
    var queues = 1
    @Flag(help: "TAP: negotiate vnet-header offloads (the kernel hands Skiff partial checksums and 64 KiB TCP segments).")
    var offload = false
    @Flag(name: .customLong("io-uring"), inversion: .prefixedNo, help: "Write frames to the device through io_uring, up to 32 with one system call (default; falls back to one writev per frame where the kernel refuses io_uring). --no-io-uring: one writev per frame.")
    var ioUring = true
    @Option(help: ArgumentHelp("Capture every frame Skiff sends and receives to this pcap file.", valueName: "file"))
    var pcap: String?
    @Option(name: .customLong("busy-poll"), help: ArgumentHelp("Engine threads poll the device this many microseconds before sleeping (Linux: net.core.busy_poll).", valueName: "usec"))
    var busyPoll = 0
    @Option(name: .customLong("busy-read"), help: ArgumentHelp("A blocked receive polls the device itself this many microseconds before sleeping, saving the wake-ups of the engine and of the caller (Linux: net.core.busy_read, SO_BUSY_POLL).", valueName: "usec"))
    var busyRead = 0
    @Flag(name: .customLong("sleep-on-device"), inversion: .prefixedNo, help: "A blocked receive sleeps on the device and processes the frames that wake it in its own thread: a request wakes one thread instead of the engine and then the caller; while a stream flows the engine takes over again (default with one queue; --no-sleep-on-device: the engine alone polls the device).")
    var sleepOnDevice: Bool? = nil
    @Flag(name: .customLong("link-up"), help: "Also bring the kernel side of the device up and set its MTU to --mtu.")
    var linkUp = false

    func validate() throws {
        let given = [tap, tun, packet].compactMap { $0 }
        guard given.count == 1 else { throw ValidationError("give exactly one of --tap NAME, --tun NAME, --packet IFACE") }
        _ = try parsedAddress()
        if let g = gateway, IPv4Address(g) == nil { throw ValidationError("--gateway '\(g)' is not an IPv4 address") }
        guard (68...65_535).contains(mtu) else { throw ValidationError("--mtu \(mtu) is outside 68...65535") }
        guard (1...16).contains(queues) else { throw ValidationError("--queues \(queues) is outside 1...16") }
        if offload && tap == nil { throw ValidationError("--offload needs --tap") }
        if queues > 1 && packet != nil { throw ValidationError("--queues needs --tap or --tun") }
        if sleepOnDevice == true && queues > 1 { throw ValidationError("--sleep-on-device needs one queue (--queues 1)") }
        guard (0...1_000_000).contains(busyPoll) else { throw ValidationError("--busy-poll must be 0...1000000 µs") }
        guard (0...1_000_000).contains(busyRead) else { throw ValidationError("--busy-read must be 0...1000000 µs") }
    }

    func parsedAddress() throws -> (IPv4Address, Int) {
        let parts = address.split(separator: "/")
        guard parts.count == 2, let a = IPv4Address(String(parts[0])), let p = Int(parts[1]), (0...32).contains(p) else {
            throw ValidationError("--address '\(address)' is not A.B.C.D/PREFIX (e.g. 10.0.0.2/24)")
        }
        return (a, p)
    }

    func configuration() throws -> HostConfiguration {
        let (a, p) = try parsedAddress()
        let attachment: HostConfiguration.Attachment = tap.map { .tap($0) } ?? tun.map { .tun($0) } ?? .packet(packet!)
        var c = HostConfiguration(attachment: attachment, address: a, prefixLength: p)
        c.gateway = gateway.flatMap { IPv4Address($0) }
        c.mtu = mtu
        c.queues = queues
        c.offload = offload
        c.pcapPath = pcap
        c.batchedWrites = ioUring
        c.configureKernelSide = linkUp
        c.busyPoll = Nanoseconds(busyPoll) * 1000
        c.busyRead = Nanoseconds(busyRead) * 1000
        c.sleepOnDevice = sleepOnDevice ?? (queues == 1)
        return c
    }
}

/// An error `skiff` reports as one line and exit status 1.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Parses "HOST:PORT".
func parseEndpoint(_ s: String, option: String) throws -> SocketAddress {
    let parts = s.split(separator: ":")
    guard parts.count == 2, let a = IPv4Address(String(parts[0])), let p = UInt16(parts[1]), p != 0 else {
        throw ValidationError("\(option) '\(s)' is not HOST:PORT (e.g. 10.0.0.1:5001)")
    }
    return SocketAddress(a, p)
}
