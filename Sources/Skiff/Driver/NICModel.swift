#if canImport(Glibc)
import Glibc
#endif

/// Interrupt state of one queue vector (Linux: `struct igb_q_vector` plus the EIMS/EICR bits).
public struct InterruptVector: Sendable {
    /// Masked while NAPI owns the queue (Linux: `igb_irq_disable_queues` until `napi_complete_done`).
    public var masked = false
    /// The NIC has something to report (Linux: the cause bit in EICR).
    public var asserted = false
    /// When the vector last fired.
    public var lastFire: Nanoseconds = 0
    /// Interrupts raised.
    public var count: UInt64 = 0
}

/// The emulated NIC (the article's Intel igb): it reads TX descriptors after a doorbell, gathers
/// the frame through the IOMMU, puts it on the port, writes back the done bit and asserts a
/// (coalesced) interrupt; on receive it writes frames into posted RX buffers.
public final class NICModel {
    /// The device this NIC belongs to.
    public let deviceIndex: Int
    @exclusivity(unchecked) public var port: NetworkPort {
        didSet { portGathers = port.framesPerFlush > 1 }
    }
    /// The port gathers frames for a flush (read once per port, not per doorbell).
    @exclusivity(unchecked) private(set) var portGathers: Bool
    /// The emulated IOMMU between this NIC and memory.
    @exclusivity(unchecked) public var iommu = DMAMapper()
    let txRings: [TxRing]
    let rxRings: [RxRing]
    /// One vector per queue pair.
    @exclusivity(unchecked) public internal(set) var vectors: [InterruptVector]
    /// Minimum gap between interrupts of one vector (Linux: the ITR register, `ethtool -C rx-usecs`).
    @exclusivity(unchecked) public var interruptThrottle: Nanoseconds = 0
    /// Line rate in bits per second; frames take their serialisation time on the wire and the
    /// completion interrupt comes when the last frame has left. 0 = infinitely fast.
    @exclusivity(unchecked) public var lineRate: UInt64 = 0
    /// When the transmitter finishes what it has been given.
    @exclusivity(unchecked) var busyUntil: Nanoseconds = 0
    /// One timer per vector for throttled interrupts.
    @exclusivity(unchecked) var vectorTimers: [TimerID] = []
    /// Called when a vector must fire; set by the stack.
    unowned(unsafe) var stack: NetworkStack!
    /// Scratch segment list for one frame (no allocation per frame).
    @exclusivity(unchecked) private var segments: UnsafeMutablePointer<UnsafeRawBufferPointer>
    @exclusivity(unchecked) public internal(set) var txFrames: UInt64 = 0
    @exclusivity(unchecked) public internal(set) var rxFrames: UInt64 = 0
    /// Frames longer than the receive buffers (Linux: `rx_long_length_errors`).
    @exclusivity(unchecked) public internal(set) var rxLengthErrors: UInt64 = 0
    /// Largest frame the posted receive buffers hold; set by the driver.
    @exclusivity(unchecked) var maxFrameLength = Int.max
    /// Bytes of each receive buffer the driver posts (0 before the first refill).
    public var receiveBufferSize: Int { maxFrameLength == Int.max ? 0 : maxFrameLength }
    /// Frames dropped because a descriptor pointed at unmapped memory.
    @exclusivity(unchecked) public internal(set) var dmaErrors: UInt64 = 0
    /// Frames go on the port outside the stack lock (real hosts, where putting a frame on the
    /// port is a system call that runs the kernel's receive path): the doorbell only hands the
    /// descriptors over, and whichever thread next leaves the stack lock transmits them
    /// (`transmitDeferred`) while others go on using the stack. Set before traffic flows.
    public var deferredTransmit = false {
        didSet {
            if deferredTransmit && deferredQueues.isEmpty {
                deferredQueues = txRings.map { DeferredTxQueue(size: $0.size) }
            }
        }
    }
    /// Per TX queue: descriptors handed from the doorbell to the transmitter.
    var deferredQueues: [DeferredTxQueue] = []
    /// Held by the thread putting handed-over frames on the port (Linux: `HARD_TX_LOCK`).
    let transmitLock: UnsafeMutablePointer<pthread_mutex_t>
    /// The transmitter's segment list for one frame.
    let transmitSegments: UnsafeMutablePointer<UnsafeRawBufferPointer>

    init(deviceIndex: Int, port: NetworkPort, txRings: [TxRing], rxRings: [RxRing]) {
        self.deviceIndex = deviceIndex
        self.port = port
        portGathers = port.framesPerFlush > 1
        self.txRings = txRings
        self.rxRings = rxRings
        vectors = Array(repeating: InterruptVector(), count: max(txRings.count, rxRings.count))
        segments = .allocate(capacity: DataBlock.maxFragments + 2)
        transmitSegments = .allocate(capacity: DataBlock.maxFragments + 2)
        transmitLock = .allocate(capacity: 1)
        pthread_mutex_init(transmitLock, nil)
    }

    deinit {
        segments.deallocate()
        transmitSegments.deallocate()
        pthread_mutex_destroy(transmitLock)
        transmitLock.deallocate()
    }

    /// Tail register write on TX queue `q`: the NIC consumes every descriptor up to the tail.
    /// Linux: the `writel(i, tx_ring->tail)` doorbell and the hardware behind it.
    func txDoorbell(queue q: Int, now: Nanoseconds) {
        if deferredTransmit { takeDescriptors(queue: q, now: now); return }
        let ring = txRings[q]
        var work = false
        var nseg = 0
        var length = 0
        var failed = false
        var offload = FrameOffload.none
        while ring.hardwareHead != ring.tailRegister {
            let i = ring.hardwareHead
            let d = ring.descriptors[i]
            if nseg == 0 { offload = d.offload }
            if let p = iommu.translate(d.address, length: Int(d.length)) {
                if nseg < DataBlock.maxFragments + 2 {
                    segments[nseg] = UnsafeRawBufferPointer(start: p, count: Int(d.length))
                    nseg += 1
                    length += Int(d.length)
                } else { failed = true }
            } else { failed = true }
            if d.endOfPacket {
                if failed {
                    dmaErrors &+= 1
                } else {
                    var leaves = now
                    if lineRate > 0 {
                        // Preamble, FCS and inter-frame gap add 24 bytes on the wire, per frame
                        // of a TSO segment, each of which repeats the headers.
                        var wire = length + 24
                        if offload.segmentSize > 0 {
                            let h = Int(offload.headerLength), mss = Int(offload.segmentSize)
                            let frames = max(1, (length - h + mss - 1) / mss)
                            wire += (frames - 1) * (h + 24)
                        }
                        busyUntil = max(busyUntil, now) &+ UInt64(wire) &* 8 &* 1_000_000_000 / lineRate
                        leaves = busyUntil
                    }
                    let frame = UnsafeBufferPointer(start: segments, count: nseg)
                    let copied = offload.isNone ? port.transmit(frame, length: length, now: leaves)
                        : port.transmit(frame, length: length, offload: offload, now: leaves)
                    if copied > 0 { stack.pool.recordCopy(.portIO, bytes: copied) }
                    txFrames &+= 1
                }
                nseg = 0; length = 0; failed = false
            }
            ring.descriptors[i].done = true
            ring.hardwareHead = (i + 1) & ring.mask
            work = true
        }
        // The done bits are only read by the TX clean, after this returns: a port that gathered
        // frames writes them before their memory can go back to the pool.
        if work && portGathers { port.flush() }
        if work {
            if lineRate > 0 && busyUntil > now {
                // The completion interrupt comes when the wire is done with the frames.
                stack.timers.arm(vectorTimers[q], at: busyUntil)
            } else {
                assertInterrupt(vector: q, now: now)
            }
        }
    }

    /// A frame arrives from the port. The NIC picks an RX queue by hash (Linux: RSS), writes the
    /// frame into the next posted buffer and asserts the queue's interrupt. Without a posted
    /// buffer the frame is dropped and counted (`missed`). Frames longer than the buffer are
    /// dropped too (Linux: `rx_long_length_errors`).
    public func receive(frame: UnsafeRawBufferPointer, now: Nanoseconds) {
        receive(frame: frame, offload: .none, now: now)
    }

    /// A frame arrives from the wire with its offload information (a virtio-net header's). A GSO
    /// frame longer than one posted buffer fills as many as it needs, the last marked
    /// end-of-packet (virtio's mergeable receive buffers); the first carries the segment size and
    /// whether the checksum is vouched for. Linux: the device side of `virtnet_receive()`.
    public func receive(frame: UnsafeRawBufferPointer, offload: FrameOffload, now: Nanoseconds) {
        let q = rxRings.count == 1 ? 0 : Int(receiveHash(frame) % UInt32(rxRings.count))
        let ring = rxRings[q]
        let first = ring.hardwareHead
        guard first != ring.tailRegister else { ring.missed &+= 1; return }
        guard let base = frame.baseAddress, frame.count > 0 else { ring.missed &+= 1; return }
        var buffers = 1
        if frame.count > maxFrameLength {
            // Longer than a posted buffer: only a GSO frame may span buffers (otherwise Linux's
            // `rx_long_length_errors`; not an IOMMU fault).
            guard offload.segmentSize > 0, frame.count <= 65_535 + 64 else { rxLengthErrors &+= 1; return }
            buffers = (frame.count + maxFrameLength - 1) / maxFrameLength
            let posted = (ring.tailRegister &- first) & ring.mask
            guard posted >= buffers else { ring.missed &+= 1; return }
        }
        guard frame.count <= Int(UInt16.max) || buffers > 1 else { ring.missed &+= 1; return }
        // Translate every buffer first: a fault drops the frame without writing anything.
        var i = first
        var off = 0
        for _ in 0..<buffers {
            let n = min(frame.count - off, buffers == 1 ? frame.count : maxFrameLength)
            guard iommu.translate(ring.descriptors[i].address, length: n) != nil else { ring.missed &+= 1; return }
            off += n
            i = (i + 1) & ring.mask
        }
        i = first
        off = 0
        for k in 0..<buffers {
            let n = min(frame.count - off, buffers == 1 ? frame.count : maxFrameLength)
            let p = iommu.translate(ring.descriptors[i].address, length: n)!
            p.copyMemory(from: base + off, byteCount: n)
            ring.descriptors[i].length = UInt16(n)
            ring.descriptors[i].endOfPacket = k == buffers - 1
            ring.descriptors[i].segmentSize = k == 0 ? offload.segmentSize : 0
            ring.descriptors[i].checksumValid = k == 0 && (offload.checksumValid || offload.needsChecksum)
            ring.descriptors[i].done = true
            off += n
            i = (i + 1) & ring.mask
        }
        stack.pool.recordCopy(.portIO, bytes: frame.count)
        ring.hardwareHead = i
        rxFrames &+= 1
        assertInterrupt(vector: q, now: now)
    }

    @inline(__always)
    func assertInterrupt(vector v: Int, now: Nanoseconds) {
        if vectors[v].asserted { return }
        vectors[v].asserted = true
        stack.interruptAsserted(device: deviceIndex, vector: v)
    }

    /// A stable receive hash over IPv4 addresses and ports (Linux: RSS with a Toeplitz key; any
    /// good mix will do for queue choice).
    func receiveHash(_ frame: UnsafeRawBufferPointer) -> UInt32 {
        guard frame.count >= 14 + 20 else { return 0 }
        let etherType = UInt16(frame[12]) << 8 | UInt16(frame[13])
        guard etherType == 0x0800 else { return 0 }
        return FlowHash.ipv4(frame: UnsafeRawBufferPointer(rebasing: frame[14...]))
    }
}
