import SkiffWire

/// SYN cookies (RFC 4987 §3.6; Linux: `net/ipv4/syncookies.c`, `net.ipv4.tcp_syncookies`).
///
/// A listener under SYN flood answers with an ISS that encodes what it would have kept in the
/// request: the MSS, as an index into `{536, 1300, 1440, 1460}` (Linux `msstab`), and a counter
/// of `period`-long ticks (Linux `tcp_cookie_time()`, 60 s), made unforgeable with two keyed
/// hashes of the 4-tuple (Linux `cookie_hash`, SipHash-2-4 of saddr, daddr, sport<<16|dport, count):
///
///     cookie = H0(tuple) + clientISN + (count << 24) + ((H1(tuple, count) + mssIndex) mod 2^24)
///
/// On the returning ACK, `decode` strips H0 and the client's ISN, reads the counter from the top
/// 8 bits, accepts it if fewer than `maxAge` (2) periods old (Linux `MAX_SYNCOOKIE_AGE`), strips
/// H1 for that counter and accepts the remainder if it is a valid index. As in Linux the check is
/// probabilistic: a forged cookie passes with probability about 2·4 / 2^32, and a change to its
/// two lowest bits can pass with a neighbouring MSS index.
///
/// "source" is the client (the SYN's and the ACK's IP source), "destination" the listener.
///
/// Window scale, SACK and ECN ride in the low 6 bits of the timestamp value when the client sent
/// timestamps (Linux `cookie_init_timestamp`, `cookie_timestamp_decode`): see `timestamp(_:now:)`
/// and `options(echoed:)`. Without timestamps those options are lost, as in Linux.
public struct SynCookies: Sendable {
    /// Linux `COOKIEBITS`: the low 24 bits hold hash + data, the top 8 the counter.
    public static let cookieBits: UInt32 = 24
    static let cookieMask: UInt32 = (1 << 24) - 1
    /// Linux `MAX_SYNCOOKIE_AGE`: counters this many periods old are refused.
    public static let maxAge: UInt32 = 2
    /// Linux `TCP_SYNCOOKIE_PERIOD` (60 s).
    public static let defaultPeriod: Nanoseconds = 60 * Time.second
    /// Linux `msstab`.
    public static let mssCount = 4

    /// The MSS for table index 0...3 (Linux `msstab`).
    @inline(__always)
    public static func mss(index: Int) -> UInt16 {
        switch index {
        case 0: 536
        case 1: 1300
        case 2: 1440
        default: 1460
        }
    }

    /// The largest table index whose MSS does not exceed `mss` (0 when it is below 536).
    @inline(__always)
    public static func mssIndex(for mss: UInt16) -> Int {
        var i = mssCount - 1
        while i > 0, mss < Self.mss(index: i) { i -= 1 }
        return i
    }

    /// The MSS a cookie can carry for a client that offered `mss` (Linux writes it back to `*mssp`).
    public static func encodedMSS(for mss: UInt16) -> UInt16 { Self.mss(index: mssIndex(for: mss)) }

    private let secret0: SipHashKey
    private let secret1: SipHashKey
    public let period: Nanoseconds

    public init(secret0: SipHashKey, secret1: SipHashKey, period: Nanoseconds = SynCookies.defaultPeriod) {
        self.secret0 = secret0; self.secret1 = secret1; self.period = max(period, 1)
    }

    /// Both keys from one 64-bit secret (expanded by SplitMix64).
    public init(secret: UInt64, period: Nanoseconds = SynCookies.defaultPeriod) {
        var s = secret ^ 0x7379_6e63_6f6f_6b69
        let a = SipHashKey(SipHashKey.splitMix(&s), SipHashKey.splitMix(&s))
        let b = SipHashKey(SipHashKey.splitMix(&s), SipHashKey.splitMix(&s))
        self.init(secret0: a, secret1: b, period: period)
    }

    /// The counter at `now` (Linux `tcp_cookie_time`).
    @inline(__always)
    public func counter(now: Nanoseconds) -> UInt32 { UInt32(truncatingIfNeeded: now / period) }

    @inline(__always)
    private func hash(_ key: SipHashKey, _ src: IPv4Address, _ sport: UInt16, _ dst: IPv4Address, _ dport: UInt16,
                      _ count: UInt32) -> UInt32 {
        UInt32(truncatingIfNeeded: SipHasher.hash(key: key, src.value, dst.value,
                                                  UInt32(sport) << 16 | UInt32(dport), count))
    }

    /// The ISS to send in the SYN-ACK and the MSS it encodes, which the connection must use
    /// (Linux `__cookie_v4_init_sequence`, which writes the MSS back through `mssp`). `mss` is
    /// the client's offered MSS, clamped by the caller to what the route allows.
    public func encode(source: IPv4Address, sourcePort: UInt16, destination: IPv4Address, destinationPort: UInt16,
                       clientISN: UInt32, mss: UInt16, now: Nanoseconds) -> (cookie: UInt32, mss: UInt16) {
        let count = counter(now: now)
        let index = Self.mssIndex(for: mss)
        let h0 = hash(secret0, source, sourcePort, destination, destinationPort, 0)
        let h1 = hash(secret1, source, sourcePort, destination, destinationPort, count)
        let cookie = h0 &+ clientISN &+ (count << Self.cookieBits) &+ ((h1 &+ UInt32(index)) & Self.cookieMask)
        return (cookie, Self.mss(index: index))
    }

    /// Checks a cookie (Linux `__cookie_v4_check`): `cookie` is the ACK's acknowledgment number − 1
    /// (our ISS) and `clientISN` its sequence number − 1. Returns the encoded MSS, or nil when
    /// the cookie is too old or does not verify.
    public func decode(source: IPv4Address, sourcePort: UInt16, destination: IPv4Address, destinationPort: UInt16,
                       cookie: UInt32, clientISN: UInt32, now: Nanoseconds) -> UInt16? {
        let count = counter(now: now)
        let h0 = hash(secret0, source, sourcePort, destination, destinationPort, 0)
        let c = cookie &- (h0 &+ clientISN)
        let diff = (count &- (c >> Self.cookieBits)) & (UInt32.max >> Self.cookieBits)
        guard diff < Self.maxAge else { return nil }
        let h1 = hash(secret1, source, sourcePort, destination, destinationPort, count &- diff)
        let index = (c &- h1) & Self.cookieMask
        guard index < UInt32(Self.mssCount) else { return nil }
        return Self.mss(index: Int(index))
    }

    /// `decode` with the client's ISN first.
    @inline(__always)
    public func decode(source: IPv4Address, sourcePort: UInt16, destination: IPv4Address, destinationPort: UInt16,
                       clientISN: UInt32, cookie: UInt32, now: Nanoseconds) -> UInt16? {
        decode(source: source, sourcePort: sourcePort, destination: destination, destinationPort: destinationPort,
               cookie: cookie, clientISN: clientISN, now: now)
    }

    // MARK: Options in the timestamp

    /// Options a cookie can carry in the timestamp (Linux `TS_OPT_*`).
    public struct Options: Sendable, Equatable {
        /// The client's window-scale shift, nil when it sent no window-scale option.
        public var windowScale: UInt8?
        public var sack: Bool
        public var ecn: Bool

        public init(windowScale: UInt8?, sack: Bool, ecn: Bool) {
            self.windowScale = windowScale; self.sack = sack; self.ecn = ecn
        }
    }

    /// Linux `TSBITS`, `TS_OPT_WSCALE_MASK`, `TS_OPT_SACK`, `TS_OPT_ECN`, `TCP_MAX_WSCALE`.
    static let tsBits: UInt32 = 6
    static let tsWscaleMask: UInt32 = 0xf
    static let tsSack: UInt32 = 1 << 4
    static let tsEcn: UInt32 = 1 << 5
    static let maxWindowScale: UInt8 = 14

    /// The TSval to send in the SYN-ACK (Linux `cookie_init_timestamp`): `now` (the timestamp
    /// clock) with its low 6 bits replaced by the options, moved back one 64-tick step if that
    /// would put it ahead of the clock.
    public static func timestamp(_ options: Options, now ts: UInt32) -> UInt32 {
        var bits = UInt32(options.windowScale.map { min($0, maxWindowScale) } ?? UInt8(tsWscaleMask)) & tsWscaleMask
        if options.sack { bits |= tsSack }
        if options.ecn { bits |= tsEcn }
        var value = (ts >> tsBits) << tsBits | bits
        if Int32(bitPattern: value &- ts) > 0 { value &-= 1 << tsBits }
        return value
    }

    /// The options from the TSecr of the client's ACK (Linux `cookie_timestamp_decode`; the 4-bit
    /// field's 15 means "no window scaling"). Only meaningful when the ACK had a timestamp; the
    /// caller still refuses options its sysctls turned off, as Linux does.
    public static func options(echoed tsecr: UInt32) -> Options {
        let w = tsecr & tsWscaleMask
        return Options(windowScale: w == tsWscaleMask ? nil : UInt8(w),
                       sack: tsecr & tsSack != 0, ecn: tsecr & tsEcn != 0)
    }
}
