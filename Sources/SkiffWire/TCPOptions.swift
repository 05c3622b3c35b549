/// TCP option kinds (IANA "TCP Option Kind Numbers").
public enum TCPOptionKind {
    public static let endOfList: UInt8 = 0
    public static let noOperation: UInt8 = 1
    public static let maximumSegmentSize: UInt8 = 2   // RFC 9293 §3.2
    public static let windowScale: UInt8 = 3          // RFC 7323 §2
    public static let sackPermitted: UInt8 = 4        // RFC 2018 §2
    public static let sack: UInt8 = 5                 // RFC 2018 §3
    public static let timestamp: UInt8 = 8            // RFC 7323 §3
    public static let fastOpen: UInt8 = 34            // RFC 7413 §4.1.1
    public static let experiment: UInt8 = 254         // RFC 6994 (Fast Open with magic 0xF989)
}

/// The TCP timestamps option values (RFC 7323 §3.2).
public struct TCPTimestamp: Hashable, Sendable {
    /// TSval.
    public var value: UInt32
    /// TSecr.
    public var echo: UInt32

    public init(value: UInt32, echo: UInt32) {
        self.value = value
        self.echo = echo
    }
}

/// One SACK block: the sequence space [left, right) received (RFC 2018 §3).
public struct SACKBlock: Hashable, Sendable {
    public var left: UInt32
    public var right: UInt32

    public init(left: UInt32, right: UInt32) {
        self.left = left
        self.right = right
    }
}

/// Up to four SACK blocks stored inline (no heap).
public struct SACKBlocks: RandomAccessCollection, Equatable, Sendable {
    /// The most a SACK option can carry in 40 option bytes (RFC 2018 §3).
    public static let capacity = 4

    private var storage: (SACKBlock, SACKBlock, SACKBlock, SACKBlock)
    private var _count: UInt8 = 0

    public init() {
        let z = SACKBlock(left: 0, right: 0)
        storage = (z, z, z, z)
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { Int(_count) }

    /// HAZARD: traps when `index` is outside `0..<count` (programmer error).
    public subscript(index: Int) -> SACKBlock {
        get {
            precondition(index >= 0 && index < count, "SACKBlocks index out of range")
            switch index {
            case 0: return storage.0
            case 1: return storage.1
            case 2: return storage.2
            default: return storage.3
            }
        }
        set {
            precondition(index >= 0 && index < count, "SACKBlocks index out of range")
            switch index {
            case 0: storage.0 = newValue
            case 1: storage.1 = newValue
            case 2: storage.2 = newValue
            default: storage.3 = newValue
            }
        }
    }

    /// Appends a block; returns false (and drops it) when already full.
    @discardableResult
    public mutating func append(_ block: SACKBlock) -> Bool {
        guard _count < Self.capacity else { return false }
        _count += 1
        self[Int(_count) - 1] = block
        return true
    }

    public mutating func removeAll() { _count = 0 }

    public static func == (lhs: SACKBlocks, rhs: SACKBlocks) -> Bool {
        lhs.elementsEqual(rhs)
    }
}

/// The TCP options SkiffWire understands, decoded.
///
/// Parsing accepts options in any order, NOP and End of Option List, and
/// skips unknown kinds by their length. It throws `.badOptionLength` when a
/// length byte is missing, below 2, overruns the option area, or is wrong
/// for a known kind (MSS 4, window scale 3, SACK-permitted 2, timestamps
/// 10, SACK 2 + 8n with n in 1...4). A repeated option: the last one wins.
///
/// Emitting uses Linux's exact layouts (`tcp_options_write`), each option
/// group padded to 32 bits with leading NOPs:
/// - MSS: `02 04 mm mm`
/// - timestamps with SACK-permitted: `04 02 08 0a <TSval> <TSecr>`
/// - timestamps alone: `01 01 08 0a <TSval> <TSecr>`
/// - SACK-permitted without timestamps: `01 01 04 02`
/// - window scale: `01 03 03 ws`
/// - SACK: `01 01 05 len <blocks>`
/// - Fast Open: `22 len <cookie>` or `fe len f9 89 <cookie>`, NOPs after to 32 bits
///
/// Fast Open (kind 34, or kind 254 with magic 0xF989) is decoded as Linux does: a cookie of odd
/// length or outside 4...16 bytes makes the option count as absent rather than an error.
///
/// Unknown options are dropped, so parse → emit reproduces bytes exactly
/// only for segments laid out this way (all of Linux's).
public struct TCPOptions: Equatable, Sendable {
    public var maximumSegmentSize: UInt16?
    /// Shift count as received; RFC 7323 §2.3 says to use 14 if larger.
    public var windowScale: UInt8?
    public var sackPermitted: Bool
    public var timestamp: TCPTimestamp?
    public var sackBlocks: SACKBlocks
    /// TCP Fast Open cookie or cookie request (meaningful on SYN and SYN-ACK only).
    public var fastOpen: TCPFastOpenOption?

    /// The largest option area: (15 - 5) * 4 bytes.
    public static let maximumLength = 40

    public init(maximumSegmentSize: UInt16? = nil, windowScale: UInt8? = nil, sackPermitted: Bool = false,
                timestamp: TCPTimestamp? = nil, sackBlocks: SACKBlocks = SACKBlocks(),
                fastOpen: TCPFastOpenOption? = nil) {
        self.maximumSegmentSize = maximumSegmentSize
        self.windowScale = windowScale
        self.sackPermitted = sackPermitted
        self.timestamp = timestamp
        self.sackBlocks = sackBlocks
        self.fastOpen = fastOpen
    }

    /// Bytes before the SACK option.
    private var fixedLength: Int {
        var n = 0
        if maximumSegmentSize != nil { n += 4 }
        if timestamp != nil { n += 12 }
        if sackPermitted && timestamp == nil { n += 4 }
        if windowScale != nil { n += 4 }
        if let f = fastOpen { n += f.paddedLength }
        return n
    }

    /// How many SACK blocks emit writes: all of them if they fit in 40
    /// bytes, else as many as fit (3 alongside timestamps, as Linux).
    public var emittedSACKBlockCount: Int {
        guard !sackBlocks.isEmpty else { return 0 }
        let room = Self.maximumLength - fixedLength - 4
        return max(0, min(sackBlocks.count, room / 8))
    }

    /// Bytes ``emit(into:)`` writes; a multiple of 4, at most 40.
    public var encodedLength: Int {
        let blocks = emittedSACKBlockCount
        return fixedLength + (blocks > 0 ? 4 + 8 * blocks : 0)
    }

    /// Writes the options in Linux's layout and returns the byte count
    /// (``encodedLength``).
    ///
    /// HAZARD: traps if `buffer.count < encodedLength`.
    @discardableResult
    public func emit(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        precondition(buffer.count >= encodedLength, "TCPOptions.emit: buffer too small")
        var i = 0
        if let mss = maximumSegmentSize {
            buffer.put32(0x0204_0000 | UInt32(mss), at: i)
            i += 4
        }
        if let ts = timestamp {
            buffer.put32(sackPermitted ? 0x0402_080A : 0x0101_080A, at: i)
            buffer.put32(ts.value, at: i + 4)
            buffer.put32(ts.echo, at: i + 8)
            i += 12
        }
        if sackPermitted && timestamp == nil {
            buffer.put32(0x0101_0402, at: i)
            i += 4
        }
        if let ws = windowScale {
            buffer.put32(0x0103_0300 | UInt32(ws), at: i)
            i += 4
        }
        let blocks = emittedSACKBlockCount
        if blocks > 0 {
            buffer.put32(0x0101_0500 | UInt32(2 + 8 * blocks), at: i)
            i += 4
            for k in 0..<blocks {
                buffer.put32(sackBlocks[k].left, at: i)
                buffer.put32(sackBlocks[k].right, at: i + 4)
                i += 8
            }
        }
        if let f = fastOpen { i += f.emit(into: buffer, at: i) }
        return i
    }

    /// Parses an option area (the bytes between the fixed TCP header and
    /// the data offset). See the type's documentation for what throws.
    public static func parse(_ b: UnsafeRawBufferPointer) throws(WireError) -> TCPOptions {
        var o = TCPOptions()
        var i = 0
        while i < b.count {
            let kind = b.u8(i)
            if kind == TCPOptionKind.endOfList { break }
            if kind == TCPOptionKind.noOperation { i += 1; continue }
            guard i + 1 < b.count else { throw .badOptionLength }
            let len = Int(b.u8(i + 1))
            guard len >= 2, i + len <= b.count else { throw .badOptionLength }
            switch kind {
            case TCPOptionKind.maximumSegmentSize:
                guard len == 4 else { throw .badOptionLength }
                o.maximumSegmentSize = b.u16(i + 2)
            case TCPOptionKind.windowScale:
                guard len == 3 else { throw .badOptionLength }
                o.windowScale = b.u8(i + 2)
            case TCPOptionKind.sackPermitted:
                guard len == 2 else { throw .badOptionLength }
                o.sackPermitted = true
            case TCPOptionKind.timestamp:
                guard len == 10 else { throw .badOptionLength }
                o.timestamp = TCPTimestamp(value: b.u32(i + 2), echo: b.u32(i + 6))
            case TCPOptionKind.sack:
                let n = (len - 2) / 8
                guard (len - 2) % 8 == 0, n >= 1, n <= SACKBlocks.capacity else { throw .badOptionLength }
                o.sackBlocks.removeAll()
                for k in 0..<n {
                    o.sackBlocks.append(SACKBlock(left: b.u32(i + 2 + 8 * k), right: b.u32(i + 6 + 8 * k)))
                }
            case TCPOptionKind.fastOpen, TCPOptionKind.experiment:
                if let f = TCPFastOpenOption.parse(kind: kind, body: UnsafeRawBufferPointer(rebasing: b[(i + 2)..<(i + len)])) {
                    o.fastOpen = f
                }
            default:
                break
            }
            i += len
        }
        return o
    }
}
