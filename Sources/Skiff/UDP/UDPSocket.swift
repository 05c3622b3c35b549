import SkiffWire

/// Settings of a UDP socket a user can change (Linux: `UDP_CORK` in `struct udp_sock`;
/// `SO_REUSEADDR`, `SO_REUSEPORT`, `SO_BROADCAST` in `struct sock`).
public struct UDPOptionsState: Sendable, Equatable {
    /// UDP_CORK: sends append to one pending datagram until the cork is removed.
    public var cork = false
    /// SO_REUSEADDR: with every other socket on the port also setting it, the port may be shared.
    public var reuseAddress = false
    /// SO_REUSEPORT: the same, for sockets that all set SO_REUSEPORT.
    public var reusePort = false
    /// SO_BROADCAST: may send to (and connect to) a broadcast address.
    public var broadcast = false
    public init() {}
}

/// A UDP socket option for `setUDPOption` (Linux: `setsockopt()` → `udp_lib_setsockopt()` /
/// `sock_setsockopt()`).
public enum UDPSocketOption: Sendable, Equatable {
    /// UDP_CORK: clearing it sends the pending datagram (Linux: `udp_push_pending_frames()`).
    case cork(Bool)
    /// SO_REUSEADDR.
    case reuseAddress(Bool)
    /// SO_REUSEPORT.
    case reusePort(Bool)
    /// SO_BROADCAST.
    case broadcast(Bool)
    /// SO_RCVBUF: Linux doubles the value (bookkeeping overhead) after clamping it to
    /// `rmem_max`; the result is at least `SOCK_MIN_RCVBUF` (2304).
    case receiveBuffer(Int)
    /// SO_SNDBUF: doubled after clamping to `wmem_max`; at least `SOCK_MIN_SNDBUF` (4608).
    case sendBuffer(Int)
}

/// UDP counters with `nstat`'s names that `IPCounters` does not have (Linux: `/proc/net/snmp`
/// `Udp:` line).
public struct UDPCounters: Sendable, Equatable {
    /// Datagrams dropped because the socket's receive buffer was full (Linux:
    /// `UDP_MIB_RCVBUFERRORS`, counted in `__udp_queue_rcv_skb()`).
    public var udpRcvbufErrors: UInt64 = 0
    /// Datagrams not sent for lack of buffer memory (Linux: `UDP_MIB_SNDBUFERRORS`).
    public var udpSndbufErrors: UInt64 = 0
    public init() {}
}

/// The UDP socket hash (Linux: `udp_table`): the sockets bound to each local port.
struct UDPTable {
    /// Handles bound to each port, oldest first; lookups walk newest first, as Linux's hash
    /// chains are (new sockets are added at the head).
    var ports: [UInt16: [Int32]] = [:]
    var counters = UDPCounters()
}

/// One UDP socket (Linux: `struct udp_sock` with its `struct inet_sock`).
///
/// Received datagrams wait in `receiveQueue` (Linux: `sk_receive_queue`), one buffer each in the
/// stack's UDP slab with its data at the payload and the sender in the UDP control block. Each
/// is charged its true size (the pool block it occupies; Linux: `skb->truesize`) to
/// `receiveMemory` (Linux: `sk_rmem_alloc`), which `receiveBufferSize` (Linux: `sk_rcvbuf`)
/// bounds. A corked datagram being built waits in `pendingQueue` (Linux: `sk_write_queue` while
/// `up->pending` is set), at most one buffer holding the UDP header and the payload so far.
public final class UDPSocket {
    public let handle: Int32
    /// Bound local address (Linux: `inet_rcv_saddr`); `.any` for every local address.
    @exclusivity(unchecked) public internal(set) var localAddress = IPv4Address.any
    /// Bound local port (Linux: `inet_num`); 0 while unbound.
    @exclusivity(unchecked) public internal(set) var localPort: UInt16 = 0
    /// Default destination set by `connect` (Linux: `inet_daddr`, `inet_dport`).
    @exclusivity(unchecked) public internal(set) var remoteAddress = IPv4Address.any
    @exclusivity(unchecked) public internal(set) var remotePort: UInt16 = 0
    /// Connected (Linux: `sk_state == TCP_ESTABLISHED`): sends default to the peer and only its
    /// datagrams are received.
    @exclusivity(unchecked) public internal(set) var connected = false
    @exclusivity(unchecked) var bound = false
    /// The address / the port came from `bind` (Linux: `SOCK_BINDADDR_LOCK`, `SOCK_BINDPORT_LOCK`);
    /// otherwise `connect` chose them and disconnecting releases them.
    @exclusivity(unchecked) var addressLocked = false
    @exclusivity(unchecked) var portLocked = false

    @exclusivity(unchecked) public internal(set) var options = UDPOptionsState()
    /// Linux: `sk_rcvbuf`, default `net.core.rmem_default` (212992).
    @exclusivity(unchecked) public internal(set) var receiveBufferSize = 212_992
    /// Linux: `sk_sndbuf`, default `net.core.wmem_default` (212992). Kept for `getsockopt`; sent
    /// datagrams are not charged to the socket once handed to IP.
    @exclusivity(unchecked) public internal(set) var sendBufferSize = 212_992
    /// True sizes of the queued datagrams (Linux: `sk_rmem_alloc`).
    @exclusivity(unchecked) public internal(set) var receiveMemory = 0
    /// Pending error (Linux: `sk_err`), reported by the next receive or send.
    @exclusivity(unchecked) public internal(set) var pendingError: Errno?

    var receiveQueue = PacketList()
    var pendingQueue = PacketList()
    /// Destination and source of the pending datagram (Linux: `inet->cork.fl`).
    @exclusivity(unchecked) var pendingDestination = SocketAddress(.any, 0)
    @exclusivity(unchecked) var pendingSource = IPv4Address.any
    var routeCache = RouteCache()

    // Counters (as `ss -u -e` and `/proc/net/udp` show them).
    /// Datagrams ever queued to this socket; also the readiness generation epoll's edge
    /// trigger watches (Linux wakes the socket's wait queue on each, `sk_data_ready`).
    @exclusivity(unchecked) public internal(set) var datagramsQueued: UInt64 = 0
    /// Datagrams dropped at this socket (Linux: `sk_drops`).
    @exclusivity(unchecked) public internal(set) var datagramsDropped: UInt64 = 0
    @exclusivity(unchecked) public internal(set) var datagramsSent: UInt64 = 0
    @exclusivity(unchecked) public internal(set) var bytesSent: UInt64 = 0
    @exclusivity(unchecked) public internal(set) var datagramsReceived: UInt64 = 0
    @exclusivity(unchecked) public internal(set) var bytesReceived: UInt64 = 0

    init(handle: Int32) { self.handle = handle }

    /// Datagrams waiting to be read.
    public var queuedDatagrams: Int { receiveQueue.count }
    /// Payload bytes of the pending (corked) datagram, or nil when nothing is pending
    /// (Linux: `up->len` less the header while `up->pending`).
    public var pendingBytes: Int? { pendingQueue.isEmpty ? nil : pendingQueue.bytes - 8 }
}

extension PacketMeta {
    /// The sender's address of a received datagram (Linux keeps per-layer scratch in `skb->cb`,
    /// `UDP_SKB_CB` for UDP; Skiff's control block is the TCP fields, reused here).
    var udpSourceAddress: IPv4Address {
        get { IPv4Address(tcpSeq) }
        set { tcpSeq = newValue.value }
    }
    /// The sender's port of a received datagram (in the control block, like `udpSourceAddress`).
    var udpSourcePort: UInt16 {
        get { UInt16(truncatingIfNeeded: tcpEndSeq) }
        set { tcpEndSeq = UInt32(newValue) }
    }
}

extension PacketBuffer {
    /// Memory the buffer pins: its block's capacity (Linux: `skb->truesize`).
    @inline(__always)
    var trueSize: Int { Int(block.pointee.capacity) }
}

extension ReceiveFlags {
    /// MSG_TRUNC: as an argument, return a datagram's full length even when the buffer was too
    /// short; in `ReceivedDatagram.flags`, the datagram was cut short.
    public static let truncate = ReceiveFlags(rawValue: 0x20)
}

extension Errno {
    /// Linux errno values the UDP and epoll calls add.
    public static let ENOENT = Errno(2)
    public static let EACCES = Errno(13)
    public static let EEXIST = Errno(17)
    public static let ECANCELED = Errno(125)
}
