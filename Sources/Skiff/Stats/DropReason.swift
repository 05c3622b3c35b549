/// Why a packet was dropped. Linux: `enum skb_drop_reason` (the reasons `kfree_skb_reason` and
/// `dropwatch` report).
public enum DropReason: Int, CaseIterable, Sendable {
    case frameTooShort
    case frameMalformed
    case unknownEtherType
    case vlanNotConfigured
    case notOurMAC
    case arpMalformed
    case ipHeaderInvalid
    case ipChecksum
    case ipTruncated
    case ipNotForUs
    case ipOtherHost
    case ttlExceeded
    case noRoute
    case fragmentationNeeded
    case netfilter
    case neighbourQueueFull
    case neighbourFailed
    case qdisc
    case noqueueBusy
    case deviceDown
    case rxRingFull
    case poolExhausted
    case reassemblyOverlap
    case reassemblyTimeout
    case reassemblyMemory
    case reassemblyInvalid
    case icmpMalformed
    case icmpChecksum
    case icmpRateLimited
    case udpMalformed
    case udpChecksum
    case udpNoSocket
    case tcpMalformed
    case tcpChecksum
    case tcpNoSocket
    case tcpPAWS
    case tcpOutOfWindow
    case tcpListenOverflow
    case tcpOutOfOrderFull
    case tcpReceiveBufferFull
    case protocolUnreachable
    case dmaError

    public var name: String { String(describing: self) }
}

/// Count of drops per reason (Linux: the drop monitor's per-reason counts).
public struct DropCounters: Sendable {
    public private(set) var counts: [UInt64] = Array(repeating: 0, count: DropReason.allCases.count)
    public init() {}
    @inline(__always)
    public mutating func count(_ r: DropReason) { counts[r.rawValue] &+= 1 }
    public subscript(_ r: DropReason) -> UInt64 { counts[r.rawValue] }
    public var total: UInt64 { counts.reduce(0, &+) }
    /// Reasons with a nonzero count.
    public var nonzero: [(DropReason, UInt64)] {
        DropReason.allCases.compactMap { counts[$0.rawValue] > 0 ? ($0, counts[$0.rawValue]) : nil }
    }
}

/// IP and ICMP counters with `nstat`'s names (Linux: `/proc/net/snmp`).
public struct IPCounters: Sendable {
    public var ipInReceives: UInt64 = 0
    public var ipInHdrErrors: UInt64 = 0
    public var ipInAddrErrors: UInt64 = 0
    public var ipInUnknownProtos: UInt64 = 0
    public var ipInDiscards: UInt64 = 0
    public var ipInDelivers: UInt64 = 0
    public var ipForwDatagrams: UInt64 = 0
    public var ipOutRequests: UInt64 = 0
    public var ipOutDiscards: UInt64 = 0
    public var ipOutNoRoutes: UInt64 = 0
    public var ipReasmReqds: UInt64 = 0
    public var ipReasmOKs: UInt64 = 0
    public var ipReasmFails: UInt64 = 0
    public var ipReasmTimeout: UInt64 = 0
    public var ipFragOKs: UInt64 = 0
    public var ipFragFails: UInt64 = 0
    public var ipFragCreates: UInt64 = 0
    public var icmpInMsgs: UInt64 = 0
    public var icmpInErrors: UInt64 = 0
    public var icmpInEchos: UInt64 = 0
    public var icmpInEchoReps: UInt64 = 0
    public var icmpInDestUnreachs: UInt64 = 0
    public var icmpInTimeExcds: UInt64 = 0
    public var icmpOutMsgs: UInt64 = 0
    public var icmpOutEchos: UInt64 = 0
    public var icmpOutEchoReps: UInt64 = 0
    public var icmpOutDestUnreachs: UInt64 = 0
    public var icmpOutTimeExcds: UInt64 = 0
    public var icmpOutRateLimited: UInt64 = 0
    public var udpInDatagrams: UInt64 = 0
    public var udpNoPorts: UInt64 = 0
    public var udpInErrors: UInt64 = 0
    public var udpOutDatagrams: UInt64 = 0
    public var arpRequestsIn: UInt64 = 0
    public var arpRepliesIn: UInt64 = 0
    public var arpRequestsOut: UInt64 = 0
    public var arpRepliesOut: UInt64 = 0
    /// ARP packets from another host claiming one of our addresses.
    public var arpAddressConflicts: UInt64 = 0
    public init() {}

    /// Name/value pairs, in nstat order.
    public var all: [(String, UInt64)] {
        Mirror(reflecting: self).children.compactMap { c in
            guard let l = c.label, let v = c.value as? UInt64 else { return nil }
            return (l.prefix(1).uppercased() + l.dropFirst(), v)
        }
    }
}
