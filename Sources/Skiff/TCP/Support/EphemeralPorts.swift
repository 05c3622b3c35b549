import SkiffWire

/// Local port choice for `connect()` without `bind()` (RFC 6056 §3.3.4 "Double-Hash Port
/// Selection"; Linux: `__inet_hash_connect` with `inet_sk_port_offset` /
/// `secure_ipv4_port_ephemeral` and `table_perturb`, range `net.ipv4.ip_local_port_range`
/// 32768–60999).
///
/// A keyed hash of (source, destination, destination port) picks a starting offset, so ports
/// used towards one destination do not reveal those used towards another; a perturbation table
/// indexed by the same hash advances after each success, so consecutive connections to one
/// destination get different ports. The scan tries ports of the range's first port's parity
/// first (Linux leaves the other parity to `bind()`), then the other parity, each port once.
///
/// Differences from Linux: the perturbation table has `perturbTableSize` entries (Linux: 2^16),
/// and the small random extra step after a success comes from a generator seeded with the secret
/// (Linux: `get_random_u32_below(8)`), so a simulation is reproducible.
public struct EphemeralPorts: Sendable {
    /// Linux's default `ip_local_port_range`.
    public static let defaultRange: ClosedRange<UInt16> = 32768...60999

    public let range: ClosedRange<UInt16>
    private let secret: SipHashKey
    private var perturb: [UInt32]
    private var random: UInt64

    /// - Parameter perturbTableSize: rounded up to a power of two.
    public init(secret: SipHashKey, range: ClosedRange<UInt16> = EphemeralPorts.defaultRange,
                perturbTableSize: Int = 1 << 10) {
        self.secret = secret
        self.range = range
        var n = 1
        while n < max(perturbTableSize, 1) { n <<= 1 }
        perturb = [UInt32](repeating: 0, count: n)
        random = secret.k0 ^ secret.k1 ^ 0x706f_7274_7065_7274
    }

    /// Keyed from a 64-bit secret (expanded to 128 bits by SplitMix64).
    public init(secret: UInt64, range: ClosedRange<UInt16> = EphemeralPorts.defaultRange) {
        self.init(secret: SipHashKey(seed: secret), range: range)
    }

    /// Linux `secure_ipv4_port_ephemeral`: 64 bits, the low ones index the table, the high 32
    /// are the offset.
    @inline(__always)
    public func portOffset(source: IPv4Address, destination: IPv4Address, destinationPort: UInt16) -> UInt64 {
        SipHasher.hash(key: secret, source.value, destination.value, UInt32(destinationPort))
    }

    /// The next free local port towards `destination:destinationPort`, or nil when every port in
    /// the range is taken (Linux: `-EADDRNOTAVAIL`). `isInUse` answers whether the 4-tuple with
    /// that local port is taken (Linux: the bind-bucket and established-hash checks).
    public mutating func next(source: IPv4Address = IPv4Address(0), destination: IPv4Address,
                              destinationPort: UInt16, isInUse: (UInt16) -> Bool) -> UInt16? {
        let low = Int(range.lowerBound)
        let high = Int(range.upperBound) + 1
        var remaining = high - low
        if remaining > 1 { remaining &= ~1 }

        let hash = portOffset(source: source, destination: destination, destinationPort: destinationPort)
        let index = Int(truncatingIfNeeded: hash) & (perturb.count - 1)
        var offset = Int((UInt64(perturb[index]) + (hash >> 32)) % UInt64(remaining))
        offset &= ~1

        while true {
            var port = low + offset
            var i = 0
            while i < remaining {
                if port >= high { port -= remaining }
                if !isInUse(UInt16(port)) {
                    // A little randomness in the next start when contention is low.
                    let step = max(i, Int(nextRandom() % 8) * 2)
                    perturb[index] &+= UInt32(step + 2)
                    return UInt16(port)
                }
                i += 2
                port += 2
            }
            offset += 1
            if offset & 1 == 0 || remaining <= 1 { return nil }
        }
    }

    /// `next` with the predicate first and an unspecified source address.
    @inline(__always)
    public mutating func next(isInUse: (UInt16) -> Bool, destination: IPv4Address, destinationPort: UInt16) -> UInt16? {
        next(source: IPv4Address(0), destination: destination, destinationPort: destinationPort, isInUse: isInUse)
    }

    @inline(__always)
    private mutating func nextRandom() -> UInt64 { SipHashKey.splitMix(&random) }
}
