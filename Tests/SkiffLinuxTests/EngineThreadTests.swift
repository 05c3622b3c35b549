import Foundation
import Glibc
import Testing
@testable import Skiff
@testable import SkiffLinux
import SkiffWire

/// The threaded engine without root: two stacks, each with its engine thread, joined by an
/// AF_UNIX datagram socket pair standing in for the wire; applications on their own threads use
/// the blocking socket API.
@Suite struct EngineThreadTests {
    /// One end of a socket pair as a port (one frame per datagram).
    final class PairPort: LinuxPort, @unchecked Sendable {
        let name: String
        let linkType: LinkType = .ethernet
        let queueCount = 1
        let suggestedMAC: MACAddress
        let offloads: PortOffloads
        let io: DescriptorIO
        init(fd: Int32, name: String, mac: MACAddress, offload: Bool, batchedWrites: Bool = false) {
            self.name = name; suggestedMAC = mac
            offloads = offload ? [.checksum, .tcpSegmentation] : []
            io = DescriptorIO(fds: [fd], vnetHeader: offload, batchedWrites: batchedWrites)
        }
        func fileDescriptor(queue: Int) -> Int32 { io.fds[0] }
        func receive(queue: Int, into batch: FrameBatch) -> Int { io.receive(queue: 0, into: batch) }
        func deliver(_ batch: FrameBatch, index: Int, emit: (UnsafeRawBufferPointer, FrameOffload) -> Void) {
            if io.vnetHeader { VirtioNetHeader.deliver(batch.frame(index), l2: 14, batch: batch, emit: emit) }
            else { deliverPlain(batch, index: index, emit: emit) }
        }
        func transmit(_ segments: UnsafeBufferPointer<UnsafeRawBufferPointer>, length: Int, now: Nanoseconds) -> Int {
            io.transmit(segments, length: length, l2: 14)
        }
        func transmit(_ segments: UnsafeBufferPointer<UnsafeRawBufferPointer>, length: Int, offload: FrameOffload,
                      now: Nanoseconds) -> Int {
            io.transmit(segments, length: length, l2: 14, offload: offload)
        }
        var txStatistics: PortTxStatistics { io.tx }
        var framesPerFlush: Int { io.framesPerFlush }
        func flush() { io.flush() }
        func close() { io.closeAll() }
    }

    struct Side {
        let shared: SharedStack
        let engine: EngineThread
        let port: PairPort
        let transmitter: TransmitThread?

        func stop() {
            shared.withStack { _, _ in shared.deviceSleep = nil; shared.lock.wakeAll() }
            engine.stop()
            shared.withStack { _, _ in shared.transmitKick = nil }
            transmitter?.stop()
            port.close()
        }
    }

    /// One host. `realHost` sets it up as `LinuxHost` does: frames go on the port outside the
    /// lock (deferred transmit, with a transmit thread for what the engine sends) and blocked
    /// receives sleep on the device.
    static func side(_ name: String, fd: Int32, mac: MACAddress, address: IPv4Address, offload: Bool,
                     realHost: Bool = false, batchedWrites: Bool = false) throws -> Side {
        let port = PairPort(fd: fd, name: name, mac: mac, offload: offload, batchedWrites: batchedWrites)
        let stack = NetworkStack(name: name)
        var c = DeviceConfiguration(name: name, mac: mac)
        c.features = [.scatterGather, .gso, .tso, .txChecksum]
        let dev = stack.addDevice(c, port: port)
        stack.addAddress(address, prefixLength: 24, device: dev)
        let shared = SharedStack(stack: stack)
        var transmitter: TransmitThread? = nil
        if realHost {
            shared.deferTransmits(on: dev.nic)
            let t = try TransmitThread(shared: shared)
            try t.start()
            shared.withStack { _, _ in shared.transmitKick = { t.kick() } }
            transmitter = t
        }
        let engine = try EngineThread(shared: shared, port: port, device: dev, queue: 0)
        try engine.start()
        if realHost {
            let d = engine.deviceSleep
            shared.withStack { _, _ in shared.deviceSleep = d }
        }
        return Side(shared: shared, engine: engine, port: port, transmitter: transmitter)
    }

    /// Without offloads every frame is MTU-sized with full checksums; with them (a virtio-net
    /// header on every datagram) TCP hands 64 KiB segments to the "wire" and the far NIC takes
    /// them whole. As a real host, frames go on the wire outside the stack lock and the blocked
    /// receiver sleeps on the device; the bytes must not change either way.
    /// With batched writes, frames leave through io_uring, gathered at the doorbell (synchronous
    /// NIC) or by the transmitter (real host).
    @Test(arguments: [(false, false, false), (true, false, false), (false, true, false), (true, true, false),
                      (false, false, true), (true, false, true), (false, true, true), (true, true, true)])
    func twoStacksOnEngineThreadsTransferThroughBlockingSockets(offload: Bool, realHost: Bool, batchedWrites: Bool) throws {
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds) == 0)
        var size: Int32 = 4 << 20
        for fd in fds {
            setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, 4)
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, 4)
        }
        let a = try Self.side("a", fd: fds[0], mac: MACAddress(0x0200_0000_000A), address: IPv4Address(10, 0, 0, 1),
                              offload: offload, realHost: realHost, batchedWrites: batchedWrites)
        let b = try Self.side("b", fd: fds[1], mac: MACAddress(0x0200_0000_000B), address: IPv4Address(10, 0, 0, 2),
                              offload: offload, realHost: realHost, batchedWrites: batchedWrites)
        defer { a.stop(); b.stop() }
        let total = 8 << 20
        let pattern = (0..<total).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) }
        guard case let .success(l) = b.shared.socket(.stream) else { Issue.record("socket"); return }
        #expect(b.shared.bind(l, SocketAddress(.any, 5001)) == nil)
        #expect(b.shared.listen(l, backlog: 4) == nil)
        _ = b.shared.setFileOption(l, .receiveTimeout(20 * Time.second))
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var received: [UInt8] = []
        nonisolated(unsafe) var serverError: Errno? = nil
        let server = Thread {
            defer { done.signal() }
            guard case let .success((fd, _)) = b.shared.accept(l) else { serverError = .EAGAIN; return }
            _ = b.shared.setFileOption(fd, .receiveTimeout(20 * Time.second))
            var buf = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let r = buf.withUnsafeMutableBytes { b.shared.recv(fd, into: $0) }
                guard case let .success(n) = r else { if case let .failure(e) = r { serverError = e }; break }
                if n == 0 { break }
                received += buf[..<n]
            }
            _ = b.shared.close(fd)
        }
        server.start()
        guard case let .success(c) = a.shared.socket(.stream) else { Issue.record("socket"); return }
        _ = a.shared.setFileOption(c, .sendTimeout(20 * Time.second))
        #expect(a.shared.connect(c, SocketAddress(IPv4Address(10, 0, 0, 2), 5001)) == nil)
        let sent = pattern.withUnsafeBytes { a.shared.send(c, $0) }
        #expect((try? sent.get()) == total)
        #expect(a.shared.close(c) == nil)
        #expect(done.wait(timeout: .now() + 30) == .success)
        #expect(serverError == nil)
        #expect(received.count == total)
        #expect(received == pattern)
        // Both engine threads did the receiving; the wake hook and timers worked.
        #expect(a.engine.statistics.framesToNIC > 0 && b.engine.statistics.framesToNIC > 0)
        let cpu = b.shared.withStack { s, _ in s.contexts.cpuTime(.softirq) }
        #expect(cpu > 0)
        // With offloads the sender's frames were GSO frames, whole on the wire.
        #expect((a.port.txStatistics.gsoFrames > 0) == offload)
        #expect((b.engine.receiveBatch.gsoFrames > 0) == offload)
        // Blocked senders and receivers woke on their sockets' own wake-ups every time.
        #expect(a.shared.withStack { _, _ in a.shared.missedWakeups } == 0)
        #expect(b.shared.withStack { _, _ in b.shared.missedWakeups } == 0)
        let tx = a.port.txStatistics
        if batchedWrites && !BatchedWritesTests.ringMissing(a.port.io) {
            // The frames left through io_uring, which stayed on.
            #expect(tx.batching && tx.batches > 0 && tx.ringFailures == 0)
        } else {
            #expect(!tx.batching && tx.batches == 0)
        }
        if realHost {
            // Frames went out through the hand-over, completed (counted) by the NIC; the
            // blocked accept or recv slept on the device at least once.
            let nic = a.shared.withStack { s, _ in s.devices.first { $0.nic.deferredTransmit }?.nic }
            #expect(nic != nil)
            if let nic {
                let (frames, backlog) = a.shared.withStack { _, _ in (nic.txFrames, nic.hasTransmitBacklog) }
                #expect(frames > 0 && !backlog)
            }
            #expect(b.shared.withStack { _, _ in b.shared.deviceSleeps } > 0)
        }
    }
}
