/// IPv4 settings (Linux: `net.ipv4.*` sysctls).
public struct IPConfiguration: Sendable {
    /// Linux: `ip_default_ttl` (64).
    public var defaultTTL: UInt8 = 64
    /// Linux: `ip_forward` (off).
    public var forwarding = false
    /// Linux: `ipfrag_high_thresh` (4 MiB): reassembly memory cap.
    public var reassemblyMemoryLimit = 4 * 1024 * 1024
    /// Linux: `ipfrag_time` (30 s).
    public var reassemblyTimeout: Nanoseconds = 30 * Time.second
    /// Linux: `icmp_ratelimit` (1000 ms): minimum gap between errors to one destination.
    public var icmpRateLimit: Nanoseconds = Time.second
    /// Linux: `icmp_msgs_per_sec` (1000) and `icmp_msgs_burst` (50): global error budget.
    public var icmpMessagesPerSecond = 1000
    public var icmpMessagesBurst = 50
    public init() {}
}
