/// Where an error-queue message comes from (Linux: `SO_EE_ORIGIN_*` in `<linux/errqueue.h>`).
public enum ErrorOrigin {
    public static let none: UInt8 = 0
    public static let local: UInt8 = 1
    public static let icmp: UInt8 = 2
    /// A transmit timestamp (Linux: `SO_EE_ORIGIN_TIMESTAMPING`, = `SO_EE_ORIGIN_TXSTATUS`).
    public static let timestamping: UInt8 = 4
    /// A MSG_ZEROCOPY completion (Linux: `SO_EE_ORIGIN_ZEROCOPY`).
    public static let zerocopy: UInt8 = 5
}

/// The stage a transmit timestamp was taken at, the message's `info` (Linux: `SCM_TSTAMP_*`).
public enum TimestampStage {
    /// Handed to the driver (Linux: `SCM_TSTAMP_SND`, `skb_tx_timestamp()`).
    public static let sent: UInt32 = 0
    /// Entering the device's queueing layer (Linux: `SCM_TSTAMP_SCHED`, `__dev_queue_xmit()`).
    public static let scheduled: UInt32 = 1
    /// The byte was cumulatively acknowledged (Linux: `SCM_TSTAMP_ACK`, `tcp_ack_tstamp()`).
    public static let acknowledged: UInt32 = 2
}

/// One message of a socket's error queue, as `recvmsg(MSG_ERRQUEUE)` reports it.
/// Linux: `struct sock_extended_err` in the error skb's `struct sock_exterr_skb`, with the skb's
/// `tstamp` and length.
public struct SocketErrorMessage: Sendable, Equatable {
    /// `ee_errno`: 0 for a zerocopy completion, ENOMSG (42) for a timestamp.
    public var errno: UInt32
    public var origin: UInt8
    public var type: UInt8 = 0
    /// `ee_code`: for a zerocopy completion, `SO_EE_CODE_ZEROCOPY_COPIED` (1) when the bytes were copied.
    public var code: UInt8 = 0
    /// `ee_info`: the first notification id of a zerocopy range; the stage of a timestamp.
    public var info: UInt32 = 0
    /// `ee_data`: the last notification id of a zerocopy range; the timestamp key (OPT_ID).
    public var data: UInt32 = 0
    /// Software timestamp on the stack's clock, nanoseconds; 0 = none (Linux: `skb->tstamp`).
    public var timestamp: Nanoseconds = 0
    /// Bytes of the packet the message carries (a timestamp without OPT_TSONLY); 0 = none.
    public var payloadLength: Int = 0

    public init(errno: UInt32, origin: UInt8, type: UInt8 = 0, code: UInt8 = 0, info: UInt32 = 0, data: UInt32 = 0,
                timestamp: Nanoseconds = 0, payloadLength: Int = 0) {
        self.errno = errno; self.origin = origin; self.type = type; self.code = code
        self.info = info; self.data = data; self.timestamp = timestamp; self.payloadLength = payloadLength
    }
}

/// A socket's error queue (Linux: `sk->sk_error_queue`, filled by `sock_queue_err_skb()`): a ring
/// of messages, allocated on first use and never grown, plus, in the stack's TCP slab, a clone of
/// the packet each timestamp message carries (in message order). Consecutive zerocopy ranges
/// coalesce in the tail message. Linux bounds the queue by the receive buffer; here it holds at
/// most `capacity` messages and payload bytes below the receive buffer, and drops beyond that as
/// `sock_queue_err_skb` does (ENOMEM).
struct ErrorQueue {
    static let capacity = 128
    private var ring: [SocketErrorMessage] = []
    private var head = 0
    private(set) var count = 0
    /// Packets carried by messages, oldest first (Linux: the error skbs themselves); its
    /// `bytes` is what they hold.
    var payloads = PacketList()
    /// Wake-ups of the socket's waiters for an error (Linux: `sk_error_report()` calls), which
    /// make a new edge for edge-triggered epoll.
    private(set) var reports: UInt64 = 0

    var isEmpty: Bool { count == 0 }

    /// Linux: `skb_zerocopy_notify_extend()`: a range that continues the tail's zerocopy range
    /// extends it, so one message reports many sends.
    mutating func extendZerocopy(first: UInt32, last: UInt32) -> Bool {
        guard count > 0 else { return false }
        let t = (head + count - 1) % ErrorQueue.capacity
        guard ring[t].origin == ErrorOrigin.zerocopy, first == ring[t].data &+ 1 else { return false }
        // The merged range must still be countable in 32 bits (Linux: sum_len < 2^32).
        let total = UInt64(ring[t].data &- ring[t].info) + 1 + UInt64(last &- first) + 1
        guard total < 1 << 32 else { return false }
        ring[t].data = last
        return true
    }

    /// Queues a message; false when the queue is full. The caller has pushed its payload, if any,
    /// onto `payloads`.
    mutating func append(_ m: SocketErrorMessage) -> Bool {
        if ring.isEmpty {
            ring = [SocketErrorMessage](repeating: SocketErrorMessage(errno: 0, origin: 0), count: ErrorQueue.capacity)
        }
        guard count < ErrorQueue.capacity else { return false }
        ring[(head + count) % ErrorQueue.capacity] = m
        count += 1
        return true
    }

    /// Counts a wake-up of the socket's waiters (Linux: `sk_error_report()`).
    mutating func report() { reports &+= 1 }

    /// Linux: `sock_dequeue_err_skb()` (the payload is popped separately, by its owner slab).
    mutating func removeFirst() -> SocketErrorMessage? {
        guard count > 0 else { return nil }
        let m = ring[head]
        head = (head + 1) % ErrorQueue.capacity
        count -= 1
        return m
    }

    /// Drops every message (the payloads are the caller's to free).
    mutating func removeAll() {
        head = 0; count = 0
    }
}

extension NetworkStack {
    /// Queues `message` on a TCP socket's error queue with the packet it carries, and wakes the
    /// socket's waiters. A zerocopy range that continues the tail's is merged into it. Returns
    /// false when the queue is full (the message is dropped, as Linux drops an error skb beyond
    /// the receive buffer). Linux: `sock_queue_err_skb()` / `__msg_zerocopy_callback()`.
    @discardableResult
    func queueError(_ s: TCPSocket, _ message: SocketErrorMessage, payload: consuming PacketBuffer?) -> Bool {
        if message.origin == ErrorOrigin.zerocopy, s.errorQueue.extendZerocopy(first: message.info, last: message.data) {
            s.errorQueue.report()
            return true
        }
        switch consume payload {
        case .some(let p):
            guard s.errorQueue.payloads.bytes + p.length < s.receiveBufferSize, !tcpSlab.isFull,
                  s.errorQueue.count < ErrorQueue.capacity else { return false }
            tcpSlab.pushBack(p, onto: &s.errorQueue.payloads)
        case .none: break
        }
        guard s.errorQueue.append(message) else { return false }
        s.errorQueue.report()
        return true
    }

    /// Takes the oldest message and copies what it can of the packet it carries into `data`,
    /// returning the message and the bytes copied (Linux: `sock_dequeue_err_skb()`, which wakes
    /// the waiters again while more remain, then `skb_copy_datagram_msg()`).
    func dequeueError(_ s: TCPSocket, copyingInto data: UnsafeMutableRawBufferPointer) -> (SocketErrorMessage, Int)? {
        guard let m = s.errorQueue.removeFirst() else { return nil }
        var copied = 0
        if m.payloadLength > 0, let b = tcpSlab.popFront(&s.errorQueue.payloads) {
            let n = min(b.length, data.count)
            if n > 0 {
                copied = b.copyBytes(to: data.baseAddress!, offset: 0, count: n)
                pool.recordCopy(.bufferToUser, bytes: copied)
            }
        }
        if !s.errorQueue.isEmpty { s.errorQueue.report() }
        return (m, copied)
    }

    /// Frees a socket's error queue (Linux: `skb_queue_purge(&sk->sk_error_queue)`).
    func purgeErrorQueue(_ s: TCPSocket) {
        s.errorQueue.removeAll()
        _ = tcpSlab.removeAll(&s.errorQueue.payloads)
    }
}
