import Skiff
import SkiffWire

/// The byte at `offset` of the deterministic stream a transfer sends.
@inline(__always)
public func transferPattern(_ offset: Int, seed: UInt64) -> UInt8 {
    var z = UInt64(truncatingIfNeeded: offset >> 6) &+ seed &* 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 29)) &* 0xBF58_476D_1CE4_E5B9
    return UInt8(truncatingIfNeeded: (z >> 32) &+ UInt64(offset & 63))
}

/// A TCP transfer between two simulated hosts: the receiver listens and reads to the end, the
/// sender connects, writes `bytes` of a deterministic pattern, and closes. Both ends hash what
/// they handled; the receiver also checks every byte against the pattern.
///
/// The transfer is the application of the benchmarks: its state is touched on every step, so,
/// like the stack's per-packet state, it opts out of dynamic exclusivity checks (one thread
/// drives a world).
public final class BulkTransfer {
    public let world: SimWorld
    public let sender: NetworkStack, receiver: NetworkStack
    public let destination: SocketAddress
    public let bytes: Int
    public let seed: UInt64
    @exclusivity(unchecked) public private(set) var sent = 0
    @exclusivity(unchecked) public private(set) var received = 0
    @exclusivity(unchecked) public private(set) var mismatches = 0
    @exclusivity(unchecked) public private(set) var senderHash = SHA256()
    @exclusivity(unchecked) public private(set) var receiverHash = SHA256()
    @exclusivity(unchecked) public private(set) var senderSocket: Int32 = -1
    @exclusivity(unchecked) public private(set) var receiverSocket: Int32 = -1
    @exclusivity(unchecked) public private(set) var listener: Int32 = -1
    @exclusivity(unchecked) public private(set) var error: Errno?
    @exclusivity(unchecked) public private(set) var startTime: Nanoseconds = 0
    @exclusivity(unchecked) public private(set) var finishTime: Nanoseconds = 0
    /// Set before the first step to trace the first data segment.
    @exclusivity(unchecked) public var traceFirstSegment = false
    /// Hash and check the bytes (off for throughput benchmarks).
    @exclusivity(unchecked) public var verify = true
    @exclusivity(unchecked) public private(set) var firstSegmentTrace: UInt32 = 0
    @exclusivity(unchecked) var connected = false
    @exclusivity(unchecked) var closedSender = false
    @exclusivity(unchecked) var done = false
    @exclusivity(unchecked) var chunk: [UInt8]
    /// Stream offset and length the chunk currently holds.
    @exclusivity(unchecked) var chunkStart = -1
    @exclusivity(unchecked) var chunkLength = 0
    @exclusivity(unchecked) var readBuffer: [UInt8]

    public init(world: SimWorld, sender: NetworkStack, receiver: NetworkStack, port: UInt16, bytes: Int, seed: UInt64 = 1,
                chunkSize: Int = 64 * 1024) {
        self.world = world
        self.sender = sender
        self.receiver = receiver
        self.bytes = bytes
        self.seed = seed
        destination = SocketAddress(receiver.devices[0].addresses[0].address, port)
        chunk = [UInt8](repeating: 0, count: chunkSize)
        readBuffer = [UInt8](repeating: 0, count: chunkSize)
    }

    /// Opens the listener and starts the connection.
    public func start() -> Errno? {
        let now = world.now
        startTime = now
        guard case let .success(l) = receiver.socket() else { return .EMFILE }
        listener = l
        if let e = receiver.bind(l, SocketAddress(.any, destination.port)) { return e }
        if let e = receiver.listen(l, backlog: 16) { return e }
        guard case let .success(s) = sender.socket() else { return .EMFILE }
        senderSocket = s
        let e = sender.connect(s, destination, now: now)
        if e != .EINPROGRESS { return e }
        return nil
    }

    /// One application step; true when the transfer is complete (or failed).
    public func step() -> Bool {
        if done { return true }
        let now = world.now
        if receiverSocket < 0, case let .success((fd, _)) = receiver.accept(listener) { receiverSocket = fd }
        if !connected {
            let e = sender.connect(senderSocket, destination, now: now)
            if e == .EISCONN { connected = true } else if e != .EALREADY && e != .EINPROGRESS {
                error = e; done = true; return true
            }
        }
        // Like a writer blocked in write() (Linux: sk_stream_wait_memory), the sender goes on only
        // once the socket is writable again: a third of the send buffer free, not every few bytes.
        if connected && sent < bytes && sender.poll(senderSocket).contains(.writable) {
            while sent < bytes {
                if sent < chunkStart || sent >= chunkStart + chunkLength || chunkStart < 0 {
                    // Unverified runs (benchmarks) reuse one chunk of the pattern.
                    let fill = verify || chunkStart < 0
                    chunkStart = sent
                    chunkLength = min(chunk.count, bytes - sent)
                    if fill { for i in 0..<chunkLength { chunk[i] = transferPattern(sent + i, seed: seed) } }
                }
                let from = sent - chunkStart
                let n = chunkStart + chunkLength - sent
                if traceFirstSegment && sent == 0 && sender.tracer.armedCount == 0 { sender.tracer.armedCount = 1 }
                let r = chunk.withUnsafeBytes { sender.send(senderSocket, UnsafeRawBufferPointer(rebasing: $0[from..<(from + n)]), now: now) }
                switch r {
                case let .success(k):
                    if traceFirstSegment && sent == 0 { firstSegmentTrace = sender.tracer.traceIDs.last ?? 0 }
                    if verify { chunk.withUnsafeBytes { senderHash.update(UnsafeRawBufferPointer(rebasing: $0[from..<(from + k)])) } }
                    sent += k
                case .failure(.EAGAIN): break
                case let .failure(e): error = e; done = true; return true
                }
                if case .failure = r { break }
            }
        }
        if connected && sent == bytes && !closedSender {
            closedSender = true
            _ = sender.close(senderSocket, now: now)
        }
        if receiverSocket >= 0 {
            while true {
                let r = readBuffer.withUnsafeMutableBytes { receiver.recv(receiverSocket, into: $0, now: now) }
                switch r {
                case .success(0):
                    finishTime = now
                    _ = receiver.close(receiverSocket, now: now)
                    done = true
                    return true
                case let .success(k):
                    if verify {
                        readBuffer.withUnsafeBytes { b in
                            receiverHash.update(UnsafeRawBufferPointer(rebasing: b[0..<k]))
                            for i in 0..<k where b[i] != transferPattern(received + i, seed: seed) { mismatches += 1 }
                        }
                    }
                    received += k
                    continue
                case .failure(.EAGAIN): break
                case let .failure(e): error = e; done = true; return true
                }
                break
            }
        }
        return false
    }

    /// Runs the transfer to its end or until `limit` nanoseconds of virtual time pass.
    /// Returns true when every byte arrived intact.
    @discardableResult
    public func run(limit: Nanoseconds) -> Bool {
        if let e = start() { error = e; return false }
        world.run(limit: world.now &+ limit) { step() }
        return succeeded
    }

    public var succeeded: Bool { error == nil && done && received == bytes && mismatches == 0 }
}
