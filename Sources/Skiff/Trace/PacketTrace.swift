/// The stages a packet passes, each named for its Linux counterpart.
public enum Stage: UInt8, CaseIterable, Sendable {
    case socketSend, tcpSendmsg, tcpWriteXmit, tcpTransmitSkb, udpSendmsg, icmpSend, pingSend
    case ipQueueXmit, ipLocalOut, netfilterLocalOut, ipOutput, netfilterPostRouting, ipFragment, ipFinishOutput2
    case neighOutput, neighResolveQueued, neighResolved, arpSend
    case devQueueXmit, qdiscEnqueue, qdiscDirectXmit, qdiscRun, qdiscDequeue, netTxAction, gsoSegment
    case devHardStartXmit, tapTransmit, driverXmitFrame, dmaMap, doorbell
    case nicTransmit, nicReceive, hardIRQ, napiSchedule, netRxAction, napiPoll, cleanTxIRQ, dmaUnmap, bufferFree
    case cleanRxIRQ, netifReceiveSkb, tapReceive, arpReceive, ipRcv, netfilterPreRouting, ipRcvFinish, ipDefrag
    case ipLocalDeliver, netfilterLocalIn, icmpRcv, udpRcv, tcpV4Rcv, ipForward, netfilterForward, tcpCleanRtxQueue

    /// The Linux function or hook this stage is.
    public var linuxName: String {
        switch self {
        case .socketSend: "send() -> inet_sendmsg"
        case .tcpSendmsg: "tcp_sendmsg"
        case .tcpWriteXmit: "tcp_write_xmit"
        case .tcpTransmitSkb: "tcp_transmit_skb"
        case .udpSendmsg: "udp_sendmsg"
        case .icmpSend: "icmp_reply / icmp_push_reply"
        case .pingSend: "ping_v4_sendmsg (ICMP echo request)"
        case .ipQueueXmit: "ip_queue_xmit (route lookup, IP header)"
        case .ipLocalOut: "ip_local_out"
        case .netfilterLocalOut: "nf_hook NF_INET_LOCAL_OUT"
        case .ipOutput: "ip_output"
        case .netfilterPostRouting: "nf_hook NF_INET_POST_ROUTING"
        case .ipFragment: "ip_fragment"
        case .ipFinishOutput2: "ip_finish_output2"
        case .neighOutput: "neigh_output / neigh_hh_output"
        case .neighResolveQueued: "neigh_resolve_output (queued on arp_queue)"
        case .neighResolved: "neigh_update (arp_queue released)"
        case .arpSend: "arp_send"
        case .devQueueXmit: "dev_queue_xmit (netdev_pick_tx)"
        case .qdiscEnqueue: "qdisc enqueue"
        case .qdiscDirectXmit: "sch_direct_xmit (qdisc bypass)"
        case .qdiscRun: "__qdisc_run"
        case .qdiscDequeue: "dequeue_skb"
        case .netTxAction: "net_tx_action (NET_TX softirq)"
        case .gsoSegment: "skb_gso_segment"
        case .devHardStartXmit: "dev_hard_start_xmit"
        case .tapTransmit: "dev_queue_xmit_nit (packet tap)"
        case .driverXmitFrame: "igb_xmit_frame_ring"
        case .dmaMap: "dma_map_single"
        case .doorbell: "writel(tail) doorbell"
        case .nicTransmit: "NIC DMA read + wire"
        case .nicReceive: "NIC DMA write to RX ring"
        case .hardIRQ: "igb_msix_ring (hard IRQ)"
        case .napiSchedule: "napi_schedule"
        case .netRxAction: "net_rx_action (NET_RX softirq)"
        case .napiPoll: "igb_poll"
        case .cleanTxIRQ: "igb_clean_tx_irq"
        case .dmaUnmap: "dma_unmap_single"
        case .bufferFree: "napi_consume_skb (buffer freed)"
        case .cleanRxIRQ: "igb_clean_rx_irq"
        case .netifReceiveSkb: "netif_receive_skb"
        case .tapReceive: "deliver_skb (packet tap)"
        case .arpReceive: "arp_rcv"
        case .ipRcv: "ip_rcv"
        case .netfilterPreRouting: "nf_hook NF_INET_PRE_ROUTING"
        case .ipRcvFinish: "ip_rcv_finish (route input)"
        case .ipDefrag: "ip_defrag"
        case .ipLocalDeliver: "ip_local_deliver"
        case .netfilterLocalIn: "nf_hook NF_INET_LOCAL_IN"
        case .icmpRcv: "icmp_rcv"
        case .udpRcv: "udp_rcv"
        case .tcpV4Rcv: "tcp_v4_rcv"
        case .ipForward: "ip_forward"
        case .netfilterForward: "nf_hook NF_INET_FORWARD"
        case .tcpCleanRtxQueue: "tcp_ack -> tcp_clean_rtx_queue (original freed)"
        }
    }
}

/// One step of a traced packet.
public struct TraceEvent: Sendable {
    public var traceID: UInt32
    public var stage: Stage
    public var context: ExecutionContext
    public var time: Nanoseconds
    /// Queue index, or -1.
    public var queue: Int16
    /// Ring slot (descriptor index) or qdisc backlog, or -1.
    public var slot: Int32
}

/// Records the stages of traced packets in a fixed-size ring (no allocation per event).
/// A packet is traced when its `meta.traceID` is nonzero; clones keep the id.
public struct PacketTracer: Sendable {
    private var events: [TraceEvent]
    private var next = 0
    private var wrapped = false
    private var nextID: UInt32 = 1
    /// Trace the next N packets that start at a traced entry point.
    public var armedCount = 0

    public init(capacity: Int = 4096) {
        events = Array(repeating: TraceEvent(traceID: 0, stage: .socketSend, context: .process, time: 0, queue: -1, slot: -1),
                       count: max(16, capacity))
    }

    /// A new trace id if tracing is armed, else 0.
    @inline(__always)
    public mutating func begin() -> UInt32 {
        guard armedCount > 0 else { return 0 }
        armedCount -= 1
        let id = nextID
        nextID &+= 1
        if nextID == 0 { nextID = 1 }
        return id
    }

    @inline(__always)
    public mutating func record(_ id: UInt32, _ stage: Stage, _ context: ExecutionContext, _ time: Nanoseconds,
                                queue: Int = -1, slot: Int = -1) {
        if id == 0 { return }
        events[next] = TraceEvent(traceID: id, stage: stage, context: context, time: time,
                                  queue: Int16(truncatingIfNeeded: queue), slot: Int32(truncatingIfNeeded: slot))
        next += 1
        if next == events.count { next = 0; wrapped = true }
    }

    /// Events of one traced packet, in order.
    public func events(for id: UInt32) -> [TraceEvent] {
        let ordered = wrapped ? Array(events[next...] + events[..<next]) : Array(events[..<next])
        return ordered.filter { $0.traceID == id }
    }

    /// Every id seen, in order of first event.
    public var traceIDs: [UInt32] {
        let ordered = wrapped ? Array(events[next...] + events[..<next]) : Array(events[..<next])
        var seen = Set<UInt32>(), out: [UInt32] = []
        for e in ordered where !seen.contains(e.traceID) { seen.insert(e.traceID); out.append(e.traceID) }
        return out
    }

    /// A printable trace, one stage per line.
    public func format(_ id: UInt32, hostName: String = "") -> String {
        let evs = events(for: id)
        guard let t0 = evs.first?.time else { return "(no events for trace \(id))\n" }
        var s = ""
        for (n, e) in evs.enumerated() {
            let dt = Double(e.time &- t0) / 1000
            var where_ = ""
            if e.queue >= 0 { where_ += " q\(e.queue)" }
            if e.slot >= 0 { where_ += " slot \(e.slot)" }
            let num = String(n + 1).leftPad(3)
            let time = String(format3(dt)).leftPad(9)
            s += "\(num) \(hostName.isEmpty ? "" : hostName + " ")+\(time)us  \(e.context.name.padding(7))  \(e.stage.linuxName)\(where_)\n"
        }
        return s
    }
}

func format3(_ d: Double) -> String {
    let scaled = Int((d * 1000).rounded())
    let whole = scaled / 1000, frac = abs(scaled % 1000)
    let f = String(frac)
    return "\(whole).\(String(repeating: "0", count: 3 - f.count))\(f)"
}

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
    func padding(_ n: Int) -> String { count >= n ? self : self + String(repeating: " ", count: n - count) }
}
