import Skiff
import SkiffWire

/// A TUN device: bare IPv4 packets, no link header and no ARP (IFF_TUN | IFF_NO_PI); Skiff's
/// device on it has `LinkType.ip`. Linux: `drivers/net/tun.c` in TUN mode (`ARPHRD_NONE`).
public final class TunPort: LinuxPort, @unchecked Sendable {
    public let name: String
    public let linkType: LinkType = .ip
    public let queueCount: Int
    public let suggestedMAC: MACAddress = .zero
    let io: DescriptorIO

    /// Creates the device if it does not exist, else attaches to it.
    public init(name: String, queues: Int = 1, batchedWrites: Bool = true) throws(PortError) {
        let dev = try TunTapDevice(name: name, mode: .tun, queues: queues, vnetHeader: false)
        do { try dev.setOffloads(enabled: false) } catch { dev.closeAll(); throw error }
        self.name = name
        queueCount = dev.fds.count
        io = DescriptorIO(fds: dev.fds, vnetHeader: false, batchedWrites: batchedWrites)
    }

    public func fileDescriptor(queue: Int) -> Int32 { io.fds[queue] }

    public func receive(queue: Int, into batch: FrameBatch) -> Int { io.receive(queue: queue, into: batch) }

    public func deliver(_ batch: FrameBatch, index: Int, emit: (UnsafeRawBufferPointer, FrameOffload) -> Void) {
        // Only IPv4 reaches the stack; the kernel also sends IPv6 router solicitations.
        let f = batch.frame(index)
        guard f.count >= 20, f[0] >> 4 == 4 else { return }
        deliverPlain(batch, index: index, emit: emit)
    }

    public func transmit(_ segments: UnsafeBufferPointer<UnsafeRawBufferPointer>, length: Int, now: Nanoseconds) -> Int {
        io.transmit(segments, length: length, l2: 0)
    }

    public var txStatistics: PortTxStatistics { io.tx }

    public var framesPerFlush: Int { io.framesPerFlush }

    public func flush() { io.flush() }

    public func close() { io.closeAll() }
}
