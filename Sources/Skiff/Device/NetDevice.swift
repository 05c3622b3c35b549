import SkiffWire

/// How frames on a device begin.
public enum LinkType: Sendable {
    /// Ethernet II frames with MAC addresses (TAP, memory links, AF_PACKET).
    case ethernet
    /// Bare IP packets, no link header and no ARP (TUN, packetdrill). Linux: `ARPHRD_NONE`.
    case ip
}

/// Hardware features a device offers (Linux: `netdev_features_t`).
public struct DeviceFeatures: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Scatter-gather: frames may be built from a header and fragments (Linux: `NETIF_F_SG`).
    public static let scatterGather = DeviceFeatures(rawValue: 1 << 0)
    /// TCP segmentation offload (Linux: `NETIF_F_TSO`); without it GSO segments in software.
    public static let tso = DeviceFeatures(rawValue: 1 << 1)
    /// Transport checksum offload (Linux: `NETIF_F_HW_CSUM`).
    public static let txChecksum = DeviceFeatures(rawValue: 1 << 2)
    /// Generic segmentation offload: TCP builds packets of up to 64 KiB, cut into segments in
    /// software just before the driver when the device has no TSO (Linux: `NETIF_F_GSO`, on by
    /// default).
    public static let gso = DeviceFeatures(rawValue: 1 << 3)
    /// Generic receive offload: NAPI merges consecutive TCP segments of a flow before the stack
    /// sees them (Linux: `NETIF_F_GRO`, on by default).
    public static let gro = DeviceFeatures(rawValue: 1 << 4)
}

/// Interface counters, as `ip -s link` shows them (Linux: `struct rtnl_link_stats64`).
public struct DeviceStatistics: Sendable {
    public var rxPackets: UInt64 = 0, rxBytes: UInt64 = 0, rxErrors: UInt64 = 0, rxDropped: UInt64 = 0
    public var txPackets: UInt64 = 0, txBytes: UInt64 = 0, txErrors: UInt64 = 0, txDropped: UInt64 = 0
    public var multicast: UInt64 = 0
    public init() {}
}

/// An IPv4 address on an interface.
public struct InterfaceAddress: Sendable, Equatable {
    public var address: IPv4Address
    public var prefixLength: Int
    public init(_ address: IPv4Address, prefixLength: Int) {
        self.address = address; self.prefixLength = prefixLength
    }
    public var mask: UInt32 { prefixLength == 0 ? 0 : ~UInt32(0) << UInt32(32 - prefixLength) }
    public var network: IPv4Address { IPv4Address(address.value & mask) }
    public var broadcast: IPv4Address { IPv4Address(address.value | ~mask) }
}

/// A transmit queue: its qdisc and the driver ring behind it (Linux: `struct netdev_queue`).
public final class TxQueue {
    public let index: Int
    public let deviceIndex: Int
    /// The queueing discipline (Linux: `txq->qdisc`).
    @exclusivity(unchecked) public var qdisc: Qdisc
    /// The driver's descriptor ring.
    public let ring: TxRing
    /// Stopped by the driver when its ring is full (Linux: `__QUEUE_STATE_DRV_XOFF`).
    @exclusivity(unchecked) public internal(set) var stopped = false
    /// Some context is running this qdisc now (Linux: `qdisc_run_begin` / `__QDISC_STATE_RUNNING`).
    @exclusivity(unchecked) public internal(set) var running = false
    /// On the NET_TX output list (Linux: `__QDISC_STATE_SCHED`).
    @exclusivity(unchecked) public internal(set) var scheduled = false
    /// Timer for qdiscs that hold packets back (tbf).
    @exclusivity(unchecked) var watchdog: TimerID?
    /// Times the qdisc was run to its quota and deferred to NET_TX.
    @exclusivity(unchecked) public internal(set) var quotaDeferrals: UInt64 = 0
    /// Packets that bypassed an empty qdisc (Linux: `TCQ_F_CAN_BYPASS`).
    @exclusivity(unchecked) public internal(set) var bypassed: UInt64 = 0

    init(index: Int, deviceIndex: Int, qdisc: Qdisc, ring: TxRing) {
        self.index = index; self.deviceIndex = deviceIndex; self.qdisc = qdisc; self.ring = ring
    }
}

/// NAPI context of one receive queue (Linux: `struct napi_struct`).
public struct NAPIContext: Sendable {
    /// Work per poll (Linux: `NAPI_POLL_WEIGHT`, 64).
    public var weight = 64
    /// On the poll list (Linux: `NAPI_STATE_SCHED`).
    public internal(set) var scheduled = false
    public internal(set) var polls: UInt64 = 0
    /// Polls that used their whole weight and stayed on the list.
    public internal(set) var fullPolls: UInt64 = 0
}

/// A receive queue: its ring and NAPI context.
public final class RxQueue {
    public let index: Int
    public let ring: RxRing
    @exclusivity(unchecked) public internal(set) var napi = NAPIContext()
    /// Packets GRO is merging during a poll.
    let gro = GROTable()
    /// Segments GRO merged into another packet, and packets it passed up.
    public var groMerged: UInt64 { gro.merged }
    public var groFlushed: UInt64 { gro.flushed }
    init(index: Int, ring: RxRing) { self.index = index; self.ring = ring }
}

/// How to make a device.
public struct DeviceConfiguration: Sendable {
    public var name: String
    public var linkType: LinkType = .ethernet
    public var mac: MACAddress = .zero
    public var mtu: Int = 1500
    public var txQueues: Int = 1
    public var rxQueues: Int = 1
    public var ringSize: Int = 256
    public var features: DeviceFeatures = [.scatterGather, .gso, .gro]
    /// Skip ARP (Linux: `IFF_NOARP`); implied by `.ip` link type.
    public var noARP = false
    /// Qdisc for each TX queue.
    public var qdisc: QdiscKind = .pfifoFast
    /// Linux: `txqueuelen`.
    public var txQueueLength: Int = 1000
    /// Minimum gap between interrupts (ITR).
    public var interruptThrottle: Nanoseconds = 0
    /// The NIC's line rate in bits per second (0 = infinitely fast).
    public var lineRate: UInt64 = 0
    /// Largest frame the device takes in, when it is more than the MTU allows. A TUN device
    /// takes whatever its writer hands it, up to 64 KiB, whatever the MTU (Linux:
    /// `tun_get_user()` checks no MTU); a NIC takes what fits its receive buffers.
    public var maxReceiveFrame: Int = 0
    /// The driver frees a frame's charge to its socket as soon as the frame is on the ring, not
    /// at its completion, so TCP Small Queues counts only what waits in the qdisc. Linux: the
    /// drivers that call `skb_orphan()` in their `ndo_start_xmit` (tun, veth, loopback); the
    /// packetdrill traces were taken on tun.
    public var orphansOnTransmit = false

    public init(name: String, linkType: LinkType = .ethernet, mac: MACAddress = .zero, mtu: Int = 1500) {
        self.name = name; self.linkType = linkType; self.mac = mac; self.mtu = mtu
    }
}

/// Which qdisc a device's queues get.
public enum QdiscKind: Sendable, Equatable {
    case noqueue
    case pfifoFast
    case fqCodel
    /// Token bucket: bytes per second, burst bytes, limit bytes.
    case tbf(rate: UInt64, burst: Int, limit: Int)

    func make(txQueueLength: Int) -> Qdisc {
        switch self {
        case .noqueue: .noqueue
        case .pfifoFast: .pfifoFast(PfifoFast(limit: txQueueLength))
        case .fqCodel: .fqCodel(FqCodel())
        case let .tbf(rate, burst, limit): .tbf(TokenBucket(rate: rate, burst: burst, limit: limit))
        }
    }
}

/// A network device: queues, driver rings, the NIC, addresses and counters.
/// Linux: `struct net_device` with its igb private data.
public final class NetDevice {
    public let index: Int
    public let name: String
    public let linkType: LinkType
    @exclusivity(unchecked) public var mac: MACAddress
    @exclusivity(unchecked) public var mtu: Int
    @exclusivity(unchecked) public var features: DeviceFeatures
    /// Linux: `IFF_NOARP`.
    public let noARP: Bool
    @exclusivity(unchecked) public var isUp = true
    public let txQueues: [TxQueue]
    public let rxQueues: [RxQueue]
    public let nic: NICModel
    @exclusivity(unchecked) public internal(set) var stats = DeviceStatistics()
    @exclusivity(unchecked) public internal(set) var addresses: [InterfaceAddress] = []
    /// See `DeviceConfiguration.maxReceiveFrame`.
    public let maxReceiveFrame: Int
    /// See `DeviceConfiguration.orphansOnTransmit`.
    public let orphansOnTransmit: Bool
    /// Link-layer header length (Linux: `dev->hard_header_len`).
    public var headerLength: Int { linkType == .ethernet ? 14 : 0 }

    init(index: Int, configuration c: DeviceConfiguration, port: NetworkPort) {
        self.index = index
        name = c.name
        linkType = c.linkType
        mac = c.mac
        mtu = c.mtu
        // Offloads exist only where the port beyond the NIC takes them; TSO needs the checksum
        // offload too (Linux: netdev_fix_features drops TSO without checksumming).
        var f = c.features
        if !port.offloads.contains(.checksum) { f.remove(.txChecksum) }
        if !port.offloads.contains(.tcpSegmentation) || !f.contains(.txChecksum) { f.remove(.tso) }
        features = f
        noARP = c.noARP || c.linkType == .ip
        maxReceiveFrame = c.maxReceiveFrame
        orphansOnTransmit = c.orphansOnTransmit
        let tx = (0..<max(1, c.txQueues)).map { _ in TxRing(size: c.ringSize) }
        let rx = (0..<max(1, c.rxQueues)).map { _ in RxRing(size: c.ringSize) }
        txQueues = tx.enumerated().map { TxQueue(index: $0.offset, deviceIndex: index, qdisc: c.qdisc.make(txQueueLength: c.txQueueLength), ring: $0.element) }
        rxQueues = rx.enumerated().map { RxQueue(index: $0.offset, ring: $0.element) }
        nic = NICModel(deviceIndex: index, port: port, txRings: tx, rxRings: rx)
        nic.interruptThrottle = c.interruptThrottle
        nic.lineRate = c.lineRate
    }
}
