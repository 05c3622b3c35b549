#if canImport(Glibc)
import Glibc
#endif
import CSkiffLinux

/// File descriptors attached to one TAP or TUN device, one per queue.
/// Linux: `open("/dev/net/tun")` + `ioctl(TUNSETIFF)` (`tun_set_iff()`), which creates the device
/// when it does not exist (it then disappears with the last descriptor, unless made persistent
/// with `ip tuntap add`) and attaches to it when it does.
struct TunTapDevice {
    enum Mode { case tap, tun }

    let name: String
    let fds: [Int32]
    let vnetHeader: Bool

    /// Opens `queues` non-blocking descriptors; `queues > 1` sets IFF_MULTI_QUEUE.
    /// `vnetHeader` sets IFF_VNET_HDR (each frame is preceded by a 10-byte `virtio_net_hdr`).
    init(name: String, mode: Mode, queues: Int, vnetHeader: Bool) throws(PortError) {
        var flags: Int16 = LinuxConstants.IFF_NO_PI | (mode == .tap ? LinuxConstants.IFF_TAP : LinuxConstants.IFF_TUN)
        if queues > 1 { flags |= LinuxConstants.IFF_MULTI_QUEUE }
        if vnetHeader { flags |= LinuxConstants.IFF_VNET_HDR }
        var opened: [Int32] = []
        var failure: PortError? = nil
        for _ in 0..<max(1, queues) {
            let fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC)
            guard fd >= 0 else {
                let e = errno
                failure = (e == EACCES || e == EPERM) ? .permission(device: "/dev/net/tun", operation: "open") : .noTunDevice(errno: e)
                break
            }
            opened.append(fd)
            var r: InterfaceRequest
            do { r = try InterfaceRequest(name: name) } catch { failure = error; break }
            r.short = flags
            if r.ioctl(fd, LinuxConstants.TUNSETIFF) != 0 {
                let e = errno
                switch e {
                case EPERM, EACCES: failure = .permission(device: name, operation: "attach to")
                case EBUSY: failure = .busy(device: name)
                case EINVAL: failure = .wrongKind(device: name, errno: e)
                default: failure = .system(operation: "TUNSETIFF", device: name, errno: e)
                }
                break
            }
            if vnetHeader {
                var size: Int32 = 10
                if withUnsafeMutableBytes(of: &size, { ioctl(fd, LinuxConstants.TUNSETVNETHDRSZ, $0.baseAddress!) }) != 0 {
                    failure = .system(operation: "TUNSETVNETHDRSZ", device: name, errno: errno)
                    break
                }
            }
        }
        if let f = failure {
            for fd in opened { close(fd) }
            throw f
        }
        self.name = name
        fds = opened
        self.vnetHeader = vnetHeader
    }

    /// With `enabled`, asks the kernel to hand us frames with partial checksums and TCP segments
    /// up to 64 KiB; without, clears what an earlier user of a persistent device negotiated, so
    /// every frame arrives complete (Linux: `TUNSETOFFLOAD` → `tun_set_offload()` sets or clears
    /// NETIF_F_HW_CSUM and TSO on the device).
    func setOffloads(enabled: Bool) throws(PortError) {
        let flags = enabled ? CInt(LinuxConstants.TUN_F_CSUM | LinuxConstants.TUN_F_TSO4 | LinuxConstants.TUN_F_TSO_ECN) : 0
        for fd in fds where ioctl(fd, LinuxConstants.TUNSETOFFLOAD, flags) != 0 {
            throw .system(operation: "TUNSETOFFLOAD", device: name, errno: errno)
        }
    }

    func closeAll() { for fd in fds { close(fd) } }
}
