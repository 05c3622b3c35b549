/// Where on the path a byte copy happened.
public enum CopyStage: Int, CaseIterable, Sendable {
    /// `tcp_sendmsg` / `udp_sendmsg`: user bytes into a buffer (Linux: `skb_copy_to_page_nocache`).
    case userToBuffer
    /// A shared header made private before writing (Linux: `skb_cow_head`, `pskb_copy`).
    case headerCopy
    /// IP fragmentation into new buffers (Linux: `ip_fragment` slow path).
    case fragmentation
    /// IP reassembly into one buffer (Linux: `ip_frag_reasm`).
    case reassembly
    /// Software segmentation of a large packet (Linux: `skb_segment`).
    case segmentation
    /// A buffer made linear (Linux: `skb_linearize`).
    case linearize
    /// Frames crossing the port: the NIC's DMA to or from the wire side.
    case portIO
    /// Received bytes copied to the user (Linux: `skb_copy_datagram_iter`).
    case bufferToUser
    /// The original packet quoted in an ICMP error (Linux: `icmp_glue_bits`).
    case icmpQuote

    public var name: String {
        switch self {
        case .userToBuffer: "user->buffer"
        case .headerCopy: "header-copy"
        case .fragmentation: "ip-fragment"
        case .reassembly: "ip-reassembly"
        case .segmentation: "gso-segment"
        case .linearize: "linearize"
        case .portIO: "port-io"
        case .bufferToUser: "buffer->user"
        case .icmpQuote: "icmp-quote"
        }
    }
}

/// Counts every byte copied on the path, by stage, with the number of copy operations.
public struct CopyLedger: Sendable, Equatable {
    public var bytes: [UInt64] { [b0, b1, b2, b3, b4, b5, b6, b7, b8] }
    public var operations: [UInt64] { [o0, o1, o2, o3, o4, o5, o6, o7, o8] }
    // Fixed fields rather than an array so recording never allocates or checks uniqueness.
    @usableFromInline var b0: UInt64 = 0, b1: UInt64 = 0, b2: UInt64 = 0, b3: UInt64 = 0
    @usableFromInline var b4: UInt64 = 0, b5: UInt64 = 0, b6: UInt64 = 0, b7: UInt64 = 0
    @usableFromInline var o0: UInt64 = 0, o1: UInt64 = 0, o2: UInt64 = 0, o3: UInt64 = 0
    @usableFromInline var o4: UInt64 = 0, o5: UInt64 = 0, o6: UInt64 = 0, o7: UInt64 = 0
    @usableFromInline var b8: UInt64 = 0, o8: UInt64 = 0

    public init() {}

    @inlinable @inline(__always)
    public mutating func record(_ stage: CopyStage, bytes n: Int) {
        let v = UInt64(truncatingIfNeeded: n)
        switch stage {
        case .userToBuffer: b0 &+= v; o0 &+= 1
        case .headerCopy: b1 &+= v; o1 &+= 1
        case .fragmentation: b2 &+= v; o2 &+= 1
        case .reassembly: b3 &+= v; o3 &+= 1
        case .segmentation: b4 &+= v; o4 &+= 1
        case .linearize: b5 &+= v; o5 &+= 1
        case .portIO: b6 &+= v; o6 &+= 1
        case .bufferToUser: b7 &+= v; o7 &+= 1
        case .icmpQuote: b8 &+= v; o8 &+= 1
        }
    }

    public func bytes(_ stage: CopyStage) -> UInt64 { bytes[stage.rawValue] }
    public func operations(_ stage: CopyStage) -> UInt64 { operations[stage.rawValue] }
    public var totalBytes: UInt64 { bytes.reduce(0, &+) }

    public static func + (a: CopyLedger, b: CopyLedger) -> CopyLedger {
        var r = a
        for s in CopyStage.allCases {
            r.add(s, bytes: b.bytes(s), operations: b.operations(s))
        }
        return r
    }

    /// The copies made since `earlier` was taken.
    public func minus(_ earlier: CopyLedger) -> CopyLedger {
        var r = CopyLedger()
        for s in CopyStage.allCases {
            r.add(s, bytes: bytes(s) &- earlier.bytes(s), operations: operations(s) &- earlier.operations(s))
        }
        return r
    }

    mutating func add(_ stage: CopyStage, bytes n: UInt64, operations k: UInt64) {
        switch stage {
        case .userToBuffer: b0 &+= n; o0 &+= k
        case .headerCopy: b1 &+= n; o1 &+= k
        case .fragmentation: b2 &+= n; o2 &+= k
        case .reassembly: b3 &+= n; o3 &+= k
        case .segmentation: b4 &+= n; o4 &+= k
        case .linearize: b5 &+= n; o5 &+= k
        case .portIO: b6 &+= n; o6 &+= k
        case .bufferToUser: b7 &+= n; o7 &+= k
        case .icmpQuote: b8 &+= n; o8 &+= k
        }
    }
}
