import SkiffWire

/// What moves a set of stacks forward in time: a simulated world, or a real event loop.
/// Linux has no counterpart; this is the scheduler a blocking `read()` sleeps on.
public protocol StackEventLoop: AnyObject {
    /// The time socket calls are made at.
    var now: Nanoseconds { get }
    /// Does the next piece of pending work — runs the engines, delivers the next frame, or
    /// advances the clock to the next timer or frame — if it is due no later than `limit`
    /// (absolute). Returns false, having done nothing, when nothing is due up to `limit`.
    func step(limit: Nanoseconds) -> Bool
}

/// Blocking socket calls as Swift `async` functions, for stacks driven by a `StackEventLoop`
/// (a `SimWorld`). Linux: a task sleeping in `sk_wait_data()` / `inet_csk_wait_for_connect()` /
/// `sk_stream_wait_memory()` until the socket's wait queue is woken.
///
/// Everything runs on the main actor: the tasks, the socket calls and the packet path, which
/// stays synchronous. `run` steps the event loop only while every task started with `run` or
/// `spawn` is waiting for readiness, so virtual time stands still while a task has work to do,
/// and a run is deterministic. A waiting task is resumed when `poll` shows what it waits for;
/// when nothing is left to happen before the run's time limit, waiting tasks get ETIMEDOUT.
///
/// Tasks that wait should be started with `spawn` (or be the body of `run`); a task started
/// otherwise still works, but the driver does not know when it is busy and may step the loop
/// (advance time) while it runs.
@MainActor
public final class AsyncStackDriver {
    public let loop: any StackEventLoop
    /// Steps the loop has made.
    public private(set) var steps = 0

    private struct Waiter {
        let stack: NetworkStack
        let fd: Int32
        let events: PollEvents
        let continuation: CheckedContinuation<Result<PollEvents, Errno>, Never>
    }

    private var waiters: [Waiter] = []
    /// Started tasks that are not waiting on the driver.
    private var runnable = 0
    /// The run loop, suspended until `runnable` drops to zero.
    private var quiet: CheckedContinuation<Void, Never>?
    private var running = false
    /// Stacks named by `chunks` sequences (which must be Sendable, so carry an identifier).
    private var stacks: [ObjectIdentifier: NetworkStack] = [:]

    public init(_ loop: any StackEventLoop) { self.loop = loop }

    /// The loop's time.
    public var now: Nanoseconds { loop.now }
    /// Tasks waiting for readiness.
    public var waitingTasks: Int { waiters.count }

    // MARK: Running

    /// Runs `body` as a task and steps the loop whenever every started task is waiting, until
    /// `body` returns. Tasks still waiting when nothing more can happen before `limit`
    /// (absolute) are resumed with ETIMEDOUT. Tasks `spawn`ed before or during the run take
    /// part; those still waiting afterwards wait for the next run (or `cancelWaiters`).
    public func run<T>(until limit: Nanoseconds, _ body: @escaping @MainActor () async throws -> T) async throws -> T {
        precondition(!running, "AsyncStackDriver.run is not reentrant")
        running = true
        defer { running = false }
        let main = spawn(body)
        while main.result == nil {
            if runnable > 0 {
                await withCheckedContinuation { quiet = $0 }
                continue
            }
            if resumeReady() { continue }
            // Let tasks the driver does not know about run before time moves.
            await Task.yield()
            if runnable > 0 || main.result != nil { continue }
            if loop.step(limit: limit) { steps += 1; continue }
            if !waiters.isEmpty { failWaiters(.ETIMEDOUT) }
        }
        return try main.result!.get()
    }

    /// Starts a task that takes part in `run`: the loop is not stepped while it has work to do.
    /// Its result can be awaited with `value` (which counts as waiting).
    @discardableResult
    public func spawn<T>(_ body: @escaping @MainActor () async throws -> T) -> DriverTask<T> {
        let task = DriverTask<T>(driver: self)
        runnable += 1
        Task { @MainActor in
            let r: Result<T, any Error>
            do { r = .success(try await body()) } catch { r = .failure(error) }
            task.finish(r)
            self.parked()
        }
        return task
    }

    /// Resumes every waiting task with ECANCELED (for shutting servers down after a run).
    public func cancelWaiters() { failWaiters(.ECANCELED) }

    func woke() { runnable += 1 }

    func parked() {
        runnable -= 1
        if runnable <= 0, let q = quiet {
            quiet = nil
            q.resume()
        }
    }

    private func resumeReady() -> Bool {
        var woke = false
        var i = 0
        while i < waiters.count {
            let w = waiters[i]
            let ready = w.stack.poll(w.fd).intersection(w.events.union([.error, .hangup]))
            if ready.isEmpty { i += 1; continue }
            waiters.remove(at: i)
            runnable += 1
            w.continuation.resume(returning: .success(ready))
            woke = true
        }
        return woke
    }

    private func failWaiters(_ e: Errno) {
        let all = waiters
        waiters.removeAll()
        for w in all {
            runnable += 1
            w.continuation.resume(returning: .failure(e))
        }
    }

    // MARK: Waiting

    /// Waits until `poll(fd)` shows one of `events` (or an error or hangup) and returns what it
    /// shows (Linux: `poll()` with an infinite timeout, bounded here by the run's limit).
    @discardableResult
    public func wait(_ stack: NetworkStack, _ fd: Int32, for events: PollEvents) async throws(Errno) -> PollEvents {
        try await waitResult(stack, fd, events).get()
    }

    private func waitResult(_ stack: NetworkStack, _ fd: Int32, _ events: PollEvents) async -> Result<PollEvents, Errno> {
        let ready = stack.poll(fd).intersection(events.union([.error, .hangup]))
        if !ready.isEmpty { return .success(ready) }
        return await withCheckedContinuation { (c: CheckedContinuation<Result<PollEvents, Errno>, Never>) in
            waiters.append(Waiter(stack: stack, fd: fd, events: events, continuation: c))
            parked()
        }
    }

    // MARK: Socket calls

    /// A blocking `connect()` on a new TCP socket: returns it once established; ECONNREFUSED,
    /// ETIMEDOUT, ENETUNREACH … when it fails (the socket is closed then).
    public func connect(_ stack: NetworkStack, to address: SocketAddress) async throws(Errno) -> Int32 {
        let fd = try stack.socket(.stream).get()
        var e = stack.connect(fd, address, now: now)
        while e == .EINPROGRESS || e == .EALREADY {
            if case let .failure(w) = await waitResult(stack, fd, .writable) {
                _ = stack.close(fd, now: now)
                throw w
            }
            e = stack.connect(fd, address, now: now)
        }
        guard let e, e != .EISCONN else { return fd }
        _ = stack.close(fd, now: now)
        throw e
    }

    /// A blocking `accept()`: the next connection and its peer.
    public func accept(_ stack: NetworkStack, _ listener: Int32) async throws(Errno) -> (Int32, SocketAddress) {
        while true {
            switch stack.accept(listener) {
            case let .success(r): return r
            case .failure(.EAGAIN): try await wait(stack, listener, for: .readable)
            case let .failure(e): throw e
            }
        }
    }

    /// A blocking `read()` of up to `maxBytes` (TCP: empty at end of stream; UDP: one datagram,
    /// cut to `maxBytes`). EINVAL for `maxBytes` < 1.
    public func read(_ stack: NetworkStack, _ fd: Int32, upTo maxBytes: Int = 65_536) async throws(Errno) -> [UInt8] {
        try await receiveFrom(stack, fd, upTo: maxBytes).0
    }

    /// A blocking `recvfrom()`: bytes and sender (for TCP, the peer).
    public func receiveFrom(_ stack: NetworkStack, _ fd: Int32, upTo maxBytes: Int = 65_536) async throws(Errno)
        -> ([UInt8], SocketAddress) {
        guard maxBytes > 0 else { throw .EINVAL }
        var buffer = [UInt8](repeating: 0, count: maxBytes)
        while true {
            let r = buffer.withUnsafeMutableBytes { stack.receiveFrom(fd, into: $0, now: loop.now) }
            switch r {
            case let .success((n, from)):
                buffer.removeSubrange(n...)
                return (buffer, from)
            case .failure(.EAGAIN): try await wait(stack, fd, for: .readable)
            case let .failure(e): throw e
            }
        }
    }

    /// A blocking `write()`: TCP sends every byte, waiting for send-buffer space; UDP sends one
    /// datagram (to the connected peer, or to `to`).
    public func write(_ stack: NetworkStack, _ fd: Int32, _ bytes: [UInt8], to: SocketAddress? = nil) async throws(Errno) {
        let datagram = stack.udpSocket(fd) != nil
        var offset = 0
        repeat {
            let r = bytes.withUnsafeBytes {
                stack.sendTo(fd, UnsafeRawBufferPointer(rebasing: $0[offset...]), to: to, now: loop.now)
            }
            switch r {
            case let .success(n):
                offset += n
                if datagram { return }
            case .failure(.EAGAIN): try await wait(stack, fd, for: .writable)
            case let .failure(e): throw e
            }
        } while offset < bytes.count
    }

    /// The bytes a socket receives, as an asynchronous sequence of chunks of at most
    /// `maxBytes`, ending at end of stream (TCP) and throwing the socket's error.
    public func chunks(_ stack: NetworkStack, _ fd: Int32, upTo maxBytes: Int = 65_536) -> SocketChunks {
        stacks[ObjectIdentifier(stack)] = stack
        return SocketChunks(driver: self, stack: ObjectIdentifier(stack), fd: fd, maxBytes: maxBytes)
    }

    func nextChunk(_ id: ObjectIdentifier, _ fd: Int32, _ maxBytes: Int) async throws(Errno) -> [UInt8] {
        guard let stack = stacks[id] else { throw .EBADF }
        return try await read(stack, fd, upTo: maxBytes)
    }
}

/// The chunks a socket receives (see `AsyncStackDriver.chunks`).
public struct SocketChunks: AsyncSequence, Sendable {
    public typealias Element = [UInt8]
    public typealias Failure = Errno
    let driver: AsyncStackDriver
    let stack: ObjectIdentifier
    let fd: Int32
    let maxBytes: Int

    public func makeAsyncIterator() -> Iterator {
        Iterator(driver: driver, stack: stack, fd: fd, maxBytes: maxBytes)
    }

    public struct Iterator: AsyncIteratorProtocol {
        let driver: AsyncStackDriver
        let stack: ObjectIdentifier
        let fd: Int32
        let maxBytes: Int
        var finished = false

        public mutating func next() async throws(Errno) -> [UInt8]? {
            if finished { return nil }
            let chunk: [UInt8]
            do { chunk = try await driver.nextChunk(stack, fd, maxBytes) } catch {
                finished = true
                throw error
            }
            if chunk.isEmpty { finished = true; return nil }
            return chunk
        }
    }
}

/// A task started by `AsyncStackDriver.spawn` (Linux: a thread one can `join`).
@MainActor
public final class DriverTask<T> {
    unowned let driver: AsyncStackDriver
    /// The task's outcome once it has finished.
    public private(set) var result: Result<T, any Error>?
    private var joiners: [CheckedContinuation<Void, Never>] = []

    init(driver: AsyncStackDriver) { self.driver = driver }

    public var isFinished: Bool { result != nil }

    /// Waits for the task to finish and returns its value or throws its error.
    public var value: T {
        get async throws {
            if result == nil {
                await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                    joiners.append(c)
                    driver.parked()
                }
            }
            return try result!.get()
        }
    }

    func finish(_ r: Result<T, any Error>) {
        result = r
        let waiting = joiners
        joiners.removeAll()
        for j in waiting {
            driver.woke()
            j.resume()
        }
    }
}
