/// One service of `skiff up --serve`: `echo:PORT`, `discard:PORT`, `chargen:PORT`,
/// `http:PORT=DIR`.
public enum ServiceSpec: Sendable, Equatable, CustomStringConvertible {
    /// RFC 862: sends back what it receives.
    case echo(UInt16)
    /// RFC 863: reads and drops.
    case discard(UInt16)
    /// RFC 864: sends a character pattern until the peer closes.
    case chargen(UInt16)
    /// HTTP/1.1 GET and HEAD of the files under a directory.
    case http(UInt16, directory: String)

    public var port: UInt16 {
        switch self { case let .echo(p), let .discard(p), let .chargen(p), let .http(p, _): p }
    }

    public var description: String {
        switch self {
        case let .echo(p): "echo:\(p)"
        case let .discard(p): "discard:\(p)"
        case let .chargen(p): "chargen:\(p)"
        case let .http(p, d): "http:\(p)=\(d)"
        }
    }

    /// Parses a comma-separated list; the error names the bad item.
    public static func parseList(_ text: String) -> Result<[ServiceSpec], ServiceSpecError> {
        var out: [ServiceSpec] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: true) {
            let s = String(item)
            guard let colon = s.firstIndex(of: ":") else { return .failure(.init(item: s, reason: "expected NAME:PORT")) }
            let name = s[..<colon]
            var rest = s[s.index(after: colon)...]
            var dir: String? = nil
            if let eq = rest.firstIndex(of: "=") {
                dir = String(rest[rest.index(after: eq)...])
                rest = rest[..<eq]
            }
            guard let port = UInt16(rest), port != 0 else { return .failure(.init(item: s, reason: "port must be 1...65535")) }
            switch name {
            case "echo": out.append(.echo(port))
            case "discard": out.append(.discard(port))
            case "chargen": out.append(.chargen(port))
            case "http":
                guard let d = dir, !d.isEmpty else { return .failure(.init(item: s, reason: "http needs =DIR")) }
                out.append(.http(port, directory: d))
            default: return .failure(.init(item: s, reason: "unknown service '\(name)' (echo, discard, chargen, http)"))
            }
            if dir != nil, name != "http" { return .failure(.init(item: s, reason: "only http takes =DIR")) }
        }
        if Set(out.map(\.port)).count != out.count { return .failure(.init(item: text, reason: "two services on one port")) }
        return .success(out)
    }
}

public struct ServiceSpecError: Error, Sendable, CustomStringConvertible {
    public let item: String
    public let reason: String
    public var description: String { "--serve '\(item)': \(reason)" }
}
