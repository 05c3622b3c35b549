#if canImport(Glibc)
import Glibc
#endif
import CSkiffLinux
import Skiff

/// The control channel of a running `skiff up`: a Unix stream socket that answers one request
/// line per connection — `stat`, `stat json`, `trace N` — and closes. Linux counterpart: the
/// netlink sockets `ip`, `tc`, `ss` and `ethtool` query.
public final class ControlServer: @unchecked Sendable {
    public let path: String
    let host: LinuxHost
    let services: ServiceRunner?
    private let fd: Int32

    public init(path: String, host: LinuxHost, services: ServiceRunner?) throws(HostError) {
        self.path = path
        self.host = host
        self.services = services
        guard path.utf8.count < 108 else { throw .badConfiguration("--control \(path): path longer than 107 bytes") }
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { throw .badConfiguration("--control \(path): socket: \(PortError.text(errno))") }
        unlink(path)
        let r = ControlServer.withAddress(path) { bind(s, $0, $1) }
        guard r == 0, listen(s, 16) == 0 else {
            let e = errno
            close(s)
            throw .badConfiguration("--control \(path): \(PortError.text(e))")
        }
        fd = s
    }

    static func withAddress<R>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        var a = sockaddr_un()
        a.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &a.sun_path) { b in for (i, c) in path.utf8.enumerated() where i < 107 { b[i] = c } }
        return withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
    }

    /// Serves requests on a thread of its own until `stop()`.
    public func start() { spawnThread { [self] in loop() } }

    public func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
        unlink(path)
    }

    private func loop() {
        while true {
            let c = accept(fd, nil, nil)
            if c < 0 { if errno == EINTR { continue }; return }
            let line = ControlServer.readLine(c)
            let reply = answer(line)
            ControlServer.writeAll(c, reply)
            close(c)
        }
    }

    func answer(_ line: String) -> String {
        let words = line.split(separator: " ").map(String.init)
        switch words.first {
        case "stat":
            let r = host.statusReport(services: services)
            return words.contains("json") ? r.json : r.text
        case "trace":
            let n = words.count > 1 ? Int(words[1]) ?? 1 : 1
            return trace(count: max(1, min(n, 64)))
        default:
            return "error: unknown request '\(line)' (stat, stat json, trace N)\n"
        }
    }

    /// Arms the stage tracer for the next `count` packets sent or received and returns their
    /// traces (waiting at most 10 s for them to pass).
    func trace(count: Int) -> String {
        let before: Set<UInt32> = host.shared.withStack { stack, _ in
            stack.tracer.armedCount = count
            stack.traceReceived = true
            return Set(stack.tracer.traceIDs)
        }
        let deadline = MonotonicClock.read() + 10 * Time.second
        var done = false
        while !done && MonotonicClock.read() < deadline {
            done = host.shared.withStack { stack, _ in stack.tracer.armedCount == 0 }
            if !done { usleep(50_000) }
        }
        usleep(100_000)   // let the last ones reach their completion
        return host.shared.withStack { stack, _ in
            let left = stack.tracer.armedCount
            stack.tracer.armedCount = 0
            stack.traceReceived = false
            let ids = stack.tracer.traceIDs.filter { !before.contains($0) }
            var s = ids.isEmpty ? "no packets passed in 10 s\n" : ""
            for id in ids { s += "trace \(id):\n" + stack.tracer.format(id, hostName: stack.name) }
            if left > 0 && !ids.isEmpty { s += "(\(left) of \(count) traces did not start within 10 s)\n" }
            return s
        }
    }

    static func readLine(_ c: Int32) -> String {
        var bytes: [UInt8] = []
        var b: UInt8 = 0
        while bytes.count < 256, read(c, &b, 1) == 1, b != 10 { bytes.append(b) }
        return String(decoding: bytes, as: UTF8.self).trimmingCharacters()
    }

    static func writeAll(_ c: Int32, _ s: String) {
        var bytes = Array(s.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { write(c, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            bytes = bytes.dropFirst(n)
        }
    }
}

/// The client side: sends one request, returns the whole answer.
public enum ControlClient {
    public static func request(path: String, _ line: String) -> Result<String, HostError> {
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { return .failure(.badConfiguration("socket: \(PortError.text(errno))")) }
        defer { close(s) }
        let r = ControlServer.withAddress(path) { connect(s, $0, $1) }
        guard r == 0 else {
            return .failure(.badConfiguration("--control \(path): \(PortError.text(errno)) (is `skiff up --control \(path)` running?)"))
        }
        ControlServer.writeAll(s, line + "\n")
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(s, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out.append(contentsOf: buf[..<n])
        }
        return .success(String(decoding: out, as: UTF8.self))
    }
}

extension String {
    func trimmingCharacters() -> String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\r" || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\r" || c == "\t" { s.removeLast() }
        return String(s)
    }
}
