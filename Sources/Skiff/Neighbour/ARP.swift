import SkiffWire

extension NetworkStack {
    /// Sends an ARP request for a neighbour: broadcast while INCOMPLETE, unicast to the known
    /// address while PROBE. Linux: `arp_solicit()` → `arp_send()`.
    func arpSolicit(entry e: Int, device dev: NetDevice, unicast: Bool) {
        guard let source = dev.addresses.first?.address else { return }
        let target = neighbours.entries[e].address
        let to: MACAddress = unicast ? neighbours.entries[e].mac : .broadcast
        arpSend(.request, device: dev, destinationMAC: to, senderIP: source,
                targetMAC: unicast ? to : .zero, targetIP: target)
    }

    /// Builds and sends one ARP packet. Linux: `arp_create()` + `arp_xmit()`.
    func arpSend(_ op: ARPOperation, device dev: NetDevice, destinationMAC: MACAddress, senderIP: IPv4Address,
                 targetMAC: MACAddress, targetIP: IPv4Address) {
        guard dev.linkType == .ethernet, !dev.noARP else { return }
        guard var b = pool.allocate(size: ARPPacket.length, headroom: 32) else { drops.count(.poolExhausted); return }
        let arp = ARPPacket(operation: op, senderMAC: dev.mac, senderIP: senderIP, targetMAC: targetMAC, targetIP: targetIP)
        arp.emit(into: UnsafeMutableRawBufferPointer(start: b.put(ARPPacket.length), count: ARPPacket.length))
        let eth = EthernetHeader(destination: destinationMAC, source: dev.mac, etherType: EtherType.arp)
        eth.emit(into: UnsafeMutableRawBufferPointer(start: b.push(14), count: 14))
        b.meta.protocolType = EtherType.arp
        b.meta.priority = 6   // Linux: TC_PRIO_CONTROL-ish; ARP goes in the first band
        if op == .request { counters.arpRequestsOut &+= 1 } else { counters.arpRepliesOut &+= 1 }
        devQueueXmit(b, device: dev)
    }

    /// Announces our address (gratuitous ARP), as Linux does when an address comes up.
    public func announce(device dev: NetDevice, now t: Nanoseconds) {
        processContext(now: t) {
            for a in dev.addresses {
                arpSend(.request, device: dev, destinationMAC: .broadcast, senderIP: a.address,
                        targetMAC: .zero, targetIP: a.address)
            }
        }
    }

    /// Handles a received ARP packet: learns the sender, answers requests for our addresses.
    /// Linux: `arp_rcv()` → `arp_process()`.
    func arpReceive(_ buffer: consuming PacketBuffer, device dev: NetDevice) {
        tracer.record(buffer.meta.traceID, .arpReceive, contexts.current, now)
        let arp: ARPPacket
        do { arp = try ARPPacket.parse(buffer.bytes) } catch { drops.count(.arpMalformed); return }
        if arp.operation == .request { counters.arpRequestsIn &+= 1 } else { counters.arpRepliesIn &+= 1 }
        if arp.senderIP.isMulticast || arp.senderMAC.isMulticast { drops.count(.arpMalformed); return }
        // Someone else claims one of our addresses (Linux: no neighbour entry for ourselves;
        // the conflict is only counted).
        if arp.senderMAC != dev.mac && isLocalAddress(arp.senderIP) {
            counters.arpAddressConflicts &+= 1
            return
        }
        let forUs = dev.addresses.contains { $0.address == arp.targetIP }
        let isGratuitous = arp.senderIP == arp.targetIP
        if let e = neighbours.lookup(arp.senderIP, device: dev.index) {
            // Linux: a reply to our request confirms reachability; anything else makes it STALE.
            let solicited = arp.operation == .reply && forUs
            neighbourUpdate(entry: e, mac: arp.senderMAC, solicited: solicited && !isGratuitous)
        } else if forUs && !arp.senderIP.isUnspecified {
            // Linux: neigh_event_ns() creates a STALE entry for a host that asked for us.
            let e = neighbourFor(arp.senderIP, device: dev)
            neighbourUpdate(entry: e, mac: arp.senderMAC, solicited: false)
        }
        if arp.operation == .request && forUs && !isGratuitous {
            arpSend(.reply, device: dev, destinationMAC: arp.senderMAC, senderIP: arp.targetIP,
                    targetMAC: arp.senderMAC, targetIP: arp.senderIP)
        }
    }
}
