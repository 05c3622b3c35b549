/// A TCP sequence number: 32-bit modular arithmetic and comparison
/// (RFC 9293 §3.4, in the style of RFC 1982 serial numbers).
///
/// `a < b` means `b` is ahead of `a` by less than 2^31.
/// HAZARD: this is not a total order. It is consistent only among numbers
/// within 2^31 of each other (always true inside one TCP window); do not
/// sort arbitrary sets of sequence numbers with it. At exactly 2^31 apart,
/// both `a < b` and `b < a` hold.
public struct SequenceNumber: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: UInt32

    public init(_ rawValue: UInt32) { self.rawValue = rawValue }
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    @inline(__always)
    public static func + (lhs: SequenceNumber, rhs: UInt32) -> SequenceNumber {
        SequenceNumber(lhs.rawValue &+ rhs)
    }

    @inline(__always)
    public static func - (lhs: SequenceNumber, rhs: UInt32) -> SequenceNumber {
        SequenceNumber(lhs.rawValue &- rhs)
    }

    /// Signed distance `lhs - rhs` in the range -2^31 ..< 2^31.
    @inline(__always)
    public static func - (lhs: SequenceNumber, rhs: SequenceNumber) -> Int32 {
        Int32(bitPattern: lhs.rawValue &- rhs.rawValue)
    }

    public static func += (lhs: inout SequenceNumber, rhs: UInt32) { lhs = lhs + rhs }
    public static func -= (lhs: inout SequenceNumber, rhs: UInt32) { lhs = lhs - rhs }

    @inline(__always)
    public static func < (lhs: SequenceNumber, rhs: SequenceNumber) -> Bool {
        Int32(bitPattern: lhs.rawValue &- rhs.rawValue) < 0
    }

    /// Signed distance from `self` to `other` (`other - self`).
    public func distance(to other: SequenceNumber) -> Int32 { other - self }

    /// Moves by a signed amount.
    public func advanced(by n: Int32) -> SequenceNumber {
        SequenceNumber(rawValue &+ UInt32(bitPattern: n))
    }

    /// `low <= self < low + size`, computed without sign ambiguity:
    /// `(self - low) mod 2^32 < size`. The RFC 9293 acceptability test.
    public func isInWindow(start low: SequenceNumber, size: UInt32) -> Bool {
        rawValue &- low.rawValue < size
    }

    /// The larger of two numbers under sequence comparison.
    public static func max(_ a: SequenceNumber, _ b: SequenceNumber) -> SequenceNumber { a < b ? b : a }
    /// The smaller of two numbers under sequence comparison.
    public static func min(_ a: SequenceNumber, _ b: SequenceNumber) -> SequenceNumber { a < b ? a : b }

    public var description: String { String(rawValue) }
}
