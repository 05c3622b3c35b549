#if canImport(Glibc)
import Glibc
#endif
import CSkiffLinux
import Skiff

/// A small HTTP/1.1 file server: GET and HEAD of regular files under one directory,
/// Content-Length, keep-alive (HTTP/1.1 default, `Connection: close` honoured), 400/404/405.
/// Enough for curl and a browser; not on the packet path.
struct HTTPService {
    let shared: SharedStack
    let directory: String
    let runner: ServiceRunner
    static let maxHeader = 16_384
    static let chunk = 1 << 20

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    func serve(_ fd: Int32) {
        var pending: [UInt8] = []
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: HTTPService.chunk, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            // Read until the end of the header block.
            var end: Int? = HTTPService.headerEnd(pending)
            while end == nil {
                guard case let .success(n) = shared.recv(fd, into: buffer), n > 0 else { return }
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[..<n]))
                if pending.count > HTTPService.maxHeader { _ = respond(fd, 400, "Bad Request", keepAlive: false); return }
                end = HTTPService.headerEnd(pending)
            }
            let head = String(decoding: pending[..<end!], as: UTF8.self)
            pending.removeFirst(end! + 4)
            runner.count { $0.httpRequests &+= 1 }
            let lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
            let parts = lines.first?.split(separator: " ") ?? []
            guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else { _ = respond(fd, 400, "Bad Request", keepAlive: false); return }
            let method = parts[0], target = parts[1], version = parts[2]
            var keepAlive = version == "HTTP/1.1"
            for l in lines.dropFirst() {
                let lower = l.lowercased()
                if lower.hasPrefix("connection:") {
                    if lower.contains("close") { keepAlive = false }
                    if lower.contains("keep-alive") { keepAlive = true }
                }
            }
            guard method == "GET" || method == "HEAD" else {
                guard respond(fd, 405, "Method Not Allowed", keepAlive: keepAlive, extra: "Allow: GET, HEAD\r\n") else { return }
                if !keepAlive { return }
                continue
            }
            guard let path = resolve(String(target)) else {
                guard respond(fd, 404, "Not Found", keepAlive: keepAlive) else { return }
                if !keepAlive { return }
                continue
            }
            guard sendFile(fd, path: path, body: method == "GET", keepAlive: keepAlive, buffer: buffer), keepAlive else { return }
        }
    }

    static func headerEnd(_ b: [UInt8]) -> Int? {
        guard b.count >= 4 else { return nil }
        for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i }
        return nil
    }

    /// Maps a request target to a file under the directory; nil for anything outside it.
    func resolve(_ target: String) -> String? {
        var p = target.split(separator: "?", maxSplits: 1).first.map(String.init) ?? "/"
        guard p.hasPrefix("/") else { return nil }
        p = HTTPService.percentDecode(p)
        let segments = p.split(separator: "/")
        guard !segments.contains(where: { $0 == ".." || $0.contains("\0") }) else { return nil }
        var full = directory + "/" + segments.joined(separator: "/")
        if p.hasSuffix("/") { full += "index.html" }
        return full
    }

    static func percentDecode(_ s: String) -> String {
        var out: [UInt8] = []
        var bytes = Array(s.utf8)[...]
        while let c = bytes.popFirst() {
            if c == 0x25, bytes.count >= 2, let v = UInt8(String(decoding: bytes.prefix(2), as: UTF8.self), radix: 16) {
                out.append(v); bytes = bytes.dropFirst(2)
            } else { out.append(c) }
        }
        return String(decoding: out, as: UTF8.self)
    }

    func respond(_ fd: Int32, _ code: Int, _ reason: String, keepAlive: Bool, extra: String = "") -> Bool {
        let body = "\(code) \(reason)\n"
        let text = "HTTP/1.1 \(code) \(reason)\r\nServer: skiff\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n\(extra)Connection: \(keepAlive ? "keep-alive" : "close")\r\n\r\n\(body)"
        return sendAll(fd, Array(text.utf8))
    }

    func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { b in
            if case let .success(n) = shared.send(fd, b), n == b.count { runner.count { $0.bytesOut &+= UInt64(n) }; return true }
            return false
        }
    }

    func sendFile(_ fd: Int32, path: String, body: Bool, keepAlive: Bool, buffer: UnsafeMutableRawBufferPointer) -> Bool {
        let file = open(path, O_RDONLY | O_CLOEXEC)
        guard file >= 0 else { return respond(fd, 404, "Not Found", keepAlive: keepAlive) }
        defer { close(file) }
        var st = stat()
        guard fstat(file, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return respond(fd, 404, "Not Found", keepAlive: keepAlive) }
        let size = Int(st.st_size)
        let head = "HTTP/1.1 200 OK\r\nServer: skiff\r\nContent-Type: application/octet-stream\r\nContent-Length: \(size)\r\nConnection: \(keepAlive ? "keep-alive" : "close")\r\n\r\n"
        guard sendAll(fd, Array(head.utf8)) else { return false }
        guard body else { return true }
        var offset = 0
        while offset < size {
            let n = pread(file, buffer.baseAddress, min(buffer.count, size - offset), off_t(offset))
            guard n > 0 else { return false }
            guard case let .success(sent) = shared.send(fd, UnsafeRawBufferPointer(rebasing: buffer[..<n])), sent == n else { return false }
            offset += n
            runner.count { $0.bytesOut &+= UInt64(n) }
        }
        return true
    }
}
