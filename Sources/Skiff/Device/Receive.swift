import SkiffWire

extension NetworkStack {
    /// Hands a received frame to the protocols: packet taps, link header checks (802.1Q tags are
    /// parsed; frames for VLANs without a VLAN device are dropped), then ARP or IPv4.
    /// Linux: `netif_receive_skb()` → `__netif_receive_skb_core()` → `deliver_skb()`.
    func netifReceive(_ buffer: consuming PacketBuffer, device dev: NetDevice, slot: Int) {
        var id = buffer.meta.traceID
        if id == 0, tracer.armedCount > 0, tracerTraceReceive { id = tracer.begin(); buffer.meta.traceID = id }
        tracer.record(id, .cleanRxIRQ, contexts.current, now, queue: Int(buffer.meta.queue), slot: slot)
        tracer.record(id, .netifReceiveSkb, contexts.current, now, queue: Int(buffer.meta.queue))
        if !taps.isEmpty {
            tracer.record(id, .tapReceive, contexts.current, now)
            for t in taps { t.capture(buffer, device: dev, direction: .receive, now: now) }
        }
        switch dev.linkType {
        case .ip:
            guard buffer.length >= 1, buffer.bytes[0] >> 4 == 4 else {
                drops.count(.unknownEtherType); dev.stats.rxDropped &+= 1; return
            }
            buffer.meta.protocolType = EtherType.ipv4
            ipRcv(buffer, device: dev)
        case .ethernet:
            let eth: EthernetView
            do { eth = try EthernetView(checking: buffer.bytes) } catch {
                drops.count(.frameTooShort); dev.stats.rxErrors &+= 1; return
            }
            let dst = eth.destination
            if dst != dev.mac && !dst.isBroadcast && !dst.isMulticast {
                // Linux: PACKET_OTHERHOST, dropped by ip_rcv.
                drops.count(.notOurMAC); return
            }
            if dst.isMulticast { dev.stats.multicast &+= 1 }
            if eth.vlan != nil { drops.count(.vlanNotConfigured); dev.stats.rxDropped &+= 1; return }
            let type = eth.etherType
            let hl = eth.headerLength
            buffer.pull(hl)
            buffer.meta.protocolType = type
            switch type {
            case EtherType.ipv4: ipRcv(buffer, device: dev)
            case EtherType.arp: arpReceive(buffer, device: dev)
            default: drops.count(.unknownEtherType); dev.stats.rxDropped &+= 1
            }
        }
    }

    /// Trace received packets too (not only those sent from here) while tracing is armed.
    var tracerTraceReceive: Bool { traceReceived }
}
