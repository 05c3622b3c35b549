#if canImport(Glibc)
import Glibc
#endif
import Skiff

/// The TCP sysctls of the network namespace packetdrill runs in, mirrored into the stack.
///
/// A packetdrill script configures "the host" with `sysctl` lines (its own and
/// `defaults.sh`): on Linux they change the kernel under test. Skiff is the host here, so before
/// each `socket()` it reads the same `/proc/sys/net/ipv4/tcp_*` files and applies the values it
/// has a setting for (Linux reads them per namespace at the same moments). Files that are
/// missing or unreadable leave the setting alone. Not on the packet path.
enum LinuxSysctls {
    /// Reads a sysctl as whitespace-separated integers; nil when missing or malformed.
    static func integers(_ name: String) -> [Int]? {
        let path = "/proc/sys/net/ipv4/" + name
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        let text = String(decoding: buffer[0..<n], as: UTF8.self)
        let values = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).map { Int($0) }
        guard !values.isEmpty, values.allSatisfy({ $0 != nil }) else { return nil }
        return values.map { $0! }
    }

    static func integer(_ name: String) -> Int? { integers(name)?.first }

    static func string(_ name: String) -> String? {
        let fd = open("/proc/sys/net/ipv4/" + name, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var buffer = [UInt8](repeating: 0, count: 160)
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n], as: UTF8.self).split(separator: "\n").first.map(String.init)
    }

    /// `tcp_fastopen` and `tcp_fastopen_key`, which Linux reads at each use (a script may change
    /// them between a socket() and its sendto or setsockopt).
    static func applyFastOpen(to c: inout TCPConfiguration) {
        if let v = integer("tcp_fastopen"), v >= 0 { c.fastOpen = v }
        if let text = string("tcp_fastopen_key"), let key = FastOpenCookie.key(sysctlText: text) { c.fastOpenKey = key }
    }

    /// Applies the namespace's TCP sysctls to `c`.
    static func apply(to c: inout TCPConfiguration) {
        if let v = integer("tcp_timestamps") { c.timestamps = v != 0 }
        if let v = integer("tcp_sack") { c.sack = v != 0 }
        if let v = integer("tcp_dsack") { c.dsack = v != 0 }
        if let v = integer("tcp_window_scaling") { c.windowScaling = v != 0 }
        if let v = integer("tcp_syncookies") { c.synCookies = v != 0 }
        if let v = integer("tcp_slow_start_after_idle") { c.slowStartAfterIdle = v != 0 }
        if let v = integers("tcp_rmem"), v.count == 3, v[0] > 0, v[1] > 0, v[2] > 0 { c.receiveMemory = (v[0], v[1], v[2]) }
        if let v = integers("tcp_wmem"), v.count == 3, v[0] > 0, v[1] > 0, v[2] > 0 { c.sendMemory = (v[0], v[1], v[2]) }
        if let v = integer("tcp_syn_retries"), v > 0 { c.synRetries = v }
        if let v = integer("tcp_synack_retries"), v > 0 { c.synAckRetries = v }
        if let v = integer("tcp_retries2"), v > 0 { c.retries2 = v }
        if let v = integer("tcp_orphan_retries") { c.orphanRetries = v == 0 ? 8 : v }
        if let v = integer("tcp_fin_timeout"), v > 0 { c.finTimeout = UInt64(v) * Time.second }
        if let v = integer("tcp_max_syn_backlog"), v > 0 { c.maxSynBacklog = v }
        if let v = integer("tcp_challenge_ack_limit"), v > 0 { c.challengeAckLimit = v }
        if let v = integer("tcp_invalid_ratelimit"), v >= 0 { c.invalidRateLimit = UInt64(v) * Time.millisecond }
        // tcp_early_retrans 3 or 4 enable TLP; tcp_recovery bit 0 enables RACK.
        if let v = integer("tcp_early_retrans") { c.tailLossProbe = v >= 3 }
        if let v = integer("tcp_recovery") { c.rack = v & 1 != 0 }
        if let v = integer("tcp_tw_reuse") { c.timeWaitReuse = v == 1 }
        if let v = integer("tcp_notsent_lowat"), v > 0 { c.notSentLowat = v }
        applyFastOpen(to: &c)
        if let v = integer("tcp_min_tso_segs"), (1...255).contains(v) { c.minTSOSegments = v }
        if let name = string("tcp_congestion_control"), let algo = CongestionAlgorithmName(rawValue: name) {
            c.congestionControl = algo
        }
    }
}
