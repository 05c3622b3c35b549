/// The options area of an IPv4 header (RFC 791 §3.1): up to 40 raw bytes
/// held inline, never on the heap.
///
/// Bytes are kept exactly as received (including padding after End of
/// Option List) so that parse → emit reproduces a header bit for bit.
/// Construction validates the list: End of Option List (0) stops it,
/// No-Operation (1) is one byte, every other option is type-length-value
/// with length ≥ 2 that does not overrun the area; anything else throws
/// `.badOptionLength`. The meaning of options (source route, record route,
/// timestamps) is not interpreted here.
public struct IPv4Options: Equatable, Sendable, Sequence {
    /// Maximum option bytes: (15 - 5) * 4.
    public static let capacity = 40

    private var storage: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)
    private var _count: UInt8 = 0

    /// Number of option bytes, always a multiple of 4.
    public var count: Int { Int(_count) }
    public var isEmpty: Bool { _count == 0 }

    /// No options.
    public init() {}

    /// Validates and copies raw option bytes.
    ///
    /// Pads with zeros (End of Option List) up to a multiple of 4. Throws
    /// `.badOptionLength` for more than 40 bytes or a malformed list.
    public init(bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard bytes.count <= Self.capacity else { throw .badOptionLength }
        try Self.validate(bytes)
        let padded = (bytes.count + 3) & ~3
        _count = UInt8(padded)
        withUnsafeMutableBytes(of: &storage) { s in
            if let src = bytes.baseAddress, bytes.count > 0 {
                s.baseAddress!.copyMemory(from: src, byteCount: bytes.count)
            }
        }
    }

    /// Checks an option list without copying it.
    static func validate(_ b: UnsafeRawBufferPointer) throws(WireError) {
        var i = 0
        while i < b.count {
            let type = b.u8(i)
            if type == 0 { return }
            if type == 1 { i += 1; continue }
            guard i + 1 < b.count else { throw .badOptionLength }
            let len = Int(b.u8(i + 1))
            guard len >= 2, i + len <= b.count else { throw .badOptionLength }
            i += len
        }
    }

    /// The option bytes (valid only inside `body`).
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        var copy = storage
        return try Swift.withUnsafeBytes(of: &copy) { (s) throws(E) -> R in
            try body(UnsafeRawBufferPointer(rebasing: s[0..<count]))
        }
    }

    /// Byte `index` of the option area; 0 when out of range.
    public subscript(index: Int) -> UInt8 {
        guard index >= 0, index < count else { return 0 }
        return Swift.withUnsafeBytes(of: storage) { $0[index] }
    }

    public static func == (lhs: IPv4Options, rhs: IPv4Options) -> Bool {
        guard lhs._count == rhs._count else { return false }
        return Swift.withUnsafeBytes(of: lhs.storage) { l in
            Swift.withUnsafeBytes(of: rhs.storage) { r in
                for i in 0..<Int(lhs._count) where l[i] != r[i] { return false }
                return true
            }
        }
    }

    /// One option: its type byte and where its bytes sit in the area.
    public struct Option: Equatable, Sendable {
        /// Option type (copied flag, class, number; RFC 791).
        public var type: UInt8
        /// Offset of the type byte within the option area.
        public var offset: Int
        /// Total option length including type and length bytes (1 for NOP).
        public var length: Int

        public init(type: UInt8, offset: Int, length: Int) {
            self.type = type
            self.offset = offset
            self.length = length
        }
    }

    /// Iterates options in order, stopping at End of Option List.
    public struct Iterator: IteratorProtocol {
        let options: IPv4Options
        var index = 0

        public mutating func next() -> Option? {
            guard index < options.count else { return nil }
            let type = options[index]
            if type == 0 { index = options.count; return nil }
            if type == 1 {
                defer { index += 1 }
                return Option(type: 1, offset: index, length: 1)
            }
            // The area was validated on construction; still guard.
            let len = Int(options[index + 1])
            guard len >= 2, index + len <= options.count else { index = options.count; return nil }
            defer { index += len }
            return Option(type: type, offset: index, length: len)
        }
    }

    public func makeIterator() -> Iterator { Iterator(options: self) }
}
