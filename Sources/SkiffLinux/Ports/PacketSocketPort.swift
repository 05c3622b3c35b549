#if canImport(Glibc)
import Glibc
#endif
import CSkiffLinux
import Skiff
import SkiffWire

/// An AF_PACKET socket bound to an existing interface (e.g. one end of a veth pair): Skiff sees
/// every frame that arrives on it and puts frames on it as if it were the interface's NIC.
/// The socket is promiscuous, ignores frames the kernel itself sends out of the interface
/// (PACKET_IGNORE_OUTGOING), and receives with a `virtio_net_hdr` (PACKET_VNET_HDR) so the
/// unsegmented, partially checksummed GSO frames a veth passes along are completed and cut to
/// MTU size before the NIC. Receive is batched with `recvmmsg`.
/// Linux: `net/packet/af_packet.c` (`packet_rcv`, `packet_snd`).
public final class PacketSocketPort: LinuxPort, @unchecked Sendable {
    public let name: String
    public let linkType: LinkType = .ethernet
    public let queueCount = 1
    public let suggestedMAC: MACAddress
    public let interfaceIndex: Int32
    let io: DescriptorIO

    public init(interface name: String, batchedWrites: Bool = true) throws(PortError) {
        let index = try InterfaceControl.index(of: name)
        let proto = UInt16(LinuxConstants.ETH_P_ALL).bigEndian
        let fd = socket(AF_PACKET, Int32(SOCK_RAW.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Int32(proto))
        guard fd >= 0 else { throw PortError.from(errno: errno, operation: "open a packet socket on", device: name) }
        func fail(_ op: String) -> PortError {
            let e = PortError.from(errno: errno, operation: op, device: name)
            Glibc.close(fd)
            return e
        }
        var one: Int32 = 1
        guard setsockopt(fd, LinuxConstants.SOL_PACKET, LinuxConstants.PACKET_IGNORE_OUTGOING, &one, 4) == 0 else {
            throw fail("set PACKET_IGNORE_OUTGOING on")
        }
        guard setsockopt(fd, LinuxConstants.SOL_PACKET, 15 /* PACKET_VNET_HDR */, &one, 4) == 0 else {
            throw fail("set PACKET_VNET_HDR on")
        }
        var bufferSize: Int32 = 8 << 20
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufferSize, 4)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bufferSize, 4)
        // struct sockaddr_ll: family, protocol (network order), ifindex, hatype, pkttype, halen, addr[8].
        var ll = [UInt8](repeating: 0, count: 20)
        ll.withUnsafeMutableBytes { b in
            b.storeBytes(of: UInt16(AF_PACKET), toByteOffset: 0, as: UInt16.self)
            b.storeBytes(of: proto, toByteOffset: 2, as: UInt16.self)
            b.storeBytes(of: index, toByteOffset: 4, as: Int32.self)
        }
        let bound = ll.withUnsafeBytes { bind(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), 20) }
        guard bound == 0 else { throw fail("bind a packet socket to") }
        // struct packet_mreq: ifindex, type, alen, address[8].
        var mreq = [UInt8](repeating: 0, count: 16)
        mreq.withUnsafeMutableBytes { b in
            b.storeBytes(of: index, toByteOffset: 0, as: Int32.self)
            b.storeBytes(of: LinuxConstants.PACKET_MR_PROMISC, toByteOffset: 4, as: UInt16.self)
        }
        let joined = mreq.withUnsafeBytes { setsockopt(fd, LinuxConstants.SOL_PACKET, LinuxConstants.PACKET_ADD_MEMBERSHIP, $0.baseAddress!, 16) }
        guard joined == 0 else { throw fail("make promiscuous") }
        self.name = name
        interfaceIndex = index
        io = DescriptorIO(fds: [fd], vnetHeader: true, batchedWrites: batchedWrites)
        let kernelMAC = (try? InterfaceControl.hardwareAddress(of: name)) ?? .zero
        var mac = derivedMAC(name, salt: 0)
        if mac == kernelMAC { mac = derivedMAC(name, salt: 1) }
        suggestedMAC = mac
    }

    public func fileDescriptor(queue: Int) -> Int32 { io.fds[0] }

    /// One `recvmmsg` takes up to a batch of frames. Linux: `packet_recvmsg` per message.
    public func receive(queue: Int, into batch: FrameBatch) -> Int {
        for i in 0..<batch.capacity { batch.messages[i].msg_hdr.msg_flags = 0 }
        var r: Int32
        repeat {
            r = skiff_recvmmsg(io.fds[0], batch.messages, UInt32(batch.capacity), Int32(MSG_DONTWAIT), nil)
        } while r < 0 && errno == EINTR
        batch.reads &+= 1
        guard r > 0 else {
            if r < 0 && errno != EAGAIN { batch.errors &+= 1 }
            batch.count = 0
            return 0
        }
        var n = 0, bytes = 0
        for i in 0..<Int(r) {
            let len = Int(batch.messages[i].msg_len)
            if batch.messages[i].msg_hdr.msg_flags & Int32(MSG_TRUNC) != 0 { batch.errors &+= 1; continue }
            if n != i { batch.slot(n).copyMemory(from: batch.slot(i), byteCount: len) }
            batch.lengths[n] = len
            bytes += len
            n += 1
        }
        batch.count = n
        batch.frames &+= UInt64(n)
        batch.bytes &+= UInt64(bytes)
        return n
    }

    public func deliver(_ batch: FrameBatch, index: Int, emit: (UnsafeRawBufferPointer, FrameOffload) -> Void) {
        VirtioNetHeader.deliver(batch.frame(index), l2: 14, batch: batch, emit: emit)
    }

    public func transmit(_ segments: UnsafeBufferPointer<UnsafeRawBufferPointer>, length: Int, now: Nanoseconds) -> Int {
        io.transmit(segments, length: length, l2: 14)
    }

    public var txStatistics: PortTxStatistics { io.tx }

    public var framesPerFlush: Int { io.framesPerFlush }

    public func flush() { io.flush() }

    public func close() { io.closeAll() }
}
