/// Control messages in Linux's layout on 64-bit machines: `struct cmsghdr` (a `size_t` length,
/// an `int` level, an `int` type), then the data, each message padded to 8 bytes.
/// Linux: `CMSG_LEN`, `CMSG_SPACE`, `put_cmsg()` in `net/core/scm.c`.
public enum ControlMessage {
    public static let headerLength = 16
    /// `CMSG_LEN(n)`: header and data.
    public static func length(_ n: Int) -> Int { headerLength + n }
    /// `CMSG_SPACE(n)`: header and data padded to the next message.
    public static func space(_ n: Int) -> Int { headerLength + (n + 7) & ~7 }

    public static let levelIP: Int32 = 0          // SOL_IP
    public static let levelSocket: Int32 = 1      // SOL_SOCKET
    public static let ipRecvErr: Int32 = 11       // IP_RECVERR
    public static let timestamping: Int32 = 37    // SCM_TIMESTAMPING (= SO_TIMESTAMPING_OLD)
    public static let timestampingNew: Int32 = 65 // SCM_TIMESTAMPING_NEW

    /// `struct sock_extended_err` and the `struct sockaddr_in` IPv4 appends (the offender).
    public static let extendedErrorLength = 16 + 16
    /// `struct scm_timestamping`: three `struct timespec` (software, legacy, hardware).
    public static let timestampingLength = 3 * 16
}

/// Writes control messages into a caller's buffer as Linux's `put_cmsg()` does: when the buffer
/// cannot hold a header the message is dropped; when it cannot hold the data the message is cut
/// (its length says what is there); either way `truncated` is set (MSG_CTRUNC). `used` is what
/// `msg_controllen` returns.
struct ControlMessageWriter {
    let buffer: UnsafeMutableRawBufferPointer
    private(set) var used = 0
    private(set) var truncated = false

    init(_ buffer: UnsafeMutableRawBufferPointer) { self.buffer = buffer }

    mutating func put(level: Int32, type: Int32, _ data: UnsafeRawBufferPointer) {
        let left = buffer.count - used
        guard let base = buffer.baseAddress, left >= ControlMessage.headerLength else { truncated = true; return }
        var length = ControlMessage.length(data.count)
        if left < length { truncated = true; length = left }
        let p = base + used
        p.storeBytes(of: UInt64(length), as: UInt64.self)
        p.storeBytes(of: level, toByteOffset: 8, as: Int32.self)
        p.storeBytes(of: type, toByteOffset: 12, as: Int32.self)
        let n = length - ControlMessage.headerLength
        if n > 0 { (p + ControlMessage.headerLength).copyMemory(from: data.baseAddress!, byteCount: n) }
        used += min(ControlMessage.space(data.count), left)
    }

    /// IP_RECVERR: `struct sock_extended_err` with a zero offender address (Linux:
    /// `ip_recv_error()`; the offender is filled only for ICMP errors and OPT_CMSG timestamps).
    mutating func putExtendedError(_ m: SocketErrorMessage) {
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &words) { b in
            b.storeBytes(of: m.errno, toByteOffset: 0, as: UInt32.self)
            b.storeBytes(of: m.origin, toByteOffset: 4, as: UInt8.self)
            b.storeBytes(of: m.type, toByteOffset: 5, as: UInt8.self)
            b.storeBytes(of: m.code, toByteOffset: 6, as: UInt8.self)
            b.storeBytes(of: m.info, toByteOffset: 8, as: UInt32.self)
            b.storeBytes(of: m.data, toByteOffset: 12, as: UInt32.self)
            put(level: ControlMessage.levelIP, type: ControlMessage.ipRecvErr, UnsafeRawBufferPointer(b))
        }
    }

    /// SCM_TIMESTAMPING with the software timestamp in the first `timespec` (Linux:
    /// `__sock_recv_timestamp()`).
    mutating func putTimestamping(_ t: Nanoseconds, newLayout: Bool) {
        var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (t / 1_000_000_000, t % 1_000_000_000, 0, 0, 0, 0)
        withUnsafeBytes(of: &words) { b in
            put(level: ControlMessage.levelSocket, type: newLayout ? ControlMessage.timestampingNew : ControlMessage.timestamping, b)
        }
    }
}
