#if canImport(Glibc)
import Glibc
#endif
import Skiff
import SkiffWire

/// The device and the clock as packetdrill drives them.
extension PacketdrillHost {
    /// How far `netdev_receive` lets virtual time run while it waits for the stack to send.
    /// packetdrill itself gives up 2 s after the time a script expected a packet; a packet
    /// that never comes is reported as an empty read once this much time has passed.
    static let receiveWaitLimit: Nanoseconds = 600 * Time.second

    /// An IP packet from packetdrill arrives on the device (Linux: a write to the TUN file →
    /// `tun_get_user` → `netif_rx`). The stack processes it at once: interrupt, NAPI, `ip_rcv`.
    /// EINVAL for what could never be an IPv4 packet (no header, another version, a length
    /// field past the bytes given); anything else goes in and the stack validates it as a
    /// NIC's receive path would.
    func netdevSend(_ packet: UnsafeRawBufferPointer) -> Result<Void, Errno> {
        guard packet.count >= 20, packet.count <= 65535 else { return .failure(.EINVAL) }
        guard packet[0] >> 4 == 4, packet[0] & 0x0F >= 5 else { return .failure(.EINVAL) }
        let total = Int(packet[2]) << 8 | Int(packet[3])
        guard total >= 20, total <= packet.count else { return .failure(.EINVAL) }
        return locked {
            quiesce()
            device.nic.receive(frame: UnsafeRawBufferPointer(rebasing: packet[0..<total]), now: now)
            stack.run(now: now)
            quiesce()
            return .success(())
        }
    }

    /// The next IP packet the stack sent, with the virtual time it left. When none is waiting,
    /// time runs on (timers fire, blocked calls proceed) until one is sent or the wait limit
    /// passes: then the packet is empty.
    func netdevReceive() -> CapturePort.Packet? {
        locked {
            quiesce()
            let limit = now &+ PacketdrillHost.receiveWaitLimit
            var steps = 0
            while port.isEmpty && now < limit && steps < 1_000_000 {
                var next = limit
                if let d = stack.nextDeadline(), d < next { next = max(d, now) }
                if let d = sleepers.earliestDeadline(after: now), d < next { next = d }
                stack.run(now: next)
                quiesce()
                steps += 1
                if next == limit { break }
            }
            if port.isEmpty { debugReport("nothing sent") }
            return port.pop()
        }
    }

    /// packetdrill sleeps: virtual time moves on by `usec`.
    func sleep(microseconds usec: UInt64) {
        locked { advance(to: now &+ usec &* Time.microsecond) }
    }

    /// packetdrill reads the clock. Each read lets one microsecond pass, as reading a real clock
    /// takes time: packetdrill spins on the clock for the last microseconds before an event.
    func readClock() -> Nanoseconds {
        locked {
            advance(to: now &+ Time.microsecond)
            return now
        }
    }
}
