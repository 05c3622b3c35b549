import SkiffWire

/// The driver, modelled on Intel's igb: transmit onto the descriptor ring, completion cleanup
/// and receive in NAPI poll, and ring refill.
extension NetworkStack {
    /// Descriptors one frame may need (Linux: `DESC_NEEDED` = MAX_SKB_FRAGS + 4).
    static let descriptorsNeeded = DataBlock.maxFragments + 4
    /// Free descriptors needed to wake a stopped queue (Linux: `TX_WAKE_THRESHOLD`).
    static let txWakeThreshold = descriptorsNeeded * 2
    /// TX completions cleaned per poll (Linux: `tx_work_limit`, 128).
    static let txWorkLimit = 128
    /// RX buffers refilled at a time (Linux: `IGB_RX_BUFFER_WRITE`).
    static let rxRefillBatch = 16

    /// Puts one frame on a TX ring: maps the linear part and each fragment for DMA, fills one
    /// descriptor each, keeps the buffer until completion, stops the queue when the ring is
    /// nearly full, and rings the doorbell unless more frames follow (`more`, Linux:
    /// `netdev_xmit_more()`) and the queue is still running.
    /// Linux: `igb_xmit_frame_ring()` → `igb_tx_map()` → `writel(tail)`.
    /// Returns the buffer back when the ring has no room (Linux: `NETDEV_TX_BUSY`).
    @inline(__always)
    func driverXmit(_ buffer: consuming PacketBuffer, device dev: NetDevice, queue txq: TxQueue,
                    more: Bool) -> PacketBuffer? {
        let ring = txq.ring
        let count = 1 + buffer.fragmentCount
        if ring.unused < count + 2 {
            // Linux: igb_maybe_stop_tx() failed: the stack should have stopped us earlier.
            stopQueue(txq)
            return buffer
        }
        let id = buffer.meta.traceID
        let first = ring.nextToUse
        var i = first
        let nic = dev.nic
        let linear = buffer.linearLength
        let iova = nic.iommu.map(buffer.data, length: linear)
        ring.descriptors[i] = TxDescriptor(address: iova, length: UInt16(truncatingIfNeeded: linear),
                                           endOfPacket: count == 1, done: false,
                                           offload: buffer.meta.gsoSize > 0 || buffer.meta.checksumPartial
                                               ? offloadRequest(buffer, device: dev) : .none)
        ring.info[i].dmaAddress = iova
        for f in 0..<buffer.fragmentCount {
            i = (i + 1) & ring.mask
            let frag = buffer.fragment(f)
            let fi = nic.iommu.map(UnsafeMutableRawPointer(mutating: frag.baseAddress!), length: frag.count)
            ring.descriptors[i] = TxDescriptor(address: fi, length: UInt16(truncatingIfNeeded: frag.count),
                                               endOfPacket: f == buffer.fragmentCount - 1, done: false)
            ring.info[i].dmaAddress = fi
        }
        let length = buffer.length
        tracer.record(id, .driverXmitFrame, contexts.current, now, queue: txq.index, slot: first)
        tracer.record(id, .dmaMap, contexts.current, now, queue: txq.index, slot: first)
        // Linux: skb_tx_timestamp() in igb_tx_map(), once the descriptors are written.
        if buffer.meta.txTimestamps & TxTimestamp.software != 0 { txTimestamp(buffer, stage: TimestampStage.sent) }
        ring.info[first].nextToWatch = Int32(i)
        ring.info[first].bytes = Int32(length)
        if dev.orphansOnTransmit && buffer.charge != nil { buffer.orphan() }
        ring.info[first].buffer = .some(buffer)
        ring.nextToUse = (i + 1) & ring.mask
        ring.packets &+= 1
        ring.bytes &+= UInt64(length)
        dev.stats.txPackets &+= 1
        dev.stats.txBytes &+= UInt64(length)
        if ring.unused < NetworkStack.descriptorsNeeded { stopQueue(txq) }
        if !more || txq.stopped {
            ring.tailRegister = ring.nextToUse
            ring.doorbells &+= 1
            tracer.record(id, .doorbell, contexts.current, now, queue: txq.index, slot: ring.nextToUse)
            contexts.enter(.hardirq)
            tracer.record(id, .nicTransmit, .hardirq, now, queue: txq.index, slot: first)
            nic.txDoorbell(queue: txq.index, now: now)
            contexts.leave()
        }
        return nil
    }

    /// Rings the doorbell for frames put on the ring with `more` when no frame followed them
    /// (the next dequeue came back empty, or the driver refused it). Linux never needs this:
    /// `xmit_more` is set only while a dequeued packet is in hand.
    @inline(__always)
    func driverFlush(_ txq: TxQueue, device dev: NetDevice) {
        let ring = txq.ring
        guard ring.tailRegister != ring.nextToUse else { return }
        ring.tailRegister = ring.nextToUse
        ring.doorbells &+= 1
        contexts.enter(.hardirq)
        dev.nic.txDoorbell(queue: txq.index, now: now)
        contexts.leave()
    }

    /// Linux: `netif_stop_subqueue()`.
    @inline(__always)
    func stopQueue(_ txq: TxQueue) {
        if !txq.stopped { txq.stopped = true; txq.ring.stops &+= 1 }
    }

    /// Frees completed transmit buffers: for each frame whose last descriptor the NIC marked
    /// done, unmap its DMA mappings and drop the buffer (the clone's last use; for TCP the
    /// original stays on the retransmit queue). Wakes the queue once enough descriptors are
    /// free. Linux: `igb_clean_tx_irq()`. Returns true when all completed work was cleaned.
    func cleanTx(device dev: NetDevice, queue q: Int, budget: Int) -> Bool {
        let txq = dev.txQueues[q]
        let ring = txq.ring
        var i = ring.nextToClean
        var cleaned = 0
        while cleaned < budget {
            let eop = Int(ring.info[i].nextToWatch)
            if eop < 0 || !ring.descriptors[eop].done { break }
            let buffer = ring.info[i].buffer.take()
            var id: UInt32 = 0
            if let b = buffer { id = b.meta.traceID; _ = consume b }
            tracer.record(id, .cleanTxIRQ, contexts.current, now, queue: q, slot: i)
            var j = i
            while true {
                if ring.info[j].dmaAddress != 0 {
                    dev.nic.iommu.unmap(ring.info[j].dmaAddress)
                    ring.info[j].dmaAddress = 0
                }
                ring.descriptors[j].done = false
                if j == eop { break }
                j = (j + 1) & ring.mask
            }
            tracer.record(id, .dmaUnmap, contexts.current, now, queue: q, slot: i)
            ring.info[i].nextToWatch = -1
            tracer.record(id, .bufferFree, contexts.current, now, queue: q, slot: i)
            i = (eop + 1) & ring.mask
            cleaned += 1
        }
        ring.nextToClean = i
        // A ring smaller than the threshold (Linux igb refuses such rings) wakes once it is
        // clean; otherwise its queue would never wake.
        if txq.stopped && ring.unused >= min(NetworkStack.txWakeThreshold, ring.size - 1) {
            txq.stopped = false
            ring.wakes &+= 1
            // Linux: netif_wake_subqueue() → __netif_schedule(): the qdisc runs again in NET_TX.
            if !txq.qdisc.isEmpty { netifSchedule(txq) }
        }
        return cleaned < budget
    }

    /// Receives completed frames: takes each filled buffer off the ring, unmaps it, sets its
    /// length and hands it up; then refills the ring. Linux: `igb_clean_rx_irq()`.
    func cleanRx(device dev: NetDevice, queue q: Int, budget: Int) -> Int {
        let ring = dev.rxQueues[q].ring
        var done = 0
        while done < budget {
            let i = ring.nextToClean
            let d = ring.descriptors[i]
            if !d.done { break }
            guard var buffer = ring.buffers[i].take() else { break }
            dev.nic.iommu.unmap(d.address)
            ring.descriptors[i].done = false
            ring.descriptors[i].address = 0
            ring.nextToClean = (i + 1) & ring.mask
            buffer.put(Int(d.length))
            buffer.meta.interfaceIndex = UInt16(dev.index)
            buffer.meta.queue = UInt16(q)
            buffer.meta.timestamp = now
            buffer.meta.gsoSize = d.segmentSize
            buffer.meta.checksumValid = d.checksumValid
            var frameLength = Int(d.length)
            if !d.endOfPacket {
                // A large frame: the following buffers become its fragments, without a copy
                // (Linux: virtio's receive_mergeable() / skb_add_rx_frag()).
                var last = false
                var broken = false
                while !last {
                    let j = ring.nextToClean
                    let dj = ring.descriptors[j]
                    guard dj.done, var part = ring.buffers[j].take() else { broken = true; break }
                    dev.nic.iommu.unmap(dj.address)
                    ring.descriptors[j].done = false
                    ring.descriptors[j].address = 0
                    ring.nextToClean = (j + 1) & ring.mask
                    part.put(Int(dj.length))
                    frameLength += Int(dj.length)
                    last = dj.endOfPacket
                    if !buffer.addFragment(part) { broken = true }
                }
                if broken {
                    drops.count(.frameTooShort); dev.stats.rxErrors &+= 1
                    done += 1
                    continue
                }
            }
            ring.packets &+= 1
            ring.bytes &+= UInt64(frameLength)
            dev.stats.rxPackets &+= 1
            dev.stats.rxBytes &+= UInt64(frameLength)
            done += 1
            groReceive(buffer, device: dev, queue: q, slot: i)
            if ring.unused >= NetworkStack.rxRefillBatch { refillRx(device: dev, queue: dev.rxQueues[q]) }
        }
        groFlushAll(device: dev, queue: q)
        refillRx(device: dev, queue: dev.rxQueues[q])
        return done
    }

    /// Posts empty buffers to every unused RX descriptor and moves the tail register.
    /// Linux: `igb_alloc_rx_buffers()`.
    func refillRx(device dev: NetDevice, queue rxq: RxQueue) {
        let ring = rxq.ring
        // A device whose link carries large segments posts buffers that hold a whole 64 KiB
        // frame (virtio's "big packets"); others fit one frame of the MTU (or of the largest
        // frame the device takes, as TUN does). Frames longer than a buffer still span several
        // (mergeable buffers).
        let size = dev.features.contains(.tso) ? max(dev.mtu + dev.headerLength + 4, 65_536 + 64)
            : max(dev.mtu + dev.headerLength + 4, 1536, dev.maxReceiveFrame)
        dev.nic.maxFrameLength = size
        var filled = false
        while ring.unused > 0 {
            let i = ring.nextToUse
            guard let b = pool.allocate(size: size, headroom: 64) else {
                ring.allocFailed &+= 1
                break
            }
            let iova = dev.nic.iommu.map(b.data, length: b.tailroom)
            ring.descriptors[i] = RxDescriptor(address: iova, length: 0, done: false)
            ring.buffers[i] = .some(b)
            ring.nextToUse = (i + 1) & ring.mask
            filled = true
        }
        if filled { ring.tailRegister = ring.nextToUse }
    }

    /// The poll function of a queue vector. Linux: `igb_poll()`: clean TX completions, then
    /// receive up to `budget`; complete NAPI when both are done.
    func napiPoll(device dev: NetDevice, queue q: Int, budget: Int) -> Int {
        dev.rxQueues[q].napi.polls &+= 1
        let txComplete = q < dev.txQueues.count ? cleanTx(device: dev, queue: q, budget: NetworkStack.txWorkLimit) : true
        let work = cleanRx(device: dev, queue: q, budget: budget)
        if !txComplete || work >= budget { return budget }
        napiComplete(device: dev, queue: q)
        return min(work, budget - 1)
    }

    /// Teardown: frees buffers still on a TX ring and unmaps them.
    func cleanAllTx(device dev: NetDevice, queue txq: TxQueue) {
        let ring = txq.ring
        for i in 0..<ring.size {
            if ring.info[i].dmaAddress != 0 { dev.nic.iommu.unmap(ring.info[i].dmaAddress); ring.info[i].dmaAddress = 0 }
            _ = ring.info[i].buffer.take()
            ring.info[i].nextToWatch = -1
            ring.descriptors[i].done = false
        }
        ring.nextToClean = 0; ring.nextToUse = 0; ring.hardwareHead = 0; ring.tailRegister = 0
    }

    /// Teardown: frees posted RX buffers and their mappings.
    func releaseRx(device dev: NetDevice, queue rxq: RxQueue) {
        let ring = rxq.ring
        for i in 0..<ring.size {
            if ring.buffers[i] != nil { dev.nic.iommu.unmap(ring.descriptors[i].address) }
            _ = ring.buffers[i].take()
            ring.descriptors[i] = RxDescriptor()
        }
        ring.nextToClean = 0; ring.nextToUse = 0; ring.hardwareHead = 0; ring.tailRegister = 0
    }

    /// The offload request for a packet the stack left unfinished: where its headers end, where
    /// the transport checksum starts and sits, its GSO segment size. Linux: the context
    /// descriptor `igb_tso()` / `igb_tx_csum()` write, or `virtio_net_hdr_from_skb()`.
    func offloadRequest(_ buffer: borrowing PacketBuffer, device dev: NetDevice) -> FrameOffload {
        guard let t = TransportLayout(buffer.bytes, linkHeader: dev.headerLength) else { return .none }
        return FrameOffload(segmentSize: buffer.meta.gsoSize, headerLength: UInt16(t.headerLength),
                            checksumStart: UInt16(t.start), checksumOffset: UInt16(t.checksumOffset),
                            needsChecksum: buffer.meta.checksumPartial)
    }
}
