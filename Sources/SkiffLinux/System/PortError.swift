#if canImport(Glibc)
import Glibc
#endif
import CSkiffLinux

/// Why a port could not be opened or configured. Each case prints one line that names the
/// device and what to do; nothing here traps.
public enum PortError: Error, Sendable, CustomStringConvertible, Equatable {
    /// `/dev/net/tun` is missing (no tun module, or a container without the device node).
    case noTunDevice(errno: Int32)
    /// The caller may not create or attach the device (needs CAP_NET_ADMIN, or device owner).
    case permission(device: String, operation: String)
    /// Another process holds the device (a single-queue TAP/TUN already attached).
    case busy(device: String)
    /// No interface of that name (AF_PACKET needs an existing interface).
    case noSuchDevice(String)
    /// The name is empty or longer than IFNAMSIZ - 1 (15) bytes.
    case badName(String)
    /// The interface exists but is of another kind or mode (e.g. a TUN opened as TAP, or a
    /// single-queue device opened with several queues).
    case wrongKind(device: String, errno: Int32)
    /// Any other failed system call.
    case system(operation: String, device: String, errno: Int32)

    public var description: String {
        switch self {
        case let .noTunDevice(e):
            return "cannot open /dev/net/tun: \(PortError.text(e)) (is the tun module loaded, or the device node present?)"
        case let .permission(d, op):
            return "\(op) \(d): permission denied (needs root or CAP_NET_ADMIN)"
        case let .busy(d):
            return "device \(d) is busy: another process is attached to it"
        case let .noSuchDevice(d):
            return "no such network interface: \(d)"
        case let .badName(d):
            return "bad interface name '\(d)': 1 to 15 bytes, no '/' or whitespace"
        case let .wrongKind(d, e):
            return "device \(d) exists but cannot be opened this way: \(PortError.text(e)) (wrong type, or multi-queue mismatch?)"
        case let .system(op, d, e):
            return "\(op) \(d): \(PortError.text(e))"
        }
    }

    static func text(_ e: Int32) -> String {
        guard let p = strerror(e) else { return "errno \(e)" }
        return String(cString: p)
    }

    /// Classifies the errno of an operation on `device`.
    static func from(errno e: Int32, operation: String, device: String) -> PortError {
        switch e {
        case EPERM, EACCES: return .permission(device: device, operation: operation)
        case EBUSY: return .busy(device: device)
        case ENODEV, ENXIO: return .noSuchDevice(device)
        default: return .system(operation: operation, device: device, errno: e)
        }
    }
}
