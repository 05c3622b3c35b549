import Skiff

/// What a simulated link does to frames, per direction. All randomness is seeded.
/// (Linux's `tc netem` offers the same knobs.)
public struct Impairments: Sendable, Equatable {
    /// Probability a frame is lost.
    public var loss: Double = 0
    /// Probability a frame is delivered twice.
    public var duplicate: Double = 0
    /// Probability one bit of a frame (past the Ethernet header) is flipped; checksums must catch it.
    public var corrupt: Double = 0
    /// Probability a frame is held back so later frames overtake it.
    public var reorder: Double = 0
    /// Propagation delay.
    public var delay: Nanoseconds = 0
    /// Uniform random extra delay in [0, jitter]. Jitter alone can reorder frames.
    public var jitter: Nanoseconds = 0
    /// Link rate in bits per second; 0 = unlimited.
    public var rate: UInt64 = 0
    /// Bytes that may wait for a rate-limited link before tail drop.
    public var queueLimitBytes = 1 << 20
    /// Largest link payload (IP packet) carried; bigger frames are dropped. 0 = any.
    public var mtu: Int = 0

    public init(loss: Double = 0, duplicate: Double = 0, corrupt: Double = 0, reorder: Double = 0,
                delay: Nanoseconds = 0, jitter: Nanoseconds = 0, rate: UInt64 = 0, mtu: Int = 0) {
        self.loss = loss; self.duplicate = duplicate; self.corrupt = corrupt; self.reorder = reorder
        self.delay = delay; self.jitter = jitter; self.rate = rate; self.mtu = mtu
    }

    public static let none = Impairments()
}

/// Counters of one link direction.
public struct LinkStatistics: Sendable {
    public var frames: UInt64 = 0, bytes: UInt64 = 0
    public var lost: UInt64 = 0, duplicated: UInt64 = 0, corrupted: UInt64 = 0, reordered: UInt64 = 0
    public var tooBig: UInt64 = 0, queueDrops: UInt64 = 0
    public var delivered: UInt64 = 0
    public init() {}
}
