#if canImport(Glibc)
import Glibc
#endif
import Skiff
import SkiffWire

/// One Skiff host under packetdrill: a stack with one IP-level device (like a TUN device: no
/// link header, no ARP) whose wire is packetdrill, a descriptor table, and virtual time.
///
/// Threads: packetdrill calls in from its main thread (packets, time, non-blocking calls) and
/// from its system-call thread (calls the script expects to block). Every entry takes the
/// stack's lock; a call that must wait sleeps on the lock's condition variable (a futex wait,
/// which packetdrill sees as thread state S) until another entry changes the stack.
///
/// Time: the stack's clock starts at the real wall-clock time of `init` and then moves only
/// when packetdrill lets time pass (`usleep`, reading the clock, waiting for a packet); on the
/// way every timer and softirq runs at its own time, and threads blocked in a call re-check
/// their condition at that time before time moves on (`VirtualTime.swift`).
final class PacketdrillHost: @unchecked Sendable {
    let shared: SharedStack
    var stack: NetworkStack { shared.stack }
    let port: CapturePort
    let device: NetDevice
    let flags: PacketdrillFlags
    /// Descriptors (under the lock).
    var files = FileTable()
    /// Threads blocked in a call (under the lock).
    var sleepers = Sleepers()
    /// Sockets whose non-blocking connect was started and not yet reported (under the lock).
    var connectPending = Set<Int32>()

    init(flags: PacketdrillFlags, start: Nanoseconds) {
        self.flags = flags
        let stack = NetworkStack(name: "packetdrill", seed: start)
        // Linux as packetdrill's defaults script configures it (gtests/net/tcp/common/defaults.sh).
        stack.tcpConfig.applyPacketdrillDefaults()
        let port = CapturePort()
        var config = DeviceConfiguration(name: "tun0", linkType: .ip, mtu: flags.mtu)
        config.qdisc = .pfifoFast
        // Like TUN: packetdrill may inject segments larger than the MTU (a peer's GRO output).
        config.maxReceiveFrame = 65535
        config.ringSize = 64
        // Like TUN, which orphans what it transmits: TCP Small Queues counts only the qdisc.
        config.orphansOnTransmit = true
        device = stack.addDevice(config, port: port)
        stack.addAddress(flags.localAddress, prefixLength: flags.prefixLength ?? 16, device: device)
        // Everything not on the local prefix leaves through the device (a TUN device's default
        // route; the gateway needs no resolution on a device without ARP).
        stack.routes.addDefault(gateway: flags.gateway, device: device.index)
        stack.run(now: start)
        self.port = port
        shared = SharedStack(manual: stack)
    }

    /// Runs `body` with the stack locked.
    @inline(__always)
    func locked<R>(_ body: () throws -> R) rethrows -> R {
        shared.lock.lock()
        defer { shared.lock.unlock() }
        return try body()
    }

    /// The stack's clock.
    var now: Nanoseconds { stack.now }
}

extension TCPConfiguration {
    /// The sysctls of packetdrill's `defaults.sh` where they differ from a fresh Linux:
    /// `tcp_rmem` 4096 540000 15 MiB, `tcp_wmem` 4096 262144 4 MiB, slow start after idle off,
    /// SYN and SYN-ACK retries 5. Timestamps, SACK, D-SACK, window scaling, CUBIC, RACK and TLP
    /// are Linux's defaults and Skiff's.
    mutating func applyPacketdrillDefaults() {
        receiveMemory = (4096, 540_000, 15 * 1024 * 1024)
        sendMemory = (4096, 262_144, 4_194_304)
        slowStartAfterIdle = false
        synRetries = 5
        synAckRetries = 5
        timestamps = true
        sack = true
        dsack = true
        windowScaling = true
        congestionControl = .cubic
        tailLossProbe = true
        rack = true
        synCookies = true
    }
}

extension PacketdrillHost {
    /// packetdrill is done: close every descriptor and free the stack's buffers.
    func shutdown() {
        locked {
            debugReport("shutdown")
            for (fd, _) in files.all { _ = files.close(fd) }
            stack.shutdownDevices()
        }
    }
}

extension PacketdrillHost {
    /// With SKIFF_PD_DEBUG set, prints what the stack dropped and why (a post-mortem for a
    /// script that waited for a packet in vain).
    func debugReport(_ when: String) {
        guard getenv("SKIFF_PD_DEBUG") != nil else { return }
        let line = Array("skiff packetdrill (\(when)): drops \(stack.drops.nonzero), sent \(port.sent), tcp \(stack.tcpCounters)\n".utf8)
        _ = line.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }
}
