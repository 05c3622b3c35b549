/// SO_MEMINFO: a socket's memory accounting (Linux: `sk_get_meminfo()`, the `SK_MEMINFO_*`
/// values in that order).
public struct SocketMemoryInfo: Sendable, Equatable {
    /// Bytes charged to the receive side (Linux: `sk_rmem_alloc`): the receive and
    /// out-of-order queues.
    public var receiveAllocated: UInt32 = 0
    /// SO_RCVBUF as the kernel keeps it (Linux: `sk_rcvbuf`).
    public var receiveBuffer: UInt32 = 0
    /// Transmitted buffers not yet freed by the device, in qdiscs and TX rings (Linux:
    /// `sk_wmem_alloc`, which TCP Small Queues keeps small).
    public var sendAllocated: UInt32 = 0
    /// SO_SNDBUF as the kernel keeps it (Linux: `sk_sndbuf`).
    public var sendBuffer: UInt32 = 0
    /// Pre-charged memory not yet used (Linux: `sk_forward_alloc`); Skiff has no quota, so 0.
    public var forwardAllocated: UInt32 = 0
    /// Bytes on the write and retransmit queues (Linux: `sk_wmem_queued`).
    public var sendQueued: UInt32 = 0
    /// Option memory (Linux: `sk_omem_alloc`).
    public var optionMemory: UInt32 = 0
    /// Segments waiting for the socket lock (Linux: `sk_backlog.len`); Skiff has none.
    public var backlog: UInt32 = 0
    /// Segments dropped for want of memory (Linux: `sk_drops`).
    public var drops: UInt32 = 0

    public init() {}

    /// The nine values in Linux's order.
    public var values: [UInt32] {
        [receiveAllocated, receiveBuffer, sendAllocated, sendBuffer, forwardAllocated, sendQueued,
         optionMemory, backlog, drops]
    }
}

extension NetworkStack {
    /// SO_MEMINFO for a TCP socket (Linux: `sock_getsockopt` → `sk_get_meminfo`).
    public func memoryInfo(_ fd: Int32) -> Result<SocketMemoryInfo, Errno> {
        guard let s = tcpSocket(fd) else { return .failure(.EBADF) }
        var m = SocketMemoryInfo()
        m.receiveAllocated = UInt32(clamping: s.receiveQueueBytes + s.outOfOrderBytes)
        m.receiveBuffer = UInt32(clamping: s.receiveBufferSize)
        m.sendAllocated = UInt32(clamping: tcpBytesBelow(s))
        m.sendBuffer = UInt32(clamping: s.sendBufferSize)
        m.sendQueued = UInt32(clamping: s.queuedBytes)
        return .success(m)
    }
}
