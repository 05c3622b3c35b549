import Skiff
import SkiffWire

/// Ready-made topologies for the demo, the tests and the benchmarks.
public enum Scenarios {
    /// Hosts A (10.0.0.1) and B (10.0.0.2) on one switch, /24, MTU `mtu`; with `offloads`, their
    /// NICs do TSO and checksum offload and the links carry large segments whole.
    public struct SwitchedPair {
        public let world: SimWorld
        public let a: NetworkStack, b: NetworkStack
        public let aDevice: NetDevice, bDevice: NetDevice
        public let aLink: SimLink, bLink: SimLink
        public let sw: SimSwitch
        public static let aAddress = IPv4Address(10, 0, 0, 1)
        public static let bAddress = IPv4Address(10, 0, 0, 2)
        public static let aMAC = MACAddress(0x02, 0, 0, 0, 0, 0x0A)
        public static let bMAC = MACAddress(0x02, 0, 0, 0, 0, 0x0B)
    }

    public static func switchedPair(seed: UInt64 = 1, mtu: Int = 1500, impairments: Impairments = .none,
                                    qdisc: QdiscKind = .pfifoFast, lineRate: UInt64 = 10_000_000_000,
                                    offloads: Bool = false) -> SwitchedPair {
        let world = SimWorld(seed: seed)
        let a = world.addHost(name: "A"), b = world.addHost(name: "B")
        var ca = DeviceConfiguration(name: "eth0", mac: SwitchedPair.aMAC, mtu: mtu)
        ca.qdisc = qdisc
        ca.lineRate = lineRate
        var cb = DeviceConfiguration(name: "eth0", mac: SwitchedPair.bMAC, mtu: mtu)
        cb.qdisc = qdisc
        cb.lineRate = lineRate
        if offloads {
            // TSO and checksum offload, as two hosts on virtio or veth links (see SimPort.offloads).
            ca.features.formUnion([.tso, .txChecksum])
            cb.features.formUnion([.tso, .txChecksum])
        }
        let da = world.addDevice(host: a, configuration: ca)
        let db = world.addDevice(host: b, configuration: cb)
        a.addAddress(SwitchedPair.aAddress, prefixLength: 24, device: da)
        b.addAddress(SwitchedPair.bAddress, prefixLength: 24, device: db)
        let sw = world.addSwitch()
        let la = world.connect((a, da), to: sw, impairments: impairments)
        let lb = world.connect((b, db), to: sw, impairments: impairments)
        return SwitchedPair(world: world, a: a, b: b, aDevice: da, bDevice: db, aLink: la, bLink: lb, sw: sw)
    }
}
