/// Numbers from Linux's uapi headers that Glibc's module map does not bring in
/// (`linux/if_tun.h`, `linux/sockios.h`, `linux/if_packet.h`, `linux/virtio_net.h`).
enum LinuxConstants {
    // linux/if_tun.h: TUNSETIFF = _IOW('T', 202, int) and friends.
    static let TUNSETIFF: UInt = 0x4004_54CA
    static let TUNSETOFFLOAD: UInt = 0x4004_54D0
    static let TUNGETFEATURES: UInt = 0x8004_54CF
    static let TUNSETVNETHDRSZ: UInt = 0x4004_54D8
    static let IFF_TUN: Int16 = 0x0001
    static let IFF_TAP: Int16 = 0x0002
    static let IFF_MULTI_QUEUE: Int16 = 0x0100
    static let IFF_NO_PI: Int16 = 0x1000
    static let IFF_VNET_HDR: Int16 = 0x4000
    static let TUN_F_CSUM: UInt32 = 0x01
    static let TUN_F_TSO4: UInt32 = 0x02
    static let TUN_F_TSO_ECN: UInt32 = 0x08

    // linux/sockios.h
    static let SIOCGIFFLAGS: UInt = 0x8913
    static let SIOCSIFFLAGS: UInt = 0x8914
    static let SIOCGIFMTU: UInt = 0x8921
    static let SIOCSIFMTU: UInt = 0x8922
    static let SIOCGIFHWADDR: UInt = 0x8927
    static let SIOCGIFINDEX: UInt = 0x8933
    static let IFF_UP: Int16 = 0x1
    static let IFF_RUNNING: Int16 = 0x40

    // linux/if_packet.h, linux/if_ether.h
    static let ETH_P_ALL: UInt16 = 0x0003
    static let SOL_PACKET: Int32 = 263
    static let PACKET_ADD_MEMBERSHIP: Int32 = 1
    static let PACKET_MR_PROMISC: UInt16 = 1
    static let PACKET_IGNORE_OUTGOING: Int32 = 23
    static let PACKET_OUTGOING: UInt8 = 4

    // linux/virtio_net.h
    static let VIRTIO_NET_HDR_F_NEEDS_CSUM: UInt8 = 1
    static let VIRTIO_NET_HDR_F_DATA_VALID: UInt8 = 2
    static let VIRTIO_NET_HDR_GSO_NONE: UInt8 = 0
    static let VIRTIO_NET_HDR_GSO_TCPV4: UInt8 = 1
    static let VIRTIO_NET_HDR_GSO_ECN: UInt8 = 0x80
}
