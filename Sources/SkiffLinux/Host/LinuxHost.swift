import Skiff
import SkiffWire

/// A Skiff stack on a real device: the port, one device whose NIC is plugged into it, the
/// shared (locked) stack, and one engine thread per queue. Application threads use
/// `shared` (the blocking socket API) from any thread.
/// Linux: a host with one NIC, its driver and one `ksoftirqd`/NAPI thread per queue.
public final class LinuxHost: @unchecked Sendable {
    public let configuration: HostConfiguration
    public let port: any LinuxPort
    public let shared: SharedStack
    public let device: NetDevice
    public private(set) var engines: [EngineThread] = []
    /// Puts on the port the frames the engine threads' work sends (`TransmitThread`).
    public private(set) var transmitter: TransmitThread?
    public let pcap: PacketTap?
    private var running = false

    public init(_ c: HostConfiguration) throws(HostError) {
        guard (68...65_535).contains(c.mtu) else { throw .badConfiguration("--mtu \(c.mtu) is outside 68...65535") }
        guard (1...16).contains(c.queues) else { throw .badConfiguration("--queues \(c.queues) is outside 1...16") }
        guard (0...32).contains(c.prefixLength) else { throw .badConfiguration("prefix /\(c.prefixLength) is outside 0...32") }
        configuration = c
        do {
            switch c.attachment {
            case let .tap(n): port = try TapPort(name: n, queues: c.queues, offload: c.offload, batchedWrites: c.batchedWrites)
            case let .tun(n):
                if c.offload { throw HostError.badConfiguration("--offload needs --tap") }
                port = try TunPort(name: n, queues: c.queues, batchedWrites: c.batchedWrites)
            case let .packet(n):
                if c.queues != 1 { throw HostError.badConfiguration("--queues needs --tap or --tun") }
                if c.offload { throw HostError.badConfiguration("--offload needs --tap") }
                port = try PacketSocketPort(interface: n, batchedWrites: c.batchedWrites)
            }
            if c.configureKernelSide {
                try InterfaceControl.setMTU(c.mtu, of: c.attachment.deviceName)
                try InterfaceControl.setUp(c.attachment.deviceName)
            }
            // Until the kernel has activated the interface's qdisc, what it sends is dropped.
            InterfaceControl.waitUntilRunning(c.attachment.deviceName)
        } catch let e as PortError {
            throw .port(e)
        } catch let e as HostError {
            throw e
        } catch {
            throw .badConfiguration("\(error)")
        }
        let stack = NetworkStack(name: "skiff", seed: c.seed)
        // Several threads share the stack: each context's CPU time comes from the thread's own
        // CPU clock, read once per stack entry rather than at every switch.
        stack.contexts.clock = .threadCPUScaled
        var dc = DeviceConfiguration(name: c.attachment.deviceName, linkType: port.linkType, mac: port.suggestedMAC, mtu: c.mtu)
        dc.txQueues = port.queueCount
        dc.rxQueues = port.queueCount
        dc.ringSize = c.ringSize
        // TSO and checksum offload stay on only where the port offers them (TAP with --offload).
        dc.features = [.scatterGather, .gso, .tso, .txChecksum]
        device = stack.addDevice(dc, port: port)
        stack.addAddress(c.address, prefixLength: c.prefixLength, device: device)
        if let g = c.gateway {
            stack.routes.add(Route(destination: .any, prefixLength: 0, gateway: g, device: device.index,
                                   metric: 0, source: c.address, scope: .universe))
        }
        if let path = c.pcapPath {
            do {
                let tap = PacketTap(writer: try PcapWriter(path: path, linkType: port.linkType == .ethernet ? 1 : 101))
                stack.taps.append(tap)
                pcap = tap
            } catch {
                port.close()
                throw .pcap(error.description)
            }
        } else {
            pcap = nil
        }
        shared = SharedStack(stack: stack)
        // Putting a frame on a TAP, TUN or packet socket is a system call that runs the kernel's
        // receive path: it happens outside the stack lock, so that other threads (the engine
        // reading ACKs, other senders) use the stack meanwhile.
        shared.deferTransmits(on: device.nic)
    }

    /// Starts one engine thread per queue.
    public func start() throws(HostError) {
        guard !running else { return }
        do {
            let t = try TransmitThread(shared: shared)
            try t.start()
            transmitter = t
            shared.withStack { _, _ in shared.transmitKick = { t.kick() } }
        } catch {
            throw .port(error)
        }
        do {
            for q in 0..<port.queueCount {
                let e = try EngineThread(shared: shared, port: port, device: device, queue: q)
                e.busyPoll = configuration.busyPoll
                engines.append(e)
                try e.start()
            }
        } catch {
            for e in engines { e.stop() }
            engines = []
            shared.withStack { _, _ in shared.transmitKick = nil }
            transmitter?.stop()
            transmitter = nil
            throw .port(error)
        }
        if configuration.busyRead > 0 {
            let polled = engines
            shared.withStack { _, _ in
                shared.busyRead = configuration.busyRead
                shared.busyPollDevice = {
                    var hit = false
                    for e in polled where e.busyPollFromCaller() { hit = true }
                    return hit
                }
            }
        }
        if configuration.sleepOnDevice && engines.count == 1 {
            let device = engines[0].deviceSleep
            shared.withStack { _, _ in shared.deviceSleep = device }
        }
        running = true
    }

    /// Stops the engine threads, flushes the capture and closes the port.
    public func stop() {
        guard running else { return }
        running = false
        shared.withStack { _, _ in
            shared.busyPollDevice = nil
            // A caller sleeping on the port wakes, finds no device and gives the port back.
            shared.deviceSleep = nil
            shared.lock.wakeAll()
        }
        for e in engines { e.stop() }
        // The transmitter goes last: it puts on the port what the engines left it.
        shared.withStack { _, _ in shared.transmitKick = nil }
        transmitter?.stop()
        shared.withStack { _, _ in pcap?.writer.flush() }
    }

    /// Stops (if running) and closes the port's descriptors.
    public func close() {
        stop()
        shared.withStack { _, _ in pcap?.writer.close() }
        // A thread leaving the stack may still be putting frames on the port (the transmit
        // lock) or ringing a doorbell (the stack lock): the descriptors close under both.
        shared.withStack { _, _ in device.nic.withTransmitLock { port.close() } }
    }
}
