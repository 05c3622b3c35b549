import Skiff

/// The wire side of packetdrill's device: every IP packet the stack's NIC puts out is copied
/// into a FIFO with the virtual time it left, for `netdev_receive` to hand to packetdrill.
/// Linux: what the TUN device's reader sees (`tun_net_xmit` → the tun file's read queue).
///
/// Bounded: past `capacity` packets the oldest is dropped and counted, as a TUN queue drops
/// when nobody reads it (`tun_net_xmit` over `tx_queue_len`).
final class CapturePort: NetworkPort {
    struct Packet {
        var bytes: [UInt8]
        var time: Nanoseconds
    }

    private var queue: [Packet] = []
    private var head = 0
    let capacity: Int
    private(set) var dropped: UInt64 = 0
    private(set) var sent: UInt64 = 0

    init(capacity: Int = 4096) { self.capacity = capacity }

    var isEmpty: Bool { head == queue.count }
    var count: Int { queue.count - head }

    func transmit(_ segments: UnsafeBufferPointer<UnsafeRawBufferPointer>, length: Int, now: Nanoseconds) -> Int {
        var bytes = [UInt8]()
        bytes.reserveCapacity(length)
        for s in segments { bytes.append(contentsOf: s) }
        if count >= capacity { head += 1; dropped &+= 1 }
        queue.append(Packet(bytes: bytes, time: now))
        sent &+= 1
        return length
    }

    /// Takes the oldest packet, if any.
    func pop() -> Packet? {
        guard head < queue.count else { return nil }
        let p = queue[head]
        head += 1
        if head > 256 && head * 2 > queue.count {
            queue.removeFirst(head)
            head = 0
        }
        return p
    }
}
