import Testing
import SkiffWire
@testable import Skiff

/// SipHash, the RTT estimator, ISNs, SYN cookies and ephemeral ports.
struct TCPSupportTests {
    static let ms = Time.millisecond

    // MARK: SipHash-2-4

    static let referenceKey = SipHashKey(0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908)

    static func hash(length: Int) -> UInt64 {
        let bytes = (0..<length).map { UInt8($0) }
        return bytes.withUnsafeBytes { SipHasher.hash(key: referenceKey, bytes: $0) }
    }

    @Test func sipHashPaperVector() {
        // The SipHash paper, appendix A: key 00…0f, message 00…0e.
        #expect(Self.hash(length: 15) == 0xa129_ca61_49be_45e5)
    }

    @Test func sipHashReferenceVectors() {
        // vectors.h of the reference implementation, messages 00…(n−1).
        #expect(Self.hash(length: 0) == 0x726f_db47_dd0e_0e31)
        #expect(Self.hash(length: 1) == 0x74f8_39c5_93dc_67fd)
    }

    @Test func sipHashWordsMatchBytes() {
        let key = SipHashKey(seed: 42)
        let a: UInt32 = 0x0A00_0001, b: UInt32 = 0xC0A8_0101, c: UInt32 = 0x1234_5678, d: UInt32 = 7
        var bytes: [UInt8] = []
        for w in [a, b, c, d] { for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: w >> (8 * UInt32(i)))) } }
        let fromBytes3 = bytes[0..<12].withUnsafeBytes { SipHasher.hash(key: key, bytes: $0) }
        let fromBytes4 = bytes.withUnsafeBytes { SipHasher.hash(key: key, bytes: $0) }
        #expect(SipHasher.hash(key: key, a, b, c) == fromBytes3)
        #expect(SipHasher.hash(key: key, a, b, c, d) == fromBytes4)
        // Mixed widths across the 8-byte boundary.
        var h = SipHasher(key: key)
        h.append(UInt8(bytes[0])); h.append(UInt16(bytes[1]) | UInt16(bytes[2]) << 8)
        h.append(UInt64(bytes[3]) | UInt64(bytes[4]) << 8 | UInt64(bytes[5]) << 16 | UInt64(bytes[6]) << 24
                 | UInt64(bytes[7]) << 32 | UInt64(bytes[8]) << 40 | UInt64(bytes[9]) << 48 | UInt64(bytes[10]) << 56)
        bytes[11...].withUnsafeBytes { h.append(bytes: $0) }
        #expect(h.finalize() == fromBytes4)
    }

    // MARK: RTT estimator

    @Test func rttEstimatorSequence() {
        var e = RTTEstimator()
        #expect(e.srtt == nil)
        #expect(e.rto == Time.second)
        #expect(e.minRTT == nil)
        e.sample(100 * Self.ms)
        #expect(e.srtt == 100 * Self.ms)
        #expect(e.rttvar == 50 * Self.ms)
        #expect(e.rto == 300 * Self.ms)  // 100 + max(4·50, 200)
        e.sample(200 * Self.ms)
        #expect(e.rttvar == 62_500_000)  // ¾·50 + ¼·|100 − 200|
        #expect(e.srtt == 112_500_000)  // ⅞·100 + ⅛·200
        #expect(e.rto == 362_500_000)  // 112.5 + 4·62.5
        e.sample(50 * Self.ms)
        #expect(e.rttvar == 62_500_000)  // ¾·62.5 + ¼·62.5
        #expect(e.srtt == 104_687_500)  // ⅞·112.5 + ⅛·50
        #expect(e.rto == 354_687_500)
        #expect(e.minRTT == 50 * Self.ms)
    }

    @Test func rttEstimatorMinimumRTO() {
        var e = RTTEstimator()
        e.sample(Self.ms)
        #expect(e.rto == 201 * Self.ms)  // 1 ms + the 200 ms floor on the variance term
        for _ in 0..<50 { e.sample(Self.ms) }
        #expect(e.srtt == Self.ms)
        #expect(e.rto == 201 * Self.ms)
    }

    @Test func rttEstimatorBackoff() {
        var e = RTTEstimator()
        var seen: [Nanoseconds] = []
        for _ in 0..<9 {
            e.backoff()
            seen.append(e.rto)
        }
        #expect(seen == [2, 4, 8, 16, 32, 64, 120, 120, 120].map { $0 * Time.second })
        #expect(e.backoffCount == 9)
        e.sample(100 * Self.ms)
        #expect(e.backoffCount == 0)
        #expect(e.rto == 300 * Self.ms)
        e.backoff(); e.backoff()
        #expect(e.rto == 1200 * Self.ms)
        e.resetBackoff()
        #expect(e.rto == 300 * Self.ms)
        // A huge RTT is capped at the maximum.
        e.sample(200 * Time.second)
        #expect(e.rto == 120 * Time.second)
    }

    @Test func rttEstimatorFallback() {
        var e = RTTEstimator()
        e.useFallbackTimeout()
        #expect(e.rto == 3 * Time.second)
        e.sample(10 * Self.ms)
        e.useFallbackTimeout()
        #expect(e.rto == 210 * Self.ms)
    }

    @Test func windowedMinRTT() {
        var e = RTTEstimator()
        let s = Time.second
        e.sample(100 * Self.ms, now: 0)
        e.sample(150 * Self.ms, now: 100 * s)
        e.sample(120 * Self.ms, now: 200 * s)
        #expect(e.minRTT == 100 * Self.ms)
        // 301 s: the 100 ms sample left the 300 s window; the best of the rest is 120 ms.
        e.sample(130 * Self.ms, now: 301 * s)
        #expect(e.minRTT == 120 * Self.ms)
        // Everything stale: the new sample alone.
        e.sample(140 * Self.ms, now: 700 * s)
        #expect(e.minRTT == 140 * Self.ms)
        // A new minimum wins at once.
        e.sample(90 * Self.ms, now: 701 * s)
        #expect(e.minRTT == 90 * Self.ms)
        // Without times: the all-time minimum.
        var plain = RTTEstimator()
        for r: UInt64 in [30, 20, 50, 40] { plain.sample(r * Self.ms) }
        #expect(plain.minRTT == 20 * Self.ms)
    }

    // MARK: ISN

    static let a = IPv4Address(10, 0, 0, 1), b = IPv4Address(10, 0, 0, 2)

    @Test func isnGrowsWithTime() {
        let g = ISNGenerator(secret: SipHashKey(1, 2))
        let t0: Nanoseconds = 5 * Time.second
        let i0 = g.isn(local: Self.a, localPort: 40000, remote: Self.b, remotePort: 80, now: t0)
        let i1 = g.isn(local: Self.a, localPort: 40000, remote: Self.b, remotePort: 80, now: t0 + Self.ms)
        #expect(i1 &- i0 == 250)  // 1 ms of 4 µs ticks
        var last = i0
        for k in 1...1000 {
            let i = g.isn(local: Self.a, localPort: 40000, remote: Self.b, remotePort: 80,
                          now: t0 + UInt64(k) * 7 * Time.second)
            #expect(Int32(bitPattern: i &- last) > 0)
            last = i
        }
        #expect(g.generate(localAddress: Self.a, localPort: 40000, remoteAddress: Self.b, remotePort: 80, now: t0) == i0)
    }

    @Test func isnDiffersAcrossTuplesAndSecrets() {
        let g = ISNGenerator(secret: SipHashKey(1, 2))
        let now: Nanoseconds = 123 * Time.second
        let base = g.isn(local: Self.a, localPort: 40000, remote: Self.b, remotePort: 80, now: now)
        let others = [
            g.isn(local: Self.a, localPort: 40001, remote: Self.b, remotePort: 80, now: now),
            g.isn(local: Self.a, localPort: 40000, remote: Self.b, remotePort: 81, now: now),
            g.isn(local: Self.b, localPort: 40000, remote: Self.a, remotePort: 80, now: now),
            g.isn(local: Self.a, localPort: 40000, remote: IPv4Address(10, 0, 0, 3), remotePort: 80, now: now),
            ISNGenerator(secret: SipHashKey(1, 3)).isn(local: Self.a, localPort: 40000, remote: Self.b, remotePort: 80, now: now),
        ]
        #expect(Set(others + [base]).count == 6)
        #expect(g.timestampOffset(local: Self.a, remote: Self.b) != g.timestampOffset(local: Self.b, remote: Self.a))
    }

    // MARK: SYN cookies

    static let client = IPv4Address(192, 0, 2, 7), server = IPv4Address(198, 51, 100, 1)

    func encode(_ c: SynCookies, isn: UInt32 = 0xDEAD_BEEF, mss: UInt16, now: Nanoseconds) -> (cookie: UInt32, mss: UInt16) {
        c.encode(source: Self.client, sourcePort: 51000, destination: Self.server, destinationPort: 443,
                 clientISN: isn, mss: mss, now: now)
    }

    func decode(_ c: SynCookies, _ cookie: UInt32, isn: UInt32 = 0xDEAD_BEEF, sourcePort: UInt16 = 51000,
                now: Nanoseconds) -> UInt16? {
        c.decode(source: Self.client, sourcePort: sourcePort, destination: Self.server, destinationPort: 443,
                 cookie: cookie, clientISN: isn, now: now)
    }

    @Test func synCookieRoundTrip() {
        let c = SynCookies(secret0: SipHashKey(11, 12), secret1: SipHashKey(13, 14))
        let now = 1000 * Time.second
        for (offered, carried): (UInt16, UInt16) in [(536, 536), (1300, 1300), (1440, 1440), (1460, 1460),
                                                     (100, 536), (1000, 536), (1459, 1440), (9000, 1460)] {
            let (cookie, mss) = encode(c, mss: offered, now: now)
            #expect(mss == carried)
            #expect(SynCookies.encodedMSS(for: offered) == carried)
            #expect(decode(c, cookie, now: now) == carried)
            #expect(decode(c, cookie, now: now + 59 * Time.second) == carried)
        }
        // Different client ISNs give different cookies.
        #expect(encode(c, isn: 1, mss: 1460, now: now).cookie != encode(c, isn: 2, mss: 1460, now: now).cookie)
        // The counter sits in the top 8 bits, offset by the hash and the client's ISN.
        #expect(c.counter(now: now) == 16)
    }

    @Test func synCookieExpiry() {
        let c = SynCookies(secret: 99)
        let made = 600 * Time.second + 30 * Time.second  // counter 10, half-way through
        let (cookie, _) = encode(c, mss: 1460, now: made)
        #expect(decode(c, cookie, now: made + 29 * Time.second) == 1460)  // same counter
        #expect(decode(c, cookie, now: made + 30 * Time.second) == 1460)  // one period old
        #expect(decode(c, cookie, now: made + 89 * Time.second) == 1460)
        #expect(decode(c, cookie, now: made + 90 * Time.second) == nil)  // two periods: MAX_SYNCOOKIE_AGE
        #expect(decode(c, cookie, now: made + 1000 * Time.second) == nil)
    }

    @Test func synCookieTampering() {
        let c = SynCookies(secret0: SipHashKey(11, 12), secret1: SipHashKey(13, 14))
        let now = 1000 * Time.second
        let (cookie, _) = encode(c, mss: 536, now: now)
        #expect(decode(c, cookie, now: now) == 536)
        for bit in [3, 8, 12, 16, 20, 23, 25, 28, 31] {
            #expect(decode(c, cookie ^ (1 << UInt32(bit)), now: now) == nil, "bit \(bit)")
        }
        #expect(decode(c, cookie, isn: 0xDEAD_BEEF ^ 0x0001_0000, now: now) == nil)
        #expect(decode(c, cookie, isn: 0x1234_5678, now: now) == nil)
        // As in Linux, only the 2-bit index is checked below the hash: an ISN one less shifts
        // the index by one, a neighbouring (valid) MSS.
        #expect(decode(c, cookie, isn: 0xDEAD_BEEE, now: now) == 1300)
        #expect(decode(c, cookie, sourcePort: 51001, now: now) == nil)
        let other = SynCookies(secret0: SipHashKey(11, 12), secret1: SipHashKey(13, 15))
        #expect(decode(other, cookie, now: now) == nil)
        // The argument order with the client ISN first gives the same answer.
        #expect(c.decode(source: Self.client, sourcePort: 51000, destination: Self.server, destinationPort: 443,
                         clientISN: 0xDEAD_BEEF, cookie: cookie, now: now) == 536)
    }

    @Test func synCookieTimestampOptions() {
        let o = SynCookies.Options(windowScale: 7, sack: true, ecn: false)
        let ts = SynCookies.timestamp(o, now: 1_000_000)
        #expect(ts & 0x3f == 7 | 0x10)
        #expect(ts <= 1_000_000 && 1_000_000 - ts < 64)
        #expect(SynCookies.options(echoed: ts) == o)
        let none = SynCookies.Options(windowScale: nil, sack: false, ecn: true)
        let ts2 = SynCookies.timestamp(none, now: 1_000_000)
        #expect(ts2 & 0x3f == 0xf | 0x20)
        #expect(SynCookies.options(echoed: ts2) == none)
        // 1_000_000 & 0x3f == 0: the options would put the value ahead of the clock, so one
        // 64-tick step back.
        #expect(ts == 1_000_000 - 64 + 0x17)
    }

    // MARK: Ephemeral ports

    @Test func ephemeralPortsDistinctAndInRange() {
        var ports = EphemeralPorts(secret: SipHashKey(5, 6))
        var used = Set<UInt16>()
        for _ in 0..<2000 {
            let p = ports.next(destination: Self.b, destinationPort: 80) { used.contains($0) }
            guard let p else { Issue.record("ran out"); return }
            #expect(EphemeralPorts.defaultRange.contains(p))
            #expect(!used.contains(p))
            used.insert(p)
        }
        #expect(used.count == 2000)
        // The first pass hands out even ports (the parity of 32768).
        #expect(used.allSatisfy { $0 % 2 == 0 })
    }

    @Test func ephemeralPortsPerDestinationSequence() {
        // With nothing in use, the same destination gets a new port each time (the perturbation
        // table moves on); the port sequence is a pure function of the secret.
        var p1 = EphemeralPorts(secret: SipHashKey(5, 6))
        var p2 = EphemeralPorts(secret: SipHashKey(5, 6))
        var seq1: [UInt16] = [], seq2: [UInt16] = []
        for _ in 0..<5 {
            seq1.append(p1.next(destination: Self.b, destinationPort: 80) { _ in false }!)
            seq2.append(p2.next(destination: Self.b, destinationPort: 80) { _ in false }!)
        }
        #expect(seq1 == seq2)
        #expect(Set(seq1).count == 5)
    }

    @Test func ephemeralPortsExhaustion() {
        var ports = EphemeralPorts(secret: SipHashKey(7, 8), range: 1000...1009)
        var used = Set<UInt16>()
        while let p = ports.next(destination: Self.b, destinationPort: 443, isInUse: { used.contains($0) }) {
            #expect(!used.contains(p))
            used.insert(p)
        }
        #expect(used == Set(1000...1009))
        // The failing call asked about each of the 10 ports exactly once.
        var asked: [UInt16] = []
        #expect(ports.next(destination: Self.b, destinationPort: 443, isInUse: { asked.append($0); return true }) == nil)
        #expect(asked.sorted() == Array(1000...1009))
        // The brief's argument order.
        #expect(ports.next(isInUse: { _ in true }, destination: Self.b, destinationPort: 443) == nil)
        #expect(ports.next(isInUse: { _ in false }, destination: Self.b, destinationPort: 443) != nil)
    }
}
