import Skiff
import SkiffWire

/// A TAP device: Ethernet frames to and from the kernel (IFF_TAP | IFF_NO_PI), one descriptor
/// per queue (IFF_MULTI_QUEUE when there are several). With `offload`, IFF_VNET_HDR is set: Skiff
/// hands the kernel TCP segments of up to 64 KiB and unfilled checksums (the device gets TSO and
/// checksum offload), and TUNSETOFFLOAD lets the kernel hand Skiff the same, which go to the NIC
/// whole with their offload information. Without it every frame has complete checksums both
/// ways. Linux: `drivers/net/tun.c` seen from user space (the host side of virtio-net).
public final class TapPort: DirectReceivePort, @unchecked Sendable {
    public let name: String
    public let linkType: LinkType = .ethernet
    public let queueCount: Int
    public let suggestedMAC: MACAddress
    public let offloads: PortOffloads
    let io: DescriptorIO

    /// Creates the device if it does not exist, else attaches to it.
    /// Throws `PortError` for a missing /dev/net/tun, no permission, or a busy device.
    public init(name: String, queues: Int = 1, offload: Bool = false, batchedWrites: Bool = true) throws(PortError) {
        let dev = try TunTapDevice(name: name, mode: .tap, queues: queues, vnetHeader: offload)
        do { try dev.setOffloads(enabled: offload) } catch { dev.closeAll(); throw error }
        self.name = name
        queueCount = dev.fds.count
        offloads = offload ? [.checksum, .tcpSegmentation] : []
        io = DescriptorIO(fds: dev.fds, vnetHeader: offload, batchedWrites: batchedWrites)
        let kernelMAC = (try? InterfaceControl.hardwareAddress(of: name)) ?? .zero
        var mac = derivedMAC(name, salt: 0)
        if mac == kernelMAC { mac = derivedMAC(name, salt: 1) }
        suggestedMAC = mac
    }

    public func fileDescriptor(queue: Int) -> Int32 { io.fds[queue] }

    public func receive(queue: Int, into batch: FrameBatch) -> Int { io.receive(queue: queue, into: batch) }

    public func deliver(_ batch: FrameBatch, index: Int, emit: (UnsafeRawBufferPointer, FrameOffload) -> Void) {
        if io.vnetHeader {
            VirtioNetHeader.deliver(batch.frame(index), l2: 14, batch: batch, emit: emit)
        } else {
            deliverPlain(batch, index: index, emit: emit)
        }
    }

    public func transmit(_ segments: UnsafeBufferPointer<UnsafeRawBufferPointer>, length: Int, now: Nanoseconds) -> Int {
        io.transmit(segments, length: length, l2: 14)
    }

    /// A frame with an offload request: its virtio-net header says what the kernel still has to
    /// do (cut a TCP segment, fill a checksum). Linux: `tun_get_user()` → `virtio_net_hdr_to_skb()`.
    public func transmit(_ segments: UnsafeBufferPointer<UnsafeRawBufferPointer>, length: Int, offload: FrameOffload,
                         now: Nanoseconds) -> Int {
        io.transmit(segments, length: length, l2: 14, offload: offload)
    }

    /// With the virtio-net header frames are read straight into the NIC's posted buffers.
    public var receivesDirectly: Bool { io.vnetHeader }

    public func receiveDirect(queue: Int, buffers: UnsafePointer<UnsafeMutableRawBufferPointer>, count: Int,
                              lengths: UnsafeMutablePointer<Int>, offloads: UnsafeMutablePointer<FrameOffload>,
                              batch: FrameBatch) -> Int {
        io.receiveDirect(queue: queue, buffers: buffers, count: count, lengths: lengths, offloads: offloads, batch: batch)
    }

    public var txStatistics: PortTxStatistics { io.tx }

    public var framesPerFlush: Int { io.framesPerFlush }

    public func flush() { io.flush() }

    public func close() { io.closeAll() }
}
