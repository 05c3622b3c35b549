import SkiffWire

/// One datagram being reassembled (Linux: `struct ipq`).
struct ReassemblyQueue: ~Copyable {
    var active = false
    var source = IPv4Address.any, destination = IPv4Address.any
    var identification: UInt16 = 0
    var proto: UInt8 = 0
    /// Holds the payload at `payloadBase` and the first fragment's header just before it.
    var buffer: PacketBuffer? = nil
    /// Where the payload goes in `buffer` (its `data` when allocated).
    var payload: UnsafeMutableRawPointer? = nil
    var headerLength = 0
    var haveFirst = false
    /// Payload length once the last fragment (MF=0) arrived, else -1.
    var totalPayload = -1
    /// Received byte ranges [start, end), kept sorted and merged.
    var ranges: [(Int, Int)] = []
    var memory = 0
    var timer: TimerID? = nil
    var device = 0
    var traceID: UInt32 = 0
}

/// The reassembly table: a fixed number of queues with a memory cap and a 30 s timeout.
/// Linux: `ip4_frags` (`ipfrag_high_thresh`, `ipfrag_time`).
struct Reassembly: ~Copyable {
    static let maxQueues = 64
    /// Room for the largest IPv4 header in front of the payload.
    static let payloadBase = 128 + 60
    let queues: UnsafeMutablePointer<ReassemblyQueue>
    var memory = 0

    init() {
        queues = .allocate(capacity: Reassembly.maxQueues)
        for i in 0..<Reassembly.maxQueues { (queues + i).initialize(to: ReassemblyQueue()) }
    }

    deinit {
        queues.deinitialize(count: Reassembly.maxQueues)
        queues.deallocate()
    }

    mutating func removeAll() {
        for i in 0..<Reassembly.maxQueues { queues[i].buffer = nil; queues[i].active = false; queues[i].ranges = [] }
        memory = 0
    }

    /// Per-queue bookkeeping charged against the cap besides the payload.
    static let queueOverhead = 1024
}

extension NetworkStack {
    /// Adds a fragment to its queue; returns the whole datagram when the last hole is filled.
    /// Overlapping fragments kill the queue (Linux since 4.19, and RFC 5722's reasoning);
    /// exact duplicates are dropped alone. Linux: `ip_defrag()` → `ip_frag_queue()` → `ip_frag_reasm()`.
    func ipDefrag(_ fragment: consuming PacketBuffer, device dev: NetDevice) -> PacketBuffer? {
        let h = fragment.bytes
        let hl = Int(h[0] & 0x0F) * 4
        let field = UInt16(h[6]) << 8 | UInt16(h[7])
        let offset = Int(field & 0x1FFF) * 8
        let more = field & 0x2000 != 0
        let len = fragment.length - hl
        let ident = UInt16(h[4]) << 8 | UInt16(h[5])
        let proto = h[9]
        let src = IPv4Address(UInt32(h[12]) << 24 | UInt32(h[13]) << 16 | UInt32(h[14]) << 8 | UInt32(h[15]))
        let dst = IPv4Address(UInt32(h[16]) << 24 | UInt32(h[17]) << 16 | UInt32(h[18]) << 8 | UInt32(h[19]))
        counters.ipReasmReqds &+= 1
        let end = offset + len
        // Non-final fragments must carry a multiple of 8 bytes; the datagram may not pass 65535.
        if len <= 0 && more || (more && len % 8 != 0) || end + hl > 65535 {
            drops.count(.reassemblyInvalid); counters.ipReasmFails &+= 1
            return nil
        }
        let r = reassembly.queues
        var qi = -1
        var freeSlot = -1
        for i in 0..<Reassembly.maxQueues {
            if r[i].active {
                if r[i].identification == ident && r[i].source == src && r[i].destination == dst && r[i].proto == proto {
                    qi = i; break
                }
            } else if freeSlot < 0 { freeSlot = i }
        }
        if qi < 0 {
            guard freeSlot >= 0, reassembly.memory + Reassembly.queueOverhead + len <= ipConfig.reassemblyMemoryLimit,
                  let b = pool.allocate(size: 65535 + 60, headroom: Reassembly.payloadBase) else {
                drops.count(.reassemblyMemory); counters.ipReasmFails &+= 1
                return nil
            }
            qi = freeSlot
            r[qi].active = true
            r[qi].source = src; r[qi].destination = dst; r[qi].identification = ident; r[qi].proto = proto
            r[qi].payload = b.data
            r[qi].buffer = .some(b)
            r[qi].haveFirst = false
            r[qi].totalPayload = -1
            r[qi].ranges = []
            r[qi].ranges.reserveCapacity(8)
            r[qi].memory = Reassembly.queueOverhead
            r[qi].device = dev.index
            r[qi].traceID = 0
            reassembly.memory += Reassembly.queueOverhead
            if r[qi].timer == nil { r[qi].timer = timers.makeTimer(.reassembly(Int32(qi))) }
            timers.arm(r[qi].timer!, at: now &+ ipConfig.reassemblyTimeout)
        }
        if reassembly.memory + len > ipConfig.reassemblyMemoryLimit {
            drops.count(.reassemblyMemory); counters.ipReasmFails &+= 1
            killReassembly(qi)
            return nil
        }
        // Overlap and duplicate checks.
        for (s, e) in r[qi].ranges {
            if offset >= s && end <= e { drops.count(.reassemblyOverlap); return nil }   // duplicate: drop this one
            if offset < e && end > s {
                drops.count(.reassemblyOverlap); counters.ipReasmFails &+= 1
                killReassembly(qi)
                return nil
            }
        }
        if !more {
            if r[qi].totalPayload >= 0 && r[qi].totalPayload != end || r[qi].ranges.contains(where: { $0.1 > end }) {
                drops.count(.reassemblyInvalid); counters.ipReasmFails &+= 1
                killReassembly(qi)
                return nil
            }
            r[qi].totalPayload = end
        } else if r[qi].totalPayload >= 0 && end > r[qi].totalPayload {
            drops.count(.reassemblyInvalid); counters.ipReasmFails &+= 1
            killReassembly(qi)
            return nil
        }
        // Copy the payload into place (and the first fragment's header in front of it).
        let base = r[qi].payload!
        fragment.copyBytes(to: base + offset, offset: hl, count: len)
        fragment.recordCopy(.reassembly, bytes: len)
        if offset == 0 {
            fragment.copyBytes(to: base - hl, offset: 0, count: hl)
            r[qi].headerLength = hl
            r[qi].haveFirst = true
            r[qi].traceID = fragment.meta.traceID
        }
        r[qi].memory += len
        reassembly.memory += len
        insertRange(&r[qi].ranges, offset, end)
        // Complete?
        guard r[qi].haveFirst, r[qi].totalPayload >= 0, r[qi].ranges.count == 1,
              r[qi].ranges[0].0 == 0, r[qi].ranges[0].1 == r[qi].totalPayload else { return nil }
        // Each fragment was checked with its own header length; the datagram gets the first
        // fragment's, which may be longer (options). Linux: `ip_frag_reasm()` "Oversized IP packet".
        if r[qi].headerLength + r[qi].totalPayload > 65535 {
            drops.count(.reassemblyInvalid); counters.ipReasmFails &+= 1
            killReassembly(qi)
            return nil
        }
        var whole = r[qi].buffer.take()!
        let total = r[qi].totalPayload
        let qhl = r[qi].headerLength
        let trace = r[qi].traceID
        killReassembly(qi, counted: false)
        whole.put(total)
        let p = whole.push(qhl)
        p.storeBytes(of: UInt16(qhl + total).bigEndian, toByteOffset: 2, as: UInt16.self)
        p.storeBytes(of: UInt16(0).bigEndian, toByteOffset: 6, as: UInt16.self)
        p.storeBytes(of: 0, toByteOffset: 10, as: UInt16.self)
        let c = InternetChecksum.fold(InternetChecksum.sum(UnsafeRawBufferPointer(start: p, count: qhl)))
        p.storeBytes(of: c.bigEndian, toByteOffset: 10, as: UInt16.self)
        whole.meta.interfaceIndex = UInt16(dev.index)
        whole.meta.networkOffset = 0
        whole.meta.traceID = trace
        counters.ipReasmOKs &+= 1
        return whole
    }

    private func insertRange(_ ranges: inout [(Int, Int)], _ s: Int, _ e: Int) {
        var i = 0
        while i < ranges.count && ranges[i].0 < s { i += 1 }
        ranges.insert((s, e), at: i)
        // Merge touching neighbours.
        var j = max(0, i - 1)
        while j + 1 < ranges.count {
            if ranges[j].1 == ranges[j + 1].0 {
                ranges[j].1 = ranges[j + 1].1
                ranges.remove(at: j + 1)
            } else { j += 1 }
        }
    }

    func killReassembly(_ qi: Int, counted: Bool = true) {
        let r = reassembly.queues
        reassembly.memory -= r[qi].memory
        r[qi].memory = 0
        r[qi].active = false
        r[qi].buffer = nil
        r[qi].ranges.removeAll(keepingCapacity: true)
        if let t = r[qi].timer { timers.cancel(t) }
    }

    /// Reassembly timer: the datagram did not complete in 30 s. If the first fragment arrived,
    /// the sender gets ICMP time exceeded (fragment reassembly). Linux: `ip_expire()`.
    func reassemblyExpired(queue qi: Int) {
        let r = reassembly.queues
        guard r[qi].active else { return }
        counters.ipReasmTimeout &+= 1
        counters.ipReasmFails &+= 1
        drops.count(.reassemblyTimeout)
        if r[qi].haveFirst, var b = r[qi].buffer.take() {
            // Quote the first fragment's header and 8 bytes of its payload.
            let avail = r[qi].ranges.first.map { $0.0 == 0 ? min($0.1, 8) : 0 } ?? 0
            b.put(avail)
            b.push(r[qi].headerLength)
            icmpSendError(type: 11, code: 1, rest: 0, about: b)
        }
        killReassembly(qi, counted: false)
    }
}
