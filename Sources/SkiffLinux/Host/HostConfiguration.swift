import Skiff
import SkiffWire

/// What a real host is plugged into and how it is addressed: the options of `skiff up`.
public struct HostConfiguration: Sendable {
    public enum Attachment: Sendable, Equatable {
        /// A TAP device (created if missing).
        case tap(String)
        /// A TUN device (created if missing).
        case tun(String)
        /// An existing interface, through an AF_PACKET socket.
        case packet(String)

        public var deviceName: String {
            switch self { case let .tap(n), let .tun(n), let .packet(n): n }
        }

        /// "TAP", "TUN" or "AF_PACKET".
        public var kind: String {
            switch self { case .tap: "TAP"; case .tun: "TUN"; case .packet: "AF_PACKET" }
        }
    }

    public var attachment: Attachment
    public var address: IPv4Address
    public var prefixLength: Int
    public var gateway: IPv4Address?
    public var mtu: Int = 1500
    public var queues: Int = 1
    /// Negotiate vnet-header offloads with the kernel (TAP only).
    public var offload = false
    /// Write frames through io_uring, up to 32 with one system call, where the kernel allows it
    /// (else, and with false, one `writev` per frame).
    public var batchedWrites = true
    /// Capture every frame Skiff sends or receives to this pcap file.
    public var pcapPath: String?
    /// Also bring the kernel side up and set its MTU (the tests use `ip` themselves).
    public var configureKernelSide = false
    /// Engine threads busy-poll their port this long before sleeping (0: never).
    public var busyPoll: Nanoseconds = 0
    /// A blocked receive polls the port itself this long before sleeping (0: never).
    public var busyRead: Nanoseconds = 0
    /// A blocked receive sleeps on the port and runs its NAPI poll itself (`DeviceSleep`),
    /// with one queue; the engine keeps the timers, and takes the port back while a stream flows.
    public var sleepOnDevice = true
    /// Descriptor ring size of Skiff's NIC.
    public var ringSize = 512
    public var seed: UInt64 = 0x5EED

    public init(attachment: Attachment, address: IPv4Address, prefixLength: Int) {
        self.attachment = attachment; self.address = address; self.prefixLength = prefixLength
    }
}

/// A host could not come up: the port's error, or one of its own.
public enum HostError: Error, CustomStringConvertible, Sendable {
    case port(PortError)
    case pcap(String)
    case badConfiguration(String)

    public var description: String {
        switch self {
        case let .port(e): e.description
        case let .pcap(s): s
        case let .badConfiguration(s): s
        }
    }
}
