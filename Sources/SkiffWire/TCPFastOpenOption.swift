/// A TCP Fast Open cookie (RFC 7413 §4.1.1): 4 to 16 bytes, an even count, or none at all (a
/// cookie request). Stored inline, in wire order: no heap.
public struct TCPFastOpenCookie: Hashable, Sendable {
    /// Shortest and longest cookie (Linux: `TCP_FASTOPEN_COOKIE_MIN`, `TCP_FASTOPEN_COOKIE_MAX`).
    public static let minimumLength = 4
    public static let maximumLength = 16

    /// Bytes 0..<8 (byte 0 most significant) and 8..<16.
    private var high: UInt64 = 0
    private var low: UInt64 = 0
    /// 0 (a request) or 4...16, even.
    public private(set) var count: Int = 0

    /// The empty cookie of a cookie request.
    public static let request = TCPFastOpenCookie()

    public init() {}

    /// A cookie of `bytes`; nil unless its length is 0 or an even 4...16.
    public init?(bytes: UnsafeRawBufferPointer) {
        guard Self.isValidLength(bytes.count) else { return nil }
        count = bytes.count
        for i in 0..<bytes.count { setByte(i, bytes[i]) }
    }

    /// An 8-byte cookie whose wire bytes are `value`'s little-endian bytes (Linux stores the
    /// SipHash result with `cpu_to_le64`).
    public init(littleEndian value: UInt64) {
        count = 8
        for i in 0..<8 { setByte(i, UInt8(truncatingIfNeeded: value >> UInt64(8 * i))) }
    }

    /// Whether a cookie of `n` bytes is well formed (Linux: `tcp_parse_fastopen_option`).
    public static func isValidLength(_ n: Int) -> Bool {
        n == 0 || (n >= minimumLength && n <= maximumLength && n & 1 == 0)
    }

    /// HAZARD: traps when `i` is outside `0..<count`.
    public subscript(i: Int) -> UInt8 {
        precondition(i >= 0 && i < count, "TCPFastOpenCookie index out of range")
        let word = i < 8 ? high : low
        return UInt8(truncatingIfNeeded: word >> UInt64(8 * (7 - i % 8)))
    }

    private mutating func setByte(_ i: Int, _ b: UInt8) {
        let shift = UInt64(8 * (7 - i % 8))
        if i < 8 { high = high & ~(0xFF << shift) | UInt64(b) << shift } else { low = low & ~(0xFF << shift) | UInt64(b) << shift }
    }
}

/// The Fast Open option of a SYN or SYN-ACK: kind 34 (RFC 7413) or the experimental kind 254
/// with magic 0xF989 (RFC 6994), which Linux still sends by default.
public struct TCPFastOpenOption: Hashable, Sendable {
    /// Kind 254's magic number (Linux: `TCPOPT_FASTOPEN_MAGIC`).
    public static let experimentMagic: UInt16 = 0xF989

    public var cookie: TCPFastOpenCookie
    /// Kind 254 + magic rather than kind 34.
    public var experimental: Bool

    public init(cookie: TCPFastOpenCookie, experimental: Bool) {
        self.cookie = cookie
        self.experimental = experimental
    }

    /// Option bytes before the cookie: 2 for kind 34, 4 for kind 254 with its magic.
    public var headerLength: Int { experimental ? 4 : 2 }

    /// Bytes on the wire, NOP padding to 32 bits included (Linux: `tcp_options_write`).
    public var paddedLength: Int { (headerLength + cookie.count + 3) & ~3 }

    /// Writes the option at `at`, then NOPs to the next 32-bit boundary; returns `paddedLength`.
    func emit(into b: UnsafeMutableRawBufferPointer, at i: Int) -> Int {
        let len = headerLength + cookie.count
        if experimental {
            b[i] = TCPOptionKind.experiment; b[i + 1] = UInt8(len)
            b[i + 2] = UInt8(Self.experimentMagic >> 8); b[i + 3] = UInt8(Self.experimentMagic & 0xFF)
        } else {
            b[i] = TCPOptionKind.fastOpen; b[i + 1] = UInt8(len)
        }
        for k in 0..<cookie.count { b[i + headerLength + k] = cookie[k] }
        for k in len..<paddedLength { b[i + k] = TCPOptionKind.noOperation }
        return paddedLength
    }

    /// Reads the option body (after kind and length) the way Linux does
    /// (`tcp_parse_fastopen_option`): an odd or out-of-range cookie length makes the option
    /// count as absent (nil), never an error. Kind 254 without the magic is another experiment (nil).
    static func parse(kind: UInt8, body: UnsafeRawBufferPointer) -> TCPFastOpenOption? {
        var cookieBytes = body
        let experimental = kind == TCPOptionKind.experiment
        if experimental {
            guard body.count >= 2, UInt16(body[0]) << 8 | UInt16(body[1]) == experimentMagic else { return nil }
            cookieBytes = UnsafeRawBufferPointer(rebasing: body[2...])
        }
        guard let c = TCPFastOpenCookie(bytes: cookieBytes) else { return nil }
        return TCPFastOpenOption(cookie: c, experimental: experimental)
    }
}
