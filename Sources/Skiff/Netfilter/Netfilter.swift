import SkiffWire

/// The five places a packet meets the firewall (Linux: `enum nf_inet_hooks`).
public enum NetfilterHook: Int, CaseIterable, Sendable {
    case preRouting, localIn, forward, localOut, postRouting
    public var name: String {
        switch self {
        case .preRouting: "PREROUTING"
        case .localIn: "INPUT"
        case .forward: "FORWARD"
        case .localOut: "OUTPUT"
        case .postRouting: "POSTROUTING"
        }
    }
}

/// What a rule does with a matching packet (Linux: iptables targets).
public enum NetfilterTarget: Sendable, Equatable {
    case accept
    case drop
    /// Drop and answer with ICMP destination unreachable of this code (default 3, port unreachable).
    case reject(code: UInt8)
    /// Count and continue with the next rule (Linux: `LOG`).
    case log(prefix: String)
}

/// The outcome of a hook.
public enum NetfilterVerdict: Sendable, Equatable {
    case accept, drop
    case reject(code: UInt8)
}

/// What a rule matches; nil fields match anything.
public struct NetfilterMatch: Sendable, Equatable {
    public var source: (address: IPv4Address, prefixLength: Int)?
    public var destination: (address: IPv4Address, prefixLength: Int)?
    public var ipProtocol: UInt8?
    public var sourcePorts: ClosedRange<UInt16>?
    public var destinationPorts: ClosedRange<UInt16>?
    public var inInterface: Int?
    public var outInterface: Int?

    public init(source: (IPv4Address, Int)? = nil, destination: (IPv4Address, Int)? = nil, ipProtocol: UInt8? = nil,
                sourcePorts: ClosedRange<UInt16>? = nil, destinationPorts: ClosedRange<UInt16>? = nil,
                inInterface: Int? = nil, outInterface: Int? = nil) {
        self.source = source.map { (address: $0.0, prefixLength: $0.1) }
        self.destination = destination.map { (address: $0.0, prefixLength: $0.1) }
        self.ipProtocol = ipProtocol; self.sourcePorts = sourcePorts; self.destinationPorts = destinationPorts
        self.inInterface = inInterface; self.outInterface = outInterface
    }

    public static func == (a: NetfilterMatch, b: NetfilterMatch) -> Bool {
        a.source?.address == b.source?.address && a.source?.prefixLength == b.source?.prefixLength
            && a.destination?.address == b.destination?.address && a.destination?.prefixLength == b.destination?.prefixLength
            && a.ipProtocol == b.ipProtocol && a.sourcePorts == b.sourcePorts && a.destinationPorts == b.destinationPorts
            && a.inInterface == b.inInterface && a.outInterface == b.outInterface
    }

    static func prefixMatches(_ a: IPv4Address, _ p: (address: IPv4Address, prefixLength: Int)) -> Bool {
        let mask: UInt32 = p.prefixLength <= 0 ? 0 : ~UInt32(0) << UInt32(32 - min(32, p.prefixLength))
        return a.value & mask == p.address.value & mask
    }

    func matches(_ s: PacketSummary) -> Bool {
        if let p = source, !Self.prefixMatches(s.source, p) { return false }
        if let p = destination, !Self.prefixMatches(s.destination, p) { return false }
        if let p = ipProtocol, p != s.ipProtocol { return false }
        if let r = sourcePorts { guard let port = s.sourcePort, r.contains(port) else { return false } }
        if let r = destinationPorts { guard let port = s.destinationPort, r.contains(port) else { return false } }
        if let i = inInterface, i != s.inInterface { return false }
        if let o = outInterface, o != s.outInterface { return false }
        return true
    }
}

/// A rule with its counters (Linux: an `ipt_entry` and its `xt_counters`).
public struct NetfilterRule: Sendable {
    public var match: NetfilterMatch
    public var target: NetfilterTarget
    public internal(set) var packets: UInt64 = 0
    public internal(set) var bytes: UInt64 = 0
    public init(match: NetfilterMatch = NetfilterMatch(), target: NetfilterTarget) {
        self.match = match; self.target = target
    }
}

/// The fields rules look at, read once from the IP header.
struct PacketSummary {
    var source: IPv4Address, destination: IPv4Address
    var ipProtocol: UInt8
    var sourcePort: UInt16?, destinationPort: UInt16?
    var inInterface: Int, outInterface: Int
    var length: Int
}

/// Five ordered rule chains, policy ACCEPT (Linux: iptables' filter table on all five hooks).
public struct Netfilter: Sendable {
    public private(set) var chains: [[NetfilterRule]] = Array(repeating: [], count: 5)

    public init() {}

    /// True when the hook has rules (an empty hook costs one test on the path).
    @inline(__always)
    public func isActive(_ hook: NetfilterHook) -> Bool { !chains[hook.rawValue].isEmpty }

    /// Appends a rule (Linux: `iptables -A`). Returns its index.
    @discardableResult
    public mutating func append(_ rule: NetfilterRule, to hook: NetfilterHook) -> Int {
        chains[hook.rawValue].append(rule)
        return chains[hook.rawValue].count - 1
    }

    /// Inserts a rule at a position (Linux: `iptables -I`).
    public mutating func insert(_ rule: NetfilterRule, at index: Int, in hook: NetfilterHook) {
        chains[hook.rawValue].insert(rule, at: min(max(0, index), chains[hook.rawValue].count))
    }

    /// Deletes a rule (Linux: `iptables -D`). Returns false for a bad index.
    @discardableResult
    public mutating func remove(at index: Int, from hook: NetfilterHook) -> Bool {
        guard chains[hook.rawValue].indices.contains(index) else { return false }
        chains[hook.rawValue].remove(at: index)
        return true
    }

    /// Removes every rule of a hook (Linux: `iptables -F`).
    public mutating func flush(_ hook: NetfilterHook) { chains[hook.rawValue].removeAll() }

    public func rules(_ hook: NetfilterHook) -> [NetfilterRule] { chains[hook.rawValue] }

    /// Walks the chain: counters of every matching rule rise; the first ACCEPT, DROP or REJECT
    /// decides; LOG continues. Linux: `ipt_do_table()`.
    mutating func evaluate(_ hook: NetfilterHook, _ s: PacketSummary) -> NetfilterVerdict {
        for i in chains[hook.rawValue].indices {
            guard chains[hook.rawValue][i].match.matches(s) else { continue }
            chains[hook.rawValue][i].packets &+= 1
            chains[hook.rawValue][i].bytes &+= UInt64(s.length)
            switch chains[hook.rawValue][i].target {
            case .accept: return .accept
            case .drop: return .drop
            case let .reject(code): return .reject(code: code)
            case .log: continue
            }
        }
        return .accept
    }
}

extension NetworkStack {
    /// Runs a hook on a packet that starts at its IP header. Linux: `NF_HOOK()`.
    func netfilterHook(_ hook: NetfilterHook, _ buffer: borrowing PacketBuffer, inDevice: Int, outDevice: Int) -> NetfilterVerdict {
        let b = buffer.bytes
        guard b.count >= 20 else { return .drop }
        let hl = Int(b[0] & 0x0F) * 4
        let proto = b[9]
        var s = PacketSummary(
            source: IPv4Address(UInt32(b[12]) << 24 | UInt32(b[13]) << 16 | UInt32(b[14]) << 8 | UInt32(b[15])),
            destination: IPv4Address(UInt32(b[16]) << 24 | UInt32(b[17]) << 16 | UInt32(b[18]) << 8 | UInt32(b[19])),
            ipProtocol: proto, sourcePort: nil, destinationPort: nil,
            inInterface: inDevice, outInterface: outDevice, length: buffer.length)
        let firstFragment = (UInt16(b[6]) << 8 | UInt16(b[7])) & 0x1FFF == 0
        if (proto == IPProtocol.tcp || proto == IPProtocol.udp) && firstFragment && b.count >= hl + 4 {
            s.sourcePort = UInt16(b[hl]) << 8 | UInt16(b[hl + 1])
            s.destinationPort = UInt16(b[hl + 2]) << 8 | UInt16(b[hl + 3])
        }
        return netfilter.evaluate(hook, s)
    }
}
