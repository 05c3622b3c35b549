#if canImport(Glibc)
import Glibc
#endif
import CSkiffLinux
import Skiff
import SkiffWire

/// `struct ifreq` as bytes: 16 bytes of name, then a 24-byte union (flags, MTU, index or a
/// sockaddr). Built on the stack of the caller; not on the packet path.
struct InterfaceRequest {
    var bytes: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)

    init(name: String) throws(PortError) {
        let utf8 = Array(name.utf8)
        guard !utf8.isEmpty, utf8.count < 16, !utf8.contains(where: { $0 == 0x2F || $0 <= 0x20 }) else {
            throw .badName(name)
        }
        withUnsafeMutableBytes(of: &bytes) { b in for (i, c) in utf8.enumerated() { b[i] = c } }
    }

    var short: Int16 {
        get { withUnsafeBytes(of: bytes) { $0.load(fromByteOffset: 16, as: Int16.self) } }
        set { withUnsafeMutableBytes(of: &bytes) { $0.storeBytes(of: newValue, toByteOffset: 16, as: Int16.self) } }
    }

    var int: Int32 {
        get { withUnsafeBytes(of: bytes) { $0.load(fromByteOffset: 16, as: Int32.self) } }
        set { withUnsafeMutableBytes(of: &bytes) { $0.storeBytes(of: newValue, toByteOffset: 16, as: Int32.self) } }
    }

    /// The hardware address of a SIOCGIFHWADDR answer (sockaddr at 16, sa_data at 18).
    var hardwareAddress: MACAddress {
        withUnsafeBytes(of: bytes) { MACAddress.read(from: $0.baseAddress! + 18) }
    }

    mutating func ioctl(_ fd: Int32, _ request: UInt) -> Int32 {
        withUnsafeMutableBytes(of: &bytes) { Glibc.ioctl(fd, request, $0.baseAddress!) }
    }
}

/// The kernel side of an interface, changed only when the user asks (Linux: `ip link set`).
/// Linux: `dev_ioctl()` with SIOCSIFMTU / SIOCSIFFLAGS / SIOCGIFHWADDR / SIOCGIFINDEX.
public enum InterfaceControl {
    /// Runs `body` with a throwaway AF_INET datagram socket for interface ioctls.
    static func withControlSocket<T>(_ device: String, _ body: (Int32) throws(PortError) -> T) throws(PortError) -> T {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .system(operation: "socket", device: device, errno: errno) }
        defer { close(fd) }
        return try body(fd)
    }

    /// The interface index (Linux: `if_nametoindex`).
    public static func index(of name: String) throws(PortError) -> Int32 {
        var r = try InterfaceRequest(name: name)
        return try withControlSocket(name) { (fd: Int32) throws(PortError) -> Int32 in
            guard r.ioctl(fd, LinuxConstants.SIOCGIFINDEX) == 0 else {
                throw PortError.from(errno: errno, operation: "look up", device: name)
            }
            return r.int
        }
    }

    /// The kernel interface's MAC address.
    public static func hardwareAddress(of name: String) throws(PortError) -> MACAddress {
        var r = try InterfaceRequest(name: name)
        return try withControlSocket(name) { (fd: Int32) throws(PortError) -> MACAddress in
            guard r.ioctl(fd, LinuxConstants.SIOCGIFHWADDR) == 0 else {
                throw PortError.from(errno: errno, operation: "read the address of", device: name)
            }
            return r.hardwareAddress
        }
    }

    /// The kernel interface's MTU.
    public static func mtu(of name: String) throws(PortError) -> Int {
        var r = try InterfaceRequest(name: name)
        return try withControlSocket(name) { (fd: Int32) throws(PortError) -> Int in
            guard r.ioctl(fd, LinuxConstants.SIOCGIFMTU) == 0 else {
                throw PortError.from(errno: errno, operation: "read the MTU of", device: name)
            }
            return Int(r.int)
        }
    }

    /// Sets the kernel interface's MTU (Linux: `ip link set NAME mtu M`).
    public static func setMTU(_ mtu: Int, of name: String) throws(PortError) {
        var r = try InterfaceRequest(name: name)
        r.int = Int32(mtu)
        try withControlSocket(name) { (fd: Int32) throws(PortError) in
            guard r.ioctl(fd, LinuxConstants.SIOCSIFMTU) == 0 else {
                throw PortError.from(errno: errno, operation: "set the MTU of", device: name)
            }
        }
    }

    /// Waits (bounded) until an interface that is up is also running: after a TAP or TUN gets
    /// its first descriptor the kernel turns the carrier on, but activates the device's qdisc
    /// only when its link-watch work runs; until then what the kernel sends on it is dropped (a
    /// first SYN-ACK or ARP reply lost costs a one-second retransmission). An interface that is
    /// down, or whose flags cannot be read, is not waited for. Returns whether it is running.
    /// Linux: `linkwatch_do_dev()` → `dev_activate()`, seen as IFF_RUNNING (`dev_get_flags`).
    @discardableResult
    public static func waitUntilRunning(_ name: String, limit: Nanoseconds = 2 * Time.second) -> Bool {
        guard var r = try? InterfaceRequest(name: name) else { return false }
        let deadline = MonotonicClock.read() &+ limit
        while true {
            let flags: Int16? = try? withControlSocket(name) { (fd: Int32) throws(PortError) -> Int16 in
                guard r.ioctl(fd, LinuxConstants.SIOCGIFFLAGS) == 0 else {
                    throw PortError.from(errno: errno, operation: "read the flags of", device: name)
                }
                return r.short
            }
            guard let f = flags, f & LinuxConstants.IFF_UP != 0 else { return false }
            if f & LinuxConstants.IFF_RUNNING != 0 { return true }
            if MonotonicClock.read() >= deadline { return false }
            usleep(2_000)
        }
    }

    /// Brings the kernel interface up (Linux: `ip link set NAME up`).
    public static func setUp(_ name: String) throws(PortError) {
        var r = try InterfaceRequest(name: name)
        try withControlSocket(name) { (fd: Int32) throws(PortError) in
            guard r.ioctl(fd, LinuxConstants.SIOCGIFFLAGS) == 0 else {
                throw PortError.from(errno: errno, operation: "read the flags of", device: name)
            }
            r.short |= LinuxConstants.IFF_UP
            guard r.ioctl(fd, LinuxConstants.SIOCSIFFLAGS) == 0 else {
                throw PortError.from(errno: errno, operation: "bring up", device: name)
            }
        }
    }
}
