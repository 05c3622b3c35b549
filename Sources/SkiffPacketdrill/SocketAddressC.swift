import Skiff
import SkiffWire

/// `struct sockaddr_in` as Linux lays it out: family (host order), port and address (network
/// order), eight bytes of zero padding.
enum SockaddrIn {
    static let size = 16

    /// Reads an IPv4 address from a caller's `sockaddr`. EINVAL for a short length or a NULL
    /// pointer, EAFNOSUPPORT for another family (Linux: `inet_bind`, `tcp_v4_connect`).
    static func read(_ p: UnsafeRawPointer?, length: UInt32) -> Result<SocketAddress, Errno> {
        guard let p else { return .failure(.EFAULT) }
        guard length >= 2 else { return .failure(.EINVAL) }
        let family = Int32(p.loadUnaligned(as: UInt16.self))
        if family == LinuxABI.AF_UNSPEC { return .failure(Errno(LinuxABI.EAFNOSUPPORT)) }
        guard family == LinuxABI.AF_INET else { return .failure(Errno(LinuxABI.EAFNOSUPPORT)) }
        guard length >= UInt32(size) else { return .failure(.EINVAL) }
        let port = UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
        let addr = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        return .success(SocketAddress(IPv4Address(addr), port))
    }

    /// Whether a caller's `sockaddr` names AF_UNSPEC (false for NULL or a short length).
    static func isUnspecified(_ p: UnsafeRawPointer?, length: UInt32) -> Bool {
        guard let p, length >= 2 else { return false }
        return Int32(p.loadUnaligned(as: UInt16.self)) == LinuxABI.AF_UNSPEC
    }

    /// Writes `a` into a caller's `sockaddr` of `*length` bytes (truncated as Linux truncates)
    /// and sets `*length` to the full size. Nothing happens when either pointer is NULL.
    static func write(_ a: SocketAddress, to p: UnsafeMutableRawPointer?, length: UnsafeMutablePointer<UInt32>?) {
        guard let p, let length else { return }
        var bytes = [UInt8](repeating: 0, count: size)
        bytes.withUnsafeMutableBytes { b in
            b.storeBytes(of: UInt16(LinuxABI.AF_INET), toByteOffset: 0, as: UInt16.self)
            b.storeBytes(of: a.port.bigEndian, toByteOffset: 2, as: UInt16.self)
            b.storeBytes(of: a.address.value.bigEndian, toByteOffset: 4, as: UInt32.self)
        }
        let n = min(Int(length.pointee), size)
        if n > 0 { bytes.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: n) } }
        length.pointee = UInt32(size)
    }
}
