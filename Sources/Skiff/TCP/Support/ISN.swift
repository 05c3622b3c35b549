import SkiffWire

/// Initial sequence numbers (RFC 6528; Linux: `secure_tcp_seq`, `secure_tcp_ts_off` in
/// `net/core/secure_seq.c`).
///
/// ISN = M + F(localip, localport, remoteip, remoteport, secretkey), where M is a timer ticking
/// every 4 µs (RFC 793/9293's clock; Linux ticks every 64 ns) and F is SipHash-2-4 keyed with a
/// per-stack secret, so a connection's ISN grows with time and an off-path attacker cannot guess
/// another connection's. The words hashed are the local and remote addresses and
/// `localPort << 16 | remotePort`, as Linux's `siphash_3u32` (in host order here).
public struct ISNGenerator: Sendable {
    /// One tick of M (RFC 6528 §3).
    public static let tick: Nanoseconds = 4 * Time.microsecond

    private let secret: SipHashKey
    /// A second key for timestamp offsets (Linux: `ts_secret`).
    private let timestampSecret: SipHashKey

    public init(secret: SipHashKey) {
        self.secret = secret
        var s = secret.k0 ^ secret.k1.byteSwapped ^ 0x7473_5f6f_6666_7365
        timestampSecret = SipHashKey(SipHashKey.splitMix(&s), SipHashKey.splitMix(&s))
    }

    /// A generator keyed from a 64-bit secret (expanded to 128 bits by SplitMix64).
    public init(secret: UInt64) { self.init(secret: SipHashKey(seed: secret)) }

    /// F: the per-connection offset.
    @inline(__always)
    public func offset(local: IPv4Address, localPort: UInt16, remote: IPv4Address, remotePort: UInt16) -> UInt32 {
        UInt32(truncatingIfNeeded: SipHasher.hash(key: secret, local.value, remote.value,
                                                  UInt32(localPort) << 16 | UInt32(remotePort)))
    }

    /// The ISN for a new connection at `now` (Linux: `secure_tcp_seq` via `tcp_v4_init_seq`).
    @inline(__always)
    public func isn(local: IPv4Address, localPort: UInt16, remote: IPv4Address, remotePort: UInt16,
                    now: Nanoseconds) -> UInt32 {
        offset(local: local, localPort: localPort, remote: remote, remotePort: remotePort)
            &+ UInt32(truncatingIfNeeded: now / ISNGenerator.tick)
    }

    /// The same as `isn(local:localPort:remote:remotePort:now:)`.
    @inline(__always)
    public func generate(localAddress: IPv4Address, localPort: UInt16, remoteAddress: IPv4Address, remotePort: UInt16,
                         now: Nanoseconds) -> UInt32 {
        isn(local: localAddress, localPort: localPort, remote: remoteAddress, remotePort: remotePort, now: now)
    }

    /// The per-address-pair offset added to TCP timestamps (RFC 7323 §5.4; Linux:
    /// `secure_tcp_ts_off`, which hashes the addresses only).
    @inline(__always)
    public func timestampOffset(local: IPv4Address, remote: IPv4Address) -> UInt32 {
        var h = SipHasher(key: timestampSecret)
        h.append(local.value); h.append(remote.value)
        return UInt32(truncatingIfNeeded: h.finalize())
    }
}
