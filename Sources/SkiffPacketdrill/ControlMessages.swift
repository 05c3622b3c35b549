#if canImport(Glibc)
import Glibc
#endif

/// Ancillary data `recvmsg` returns (Linux: `put_cmsg()` filling `msg_control`).
enum ControlMessages {
    /// `struct cmsghdr` on 64-bit Linux: `cmsg_len` (size_t), `cmsg_level`, `cmsg_type` (int).
    static let headerSize = 16

    /// CMSG_LEN / CMSG_SPACE for `n` data bytes (data aligned to 8 bytes).
    static func length(_ n: Int) -> Int { headerSize + n }
    static func space(_ n: Int) -> Int { headerSize + (n + 7) & ~7 }

    /// Writes one int control message into `control` of `capacity` bytes and returns how many
    /// bytes it used (the new `msg_controllen`) and whether it was cut short (MSG_CTRUNC): no
    /// buffer or one shorter than a header holds nothing; one shorter than the message holds what
    /// fits, its `cmsg_len` saying so. Linux: `put_cmsg()`.
    static func putInt(level: Int32, type: Int32, value: Int32,
                       into control: UnsafeMutableRawPointer?, capacity: Int) -> (used: Int, truncated: Bool) {
        guard let control, capacity >= headerSize else { return (0, true) }
        var message = [UInt8](repeating: 0, count: length(4))
        withUnsafeBytes(of: UInt64(length(4)).littleEndian) { message.replaceSubrange(0..<8, with: $0) }
        withUnsafeBytes(of: level.littleEndian) { message.replaceSubrange(8..<12, with: $0) }
        withUnsafeBytes(of: type.littleEndian) { message.replaceSubrange(12..<16, with: $0) }
        withUnsafeBytes(of: value.littleEndian) { message.replaceSubrange(16..<20, with: $0) }
        let truncated = capacity < message.count
        let n = min(capacity, message.count)
        if truncated { withUnsafeBytes(of: UInt64(n).littleEndian) { message.replaceSubrange(0..<8, with: $0) } }
        message.withUnsafeBytes { control.copyMemory(from: $0.baseAddress!, byteCount: n) }
        return (min(capacity, space(4)), truncated)
    }
}
