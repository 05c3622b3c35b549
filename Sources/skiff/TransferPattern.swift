import SkiffSim

/// The deterministic bytes `skiff send` sends: byte i is 7·i + 31·⌊i/4096⌋ (mod 256), which
/// repeats every MiB, so one MiB buffer serves any length and a receiver can check it.
enum SendPattern {
    static let period = 1 << 20

    static func block() -> [UInt8] {
        (0..<period).map { i in UInt8(truncatingIfNeeded: i &* 7 &+ (i >> 12) &* 31) }
    }

    /// SHA-256 of the first `count` bytes of the pattern.
    static func digest(count: Int, block: [UInt8]) -> String {
        var h = SHA256()
        var left = count
        block.withUnsafeBytes { b in
            while left > 0 {
                let n = min(left, b.count)
                h.update(UnsafeRawBufferPointer(rebasing: b[..<n]))
                left -= n
            }
        }
        return h.hexDigest()
    }
}
