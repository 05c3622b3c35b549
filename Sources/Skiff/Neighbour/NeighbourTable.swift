import SkiffWire

/// Neighbour Unreachability Detection states (Linux: `NUD_*` in `include/uapi/linux/neighbour.h`).
public enum NUDState: String, Sendable {
    case incomplete = "INCOMPLETE", reachable = "REACHABLE", stale = "STALE", delay = "DELAY"
    case probe = "PROBE", failed = "FAILED", noarp = "NOARP", permanent = "PERMANENT"

    /// States in which the hardware address may be used (Linux: `NUD_CONNECTED | NUD_DELAY | NUD_PROBE | NUD_STALE`).
    var canSend: Bool {
        switch self {
        case .reachable, .stale, .delay, .probe, .noarp, .permanent: true
        case .incomplete, .failed: false
        }
    }
}

/// Timing parameters (Linux: `struct neigh_parms`, ARP's defaults).
public struct NeighbourParameters: Sendable {
    /// Linux: `base_reachable_time` (30 s); the reachable time is random in [½, 1½] of it.
    public var baseReachableTime: Nanoseconds = 30 * Time.second
    /// Linux: `delay_first_probe_time` (5 s).
    public var delayFirstProbeTime: Nanoseconds = 5 * Time.second
    /// Linux: `retrans_time` (1 s).
    public var retransmitTime: Nanoseconds = Time.second
    /// Linux: `ucast_solicit` (3).
    public var unicastProbes = 3
    /// Linux: `mcast_solicit` (3).
    public var multicastProbes = 3
    /// Linux: `unres_qlen_bytes` (SK_WMEM_MAX, 212992 bytes).
    public var unresolvedQueueBytes = 212_992
    public init() {}
}

/// One neighbour (Linux: `struct neighbour`).
public struct NeighbourEntry: Sendable {
    public var address: IPv4Address
    public var device: Int
    public var mac: MACAddress
    public var state: NUDState
    /// Probes sent in the current INCOMPLETE or PROBE phase (Linux: `neigh->probes`).
    public var probes = 0
    /// Last time reachability was confirmed (Linux: `neigh->confirmed`).
    public var confirmed: Nanoseconds = 0
    /// Last time the entry was used to send (Linux: `neigh->used`).
    public var used: Nanoseconds = 0
    /// The entry's randomised reachable time (Linux: `neigh->parms->reachable_time`).
    public var reachableTime: Nanoseconds = 0
    var timer: TimerID
    /// Packets waiting for resolution (Linux: `neigh->arp_queue`).
    var queue = PacketList()
    /// Packets dropped because the queue was full.
    public var queueDrops: UInt64 = 0
    /// The link header for this neighbour, built once (Linux: `struct hh_cache`).
    var hardwareHeader: (UInt64, UInt64) = (0, 0)
}

/// The ARP neighbour table (Linux: `arp_tbl`).
public struct NeighbourTable: ~Copyable {
    public var parameters = NeighbourParameters()
    public internal(set) var entries: [NeighbourEntry] = []
    var index: [UInt64: Int] = [:]
    /// Storage for every entry's unresolved queue.
    var slab = PacketSlab(capacity: 512)
    var rng: SplitMix64
    /// Bumped when an entry changes its hardware address or state class, so cached lookups refresh.
    public internal(set) var generation: UInt64 = 1

    init(seed: UInt64) { rng = SplitMix64(seed: seed ^ 0x6E65_6967_6862_6F72) }

    static func key(_ a: IPv4Address, _ device: Int) -> UInt64 { UInt64(device) << 32 | UInt64(a.value) }

    public func lookup(_ a: IPv4Address, device: Int) -> Int? { index[Self.key(a, device)] }

    public func entry(_ a: IPv4Address, device: Int) -> NeighbourEntry? {
        lookup(a, device: device).map { entries[$0] }
    }

    mutating func randomReachableTime() -> Nanoseconds {
        let base = parameters.baseReachableTime
        return base / 2 + rng.next() % (base + 1)
    }

    /// Takes the oldest packet waiting on entry `e`.
    mutating func popQueued(_ e: Int) -> PacketBuffer? { slab.popFront(&entries[e].queue) }

    /// Queues a packet on entry `e` (the caller checked room).
    mutating func enqueue(_ e: Int, _ b: consuming PacketBuffer) { slab.pushBack(b, onto: &entries[e].queue) }

    mutating func flushQueues() {
        for i in entries.indices { _ = slab.removeAll(&entries[i].queue) }
    }
}

/// A small seeded generator (SplitMix64) for randomised timers and simulations.
public struct SplitMix64: Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// A double in [0, 1).
    public mutating func nextUnit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
