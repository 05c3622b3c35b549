import SkiffWire

/// How far a route reaches (Linux: `rtm_scope`).
public enum RouteScope: Sendable { case link, universe }

/// One route (Linux: a FIB entry, `ip route add DEST/LEN [via GW] dev DEV metric M`).
public struct Route: Sendable, Equatable {
    public var destination: IPv4Address
    public var prefixLength: Int
    /// Next hop; nil for directly connected networks.
    public var gateway: IPv4Address?
    public var device: Int
    public var metric: Int
    /// Preferred source address (Linux: `src`).
    public var source: IPv4Address?
    public var scope: RouteScope
    /// Path MTU override, 0 = the device's MTU (Linux: `mtu` metric).
    public var mtu: Int = 0

    public init(destination: IPv4Address, prefixLength: Int, gateway: IPv4Address? = nil, device: Int,
                metric: Int = 0, source: IPv4Address? = nil, scope: RouteScope = .universe) {
        self.destination = destination; self.prefixLength = prefixLength; self.gateway = gateway
        self.device = device; self.metric = metric; self.source = source; self.scope = scope
    }

    var mask: UInt32 { prefixLength == 0 ? 0 : ~UInt32(0) << UInt32(32 - prefixLength) }
    func matches(_ a: IPv4Address) -> Bool { a.value & mask == destination.value & mask }
}

/// The answer of a route lookup (Linux: `struct rtable`).
public struct RouteResult: Sendable, Equatable {
    public var device: Int
    public var nextHop: IPv4Address
    public var source: IPv4Address
    public var mtu: Int
    public var isLocal: Bool
}

/// A route cached on a socket or flow, checked against the table's generation on each use.
/// Linux: `sk->sk_dst_cache` with `dst_check()`; also remembers the neighbour entry
/// (Linux: the `dst` → `neighbour` binding).
public struct RouteCache: Sendable {
    public var destination = IPv4Address.any
    var generation: UInt64 = 0
    public var result: RouteResult?
    var neighbour = -1
    public init() {}
}

/// The IPv4 routing table with longest-prefix match, then lowest metric.
/// Linux: the FIB (`fib_table_lookup`), here a list kept sorted by prefix length.
public struct RouteTable: Sendable {
    public private(set) var routes: [Route] = []
    /// Bumped on every change; cached routes with an older generation are looked up again.
    public private(set) var generation: UInt64 = 1
    public internal(set) var lookups: UInt64 = 0

    public init() {}

    public mutating func add(_ r: Route) {
        routes.append(r)
        routes.sort { ($0.prefixLength, -$0.metric) > ($1.prefixLength, -$1.metric) }
        generation &+= 1
    }

    /// Adds a default route via `gateway` (Linux: `ip route add default via G`).
    public mutating func addDefault(gateway: IPv4Address, device: Int, metric: Int = 0) {
        add(Route(destination: .any, prefixLength: 0, gateway: gateway, device: device, metric: metric))
    }

    /// Removes routes matching destination/prefix (and device, if given). Returns how many.
    @discardableResult
    public mutating func remove(destination: IPv4Address, prefixLength: Int, device: Int? = nil) -> Int {
        let before = routes.count
        routes.removeAll { $0.destination == destination && $0.prefixLength == prefixLength && (device == nil || $0.device == device) }
        generation &+= 1
        return before - routes.count
    }

    /// Longest-prefix match, lowest metric among equals. Linux: `fib_lookup()`.
    public mutating func lookup(_ destination: IPv4Address) -> Route? {
        lookups &+= 1
        for r in routes where r.matches(destination) { return r }
        return nil
    }
}
