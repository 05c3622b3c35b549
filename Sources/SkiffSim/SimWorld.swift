import Skiff
import SkiffWire

/// Where a link end is plugged in.
public enum SimEndpoint: Sendable, Equatable {
    /// A host's device: (host index, device index).
    case nic(host: Int, device: Int)
    /// A switch port: (switch index, port).
    case switchPort(switchIndex: Int, port: Int)
}

/// A full-duplex cable between two endpoints, impaired independently in each direction.
public final class SimLink {
    public let index: Int
    public let ends: (SimEndpoint, SimEndpoint)
    /// Impairments of frames travelling from end 0 to end 1, and from end 1 to end 0.
    @exclusivity(unchecked) public var impairments: (Impairments, Impairments)
    @exclusivity(unchecked) public internal(set) var statistics: (LinkStatistics, LinkStatistics) = (LinkStatistics(), LinkStatistics())
    @exclusivity(unchecked) var busyUntil: (Nanoseconds, Nanoseconds) = (0, 0)
    @exclusivity(unchecked) var queuedBytes: (Int, Int) = (0, 0)

    init(index: Int, a: SimEndpoint, b: SimEndpoint, impairments: Impairments) {
        self.index = index
        ends = (a, b)
        self.impairments = (impairments, impairments)
    }
}

/// The NIC side of a simulated cable: frames the NIC transmits are copied onto the wire.
public final class SimPort: NetworkPort {
    unowned let world: SimWorld
    @exclusivity(unchecked) var link = -1
    @exclusivity(unchecked) var side = 0
    init(world: SimWorld) { self.world = world }

    public func transmit(_ segments: UnsafeBufferPointer<UnsafeRawBufferPointer>, length: Int, now: Nanoseconds) -> Int {
        transmit(segments, length: length, offload: .none, now: now)
    }

    /// A memory link carries offloads the way a virtio or veth link between two hosts on one
    /// machine does: a TSO segment crosses whole and a checksum left partial is never computed;
    /// the far NIC receives them with the same offload information. A frame that gets corrupted
    /// on the way loses its offload marks, so the receiver checks (and drops) it.
    public var offloads: PortOffloads { [.checksum, .tcpSegmentation] }

    public func transmit(_ segments: UnsafeBufferPointer<UnsafeRawBufferPointer>, length: Int, offload: FrameOffload,
                         now: Nanoseconds) -> Int {
        guard link >= 0 else { return 0 }
        guard var frame = world.wirePool.allocate(size: length, headroom: 0) else { world.wireExhausted &+= 1; return 0 }
        let p = frame.put(length)
        var off = 0
        for s in segments {
            if let base = s.baseAddress { (p + off).copyMemory(from: base, byteCount: s.count) }
            off += s.count
        }
        frame.meta.gsoSize = offload.segmentSize
        frame.meta.checksumPartial = offload.needsChecksum
        frame.meta.checksumValid = offload.checksumValid
        world.send(frame, link: link, fromSide: side, now: now)
        return length
    }
}

/// A learning switch (Linux: a bridge): frames go to the port their destination MAC was last
/// seen on, or to every other port.
public final class SimSwitch {
    public let index: Int
    /// Link attached to each port.
    @exclusivity(unchecked) var ports: [Int] = []
    @exclusivity(unchecked) public internal(set) var table: [MACAddress: Int] = [:]
    @exclusivity(unchecked) public internal(set) var flooded: UInt64 = 0
    @exclusivity(unchecked) public internal(set) var forwarded: UInt64 = 0
    init(index: Int) { self.index = index }
}

/// Simulated hosts on memory links, on one virtual clock.
///
/// `runUntilIdle()` alternates between running every host's engine at `now` and delivering the
/// frames due, then advances the clock to the next timer or frame; it stops when nothing is left.
public final class SimWorld {
    public let clock = VirtualClock()
    @exclusivity(unchecked) public private(set) var hosts: [NetworkStack] = []
    @exclusivity(unchecked) public private(set) var links: [SimLink] = []
    @exclusivity(unchecked) public private(set) var switches: [SimSwitch] = []
    /// Frames in flight are held in buffers from this pool ("the wire").
    public let wirePool = BufferPool(classes: [2048, 9216 + 64, 65536 + 64])
    @exclusivity(unchecked) public internal(set) var wireExhausted: UInt64 = 0
    @exclusivity(unchecked) var rng: SplitMix64
    @exclusivity(unchecked) var ports: [[SimPort]] = []

    // In-flight frames: a heap of (time, sequence, slot).
    struct Pending { var time: Nanoseconds; var sequence: UInt64; var slot: Int; var link: Int; var toSide: Int }
    @exclusivity(unchecked) var heap: [Pending] = []
    @exclusivity(unchecked) var sequence: UInt64 = 0
    @exclusivity(unchecked) var frames: UnsafeMutablePointer<PacketBuffer?>
    @exclusivity(unchecked) var frameCapacity = 0
    @exclusivity(unchecked) var freeFrames: [Int] = []

    public init(seed: UInt64 = 1) {
        rng = SplitMix64(seed: seed)
        frames = .allocate(capacity: 0)
    }

    deinit {
        frames.deinitialize(count: frameCapacity)
        frames.deallocate()
    }

    public var now: Nanoseconds { clock.now }

    /// Adds a host with its own stack and buffer pool.
    @discardableResult
    public func addHost(name: String) -> NetworkStack {
        let s = NetworkStack(name: name, seed: rng.next())
        s.contexts.enabled = true
        hosts.append(s)
        ports.append([])
        return s
    }

    /// Adds an Ethernet device to a host, ready to be cabled.
    @discardableResult
    public func addDevice(host: NetworkStack, configuration: DeviceConfiguration) -> NetDevice {
        let h = hosts.firstIndex { $0 === host }!
        let port = SimPort(world: self)
        ports[h].append(port)
        return host.addDevice(configuration, port: port)
    }

    /// A switch with no ports yet.
    @discardableResult
    public func addSwitch() -> SimSwitch {
        let s = SimSwitch(index: switches.count)
        switches.append(s)
        return s
    }

    /// Cables two host devices together.
    @discardableResult
    public func connect(_ a: (NetworkStack, NetDevice), _ b: (NetworkStack, NetDevice), impairments: Impairments = .none) -> SimLink {
        cable(endpoint(a), endpoint(b), impairments: impairments)
    }

    /// Cables a host device to a new port of a switch.
    @discardableResult
    public func connect(_ a: (NetworkStack, NetDevice), to sw: SimSwitch, impairments: Impairments = .none) -> SimLink {
        let port = sw.ports.count
        sw.ports.append(-1)
        let link = cable(endpoint(a), .switchPort(switchIndex: sw.index, port: port), impairments: impairments)
        sw.ports[port] = link.index
        return link
    }

    func endpoint(_ x: (NetworkStack, NetDevice)) -> SimEndpoint {
        .nic(host: hosts.firstIndex { $0 === x.0 }!, device: x.1.index)
    }

    func cable(_ a: SimEndpoint, _ b: SimEndpoint, impairments: Impairments) -> SimLink {
        let l = SimLink(index: links.count, a: a, b: b, impairments: impairments)
        links.append(l)
        for (side, e) in [(0, a), (1, b)] {
            if case let .nic(h, d) = e { ports[h][d].link = l.index; ports[h][d].side = side }
        }
        return l
    }

    // MARK: The wire

    /// A frame leaves `fromSide` of `link` at `now`: impairments decide if, when and how often
    /// it arrives.
    func send(_ frame: consuming PacketBuffer, link li: Int, fromSide side: Int, now t: Nanoseconds) {
        let link = links[li]
        let imp = side == 0 ? link.impairments.0 : link.impairments.1
        var st = side == 0 ? link.statistics.0 : link.statistics.1
        defer { if side == 0 { link.statistics.0 = st } else { link.statistics.1 = st } }
        st.frames &+= 1
        st.bytes &+= UInt64(frame.length)
        if imp.mtu > 0 && frame.length > imp.mtu + 14 && frame.meta.gsoSize == 0 { st.tooBig &+= 1; return }
        if imp.loss > 0 && rng.nextUnit() < imp.loss { st.lost &+= 1; return }
        if imp.corrupt > 0 && rng.nextUnit() < imp.corrupt && frame.length > 14 && frame.meta.mark & SimWorld.corruptedMark == 0 {
            // One bit flips. A frame is corrupted at most once on its way, and a copy shared with
            // a duplicate is made private first: two flips could cancel out in the 16-bit
            // Internet checksum, where a real path's Ethernet CRC would have dropped the frame.
            if frame.isShared, let copy = frame.copy(headroom: 0, stage: .portIO) { frame = copy }
            let at = 14 + Int(rng.next() % UInt64(frame.length - 14))
            let bit = UInt8(1) << UInt8(rng.next() % 8)
            let p = frame.data + at
            p.storeBytes(of: p.load(as: UInt8.self) ^ bit, as: UInt8.self)
            frame.meta.mark |= SimWorld.corruptedMark
            frame.meta.checksumPartial = false
            frame.meta.checksumValid = false
            st.corrupted &+= 1
        }
        var departure = t
        if imp.rate > 0 {
            let busy = side == 0 ? link.busyUntil.0 : link.busyUntil.1
            let queued = busy > t ? Int((busy - t) * imp.rate / 8 / Time.second) : 0
            if queued > imp.queueLimitBytes { st.queueDrops &+= 1; return }
            let serialise = UInt64(frame.length) * 8 * Time.second / imp.rate
            departure = max(t, busy) + serialise
            if side == 0 { link.busyUntil.0 = departure } else { link.busyUntil.1 = departure }
        }
        var arrival = departure + imp.delay
        if imp.jitter > 0 { arrival += rng.next() % (imp.jitter + 1) }
        if imp.reorder > 0 && rng.nextUnit() < imp.reorder {
            arrival += imp.delay + imp.jitter + 100 * Time.microsecond
            st.reordered &+= 1
        }
        if imp.duplicate > 0 && rng.nextUnit() < imp.duplicate {
            st.duplicated &+= 1
            schedule(frame.clone(), at: arrival + Time.microsecond, link: li, toSide: 1 - side)
        }
        schedule(frame, at: arrival, link: li, toSide: 1 - side)
    }

    /// Set in a wire frame's mark once the frame was corrupted.
    static let corruptedMark: UInt32 = 1 << 31

    func schedule(_ frame: consuming PacketBuffer, at time: Nanoseconds, link: Int, toSide: Int) {
        let slot: Int
        if let s = freeFrames.popLast() { slot = s } else {
            let newCap = max(64, frameCapacity * 2)
            let n = UnsafeMutablePointer<PacketBuffer?>.allocate(capacity: newCap)
            n.moveInitialize(from: frames, count: frameCapacity)
            for i in frameCapacity..<newCap { (n + i).initialize(to: nil) }
            frames.deallocate()
            frames = n
            for i in stride(from: newCap - 1, to: frameCapacity, by: -1) { freeFrames.append(i) }
            slot = frameCapacity
            frameCapacity = newCap
        }
        frames[slot] = .some(frame)
        sequence &+= 1
        heap.append(Pending(time: time, sequence: sequence, slot: slot, link: link, toSide: toSide))
        var i = heap.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if earlier(heap[i], heap[p]) { heap.swapAt(i, p); i = p } else { break }
        }
    }

    private func earlier(_ a: Pending, _ b: Pending) -> Bool {
        a.time < b.time || (a.time == b.time && a.sequence < b.sequence)
    }

    private func popEvent() -> Pending {
        let top = heap[0]
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < heap.count && earlier(heap[l], heap[m]) { m = l }
                if r < heap.count && earlier(heap[r], heap[m]) { m = r }
                if m == i { break }
                heap.swapAt(i, m); i = m
            }
        }
        return top
    }

    /// Delivers one due frame to its endpoint.
    func deliver(_ e: Pending) {
        guard let frame = frames[e.slot].take() else { return }
        freeFrames.append(e.slot)
        let link = links[e.link]
        if e.toSide == 1 { link.statistics.0.delivered &+= 1 } else { link.statistics.1.delivered &+= 1 }
        let end = e.toSide == 0 ? link.ends.0 : link.ends.1
        switch end {
        case let .nic(h, d):
            let m = frame.meta
            if m.gsoSize == 0 && !m.checksumPartial && !m.checksumValid {
                hosts[h].devices[d].nic.receive(frame: frame.bytes, now: e.time)
            } else {
                hosts[h].devices[d].nic.receive(frame: frame.bytes, offload: FrameOffload(
                    segmentSize: m.gsoSize, needsChecksum: m.checksumPartial, checksumValid: m.checksumValid), now: e.time)
            }
        case let .switchPort(si, port):
            switchInput(frame, switch: switches[si], port: port, now: e.time)
        }
    }

    /// A frame enters a switch port: learn the source, forward or flood.
    func switchInput(_ frame: consuming PacketBuffer, switch sw: SimSwitch, port: Int, now t: Nanoseconds) {
        guard frame.length >= 14 else { return }
        let dst = MACAddress.read(from: frame.data)
        let src = MACAddress.read(from: frame.data + 6)
        if !src.isMulticast { sw.table[src] = port }
        if !dst.isMulticast, let out = sw.table[dst] {
            if out == port { return }
            sw.forwarded &+= 1
            let li = sw.ports[out]
            send(frame, link: li, fromSide: links[li].ends.1 == .switchPort(switchIndex: sw.index, port: out) ? 1 : 0, now: t)
            return
        }
        sw.flooded &+= 1
        for (p, li) in sw.ports.enumerated() where p != port {
            let side = links[li].ends.1 == .switchPort(switchIndex: sw.index, port: p) ? 1 : 0
            send(frame.clone(), link: li, fromSide: side, now: t)
        }
    }

    // MARK: Running

    /// Runs hosts and delivers frames until nothing is pending, or virtual time passes `limit`
    /// (absolute), or `maxSteps` iterations pass. Returns true when the world went idle.
    @discardableResult
    public func runUntilIdle(limit: Nanoseconds? = nil, maxSteps: Int = 10_000_000) -> Bool {
        let deadline = limit ?? (now &+ 3600 * Time.second)
        for _ in 0..<maxSteps {
            switch round() {
            case .delivered: continue
            case .next(nil): return true
            case let .next(n?):
                if n > now {
                    if n > deadline { return false }
                    clock.advance(to: n)
                }
            }
        }
        return false
    }

    /// Runs the world with an application step: `step` is called before each round (it may send,
    /// receive, connect …) and returns true when the application is done. Stops when it is done,
    /// when virtual time passes `limit` (absolute), or after `maxSteps` rounds. Returns whether
    /// the application finished.
    @discardableResult
    public func run(limit: Nanoseconds, maxSteps: Int = 50_000_000, _ step: () -> Bool) -> Bool {
        for _ in 0..<maxSteps {
            if step() { return true }
            switch round() {
            case .delivered: continue
            case .next(nil):
                // Nothing scheduled: only the application can still act.
                return step()
            case let .next(n?):
                // The application may have more to do at this instant (readiness changed).
                if step() { return true }
                if n > now {
                    if n > limit { return false }
                    clock.advance(to: n)
                }
            }
        }
        return false
    }

    enum Round { case delivered, next(Nanoseconds?) }

    /// One round at `now`: every host's engine runs, then one due frame is delivered; otherwise
    /// the time anything is next due (nil when the world is idle).
    private func round() -> Round {
        var next: Nanoseconds? = nil
        for h in hosts {
            if let d = h.run(now: now) { next = min(next ?? d, d) }
        }
        if let top = heap.first {
            if top.time <= now {
                // The frames due now arrive together (up to a NAPI weight of them) before the
                // hosts run again: a burst raises one interrupt and NAPI polls it as a batch.
                var delivered = 0
                while let t = heap.first?.time, t <= now, delivered < 64 {
                    deliver(popEvent())
                    delivered += 1
                }
                return .delivered
            }
            next = min(next ?? top.time, top.time)
        }
        return .next(next)
    }

    /// Runs until virtual time `t` (absolute), then stops even if work remains.
    public func run(until t: Nanoseconds) {
        _ = runUntilIdle(limit: t)
        if now < t { clock.advance(to: t) }
        for h in hosts { h.run(now: now) }
    }

    /// Frames still in flight.
    public var framesInFlight: Int { heap.count }
}
