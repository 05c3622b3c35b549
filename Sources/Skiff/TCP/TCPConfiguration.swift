/// TCP settings of a stack (Linux: `net.ipv4.tcp_*` sysctls; defaults as Linux's).
public struct TCPConfiguration: Sendable {
    /// Linux: `tcp_timestamps`.
    public var timestamps = true
    /// Linux: `tcp_sack`.
    public var sack = true
    /// Linux: `tcp_dsack`.
    public var dsack = true
    /// Linux: `tcp_window_scaling`.
    public var windowScaling = true
    /// Linux: `tcp_syncookies` (1: only when the SYN queue overflows).
    public var synCookies = true
    /// Linux: `tcp_slow_start_after_idle`.
    public var slowStartAfterIdle = true
    /// Linux: `tcp_congestion_control`.
    public var congestionControl: CongestionAlgorithmName = .cubic
    /// Linux: `tcp_rmem` (min, default, max).
    public var receiveMemory = (4096, 131_072, 6_291_456)
    /// Linux: `tcp_wmem` (min, default, max).
    public var sendMemory = (4096, 16_384, 4_194_304)
    /// Linux: `tcp_fin_timeout` (60 s): FIN-WAIT-2 of orphans.
    public var finTimeout: Nanoseconds = 60 * Time.second
    /// Linux: `TCP_TIMEWAIT_LEN` (60 s).
    public var timeWaitLength: Nanoseconds = 60 * Time.second
    /// Linux: `tcp_syn_retries` (6) and `tcp_synack_retries` (5).
    public var synRetries = 6
    public var synAckRetries = 5
    /// Linux: `tcp_retries2` (15).
    public var retries2 = 15
    /// Linux: `tcp_orphan_retries` (0 → 8).
    public var orphanRetries = 8
    /// Linux: `tcp_max_orphans` (scaled down for a user-space stack).
    public var maxOrphans = 4096
    /// Linux: `tcp_max_syn_backlog`.
    public var maxSynBacklog = 256
    /// Linux: `tcp_challenge_ack_limit` (per second).
    public var challengeAckLimit = 1000
    /// Linux: `tcp_invalid_ratelimit` (500 ms): per connection, at most one ACK per interval
    /// answers invalid segments (out-of-window pure ACKs and SYNs, challenge ACKs).
    public var invalidRateLimit: Nanoseconds = 500 * Time.millisecond
    /// Linux: `tcp_early_retrans` (3: TLP on) and `tcp_recovery` (1: RACK on).
    public var tailLossProbe = true
    public var rack = true
    /// Linux: `tcp_tw_reuse` (2: loopback only; here: off unless set).
    public var timeWaitReuse = false
    /// Linux: `tcp_notsent_lowat` — the default TCP_NOTSENT_LOWAT of new sockets (UInt32.max: off).
    public var notSentLowat = Int(UInt32.max)
    /// Largest GSO packet the stack builds (Linux: the device's `gso_max_size`, 64 KiB).
    public var gsoMaxSize = 65_536
    /// Most bytes one socket may have in qdiscs and TX rings before TCP waits for the device to
    /// free some (TCP Small Queues; Linux: `tcp_limit_output_bytes`, 4 MiB since Linux 6.16).
    /// The limit a socket gets is about 1 ms at its pacing rate, at most this.
    public var limitOutputBytes = 4 << 20
    /// Fewest segments a TSO packet is sized for (Linux: `tcp_min_tso_segs`).
    public var minTSOSegments = 2
    /// Pacing rate as a percentage of cwnd/SRTT in slow start and in congestion avoidance
    /// (Linux: `tcp_pacing_ss_ratio` 200, `tcp_pacing_ca_ratio` 120).
    public var pacingSlowStartRatio = 200
    public var pacingCongestionAvoidanceRatio = 120
    /// Pace every connection in TCP itself (Linux does so when the qdisc is not fq and the
    /// congestion control asks for it, as BBR does); a socket with SO_MAX_PACING_RATE is paced
    /// regardless.
    public var internalPacing = false
    /// Random offset added to the timestamp clock (Linux: per-connection `tsoffset`).
    public var timestampOffset: UInt64 = 0
    /// Linux: `tcp_fastopen`, a set of `FastOpenFlags` bits (default 1: client only).
    public var fastOpen = FastOpenFlags.clientEnable
    /// Linux: `tcp_fastopen_key`, the stack's cookie key; nil: a key of the stack's own, made
    /// from its seed (Linux makes a random one on first use, `tcp_fastopen_init_key_once`).
    public var fastOpenKey: SipHashKey? = nil
    public init() {}
}

/// TCP counters with `nstat`'s names (Linux: `/proc/net/snmp` Tcp and `/proc/net/netstat` TcpExt).
public struct TCPCounters: Sendable {
    public var activeOpens: UInt64 = 0
    public var passiveOpens: UInt64 = 0
    public var attemptFails: UInt64 = 0
    public var estabResets: UInt64 = 0
    public var inSegs: UInt64 = 0
    public var outSegs: UInt64 = 0
    public var retransSegs: UInt64 = 0
    public var inErrs: UInt64 = 0
    public var inCsumErrors: UInt64 = 0
    public var outRsts: UInt64 = 0
    public var challengeAcks: UInt64 = 0
    public var challengeAcksRateLimited: UInt64 = 0
    public var synCookiesSent: UInt64 = 0
    public var synCookiesRecv: UInt64 = 0
    public var synCookiesFailed: UInt64 = 0
    public var listenOverflows: UInt64 = 0
    public var listenDrops: UInt64 = 0
    public var pawsRejected: UInt64 = 0
    public var outOfWindow: UInt64 = 0
    public var timeouts: UInt64 = 0
    public var fastRetrans: UInt64 = 0
    public var lossProbes: UInt64 = 0
    public var dsackRecv: UInt64 = 0
    public var dsackSent: UInt64 = 0
    public var sackReneging: UInt64 = 0
    public var ofoQueue: UInt64 = 0
    public var delayedAcks: UInt64 = 0
    public var zeroWindowProbes: UInt64 = 0
    public var orphansDropped: UInt64 = 0
    public var timeWaitRecycled: UInt64 = 0
    /// TCP Fast Open (Linux: `TCPFastOpenActive`, `TCPFastOpenActiveFail`, `TCPFastOpenPassive`,
    /// `TCPFastOpenPassiveFail`, `TCPFastOpenListenOverflow`, `TCPFastOpenCookieReqd`).
    public var fastOpenActive: UInt64 = 0
    public var fastOpenActiveFail: UInt64 = 0
    public var fastOpenPassive: UInt64 = 0
    public var fastOpenPassiveFail: UInt64 = 0
    public var fastOpenListenOverflow: UInt64 = 0
    public var fastOpenCookieRequests: UInt64 = 0
    /// ACKs not sent because of `tcp_invalid_ratelimit` (Linux: TCPACKSkippedSeq, TCPACKSkippedChallenge).
    public var ackSkippedSeq: UInt64 = 0
    public var ackSkippedChallenge: UInt64 = 0
    /// SYNs in a synchronised state answered with a challenge ACK (Linux: TCPSYNChallenge).
    public var synChallenge: UInt64 = 0
    /// In-order data dropped because the receive window was closed (Linux: TCPZeroWindowDrop).
    public var zeroWindowDrops: UInt64 = 0
    /// Connections reset because data came after the application closed reading (Linux:
    /// TCPAbortOnData).
    public var abortOnData: UInt64 = 0
    /// Times TCP Small Queues stopped a socket's transmission to wait for the device to free its
    /// buffers (Skiff's own; Linux counts none, its `tsq_tasklet` runs show in TASKLET).
    public var smallQueueThrottles: UInt64 = 0
    public init() {}
}
