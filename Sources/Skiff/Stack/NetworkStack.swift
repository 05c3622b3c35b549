import SkiffWire

/// Events the stack's timers carry (Linux: the `timer_list` callbacks).
public enum StackTimer: Sendable {
    /// A neighbour entry's state timer (Linux: `neigh_timer_handler`).
    case neighbour(Int32)
    /// A reassembly queue expired (Linux: `ip_expire`).
    case reassembly(Int32)
    /// A qdisc that held packets back may send again (Linux: `qdisc_watchdog`).
    case qdiscWatchdog(device: Int32, queue: Int32)
    /// A throttled interrupt may fire (Linux: the NIC's ITR countdown).
    case interrupt(device: Int32, vector: Int32)
    /// A TCP socket's timer (Linux: `icsk_retransmit_timer`, `icsk_delack_timer`, `sk_timer`).
    case tcp(handle: Int32, kind: TCPTimerKind)
}

/// Which of a TCP socket's three timers fired.
public enum TCPTimerKind: Sendable {
    /// RTO, zero-window probe or tail loss probe (Linux: the retransmit timer with `icsk_pending`).
    case retransmit
    /// Delayed ACK (Linux: `tcp_delack_timer`).
    case delayedAck
    /// Keepalive, FIN-WAIT-2 and TIME-WAIT expiry (Linux: `sk_timer` / the timewait timer).
    case keepalive
    /// The next paced transmission (Linux: `tcp_pace_kick` on `tp->pacing_timer`).
    case pacing
}

/// One host's network stack: devices, routes, neighbours, netfilter, IP, the softirq engine and
/// its counters. Each stage lives in its own folder as an extension of this class; a stage calls
/// only the stage below it (transmit) or above it (receive).
///
/// Threading: one thread at a time (the engine's, or a caller holding the engine's lock).
/// Time: never read by stages; `run(now:)` and the entry points take `now`.
public final class NetworkStack {
    public let name: String
    /// Packet buffers for everything this host builds or receives.
    public let pool: BufferPool
    @exclusivity(unchecked) public internal(set) var devices: [NetDevice] = []
    @exclusivity(unchecked) public var routes = RouteTable()
    @exclusivity(unchecked) public var netfilter = Netfilter()
    @exclusivity(unchecked) public internal(set) var neighbours: NeighbourTable
    @exclusivity(unchecked) public internal(set) var softirq = SoftirqState()
    @exclusivity(unchecked) public var contexts = ContextAccounting()
    @exclusivity(unchecked) public var tracer = PacketTracer()
    /// When tracing is armed, also start traces for received packets.
    @exclusivity(unchecked) public var traceReceived = false
    @exclusivity(unchecked) public internal(set) var drops = DropCounters()
    @exclusivity(unchecked) public internal(set) var counters = IPCounters()
    @exclusivity(unchecked) public var ipConfig = IPConfiguration()
    @exclusivity(unchecked) var timers = TimerQueue<StackTimer>()
    /// Sockets whose transmitted buffers the device freed while TCP Small Queues held them
    /// back, for the TASKLET softirq (Linux: the per-CPU `tsq_tasklet` list).
    let transmitCompletions = TransmitCompletions()
    @exclusivity(unchecked) var reassembly: Reassembly
    @exclusivity(unchecked) var icmpLimiter = ICMPRateLimiter()
    /// Packet taps (Linux: `ptype_all`), e.g. pcap writers.
    @exclusivity(unchecked) public var taps: [PacketTap] = []
    /// Transport protocols above IP by protocol number (Linux: `inet_protos`).
    @exclusivity(unchecked) public var transportHandlers: [TransportHandler?] = Array(repeating: nil, count: 256)
    /// The time of the current engine entry.
    @exclusivity(unchecked) public internal(set) var now: Nanoseconds = 0
    /// Echo replies received, for ping (application-level, not the packet path).
    @exclusivity(unchecked) public internal(set) var echoReplies: [EchoReply] = []
    /// UDP ports with a listener; datagrams to others get ICMP port unreachable.
    @exclusivity(unchecked) public var udpListeners: Set<UInt16> = []
    /// Datagrams delivered to `udpListeners`.
    @exclusivity(unchecked) public internal(set) var udpDelivered: UInt64 = 0
    @exclusivity(unchecked) public internal(set) var udpDeliveredBytes: UInt64 = 0

    // Engine lists, preallocated.
    @exclusivity(unchecked) var pollList: [Int] = []          // (device << 16 | queue) of scheduled NAPI contexts
    @exclusivity(unchecked) var outputList: [Int] = []        // (device << 16 | queue) of qdiscs scheduled for NET_TX
    @exclusivity(unchecked) var pendingInterrupts: [Int] = [] // (device << 16 | vector)
    /// A doorbell handed frames to a deferred transmitter since the lock was last left
    /// (`NICModel.deferredTransmit`, `takeTransmitPending`).
    @exclusivity(unchecked) var transmitPending = false
    @exclusivity(unchecked) var ipIdentifier: UInt16 = 1
    /// NET_RX runs that stopped at the budget or time limit (Linux: `time_squeeze` in softnet_stat).
    @exclusivity(unchecked) public internal(set) var timeSqueeze: UInt64 = 0
    /// Linux: `netdev_budget`.
    @exclusivity(unchecked) public var netdevBudget = 300
    /// Linux: `netdev_budget_usecs` (2 ms), measured on the real clock.
    @exclusivity(unchecked) public var netdevBudgetTime: Nanoseconds = 2 * Time.millisecond
    /// Linux: `dev_tx_weight` (the qdisc quota per run).
    @exclusivity(unchecked) public var devTxWeight = 64

    // TCP and sockets.
    @exclusivity(unchecked) public var tcpConfig = TCPConfiguration()
    @exclusivity(unchecked) public internal(set) var tcpCounters = TCPCounters()
    /// Every queued TCP segment (write, retransmit, receive, out-of-order queues) lives here.
    @exclusivity(unchecked) var tcpSlab: PacketSlab
    /// Sockets by handle (Linux: the file descriptor table).
    @exclusivity(unchecked) var sockets: [SocketEntry] = []
    @exclusivity(unchecked) var freeHandles: [Int32] = []
    /// Per-descriptor flags and timeouts, parallel to `sockets`.
    @exclusivity(unchecked) var fileStates: [FileState] = []
    /// Connected TCP sockets by 4-tuple (Linux: `tcp_hashinfo.ehash`).
    @exclusivity(unchecked) var tcpConnections: [ConnectionKey: Int32] = [:]
    /// Listening TCP sockets by local port (Linux: `tcp_hashinfo.lhash2`).
    @exclusivity(unchecked) var tcpListeners: [UInt16: Int32] = [:]
    /// Local ports bound by TCP sockets (Linux: `bhash`), with how many sockets use each.
    @exclusivity(unchecked) var tcpBoundPorts: [UInt16: Int] = [:]
    @exclusivity(unchecked) var isnGenerator: ISNGenerator
    @exclusivity(unchecked) var synCookies: SynCookies
    /// The Fast Open key when `tcp_fastopen_key` is unset (Linux: a random one, made once).
    let fastOpenDefaultKey: SipHashKey
    /// Fast Open cookies and MSS learnt per destination (Linux: `tcp_metrics`' `tcpm_fastopen`).
    @exclusivity(unchecked) var fastOpenCache: [UInt32: FastOpenCacheEntry] = [:]
    @exclusivity(unchecked) var ephemeralPorts: EphemeralPorts
    @exclusivity(unchecked) var challengeAckCount = 0
    @exclusivity(unchecked) var challengeAckWindowStart: Nanoseconds = 0
    /// Orphaned sockets (closed by the application, still finishing) (Linux: `tcp_orphan_count`).
    @exclusivity(unchecked) public internal(set) var orphanCount = 0
    /// The last socket cookie given out (`TCPSocket.cookie`).
    var lastSocketCookie: UInt32 = 0
    /// Per handle: which opening of it this is (a handle closed and opened again is another
    /// file to a caller that slept on it; `wakeMarks` shows the difference).
    var handleGenerations: [UInt64] = []
    var lastHandleGeneration: UInt64 = 0
    /// Every queued UDP datagram (receive queues, corked datagrams) lives here.
    @exclusivity(unchecked) var udpSlab: PacketSlab
    /// Bound UDP sockets by port and the UDP counters (Linux: `udp_table`, `UDP_MIB_*`).
    @exclusivity(unchecked) var udp = UDPTable()

    public init(name: String, pool: BufferPool = BufferPool(), seed: UInt64 = 1, tcpSegments: Int = 1 << 16,
                udpDatagrams: Int = 1 << 12) {
        self.name = name
        self.pool = pool
        tcpSlab = PacketSlab(capacity: tcpSegments)
        udpSlab = PacketSlab(capacity: udpDatagrams)
        isnGenerator = ISNGenerator(secret: seed &* 0x9E37_79B9_7F4A_7C15 ^ 0x1234_5678)
        synCookies = SynCookies(secret: seed &* 0xC2B2_AE3D_27D4_EB4F ^ 0x8765_4321)
        ephemeralPorts = EphemeralPorts(secret: seed ^ 0xA5A5_A5A5)
        fastOpenDefaultKey = SipHashKey(seed: seed ^ 0x7F0F_7F0F_0FA5_7413)
        neighbours = NeighbourTable(seed: seed)
        reassembly = Reassembly()
        pollList.reserveCapacity(64)
        outputList.reserveCapacity(64)
        pendingInterrupts.reserveCapacity(64)
    }

    deinit {
        shutdownDevices()
        // Nothing will run the tasklet any more: take the sockets off its list, so that their
        // charges are freed with them (a queued charge waits for the list).
        transmitCompletions.drop()
    }

    /// Adds a device whose NIC is plugged into `port`; posts its receive buffers.
    @discardableResult
    public func addDevice(_ configuration: DeviceConfiguration, port: NetworkPort) -> NetDevice {
        let dev = NetDevice(index: devices.count, configuration: configuration, port: port)
        dev.nic.stack = self
        devices.append(dev)
        for q in dev.rxQueues { refillRx(device: dev, queue: q) }
        dev.nic.vectorTimers = (0..<dev.nic.vectors.count).map {
            timers.makeTimer(.interrupt(device: Int32(dev.index), vector: Int32($0)))
        }
        for q in dev.txQueues where q.qdisc.isTokenBucket {
            q.watchdog = timers.makeTimer(.qdiscWatchdog(device: Int32(dev.index), queue: Int32(q.index)))
        }
        return dev
    }

    /// Assigns an address and adds the connected route for its prefix (Linux: `ip addr add`).
    public func addAddress(_ address: IPv4Address, prefixLength: Int, device: NetDevice) {
        let a = InterfaceAddress(address, prefixLength: prefixLength)
        device.addresses.append(a)
        routes.add(Route(destination: a.network, prefixLength: prefixLength, gateway: nil,
                         device: device.index, metric: 0, source: address, scope: .link))
    }

    /// True when `a` is one of this host's addresses (Linux: `RTN_LOCAL`).
    @inline(__always)
    public func isLocalAddress(_ a: IPv4Address) -> Bool {
        for d in devices { for x in d.addresses where x.address == a { return true } }
        return false
    }

    /// The primary address of a device, if any.
    public func primaryAddress(of device: Int) -> IPv4Address? { devices[device].addresses.first?.address }

    /// Frees every buffer held in rings, qdiscs and queues and removes every DMA mapping.
    public func shutdownDevices() {
        for dev in devices {
            for q in dev.txQueues {
                cleanAllTx(device: dev, queue: q)
                while q.qdisc.dequeue(now: now) != nil {}
            }
            for q in dev.rxQueues { releaseRx(device: dev, queue: q) }
        }
        neighbours.flushQueues()
        reassembly.removeAll()
        releaseAllSockets()
    }
}

/// An ICMP echo reply that reached this host.
public struct EchoReply: Sendable, Equatable {
    public var from: IPv4Address
    public var identifier: UInt16
    public var sequence: UInt16
    /// ICMP payload bytes.
    public var payloadLength: Int
    public var time: Nanoseconds
}
