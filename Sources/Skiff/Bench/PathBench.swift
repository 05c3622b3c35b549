import SkiffWire

/// Benchmarks of the lower transmit path on one core to a null port. Each mode starts the path
/// one stage lower, so differences between modes give the cost of each stage:
///
/// - `full`: `udp_sendmsg` → `ip_queue_xmit` → neighbour → `dev_queue_xmit` (qdisc) → driver → NIC
///   → null port, with completions cleaned in NAPI.
/// - `device`: a prebuilt frame handed to `dev_queue_xmit`.
/// - `driver`: a prebuilt frame handed straight to the driver's xmit.
/// - `pool`: allocate and free a buffer only.
///
/// Sends run in batches of 64 in process context; after each batch the engine runs (interrupt,
/// NAPI, TX cleanup), as `local_bh_enable()` would. CPU accounting is off so that only the path
/// itself is timed.
public final class PathBench {
    public enum Mode: String, CaseIterable, Sendable { case full, device, driver, pool }

    public let mode: Mode
    /// IP packet length (64-byte frames carry 46 bytes of IP).
    public let ipLength: Int
    public let stack: NetworkStack
    let device: NetDevice
    let port = NullPort()
    var cache = RouteCache()
    var template: [UInt8]
    var now: Nanoseconds = 1
    public let batch = 64

    public init(mode: Mode, ipLength: Int) {
        self.mode = mode
        self.ipLength = max(28, ipLength)
        stack = NetworkStack(name: "bench", pool: BufferPool(classes: [2048 + 256, 65536 + 512], limitBlocks: 1 << 14))
        stack.contexts.enabled = false
        var c = DeviceConfiguration(name: "null0", mac: MACAddress(0x02, 0, 0, 0, 0, 1), mtu: 1500)
        c.ringSize = 1024
        device = stack.addDevice(c, port: port)
        stack.addAddress(IPv4Address(10, 0, 0, 1), prefixLength: 24, device: device)
        stack.addPermanentNeighbour(IPv4Address(10, 0, 0, 2), mac: MACAddress(0x02, 0, 0, 0, 0, 2), device: device)
        stack.pool.prefill(blocks: 4096)
        // A frame template for the lower modes: Ethernet + IPv4 + UDP, checksums filled.
        template = [UInt8](repeating: 0, count: 14 + self.ipLength)
        let ip = self.ipLength
        template.withUnsafeMutableBytes { t in
            EthernetHeader(destination: MACAddress(0x02, 0, 0, 0, 0, 2), source: MACAddress(0x02, 0, 0, 0, 0, 1),
                           etherType: EtherType.ipv4).emit(into: UnsafeMutableRawBufferPointer(rebasing: t[0..<14]))
            IPv4Header(totalLength: UInt16(ip), identification: 1, ttl: 64, protocol: IPProtocol.udp,
                       source: IPv4Address(10, 0, 0, 1), destination: IPv4Address(10, 0, 0, 2))
                .emit(into: UnsafeMutableRawBufferPointer(rebasing: t[14..<34]))
            UDPHeader(sourcePort: 9000, destinationPort: 9, length: UInt16(ip - 20))
                .emit(into: UnsafeMutableRawBufferPointer(rebasing: t[34..<42]))
        }
    }

    /// Packets the null port received.
    public var delivered: UInt64 { port.frames }

    /// Sends `packets` (rounded up to whole batches) and returns the elapsed real nanoseconds.
    public func run(packets: Int) -> Nanoseconds {
        let batches = (packets + batch - 1) / batch
        let start = MonotonicClock.read()
        switch mode {
        case .full: for _ in 0..<batches { fullBatch() }
        case .device: for _ in 0..<batches { deviceBatch() }
        case .driver: for _ in 0..<batches { driverBatch() }
        case .pool: for _ in 0..<batches { poolBatch() }
        }
        return MonotonicClock.read() &- start
    }

    private func fullBatch() {
        now &+= 1000
        let payload = ipLength - 28
        stack.processContext(now: now) {
            for _ in 0..<batch {
                stack.udpSend(to: IPv4Address(10, 0, 0, 2), sourcePort: 9000, destinationPort: 9,
                              payloadLength: payload, route: &cache) { p in
                    if p.count > 0 { p.baseAddress!.initializeMemory(as: UInt8.self, repeating: 0x5A, count: p.count) }
                }
            }
        }
        stack.run(now: now)
    }

    @inline(__always)
    private func frame() -> PacketBuffer {
        var b = stack.pool.allocate(size: template.count, headroom: 64)!
        let p = b.put(template.count)
        template.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        b.meta.networkOffset = 14
        return b
    }

    private func deviceBatch() {
        now &+= 1000
        stack.processContext(now: now) {
            for _ in 0..<batch { stack.devQueueXmit(frame(), device: device) }
        }
        stack.run(now: now)
    }

    private func driverBatch() {
        now &+= 1000
        let txq = device.txQueues[0]
        stack.processContext(now: now) {
            for i in 0..<batch {
                if let back = stack.driverXmit(frame(), device: device, queue: txq, more: i != batch - 1) {
                    _ = consume back
                }
            }
        }
        stack.run(now: now)
    }

    private func poolBatch() {
        for _ in 0..<batch {
            var b = stack.pool.allocate(size: template.count, headroom: 64)!
            b.put(template.count)
            _ = consume b
        }
    }
}
