/// TCP connection states (RFC 9293 §3.3.2; Linux: `TCP_ESTABLISHED` …, `include/net/tcp_states.h`).
public enum TCPState: String, Sendable {
    case closed = "CLOSED", listen = "LISTEN", synSent = "SYN-SENT", synReceived = "SYN-RECV"
    case established = "ESTAB", finWait1 = "FIN-WAIT-1", finWait2 = "FIN-WAIT-2", closeWait = "CLOSE-WAIT"
    case closing = "CLOSING", lastAck = "LAST-ACK", timeWait = "TIME-WAIT"

    /// States in which the connection is synchronised (RFC 9293).
    var isSynchronized: Bool {
        switch self {
        case .closed, .listen, .synSent, .synReceived: false
        default: true
        }
    }
}

/// Loss recovery state (Linux: `enum tcp_ca_state`).
public enum TCPCAState: String, Sendable {
    case open = "Open", disorder = "Disorder", cwr = "CWR", recovery = "Recovery", loss = "Loss"
}

/// TCP flag bits as stored in a segment's control block.
enum TCPFlag {
    static let fin: UInt8 = 0x01, syn: UInt8 = 0x02, rst: UInt8 = 0x04, psh: UInt8 = 0x08
    static let ack: UInt8 = 0x10, urg: UInt8 = 0x20, ece: UInt8 = 0x40, cwr: UInt8 = 0x80
}

/// Sequence-number comparisons modulo 2^32 (RFC 9293 §3.4; Linux: `before()`, `after()`).
@inline(__always) func seqLT(_ a: UInt32, _ b: UInt32) -> Bool { Int32(bitPattern: a &- b) < 0 }
@inline(__always) func seqLE(_ a: UInt32, _ b: UInt32) -> Bool { Int32(bitPattern: a &- b) <= 0 }
@inline(__always) func seqGT(_ a: UInt32, _ b: UInt32) -> Bool { Int32(bitPattern: a &- b) > 0 }
@inline(__always) func seqGE(_ a: UInt32, _ b: UInt32) -> Bool { Int32(bitPattern: a &- b) >= 0 }
@inline(__always) func seqMax(_ a: UInt32, _ b: UInt32) -> UInt32 { seqGT(a, b) ? a : b }
@inline(__always) func seqMin(_ a: UInt32, _ b: UInt32) -> UInt32 { seqLT(a, b) ? a : b }
