import SkiffWire

/// The configuration packetdrill passes as `--so_flags`: a comma-separated list of `key=value`
/// pairs, e.g. `local_ip=192.168.0.1,netmask=255.255.0.0,gateway=192.168.0.1`. Unknown keys and
/// malformed values are reported, not fatal: packetdrill has no way to show an init error, so
/// the host prints them and keeps the defaults.
struct PacketdrillFlags: Equatable {
    var localAddress = IPv4Address(192, 168, 0, 1)
    var netmask = IPv4Address(255, 255, 0, 0)
    var gateway = IPv4Address(192, 168, 0, 1)
    /// Device MTU (packetdrill's `--mtu`, 1500 by default).
    var mtu = 1500
    /// Mirror the namespace's `net.ipv4.tcp_*` sysctls before each `socket()` (flag
    /// `sysctl=0` turns it off).
    var followSysctls = true
    /// Problems found while parsing, one line each.
    var problems: [String] = []

    /// The prefix length of `netmask`, or nil when it is not a contiguous mask.
    var prefixLength: Int? {
        let m = netmask.value
        let ones = m.nonzeroBitCount
        return m == (ones == 0 ? 0 : ~UInt32(0) << UInt32(32 - ones)) ? ones : nil
    }

    /// Parses `text` (nil or empty: the defaults).
    init(parsing text: String?) {
        guard let text, !text.isEmpty else { return }
        for item in text.split(separator: ",", omittingEmptySubsequences: true) {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else { problems.append("flag '\(item)' is not key=value"); continue }
            let key = parts[0].trimmingSpaces, value = parts[1].trimmingSpaces
            switch key {
            case "local_ip", "netmask", "gateway":
                guard let a = IPv4Address(value) else {
                    problems.append("flag \(key): '\(value)' is not an IPv4 address"); continue
                }
                if key == "local_ip" { localAddress = a } else if key == "netmask" { netmask = a } else { gateway = a }
            case "mtu":
                guard let m = Int(value), (576...65535).contains(m) else {
                    problems.append("flag mtu: '\(value)' is not 576...65535"); continue
                }
                mtu = m
            case "sysctl":
                guard value == "0" || value == "1" else { problems.append("flag sysctl: '\(value)' is not 0 or 1"); continue }
                followSysctls = value == "1"
            default:
                problems.append("unknown flag '\(key)'")
            }
        }
        if prefixLength == nil {
            problems.append("netmask \(netmask) is not contiguous; using 255.255.0.0")
            netmask = IPv4Address(255, 255, 0, 0)
        }
    }
}

extension Substring {
    var trimmingSpaces: String {
        var s = self[...]
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
