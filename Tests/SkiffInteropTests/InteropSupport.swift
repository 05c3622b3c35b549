import Foundation

/// Steps the interop tests share: start `skiff up`, run `skiff send`/`recv` against a kernel
/// peer, fetch with curl, parse digests.
struct Interop {
    let ns: Namespace
    var skiff: String { InteropEnvironment.skiff! }

    /// Starts `skiff up` with the device options and extra arguments; waits for its ready line.
    func up(_ device: [String], _ extra: [String], log: String = "up.log") throws -> (Process, URL) {
        let (p, out) = try ns.spawn([skiff, "up"] + device + ["--address", "10.0.0.2/24"] + extra, log: log)
        guard ns.waitFor("skiff up:", in: out, process: p) else {
            throw InteropError("skiff up did not come up: \((try? String(contentsOf: out, encoding: .utf8)) ?? "")")
        }
        return (p, out)
    }

    /// Stops `skiff up` with SIGINT; returns its output (the final counters).
    func down(_ p: Process, _ out: URL) -> String {
        ns.interrupt(p)
        return (try? String(contentsOf: out, encoding: .utf8)) ?? ""
    }

    /// A file of random bytes for the http service; returns (directory, name, sha256).
    func makeFile(bytes: Int) throws -> (String, String, String) {
        let dir = ns.scratch.appendingPathComponent("www").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let r = Namespace.run(["sh", "-c", "head -c \(bytes) /dev/urandom > \(dir)/blob && sha256sum \(dir)/blob"], timeout: 60)
        guard r.status == 0, let sha = r.output.split(separator: " ").first else { throw InteropError("making the file: \(r.output)") }
        return (dir, "blob", String(sha))
    }

    /// curl in the namespace fetches the URL; returns the sha256 of what arrived.
    func curlDigest(_ url: String, timeout: Int = 120) throws -> String {
        let file = ns.scratch.appendingPathComponent("got").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        let r = ns.exec(["curl", "-sS", "--max-time", "\(timeout)", "-o", file, url], timeout: TimeInterval(timeout + 10))
        guard r.status == 0 else { throw InteropError("curl \(url): \(r.output)") }
        let s = Namespace.run(["sha256sum", file], timeout: 60)
        return String(s.output.split(separator: " ").first ?? "")
    }

    /// `skiff send` to a kernel receiver: returns (digest Skiff printed, digest the kernel computed).
    func sendToKernel(_ device: [String], bytes: Int, extra: [String] = []) throws -> (String, String, String) {
        let (rp, rout) = try ns.spawn(KernelPeer.receiver(port: 5001), log: "receiver.log")
        guard ns.waitFor("listening", in: rout, process: rp) else { throw InteropError("kernel receiver did not start") }
        let r = ns.exec([skiff, "send"] + device + ["--address", "10.0.0.2/24", "--to", "10.0.0.1:5001", "--bytes", "\(bytes)"] + extra,
                        timeout: 180)
        Namespace.wait(rp, timeout: 30)
        let kernel = (try? String(contentsOf: rout, encoding: .utf8)) ?? ""
        guard r.status == 0 else { throw InteropError("skiff send failed: \(r.output)\nkernel: \(kernel)") }
        return (Interop.field(after: "sha256 ", in: r.output), Interop.lastWord(of: "received", in: kernel), r.output)
    }

    /// A kernel sender to `skiff recv`: returns (digest the kernel sent, digest Skiff printed).
    func receiveFromKernel(_ device: [String], bytes: Int, extra: [String] = []) throws -> (String, String, String) {
        let (sp, sout) = try ns.spawn([skiff, "recv"] + device + ["--address", "10.0.0.2/24", "--port", "5002"] + extra, log: "recv.log")
        guard ns.waitFor("listening", in: sout, process: sp) else {
            throw InteropError("skiff recv did not start: \((try? String(contentsOf: sout, encoding: .utf8)) ?? "")")
        }
        let k = ns.exec(KernelPeer.sender(host: "10.0.0.2", port: 5002, bytes: bytes), timeout: 180)
        Namespace.wait(sp, timeout: 30)
        let mine = (try? String(contentsOf: sout, encoding: .utf8)) ?? ""
        guard k.status == 0 else { throw InteropError("kernel sender failed: \(k.output)\nskiff: \(mine)") }
        return (Interop.lastWord(of: "sent", in: k.output), Interop.field(after: "sha256 ", in: mine), mine)
    }

    static func field(after marker: String, in text: String) -> String {
        guard let r = text.range(of: marker, options: .backwards) else { return "" }
        return String(text[r.upperBound...].prefix { $0.isHexDigit })
    }

    static func lastWord(of prefix: String, in text: String) -> String {
        for line in text.split(separator: "\n") where line.hasPrefix(prefix) {
            return String(line.split(separator: " ").last ?? "")
        }
        return ""
    }
}
