import Skiff
import SkiffWire

/// Runs the `--serve` services on a shared stack with the blocking socket API: one accepting
/// thread per service and one thread per connection, as a classic inetd-style server would on
/// Linux. Counters are kept under the stack lock.
public final class ServiceRunner: @unchecked Sendable {
    public struct Counters: Sendable {
        public var accepted: UInt64 = 0
        public var bytesIn: UInt64 = 0
        public var bytesOut: UInt64 = 0
        public var httpRequests: UInt64 = 0
        public var acceptErrors: UInt64 = 0
    }

    let shared: SharedStack
    private var listeners: [Int32] = []
    private var counters = Counters()
    private var stopping = false

    public init(shared: SharedStack) { self.shared = shared }

    /// Binds and listens on every service's port and starts its accepting thread.
    public func start(_ specs: [ServiceSpec], address: IPv4Address) -> Result<Void, ServiceSpecError> {
        for spec in specs {
            guard case let .success(fd) = shared.socket(.stream) else {
                return .failure(.init(item: spec.description, reason: "no socket"))
            }
            _ = shared.setOption(fd, .reuseAddress(true))
            if let e = shared.bind(fd, SocketAddress(.any, spec.port)) {
                return .failure(.init(item: spec.description, reason: "bind: \(e)"))
            }
            if let e = shared.listen(fd, backlog: 1024) {
                return .failure(.init(item: spec.description, reason: "listen: \(e)"))
            }
            if case let .http(_, dir) = spec, !HTTPService.isDirectory(dir) {
                return .failure(.init(item: spec.description, reason: "\(dir) is not a readable directory"))
            }
            shared.lock.withLock { listeners.append(fd) }
            spawnThread { [self] in acceptLoop(fd, spec) }
        }
        return .success(())
    }

    /// Closes the listeners; accepting threads return, open connections finish on their own.
    public func stop() {
        let fds: [Int32] = shared.lock.withLock { stopping = true; return listeners }
        for fd in fds { _ = shared.close(fd) }
    }

    public var statistics: Counters { shared.lock.withLock { counters } }
    /// For callers already holding the stack lock.
    public var statisticsUnlocked: Counters { counters }

    func count(_ body: (inout Counters) -> Void) { shared.lock.withLock { body(&counters) } }

    private func acceptLoop(_ listener: Int32, _ spec: ServiceSpec) {
        while true {
            switch shared.accept(listener) {
            case let .success((fd, _)):
                count { $0.accepted &+= 1 }
                spawnThread { [self] in serve(fd, spec) }
            case let .failure(e):
                if shared.lock.withLock({ stopping }) || e == .EBADF || e == .EINVAL { return }
                count { $0.acceptErrors &+= 1 }
            }
        }
    }

    private func serve(_ fd: Int32, _ spec: ServiceSpec) {
        defer { _ = shared.close(fd) }
        switch spec {
        case .echo: echo(fd)
        case .discard: discard(fd)
        case .chargen: chargen(fd)
        case let .http(_, dir): HTTPService(shared: shared, directory: dir, runner: self).serve(fd)
        }
    }

    /// RFC 862.
    private func echo(_ fd: Int32) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 16)
        defer { buffer.deallocate() }
        while case let .success(n) = shared.recv(fd, into: buffer), n > 0 {
            guard case .success = shared.send(fd, UnsafeRawBufferPointer(rebasing: buffer[..<n])) else { return }
            count { $0.bytesIn &+= UInt64(n); $0.bytesOut &+= UInt64(n) }
        }
    }

    /// RFC 863.
    private func discard(_ fd: Int32) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 262_144, alignment: 16)
        defer { buffer.deallocate() }
        var total: UInt64 = 0
        while case let .success(n) = shared.recv(fd, into: buffer), n > 0 { total &+= UInt64(n) }
        count { $0.bytesIn &+= total }
    }

    /// RFC 864: 72-character lines of the printable ASCII ring, rotating by one each line.
    private func chargen(_ fd: Int32) {
        var block = [UInt8]()
        block.reserveCapacity(95 * 74)
        for line in 0..<95 {
            for i in 0..<72 { block.append(UInt8(32 + (line + i) % 95)) }
            block.append(13); block.append(10)
        }
        var total: UInt64 = 0
        let ok = block.withUnsafeBytes { b -> Bool in
            while case let .success(n) = shared.send(fd, b), n == b.count {
                total &+= UInt64(n)
                if total > 1 << 40 { break }
            }
            return true
        }
        _ = ok
        count { $0.bytesOut &+= total }
    }
}
