extension Qdisc {
    var isTokenBucket: Bool { if case .tbf = self { true } else { false } }
    var isNoqueue: Bool { if case .noqueue = self { true } else { false } }
}

/// The device layer's transmit side: queue selection, the qdisc, and the hand-off to the driver.
extension NetworkStack {
    /// Sends a packet whose link header is already in place. Picks a TX queue by the flow hash,
    /// then either sends straight to the driver (an empty qdisc that allows bypass), or enqueues
    /// and runs the qdisc in this context until its quota is spent, leaving the rest to the
    /// NET_TX softirq. Linux: `dev_queue_xmit()` → `netdev_pick_tx()` → `__dev_xmit_skb()`.
    @inline(__always)
    public func devQueueXmit(_ buffer: consuming PacketBuffer, device dev: NetDevice) {
        let id = buffer.meta.traceID
        // Linux: __dev_queue_xmit() takes SCM_TSTAMP_SCHED before the qdisc.
        if buffer.meta.txTimestamps & TxTimestamp.scheduled != 0 { txTimestamp(buffer, stage: TimestampStage.scheduled) }
        guard dev.isUp else { drops.count(.deviceDown); dev.stats.txDropped &+= 1; return }
        let q = pickTx(&buffer, device: dev)
        let txq = dev.txQueues[q]
        tracer.record(id, .devQueueXmit, contexts.current, now, queue: q)
        if txq.qdisc.isNoqueue {
            // Linux: a noqueue device transmits directly; a busy driver means a drop.
            if txq.stopped { drops.count(.noqueueBusy); dev.stats.txDropped &+= 1; return }
            if devHardStartXmit(buffer, device: dev, queue: txq, more: false) != nil {
                drops.count(.noqueueBusy); dev.stats.txDropped &+= 1
            }
            return
        }
        if txq.qdisc.canBypass && !txq.running && !txq.stopped {
            // Linux: TCQ_F_CAN_BYPASS + qdisc_run_begin() → sch_direct_xmit().
            txq.running = true
            txq.bypassed &+= 1
            txq.qdisc.recordBypass(length: buffer.length)
            tracer.record(id, .qdiscDirectXmit, contexts.current, now, queue: q)
            if let back = devHardStartXmit(buffer, device: dev, queue: txq, more: false) {
                txq.qdisc.requeue(back)
                netifSchedule(txq)
            }
            if !txq.qdisc.isEmpty { qdiscRun(txq, device: dev) }
            txq.running = false
            return
        }
        buffer.meta.timestamp = now
        tracer.record(id, .qdiscEnqueue, contexts.current, now, queue: q, slot: txq.qdisc.statistics.backlogPackets)
        if txq.qdisc.enqueue(buffer, now: now) == .dropped {
            drops.count(.qdisc)
            dev.stats.txDropped &+= 1
        }
        if !txq.running {
            txq.running = true
            qdiscRun(txq, device: dev)
            txq.running = false
        }
        // else: the context that owns the running qdisc sends our packet (Linux: the
        // RUNNING bit holder; we only enqueue).
    }

    /// Chooses the TX queue: a stable hash of the flow, so one flow's packets stay in order.
    /// Linux: `netdev_pick_tx()` → `skb_tx_hash()`.
    @inline(__always)
    func pickTx(_ buffer: inout PacketBuffer, device dev: NetDevice) -> Int {
        let n = dev.txQueues.count
        if n == 1 { buffer.meta.queue = 0; return 0 }
        if buffer.meta.flowHash == 0 {
            let off = Int(max(buffer.meta.networkOffset, 0))
            buffer.meta.flowHash = FlowHash.ipv4(packet: buffer.data + off, length: buffer.linearLength - off)
        }
        let q = Int(buffer.meta.flowHash % UInt32(n))
        buffer.meta.queue = UInt16(q)
        return q
    }

    /// Runs a qdisc: dequeues and transmits up to `dev_tx_weight` (64) packets, then, if packets
    /// remain, schedules NET_TX to continue. A busy driver gets its packet requeued.
    /// Linux: `__qdisc_run()` → `qdisc_restart()` → `sch_direct_xmit()`.
    func qdiscRun(_ txq: TxQueue, device dev: NetDevice, viaNetTX: Bool = false) {
        var quota = devTxWeight
        while quota > 0 && !txq.stopped {
            guard let b = txq.qdisc.dequeue(now: now) else {
                // The previous packet went with `more` (the qdisc was not empty), but a shaper
                // held the next one back or CoDel dropped it: ring the doorbell now.
                driverFlush(txq, device: dev)
                if let t = txq.qdisc.nextDequeueTime, let w = txq.watchdog { timers.arm(w, at: t) }
                return
            }
            quota -= 1
            if viaNetTX { tracer.record(b.meta.traceID, .netTxAction, contexts.current, now, queue: txq.index) }
            tracer.record(b.meta.traceID, .qdiscRun, contexts.current, now, queue: txq.index)
            tracer.record(b.meta.traceID, .qdiscDequeue, contexts.current, now, queue: txq.index)
            let more = quota > 0 && !txq.qdisc.isEmpty
            if let back = devHardStartXmit(b, device: dev, queue: txq, more: more) {
                txq.qdisc.requeue(back)
                // Frames already on the ring with `more` must not wait for this one.
                driverFlush(txq, device: dev)
                return
            }
        }
        if quota == 0 && !txq.qdisc.isEmpty {
            txq.quotaDeferrals &+= 1
            netifSchedule(txq)
        }
    }

    /// Puts a qdisc on the NET_TX output list. Linux: `__netif_schedule()`.
    @inline(__always)
    func netifSchedule(_ txq: TxQueue) {
        if txq.scheduled { return }
        txq.scheduled = true
        outputList.append(txq.deviceIndex << 16 | txq.index)
        softirq.raise(.netTX)
    }

    /// The NET_TX softirq handler: runs every scheduled qdisc. Linux: `net_tx_action()`.
    func netTxAction() {
        var n = outputList.count
        while n > 0 && !outputList.isEmpty {
            n -= 1
            let key = outputList.removeFirst()
            let dev = devices[key >> 16]
            let txq = dev.txQueues[key & 0xFFFF]
            txq.scheduled = false
            if txq.running { continue }
            txq.running = true
            qdiscRun(txq, device: dev, viaNetTX: true)
            txq.running = false
        }
    }

    /// Hands one packet to the driver: software segmentation for GSO packets the device cannot
    /// segment, the packet taps, then the driver's xmit. Returns the packet if the driver was busy.
    /// Linux: `dev_hard_start_xmit()` with `validate_xmit_skb()` and `dev_queue_xmit_nit()`.
    @inline(__always)
    func devHardStartXmit(_ buffer: consuming PacketBuffer, device dev: NetDevice, queue txq: TxQueue,
                          more: Bool) -> PacketBuffer? {
        tracer.record(buffer.meta.traceID, .devHardStartXmit, contexts.current, now, queue: txq.index)
        if buffer.meta.gsoSize > 0 && !dev.features.contains(.tso) {
            return gsoSegmentAndXmit(buffer, device: dev, queue: txq, more: more)
        }
        if buffer.meta.checksumPartial && !dev.features.contains(.txChecksum) {
            var b = buffer
            guard checksumHelp(&b, device: dev) else { drops.count(.ipHeaderInvalid); dev.stats.txDropped &+= 1; return nil }
            return devHardStartXmitFinish(b, device: dev, queue: txq, more: more)
        }
        return devHardStartXmitFinish(buffer, device: dev, queue: txq, more: more)
    }

    @inline(__always)
    func devHardStartXmitFinish(_ buffer: consuming PacketBuffer, device dev: NetDevice, queue txq: TxQueue,
                                more: Bool) -> PacketBuffer? {
        if buffer.fragmentCount > 0 && !dev.features.contains(.scatterGather) {
            if !buffer.linearize() { drops.count(.poolExhausted); dev.stats.txDropped &+= 1; return nil }
        }
        if !taps.isEmpty {
            tracer.record(buffer.meta.traceID, .tapTransmit, contexts.current, now, queue: txq.index)
            for t in taps { t.capture(buffer, device: dev, direction: .transmit, now: now) }
        }
        return driverXmit(buffer, device: dev, queue: txq, more: more)
    }
}

