import SkiffWire

extension NetworkStack {
    /// Sends an IP packet to its next hop on `dev`: with a usable neighbour entry the cached
    /// hardware header is pushed and the packet goes to the device; otherwise it waits on the
    /// entry's queue while ARP resolves it. Devices without ARP send at once.
    /// Linux: `ip_finish_output2()` → `neigh_output()` → `neigh_hh_output()` or `neigh_resolve_output()`.
    @inline(__always)
    func neighOutput(_ buffer: consuming PacketBuffer, device dev: NetDevice, nextHop: IPv4Address,
                     cachedEntry: inout Int) {
        let id = buffer.meta.traceID
        tracer.record(id, .ipFinishOutput2, contexts.current, now)
        if dev.linkType == .ip {
            tracer.record(id, .neighOutput, contexts.current, now)
            devQueueXmit(buffer, device: dev)
            return
        }
        var e = cachedEntry
        if e < 0 || e >= neighbours.entries.count || neighbours.entries[e].address != nextHop
            || neighbours.entries[e].device != dev.index {
            e = neighbourFor(nextHop, device: dev)
            cachedEntry = e
        }
        let state = neighbours.entries[e].state
        if state.canSend {
            if state == .stale {
                // Linux: neigh_event_send(): first use of a STALE entry starts the DELAY timer.
                neighbours.entries[e].state = .delay
                timers.arm(neighbours.entries[e].timer, at: now &+ neighbours.parameters.delayFirstProbeTime)
            }
            neighbours.entries[e].used = now
            tracer.record(id, .neighOutput, contexts.current, now)
            pushHardwareHeader(&buffer, entry: e)
            devQueueXmit(buffer, device: dev)
            return
        }
        // Unresolved: queue (bounded) and resolve.
        tracer.record(id, .neighResolveQueued, contexts.current, now)
        // Linux (`__neigh_event_send()`): drop the oldest queued packets until this one fits.
        // Each packet dropped is counted once.
        while neighbours.entries[e].queue.bytes + buffer.length > neighbours.parameters.unresolvedQueueBytes
            || neighbours.slab.isFull {
            guard let old = neighbours.popQueued(e) else { break }
            _ = consume old
            neighbours.entries[e].queueDrops &+= 1
            drops.count(.neighbourQueueFull)
        }
        if neighbours.slab.isFull {
            // Every entry's queue shares the slab; nothing of ours was left to make room.
            neighbours.entries[e].queueDrops &+= 1
            drops.count(.neighbourQueueFull)
            return
        }
        neighbours.enqueue(e, buffer)
        if neighbours.entries[e].state == .failed {
            // Linux: a FAILED entry used again restarts resolution.
            neighbours.entries[e].state = .incomplete
            neighbours.entries[e].probes = 0
        }
        if neighbours.entries[e].probes == 0 {
            neighbours.entries[e].probes = 1
            arpSolicit(entry: e, device: dev, unicast: false)
            timers.arm(neighbours.entries[e].timer, at: now &+ neighbours.parameters.retransmitTime)
        }
    }

    /// Finds or creates the entry for `address` on `dev` (Linux: `__neigh_lookup()` / `neigh_create()`).
    func neighbourFor(_ address: IPv4Address, device dev: NetDevice) -> Int {
        if let i = neighbours.lookup(address, device: dev.index) { return i }
        let i = neighbours.entries.count
        let timer = timers.makeTimer(.neighbour(Int32(i)))
        var e = NeighbourEntry(address: address, device: dev.index, mac: .zero,
                               state: dev.noARP ? .noarp : .incomplete, timer: timer)
        e.reachableTime = neighbours.randomReachableTime()
        if address.isBroadcast || dev.addresses.contains(where: { $0.broadcast == address }) {
            e.mac = .broadcast
            e.state = .noarp
        }
        neighbours.entries.append(e)
        neighbours.index[NeighbourTable.key(address, dev.index)] = i
        cacheHardwareHeader(entry: i)
        return i
    }

    /// Writes the Ethernet header in the headroom from the entry's cached header.
    /// Linux: `neigh_hh_output()` copying `hh_cache.hh_data`.
    @inline(__always)
    func pushHardwareHeader(_ buffer: inout PacketBuffer, entry e: Int) {
        let p = buffer.push(14)
        withUnsafeBytes(of: neighbours.entries[e].hardwareHeader) { p.copyMemory(from: $0.baseAddress!, byteCount: 14) }
        buffer.meta.protocolType = EtherType.ipv4
        // Offsets are from `data`, which just moved back over the link header: the TX queue
        // choice (`pickTx`) hashes the IP header found here.
        if buffer.meta.networkOffset >= 0 { buffer.meta.networkOffset &+= 14 }
    }

    /// Builds the cached link header of an entry once its address is known (Linux: `neigh_hh_init`).
    func cacheHardwareHeader(entry e: Int) {
        let dev = devices[neighbours.entries[e].device]
        var h: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &h) { b in
            neighbours.entries[e].mac.write(to: b.baseAddress!)
            dev.mac.write(to: b.baseAddress! + 6)
            b.storeBytes(of: EtherType.ipv4.bigEndian, toByteOffset: 12, as: UInt16.self)
        }
        neighbours.entries[e].hardwareHeader = h
    }

    /// Adds a static entry (Linux: `ip neigh add … lladdr … nud permanent`).
    public func addPermanentNeighbour(_ address: IPv4Address, mac: MACAddress, device: NetDevice) {
        let e = neighbourFor(address, device: device)
        neighbours.entries[e].mac = mac
        cacheHardwareHeader(entry: e)
        neighbours.entries[e].state = .permanent
        timers.cancel(neighbours.entries[e].timer)
        releaseNeighbourQueue(entry: e)
    }

    /// The neighbour's state timer. Linux: `neigh_timer_handler()`.
    func neighbourTimer(entry e: Int) {
        let p = neighbours.parameters
        let dev = devices[neighbours.entries[e].device]
        switch neighbours.entries[e].state {
        case .reachable:
            if now >= neighbours.entries[e].confirmed &+ neighbours.entries[e].reachableTime {
                neighbours.entries[e].state = .stale
                neighbours.generation &+= 1
            } else {
                timers.arm(neighbours.entries[e].timer,
                           at: neighbours.entries[e].confirmed &+ neighbours.entries[e].reachableTime)
            }
        case .delay:
            if now < neighbours.entries[e].confirmed &+ neighbours.entries[e].reachableTime {
                // Confirmed by an upper layer meanwhile (Linux: back to REACHABLE).
                neighbours.entries[e].state = .reachable
                timers.arm(neighbours.entries[e].timer,
                           at: neighbours.entries[e].confirmed &+ neighbours.entries[e].reachableTime)
            } else {
                neighbours.entries[e].state = .probe
                neighbours.entries[e].probes = 1
                arpSolicit(entry: e, device: dev, unicast: true)
                timers.arm(neighbours.entries[e].timer, at: now &+ p.retransmitTime)
            }
        case .probe, .incomplete:
            let limit = neighbours.entries[e].state == .probe ? p.unicastProbes : p.multicastProbes
            if neighbours.entries[e].probes >= limit {
                neighbours.entries[e].state = .failed
                neighbours.generation &+= 1
                while let b = neighbours.popQueued(e) {
                    drops.count(.neighbourFailed)
                    _ = consume b
                }
            } else {
                neighbours.entries[e].probes += 1
                arpSolicit(entry: e, device: dev, unicast: neighbours.entries[e].state == .probe)
                timers.arm(neighbours.entries[e].timer, at: now &+ p.retransmitTime)
            }
        case .stale, .failed, .noarp, .permanent:
            break
        }
    }

    /// New information about a neighbour's hardware address. Linux: `neigh_update()`.
    /// `solicited` = an ARP reply to our request (→ REACHABLE); otherwise the entry becomes STALE
    /// (or keeps its state when the address is unchanged).
    func neighbourUpdate(entry e: Int, mac: MACAddress, solicited: Bool) {
        var n = neighbours.entries[e]
        if n.state == .permanent || n.state == .noarp { return }
        let changed = n.mac != mac
        n.mac = mac
        if solicited {
            n.state = .reachable
            n.confirmed = now
            n.reachableTime = neighbours.randomReachableTime()
            timers.arm(n.timer, at: now &+ n.reachableTime)
        } else if changed || n.state == .incomplete || n.state == .failed {
            n.state = .stale
            timers.cancel(n.timer)
        }
        n.probes = 0
        neighbours.entries[e] = n
        if changed { cacheHardwareHeader(entry: e) }
        neighbours.generation &+= 1
        releaseNeighbourQueue(entry: e)
    }

    /// An upper layer saw forward progress (Linux: `neigh_confirm()` / `dst_confirm_neigh()`).
    public func confirmNeighbour(_ address: IPv4Address, device: Int) {
        guard let e = neighbours.lookup(address, device: device) else { return }
        neighbours.entries[e].confirmed = now
    }

    /// Sends the packets that waited for resolution. Linux: the `arp_queue` drain in `neigh_update()`.
    func releaseNeighbourQueue(entry e: Int) {
        let dev = devices[neighbours.entries[e].device]
        while var b = neighbours.popQueued(e) {
            tracer.record(b.meta.traceID, .neighResolved, contexts.current, now)
            pushHardwareHeader(&b, entry: e)
            devQueueXmit(b, device: dev)
        }
    }
}
