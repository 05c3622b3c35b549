#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Skiff
import SkiffLinux
import SkiffSim
import SkiffWire

/// Brings a host up for one transfer, runs `body`, and tears it down.
func withHost<R>(_ port: PortOptions, _ body: (LinuxHost) throws -> R) throws -> R {
    signal(SIGPIPE, SIG_IGN)
    let host: LinuxHost
    do { host = try LinuxHost(try port.configuration()) } catch let e as HostError { throw CLIError(e.description) }
    defer { host.close() }
    do { try host.start() } catch { throw CLIError(error.description) }
    return try body(host)
}

func seconds(_ ns: Nanoseconds) -> Double { Double(ns) / 1e9 }

func gbits(_ bytes: Int, _ ns: Nanoseconds) -> String {
    let g = ns == 0 ? 0 : Double(bytes) * 8 / Double(ns)
    return String(Double(Int(g * 1000)) / 1000)
}

struct Send: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Connect to HOST:PORT, send N bytes of a deterministic pattern, close; print Gbit/s, retransmissions and SHA-256.",
        discussion: """
        The pattern repeats every MiB (byte i is 7i + 31⌊i/4096⌋ mod 256). The time runs from connect() to the peer's acknowledgement of the FIN (close with SO_LINGER).

        Examples:
          ip netns exec ns skiff send --tap tap0 --address 10.0.0.2/24 --to 10.0.0.1:5001 --bytes 256M
          skiff send --tun tun0 --address 10.0.0.2/24 --to 10.0.0.1:5001 --bytes 1G --mtu 9000
          skiff send --tap tap0 --address 10.0.0.2/24 --offload --to 10.0.0.1:5001 --bytes 64M
        """
    )

    @OptionGroup var port: PortOptions
    @Option(help: ArgumentHelp("Where to connect.", valueName: "HOST:PORT")) var to: String
    @Option(help: "Bytes to send (suffixes K, M, G).") var bytes = "16M"
    @Option(help: "Give up after this many seconds without progress.") var timeout = 30
    @Flag(name: .customLong("no-digest"), help: "Skip the SHA-256 (benchmarks).") var noDigest = false
    @Flag(name: .customLong("tcp-info"), help: "Also print the connection's TCP_INFO (time busy, receive-window- and send-buffer-limited; RTT; cwnd), the softirq counts, TCP Small Queues throttles, and the stack's drops and port write errors.")
    var details = false

    func validate() throws {
        _ = try parseEndpoint(to, option: "--to")
        guard parseSize(bytes) != nil else { throw ValidationError("--bytes '\(bytes)' is not a size (e.g. 64M, 512K, 1G)") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
    }

    func run() throws {
        let dest = try parseEndpoint(to, option: "--to")
        let total = parseSize(bytes)!
        let block = SendPattern.block()
        let digest = noDigest ? "-" : SendPattern.digest(count: total, block: block)
        try withHost(port) { host in
            let s = host.shared
            guard case let .success(fd) = s.socket(.stream) else { throw CLIError("socket failed") }
            _ = s.setFileOption(fd, .sendTimeout(UInt64(timeout) * Time.second))
            _ = s.setFileOption(fd, .receiveTimeout(UInt64(timeout) * Time.second))
            let t0 = MonotonicClock.read(), c0 = processCPU()
            if let e = s.connect(fd, dest) { throw CLIError("connect to \(dest): \(e)") }
            var sent = 0
            try block.withUnsafeBytes { b in
                while sent < total {
                    let n = min(b.count, total - sent)
                    switch s.send(fd, UnsafeRawBufferPointer(rebasing: b[..<n])) {
                    case let .success(k) where k == n: sent += k
                    case let .success(k): throw CLIError("send: timed out after \(sent + k) of \(total) bytes")
                    case let .failure(e): throw CLIError("send: \(e) after \(sent) of \(total) bytes")
                    }
                }
            }
            _ = s.setOption(fd, .linger(on: true, seconds: timeout))
            let info = s.withStack { stack, _ in try? stack.tcpInfo(fd).get() }
            let softirqs = s.withStack { st, _ in
                (st.softirq.count(.netRX), st.softirq.count(.netTX), st.softirq.count(.tasklet), st.tcpCounters.smallQueueThrottles)
            }
            _ = s.close(fd)
            let elapsed = MonotonicClock.read() - t0, cpu = processCPU() - c0
            print("sent \(sent) bytes to \(dest) in \(String(format2(seconds(elapsed)))) s: \(gbits(sent, elapsed)) Gbit/s, retransmissions \(info?.totalRetrans ?? 0), \(cpuText(cpu, elapsed)), sha256 \(digest)")
            if details, let i = info {
                let ms = { (t: UInt64) in t / Time.millisecond }
                print("tcp_info: busy \(ms(i.busyTime)) ms, rwnd-limited \(ms(i.receiveWindowLimited)) ms, sndbuf-limited \(ms(i.sendBufferLimited)) ms, rtt \(i.rtt.map { $0 / 1000 } ?? 0) us (min \(i.minRTT.map { $0 / 1000 } ?? 0)), cwnd \(i.sendCwnd), segments out \(i.segmentsOut) in \(i.segmentsIn)")
                print("softirqs: NET_RX \(softirqs.0), NET_TX \(softirqs.1), TASKLET \(softirqs.2); small-queue throttles \(softirqs.3)")
                let drops = s.withStack { st, _ in st.drops.nonzero.map { "\($0.0.name) \($0.1)" } }
                let tx = host.device.nic.withTransmitLock { host.port.txStatistics }
                // Frames per submission only while every frame went through the ring.
                let uring = tx.batches == 0 ? tx.batchingState
                    : tx.ringFailures == 0 ? "\(tx.batchingState), \(tx.batches) submissions (\(format2(Double(tx.frames &+ tx.errors) / Double(tx.batches))) frames each)"
                    : "\(tx.batchingState) after \(tx.batches) submissions"
                print("drops: \(drops.isEmpty ? "none" : drops.joined(separator: ", ")); port write errors \(tx.errors); io_uring \(uring)")
            }
        }
    }
}

struct Recv: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Accept one connection on PORT, read to the end; print Gbit/s and the SHA-256 of what arrived.",
        discussion: """
        Examples:
          ip netns exec ns skiff recv --tap tap0 --address 10.0.0.2/24 --port 5001
          skiff recv --packet veth1 --address 10.0.0.2/24 --port 5001 --timeout 120
        """
    )

    @OptionGroup var port: PortOptions
    @Option(name: .customLong("port"), help: "TCP port to listen on.") var listenPort: UInt16
    @Option(help: "Give up after this many seconds without a connection or data.") var timeout = 60
    @Flag(name: .customLong("no-digest"), help: "Skip the SHA-256 (benchmarks).") var noDigest = false

    func validate() throws {
        guard listenPort != 0 else { throw ValidationError("--port must be 1...65535") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
    }

    func run() throws {
        try withHost(port) { host in
            let s = host.shared
            guard case let .success(l) = s.socket(.stream) else { throw CLIError("socket failed") }
            if let e = s.bind(l, SocketAddress(.any, listenPort)) { throw CLIError("bind port \(listenPort): \(e)") }
            if let e = s.listen(l, backlog: 16) { throw CLIError("listen: \(e)") }
            _ = s.setFileOption(l, .receiveTimeout(UInt64(timeout) * Time.second))
            print("skiff recv: listening on \(host.configuration.address):\(listenPort)")
            fflush(nil)
            let fd: Int32, peer: SocketAddress
            switch s.accept(l) {
            case let .success((f, p)): fd = f; peer = p
            case let .failure(e): throw CLIError("accept: \(e == .EAGAIN ? "no connection within \(timeout) s" : "\(e)")")
            }
            _ = s.setFileOption(fd, .receiveTimeout(UInt64(timeout) * Time.second))
            let t0 = MonotonicClock.read(), c0 = processCPU()
            var h = SHA256()
            var total = 0
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 64)
            defer { buffer.deallocate() }
            loop: while true {
                switch s.recv(fd, into: buffer) {
                case let .success(n) where n > 0:
                    if !noDigest { h.update(UnsafeRawBufferPointer(rebasing: buffer[..<n])) }
                    total += n
                case .success: break loop
                case let .failure(e): throw CLIError("recv: \(e == .EAGAIN ? "no data for \(timeout) s" : "\(e)") after \(total) bytes")
                }
            }
            let elapsed = MonotonicClock.read() - t0, cpu = processCPU() - c0
            _ = s.setOption(fd, .linger(on: true, seconds: 5))
            _ = s.close(fd)
            _ = s.close(l)
            print("received \(total) bytes from \(peer) in \(format2(seconds(elapsed))) s: \(gbits(total, elapsed)) Gbit/s, \(cpuText(cpu, elapsed)), sha256 \(noDigest ? "-" : h.hexDigest())")
        }
    }
}

func format2(_ d: Double) -> String { String(Double(Int(d * 1000)) / 1000) }

/// This process's user + system CPU time (all threads).
func processCPU() -> Nanoseconds {
    var u = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
    let us = (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1_000_000 + u.ru_utime.tv_usec + u.ru_stime.tv_usec
    return Nanoseconds(us) * 1000
}

/// "cpu 1.23 s (0.87 cores)" for a transfer that took `elapsed`.
func cpuText(_ cpu: Nanoseconds, _ elapsed: Nanoseconds) -> String {
    "cpu \(format2(seconds(cpu))) s (\(format2(elapsed == 0 ? 0 : Double(cpu) / Double(elapsed))) cores)"
}
