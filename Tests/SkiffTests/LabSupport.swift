import Foundation
import Testing
@testable import Skiff
import SkiffSim
import SkiffWire

/// Test bench for the stack suites: a host on a capturing port (a "wire tap" we can read and
/// inject into), frame builders that write packets byte by byte, parsers for what the stack
/// sent, a routed three-host topology and a pcap reader. Everything runs on virtual time.
enum Lab {
    static let aIP = IPv4Address(10, 0, 0, 1)
    static let bIP = IPv4Address(10, 0, 0, 2)
    static let aMAC = MACAddress(0x02, 0, 0, 0, 0, 0x0A)
    static let bMAC = MACAddress(0x02, 0, 0, 0, 0, 0x0B)

    // MARK: A port that keeps what the NIC sends

    /// One frame the NIC put on the wire.
    struct Frame {
        var time: Nanoseconds
        var bytes: [UInt8]
        /// What the NIC left to the far side (TSO segment size, partial checksum).
        var offload = FrameOffload.none
    }

    /// The wire side of a NIC in a test: every transmitted frame is kept, with its time.
    final class Port: NetworkPort {
        var frames: [Frame] = []
        /// Offloads this port takes (none unless a test asks: then the NIC may hand over TSO
        /// segments and partial checksums, as to a virtio or TAP peer).
        let offered: PortOffloads
        init(offloads: PortOffloads = []) { offered = offloads }
        var offloads: PortOffloads { offered }
        func transmit(_ segments: UnsafeBufferPointer<UnsafeRawBufferPointer>, length: Int, now: Nanoseconds) -> Int {
            transmit(segments, length: length, offload: .none, now: now)
        }
        func transmit(_ segments: UnsafeBufferPointer<UnsafeRawBufferPointer>, length: Int, offload: FrameOffload,
                      now: Nanoseconds) -> Int {
            var bytes = [UInt8]()
            bytes.reserveCapacity(length)
            for s in segments { bytes.append(contentsOf: s) }
            frames.append(Frame(time: now, bytes: bytes, offload: offload))
            return length
        }
        /// Frames sent since the last call.
        func take() -> [Frame] {
            defer { frames.removeAll() }
            return frames
        }
    }

    // MARK: A host on its own, driven by hand

    /// A stack with one (or more) devices on capturing ports. Frames are injected with the NIC's
    /// receive path; time moves only through `advance`.
    final class Host {
        let stack: NetworkStack
        var devices: [NetDevice] = []
        var ports: [Port] = []
        private(set) var now: Nanoseconds = 0
        var dev: NetDevice { devices[0] }
        var port: Port { ports[0] }

        init(name: String = "H", address: IPv4Address = Lab.bIP, prefixLength: Int = 24, mac: MACAddress = Lab.bMAC,
             pool: BufferPool = BufferPool(), offloads: PortOffloads = [], configure: (inout DeviceConfiguration) -> Void = { _ in }) {
            stack = NetworkStack(name: name, pool: pool)
            addDevice(name: "eth0", address: address, prefixLength: prefixLength, mac: mac, offloads: offloads, configure: configure)
        }

        @discardableResult
        func addDevice(name: String, address: IPv4Address?, prefixLength: Int = 24, mac: MACAddress,
                       offloads: PortOffloads = [], configure: (inout DeviceConfiguration) -> Void = { _ in }) -> NetDevice {
            var c = DeviceConfiguration(name: name, mac: mac)
            configure(&c)
            let p = Port(offloads: offloads)
            let d = stack.addDevice(c, port: p)
            if let address { stack.addAddress(address, prefixLength: prefixLength, device: d) }
            devices.append(d)
            ports.append(p)
            return d
        }

        /// Runs the engine at `now` until it has nothing left to do now (bounded).
        func settle() {
            var rounds = 0
            repeat {
                stack.run(now: now)
                rounds += 1
                guard let d = stack.nextDeadline(), d <= now else { return }
            } while rounds < 10_000
            Issue.record("engine did not settle at \(now)")
        }

        /// Moves virtual time to `t`, firing every timer due on the way, in order.
        func advance(to t: Nanoseconds) {
            var rounds = 0
            while let d = stack.nextDeadline(), d <= t, rounds < 1_000_000 {
                if d > now { now = d }
                settle()
                rounds += 1
            }
            if t > now { now = t }
            settle()
        }

        func advance(by d: Nanoseconds) { advance(to: now + d) }

        /// A frame arrives on device `device`'s wire; the stack handles it (interrupt, NAPI).
        func inject(_ frame: [UInt8], device: Int = 0) {
            frame.withUnsafeBytes { devices[device].nic.receive(frame: $0, now: now) }
            settle()
        }

        /// Frames arrive back to back; the stack runs once they are all on the ring.
        func injectBurst(_ frames: [[UInt8]], device: Int = 0) {
            for f in frames { f.withUnsafeBytes { devices[device].nic.receive(frame: $0, now: now) } }
            settle()
        }

        @discardableResult
        func ping(_ to: IPv4Address, identifier: UInt16 = 1, sequence: UInt16, payloadSize: Int = 56) -> Result<UInt32, SendError> {
            stack.ping(to, identifier: identifier, sequence: sequence, payloadSize: payloadSize, now: now)
        }

        @discardableResult
        func udpSend(to: IPv4Address, sourcePort: UInt16 = 4000, destinationPort: UInt16, payload: Int,
                     cache: inout RouteCache) -> SendError? {
            stack.processContext(now: now) {
                stack.udpSend(to: to, sourcePort: sourcePort, destinationPort: destinationPort, payloadLength: payload,
                              route: &cache) { b in for i in 0..<b.count { b[i] = UInt8(truncatingIfNeeded: i) } }
            }
        }

        @discardableResult
        func udpSend(to: IPv4Address, sourcePort: UInt16 = 4000, destinationPort: UInt16, payload: Int) -> SendError? {
            var cache = RouteCache()
            return udpSend(to: to, sourcePort: sourcePort, destinationPort: destinationPort, payload: payload, cache: &cache)
        }

        /// Frees everything the devices hold; true when no buffer and no DMA mapping is left.
        func shutdownIsClean() -> Bool {
            stack.shutdownDevices()
            return stack.pool.statistics.inUse == 0 && devices.allSatisfy { $0.nic.iommu.activeMappings == 0 }
        }
    }

    // MARK: Frame builders

    static func ethernet(_ payload: [UInt8], to dst: MACAddress = Lab.bMAC, from src: MACAddress = Lab.aMAC,
                         type: UInt16 = EtherType.ipv4) -> [UInt8] {
        var f = [UInt8](repeating: 0, count: 14)
        f.withUnsafeMutableBytes { EthernetHeader(destination: dst, source: src, etherType: type).emit(into: $0) }
        return f + payload
    }

    static func checksum(_ bytes: ArraySlice<UInt8>, initial: UInt32 = 0) -> UInt16 {
        Array(bytes).withUnsafeBytes { InternetChecksum.fold(InternetChecksum.sum($0, initial: initial)) }
    }

    /// An IPv4 packet (or fragment: `offset` in bytes, `more` = MF) around `payload`.
    static func ipv4(_ payload: [UInt8], from src: IPv4Address = Lab.aIP, to dst: IPv4Address = Lab.bIP,
                     protocol proto: UInt8, id: UInt16 = 0x1234, ttl: UInt8 = 64, tos: UInt8 = 0,
                     dontFragment: Bool = false, more: Bool = false, offset: Int = 0,
                     options: [UInt8] = []) -> [UInt8] {
        precondition(options.count % 4 == 0 && options.count <= 40)
        let hl = 20 + options.count
        var h = [UInt8](repeating: 0, count: hl)
        h[0] = 0x40 | UInt8(hl / 4)
        h[1] = tos
        let total = hl + payload.count
        h[2] = UInt8(truncatingIfNeeded: total >> 8); h[3] = UInt8(truncatingIfNeeded: total)
        h[4] = UInt8(id >> 8); h[5] = UInt8(id & 0xFF)
        let field = UInt16(offset / 8) | (dontFragment ? 0x4000 : 0) | (more ? 0x2000 : 0)
        h[6] = UInt8(field >> 8); h[7] = UInt8(field & 0xFF)
        h[8] = ttl
        h[9] = proto
        h.withUnsafeMutableBytes { p in
            src.write(to: p.baseAddress! + 12)
            dst.write(to: p.baseAddress! + 16)
        }
        for (i, o) in options.enumerated() { h[20 + i] = o }
        let c = checksum(h[...])
        h[10] = UInt8(c >> 8); h[11] = UInt8(c & 0xFF)
        return h + payload
    }

    /// A UDP datagram with a correct checksum (or `checksum` verbatim when given).
    static func udp(_ payload: [UInt8], from src: IPv4Address = Lab.aIP, to dst: IPv4Address = Lab.bIP,
                    sourcePort: UInt16 = 4000, destinationPort: UInt16, checksum: UInt16? = nil) -> [UInt8] {
        var d = [UInt8](repeating: 0, count: 8) + payload
        let len = d.count
        d[0] = UInt8(sourcePort >> 8); d[1] = UInt8(sourcePort & 0xFF)
        d[2] = UInt8(destinationPort >> 8); d[3] = UInt8(destinationPort & 0xFF)
        d[4] = UInt8(truncatingIfNeeded: len >> 8); d[5] = UInt8(truncatingIfNeeded: len)
        if let checksum {
            d[6] = UInt8(checksum >> 8); d[7] = UInt8(checksum & 0xFF)
        } else {
            d.withUnsafeMutableBytes { UDPHeader.fillChecksum(datagram: $0, source: src, destination: dst) }
        }
        return d
    }

    /// An ICMP message with a correct checksum.
    static func icmp(type: UInt8, code: UInt8 = 0, rest: UInt32 = 0, _ payload: [UInt8] = []) -> [UInt8] {
        var m: [UInt8] = [type, code, 0, 0, UInt8(rest >> 24), UInt8((rest >> 16) & 0xFF),
                          UInt8((rest >> 8) & 0xFF), UInt8(rest & 0xFF)] + payload
        let c = checksum(m[...])
        m[2] = UInt8(c >> 8); m[3] = UInt8(c & 0xFF)
        return m
    }

    static func echoRequest(identifier: UInt16 = 0x77, sequence: UInt16, payload: Int = 56) -> [UInt8] {
        icmp(type: 8, rest: UInt32(identifier) << 16 | UInt32(sequence), pattern(payload))
    }

    static func arp(_ op: ARPOperation, senderMAC: MACAddress, senderIP: IPv4Address,
                    targetMAC: MACAddress = .zero, targetIP: IPv4Address) -> [UInt8] {
        var a = [UInt8](repeating: 0, count: ARPPacket.length)
        a.withUnsafeMutableBytes {
            ARPPacket(operation: op, senderMAC: senderMAC, senderIP: senderIP, targetMAC: targetMAC, targetIP: targetIP)
                .emit(into: $0)
        }
        return a
    }

    /// The ARP reply `peer` would send to `host`'s request.
    static func arpReplyFrame(from peerIP: IPv4Address, mac peerMAC: MACAddress, to hostIP: IPv4Address,
                              hostMAC: MACAddress) -> [UInt8] {
        ethernet(arp(.reply, senderMAC: peerMAC, senderIP: peerIP, targetMAC: hostMAC, targetIP: hostIP),
                 to: hostMAC, from: peerMAC, type: EtherType.arp)
    }

    static func pattern(_ n: Int, seed: Int = 0) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ seed) } }

    /// Cuts a transport message into IP fragments: `(offset, length)` pieces of `message`, the
    /// last piece without MF. Returns Ethernet frames in the order given.
    static func fragments(_ message: [UInt8], pieces: [(Int, Int)], from src: IPv4Address = Lab.aIP,
                          to dst: IPv4Address = Lab.bIP, protocol proto: UInt8 = IPProtocol.udp, id: UInt16,
                          firstOptions: [UInt8] = []) -> [[UInt8]] {
        pieces.map { (off, len) in
            let more = off + len < message.count
            let ip = ipv4(Array(message[off..<(off + len)]), from: src, to: dst, protocol: proto, id: id,
                          more: more, offset: off, options: off == 0 ? firstOptions : [])
            return ethernet(ip)
        }
    }

    // MARK: Parsing what the stack sent

    static func etherType(_ f: [UInt8]) -> UInt16 { f.count >= 14 ? UInt16(f[12]) << 8 | UInt16(f[13]) : 0 }
    static func destinationMAC(_ f: [UInt8]) -> MACAddress { f.withUnsafeBytes { MACAddress.read(from: $0.baseAddress!) } }
    static func sourceMAC(_ f: [UInt8]) -> MACAddress { f.withUnsafeBytes { MACAddress.read(from: $0.baseAddress! + 6) } }

    static func arpPacket(_ f: [UInt8]) -> ARPPacket? {
        guard etherType(f) == EtherType.arp else { return nil }
        return Array(f[14...]).withUnsafeBytes { try? ARPPacket.parse($0) }
    }

    /// The IPv4 packet of a frame (`linkHeader` bytes of link header in front), header verified.
    static func ipPacket(_ f: [UInt8], linkHeader: Int = 14) -> (header: IPv4Header, payload: [UInt8])? {
        guard f.count >= linkHeader + 20 else { return nil }
        if linkHeader == 14 && etherType(f) != EtherType.ipv4 { return nil }
        let ip = Array(f[linkHeader...])
        return ip.withUnsafeBytes { b -> (header: IPv4Header, payload: [UInt8])? in
            guard let v = try? IPv4View(checking: b, verifyChecksum: true) else { return nil }
            return (v.header, Array(v.payload))
        }
    }

    /// An ICMP message in a frame: type, code, rest of header, body; nil unless the checksum holds.
    static func icmpMessage(_ f: [UInt8], linkHeader: Int = 14) -> (type: UInt8, code: UInt8, rest: UInt32, body: [UInt8])? {
        guard let pkt = ipPacket(f, linkHeader: linkHeader), pkt.header.protocol == IPProtocol.icmp,
              !pkt.header.isFragment, pkt.payload.count >= 8 else { return nil }
        let p = pkt.payload
        let ok = p.withUnsafeBytes { InternetChecksum.verify($0) }
        guard ok else { return nil }
        let rest = UInt32(p[4]) << 24 | UInt32(p[5]) << 16 | UInt32(p[6]) << 8 | UInt32(p[7])
        return (p[0], p[1], rest, Array(p[8...]))
    }

    static func isEchoRequest(_ f: [UInt8]) -> Bool { icmpMessage(f)?.type == 8 }

    /// Sequence number of an echo request or reply frame.
    static func echoSequence(_ f: [UInt8], linkHeader: Int = 14) -> UInt16? {
        guard let m = icmpMessage(f, linkHeader: linkHeader), m.type == 8 || m.type == 0 else { return nil }
        return UInt16(m.rest & 0xFFFF)
    }

    // MARK: Echo requests with a chosen TTL

    /// Sends an ICMP echo request through `ipQueueXmit` with `ttl`, as `ping -t` does.
    @discardableResult
    static func sendEcho(_ s: NetworkStack, to: IPv4Address, ttl: UInt8, sequence: UInt16, now: Nanoseconds) -> SendError? {
        s.processContext(now: now) {
            let m = echoRequest(identifier: 0x99, sequence: sequence, payload: 24)
            guard var b = s.pool.allocate(size: m.count) else { return .noBuffers }
            let p = b.put(m.count)
            m.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: m.count) }
            var cache = RouteCache()
            return s.ipQueueXmit(b, destination: to, protocol: IPProtocol.icmp, ttl: ttl, route: &cache)
        }
    }

    // MARK: Routed topology

    /// A (10.0.1.2) — switch 1 — (10.0.1.1) R (10.0.2.1) — switch 2 — C (10.0.2.2).
    /// A and C route everything via R; R forwards when `forwarding` is on.
    struct Routed {
        let world: SimWorld
        let a: NetworkStack, r: NetworkStack, c: NetworkStack
        let aDevice: NetDevice, rLeft: NetDevice, rRight: NetDevice, cDevice: NetDevice
        static let aAddress = IPv4Address(10, 0, 1, 2)
        static let rLeftAddress = IPv4Address(10, 0, 1, 1)
        static let rRightAddress = IPv4Address(10, 0, 2, 1)
        static let cAddress = IPv4Address(10, 0, 2, 2)

        init(forwarding: Bool = true) {
            world = SimWorld(seed: 7)
            a = world.addHost(name: "A"); r = world.addHost(name: "R"); c = world.addHost(name: "C")
            aDevice = world.addDevice(host: a, configuration: DeviceConfiguration(name: "eth0", mac: MACAddress(0x02, 0, 0, 0, 1, 2)))
            rLeft = world.addDevice(host: r, configuration: DeviceConfiguration(name: "eth0", mac: MACAddress(0x02, 0, 0, 0, 1, 1)))
            rRight = world.addDevice(host: r, configuration: DeviceConfiguration(name: "eth1", mac: MACAddress(0x02, 0, 0, 0, 2, 1)))
            cDevice = world.addDevice(host: c, configuration: DeviceConfiguration(name: "eth0", mac: MACAddress(0x02, 0, 0, 0, 2, 2)))
            a.addAddress(Routed.aAddress, prefixLength: 24, device: aDevice)
            r.addAddress(Routed.rLeftAddress, prefixLength: 24, device: rLeft)
            r.addAddress(Routed.rRightAddress, prefixLength: 24, device: rRight)
            c.addAddress(Routed.cAddress, prefixLength: 24, device: cDevice)
            a.routes.addDefault(gateway: Routed.rLeftAddress, device: aDevice.index)
            c.routes.addDefault(gateway: Routed.rRightAddress, device: cDevice.index)
            r.ipConfig.forwarding = forwarding
            let left = world.addSwitch(), right = world.addSwitch()
            world.connect((a, aDevice), to: left)
            world.connect((r, rLeft), to: left)
            world.connect((r, rRight), to: right)
            world.connect((c, cDevice), to: right)
        }
    }

    // MARK: pcap

    struct PcapRecord { var seconds: UInt32; var microseconds: UInt32; var capturedLength: Int; var length: Int; var bytes: [UInt8] }

    /// Reads a classic little-endian pcap file: the 24-byte global header and every record.
    static func readPcap(_ path: String) -> (header: [UInt8], records: [PcapRecord])? {
        guard let data = FileManager.default.contents(atPath: path), data.count >= 24 else { return nil }
        let b = [UInt8](data)
        func u32(_ o: Int) -> UInt32 { UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24 }
        var records: [PcapRecord] = []
        var o = 24
        while o + 16 <= b.count {
            let cap = Int(u32(o + 8))
            guard o + 16 + cap <= b.count else { return nil }
            records.append(PcapRecord(seconds: u32(o), microseconds: u32(o + 4), capturedLength: cap,
                                      length: Int(u32(o + 12)), bytes: Array(b[(o + 16)..<(o + 16 + cap)])))
            o += 16 + cap
        }
        guard o == b.count else { return nil }
        return (Array(b[0..<24]), records)
    }

    static func temporaryPath(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory.path
        return "\(dir)/skiff-\(name)-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).pcap"
    }
}
