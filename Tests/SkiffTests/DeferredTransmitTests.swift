import Foundation
import Testing
@testable import Skiff
import SkiffWire

/// A recording port whose frame count other threads may read while a transmitter writes.
final class LockedRecordingPort: NetworkPort, @unchecked Sendable {
    private let lock = NSLock()
    private var frames = 0
    var count: Int { lock.withLock { frames } }
    func transmit(_ segments: UnsafeBufferPointer<UnsafeRawBufferPointer>, length: Int, now: Nanoseconds) -> Int {
        lock.withLock { frames += 1 }
        return 0
    }
}

/// A port that runs `hook` once, at its first frame, in the thread putting frames on it.
final class HookedPort: NetworkPort, @unchecked Sendable {
    private let lock = NSLock()
    private var frames = 0
    private var pending: (() -> Void)?
    var count: Int { lock.withLock { frames } }
    func onFirstFrame(_ hook: @escaping () -> Void) { lock.withLock { pending = hook } }
    func transmit(_ segments: UnsafeBufferPointer<UnsafeRawBufferPointer>, length: Int, now: Nanoseconds) -> Int {
        let hook: (() -> Void)? = lock.withLock {
            frames += 1
            defer { pending = nil }
            return pending
        }
        hook?()
        return 0
    }
}

/// A port that gathers frames and writes them at `flush()`, as io_uring batching does: it keeps
/// only the segments' addresses at `transmit` and reads the bytes at the flush, noting how far
/// the NIC had counted its frames as transmitted at that moment.
final class GatheringPort: NetworkPort {
    let framesPerFlush: Int
    weak var nic: NICModel?
    private var gathered: [[UnsafeRawBufferPointer]] = []
    var frames: [[UInt8]] = []
    var flushSizes: [Int] = []
    /// Per flush: the NIC's transmitted count, in descriptors.
    var transmittedAtFlush: [UInt64] = []
    init(framesPerFlush: Int) { self.framesPerFlush = framesPerFlush }
    func transmit(_ segments: UnsafeBufferPointer<UnsafeRawBufferPointer>, length: Int, now: Nanoseconds) -> Int {
        gathered.append(Array(segments))
        return length
    }
    func flush() {
        guard !gathered.isEmpty else { return }
        for segs in gathered { frames.append(segs.flatMap { Array($0) }) }
        flushSizes.append(gathered.count)
        if let n = nic, n.deferredTransmit { transmittedAtFlush.append(n.deferredQueues[0].transmitted.load(ordering: .relaxed)) }
        gathered.removeAll()
    }
}

/// The NIC putting frames on its port outside the stack lock (`NICModel.deferredTransmit`, as on
/// real hosts): the doorbell hands descriptors over, a thread leaving the lock transmits them,
/// completion under the lock sets the done bits and NAPI cleans the ring.
@Suite("Deferred transmit: frames go on the port outside the stack lock")
struct DeferredTransmitTests {
    /// A stack with one device on a recording port, deferred transmit on.
    func makeStack() -> (NetworkStack, NetDevice, RecordingPort) {
        let stack = NetworkStack(name: "dt")
        let port = RecordingPort()
        var cfg = DeviceConfiguration(name: "eth0", mac: MACAddress(2, 0, 0, 0, 0, 1))
        cfg.features = [.scatterGather]
        let dev = stack.addDevice(cfg, port: port)
        dev.nic.deferredTransmit = true
        return (stack, dev, port)
    }

    /// A linear frame of `n` bytes whose first two bytes are `tag` and whose next four are `seq`.
    func frame(_ stack: NetworkStack, tag: UInt16, seq: UInt32, bytes n: Int = 100) -> PacketBuffer {
        var b = stack.pool.allocate(size: n)!
        let p = b.put(n)
        p.initializeMemory(as: UInt8.self, repeating: 0x5A, count: n)
        p.storeBytes(of: tag.bigEndian, as: UInt16.self)
        p.storeBytes(of: seq.bigEndian, toByteOffset: 2, as: UInt32.self)
        return b
    }

    func tagAndSeq(_ f: [UInt8]) -> (UInt16, UInt32) {
        (UInt16(f[0]) << 8 | UInt16(f[1]), UInt32(f[2]) << 24 | UInt32(f[3]) << 16 | UInt32(f[4]) << 8 | UInt32(f[5]))
    }

    @Test("doorbell → descriptors handed over (nothing on the port) → transmitter puts the frame out → completion cleans the ring")
    func doorbellHandsOverAndCompletionCleans() {
        let (stack, dev, port) = makeStack()
        let ring = dev.txQueues[0].ring
        let baseline = stack.pool.statistics.inUse
        var head = frame(stack, tag: 7, seq: 1, bytes: 42)
        do {   // the fragment's own reference ends with this scope; the head keeps its block
            var part = stack.pool.allocate(size: 300, headroom: 0)!
            part.put(300).initializeMemory(as: UInt8.self, repeating: 0xB0, count: 300)
            let added = head.addFragment(part)
            #expect(added)
        }
        var pending: PacketBuffer? = .some(head)
        stack.processContext(now: 1) { stack.devQueueXmit(pending.take()!, device: dev) }
        // The NIC took both descriptors at the doorbell, but nothing is on the wire yet and the
        // ring still owns the buffers.
        #expect(ring.hardwareHead == 2 && ring.tailRegister == 2)
        #expect(port.frames.isEmpty)
        #expect(stack.transmitPending && dev.nic.hasTransmitBacklog)
        stack.run(now: 2)
        #expect(port.frames.isEmpty && ring.nextToClean == 0)
        #expect(stack.pool.statistics.inUse > baseline)
        // The transmitter (any thread, no stack lock) puts it on the port, gathered from both.
        #expect(dev.nic.transmitDeferred())
        #expect(port.frames.count == 1 && port.segmentCounts == [2])
        #expect(port.frames[0].count == 342 && tagAndSeq(port.frames[0]) == (7, 1))
        #expect(port.frames[0][42...].allSatisfy { $0 == 0xB0 })
        #expect(!dev.nic.hasTransmitBacklog)
        #expect(ring.nextToClean == 0 && dev.nic.txFrames == 0)   // not completed yet
        // Completion under the lock: done bits, TX-completion interrupt, NAPI cleans the ring.
        stack.completeDeferredTransmits(now: 3)
        #expect(dev.nic.txFrames == 1)
        #expect(ring.nextToClean == 2)
        #expect(stack.pool.statistics.inUse == baseline)
        // Nothing left: another transmit or completion does nothing.
        #expect(!dev.nic.transmitDeferred())
        stack.completeDeferredTransmits(now: 4)
        #expect(dev.nic.txFrames == 1 && port.frames.count == 1)
    }

    @Test("a port that gathers 3 frames per flush: 7 frames handed over leave in flushes of 3, 3 and 1, whole and in order, and none counts as transmitted (so none completes and frees its memory) before its flush")
    func gatheringPortFlushesBeforeFramesComplete() {
        let stack = NetworkStack(name: "dt")
        let port = GatheringPort(framesPerFlush: 3)
        var cfg = DeviceConfiguration(name: "eth0", mac: MACAddress(2, 0, 0, 0, 0, 1))
        cfg.features = [.scatterGather]
        let dev = stack.addDevice(cfg, port: port)
        dev.nic.deferredTransmit = true
        port.nic = dev.nic
        let baseline = stack.pool.statistics.inUse
        stack.processContext(now: 1) {
            for i in 0..<7 {
                var b = frame(stack, tag: 3, seq: UInt32(i), bytes: 60)
                do {   // every other frame in two descriptors: the count is in descriptors
                    if i % 2 == 0 {
                        var part = stack.pool.allocate(size: 40, headroom: 0)!
                        part.put(40).initializeMemory(as: UInt8.self, repeating: UInt8(i), count: 40)
                        _ = b.addFragment(part)
                    }
                }
                var pending: PacketBuffer? = .some(b)
                stack.devQueueXmit(pending.take()!, device: dev)
            }
        }
        #expect(port.frames.isEmpty)
        #expect(dev.nic.transmitDeferred())
        #expect(port.flushSizes == [3, 3, 1])
        // Descriptors per frame 2,1,2,1,2,1,2: at each flush only the frames before it count.
        #expect(port.transmittedAtFlush == [0, 5, 9])
        #expect(port.frames.count == 7)
        for (i, f) in port.frames.enumerated() {
            #expect(tagAndSeq(f) == (3, UInt32(i)))
            #expect(f.count == (i % 2 == 0 ? 100 : 60))
            if i % 2 == 0 { #expect(f[60...].allSatisfy { $0 == UInt8(i) }) }
        }
        #expect(dev.nic.deferredQueues[0].transmitted.load(ordering: .relaxed) == 11)
        stack.completeDeferredTransmits(now: 2)
        #expect(dev.nic.txFrames == 7 && stack.pool.statistics.inUse == baseline)

        // A NIC that transmits at the doorbell flushes there: the frame is out before it returns.
        dev.nic.deferredTransmit = false
        var pending: PacketBuffer? = .some(frame(stack, tag: 4, seq: 9))
        stack.processContext(now: 3) { stack.devQueueXmit(pending.take()!, device: dev) }
        #expect(port.frames.count == 8 && port.flushSizes.last == 1 && tagAndSeq(port.frames[7]) == (4, 9))
    }

    @Test("transmit and completion with nothing handed over, or on a NIC that transmits at the doorbell, do nothing")
    func nothingHandedOverIsANoOp() {
        let (stack, dev, port) = makeStack()
        #expect(!dev.nic.transmitDeferred())
        stack.completeDeferredTransmits(now: 1)
        #expect(port.frames.isEmpty && dev.nic.txFrames == 0)
        dev.nic.deferredTransmit = false
        var pending: PacketBuffer? = .some(frame(stack, tag: 1, seq: 1))
        stack.processContext(now: 2) { stack.devQueueXmit(pending.take()!, device: dev) }
        // Synchronous NIC: the frame left at the doorbell; no hand-over, nothing to transmit.
        #expect(port.frames.count == 1 && !stack.transmitPending)
        #expect(!dev.nic.transmitDeferred())
    }

    @Test("four threads sending through a SharedStack: every frame reaches the port once, in each thread's order, and the ring ends clean")
    func concurrentSendersKeepOrderAndCleanTheRing() {
        let (stack, dev, port) = makeStack()
        let shared = SharedStack(stack: stack)
        shared.deferTransmits(on: dev.nic)
        let baseline = shared.withStack { s, _ in s.pool.statistics.inUse }
        let perThread = 300
        let device = Box(dev)
        let done = DispatchGroup()
        for t in 0..<4 {
            done.enter()
            Thread {
                for i in 0..<perThread {
                    shared.withStack { s, now in
                        var pending: PacketBuffer? = .some(frame(s, tag: UInt16(t), seq: UInt32(i)))
                        s.processContext(now: now) { s.devQueueXmit(pending.take()!, device: device.value) }
                    }
                }
                done.leave()
            }.start()
        }
        #expect(done.wait(timeout: .now() + 30) == .success)
        // Every call has left: nothing handed over may be left without the note that makes the
        // next caller take it (only the bounded rounds leave any).
        shared.withStack { s, _ in #expect(s.transmitPending || !dev.nic.hasTransmitBacklog) }
        _ = shared.transmitHandedOver()
        var last = [Int](repeating: -1, count: 4)
        var inOrder = true
        for f in port.frames {
            let (tag, seq) = tagAndSeq(f)
            if Int(seq) != last[Int(tag)] + 1 { inOrder = false }
            last[Int(tag)] = Int(seq)
        }
        #expect(port.frames.count == 4 * perThread)
        #expect(inOrder && last == [Int](repeating: perThread - 1, count: 4))
        shared.withStack { s, now in
            _ = s.run(now: now)
            #expect(!dev.nic.hasTransmitBacklog)
            #expect(dev.nic.txFrames == UInt64(4 * perThread))
            #expect(dev.txQueues[0].ring.nextToClean == dev.txQueues[0].ring.nextToUse)
            #expect(s.pool.statistics.inUse == baseline)
        }
    }

    @Test("an engine's frames wake the transmitter when no caller is inside; a caller sleeping inside takes them itself")
    func engineFramesGoToTheTransmitterOrToACaller() throws {
        // No caller inside: the engine's frame is left for the transmitter, which is kicked.
        let (shared, dev, port, kicks) = engineHandsOverAFrame(tag: 9)
        #expect(kicks.value == 1 && port.count == 0)
        #expect(shared.transmitHandedOver())
        #expect(port.count == 1)
        // A caller blocked in recvfrom (inside the stack): the engine does not kick; the caller,
        // woken by the change, puts the frame on the port on its way back to sleep.
        let fd = try shared.socket(.datagram).get()
        #expect(shared.bind(fd, SocketAddress(.any, 5000)) == nil)
        #expect(shared.setFileOption(fd, .receiveTimeout(3 * Time.second)) == nil)
        let returned = DispatchSemaphore(value: 0)
        Thread {
            var buf = [UInt8](repeating: 0, count: 8)
            _ = buf.withUnsafeMutableBytes { shared.receiveFrom(fd, into: $0) }
            returned.signal()
        }.start()
        for _ in 0..<500 where !sleeping(shared) { usleep(2_000) }
        #expect(sleeping(shared))
        shared.withStackLeavingTransmits { s, now in
            var pending: PacketBuffer? = .some(frame(s, tag: 9, seq: 1))
            s.processContext(now: now) { s.devQueueXmit(pending.take()!, device: dev) }
        }
        #expect(kicks.value == 1)
        for _ in 0..<1000 where port.count < 2 { usleep(2_000) }
        #expect(port.count == 2)
        #expect(returned.wait(timeout: .now() + 10) == .success)   // its timeout ends the recv
    }

    @Test("the transmitter leaves frames to a caller inside the stack, which puts them on the port as it leaves")
    func theTransmitterLeavesFramesToACallerInside() {
        // The engine hands a frame over with no caller inside: the transmitter is kicked.
        let (shared, _, port, kicks) = engineHandsOverAFrame(tag: 3)
        #expect(kicks.value == 1 && port.count == 0)
        // Before the transmitter runs, an application thread enters (and, say, sleeps: inside,
        // without the lock). The transmitter leaves the frame to it.
        shared.enterCall()
        shared.lock.unlock()
        #expect(!shared.transmitHandedOver())
        #expect(port.count == 0)
        // The caller leaves the stack and puts the frame on the port itself.
        shared.lock.lock()
        shared.leaveCall()
        #expect(port.count == 1)
        // With nobody inside, the transmitter's turn finds nothing left.
        #expect(!shared.transmitHandedOver())
        #expect(port.count == 1)
    }

    @Test("the transmitter stops between rounds when a caller has come in, and the caller puts the rest on the port")
    func theTransmitterYieldsToACallerBetweenRounds() {
        let stack = NetworkStack(name: "dt")
        let port = HookedPort()
        var cfg = DeviceConfiguration(name: "eth0", mac: MACAddress(2, 0, 0, 0, 0, 1))
        cfg.features = [.scatterGather]
        cfg.ringSize = 64
        let dev = stack.addDevice(cfg, port: port)
        let shared = SharedStack(stack: stack)
        shared.deferTransmits(on: dev.nic)
        shared.withStack { _, _ in shared.transmitKick = {} }
        // The engine sends 120 frames: the ring takes what it holds, the qdisc keeps the rest
        // for the completions to send, round after round.
        shared.withStackLeavingTransmits { s, now in
            s.processContext(now: now) {
                for i in 0..<120 { s.devQueueXmit(frame(s, tag: 1, seq: UInt32(i)), device: dev) }
            }
        }
        #expect(port.count == 0 && !dev.txQueues[0].qdisc.isEmpty)
        // While the transmitter writes its first frame, an application thread comes in (and,
        // say, sleeps: inside, without the lock). After that round the transmitter leaves it
        // the rest.
        port.onFirstFrame { shared.enterCall(); shared.lock.unlock() }
        #expect(shared.transmitHandedOver())
        let byTransmitter = port.count
        #expect(byTransmitter > 0 && byTransmitter < 120)
        // The caller leaves the stack and puts the rest on the port itself.
        shared.lock.lock()
        shared.leaveCall()
        #expect(port.count == 120)
        shared.withStack { _, _ in #expect(dev.txQueues[0].qdisc.isEmpty && !dev.nic.hasTransmitBacklog) }
    }

    /// A shared stack whose NIC transmits outside the lock and whose transmitter only counts its
    /// kicks; an engine's turn (no caller inside) has handed one frame over.
    func engineHandsOverAFrame(tag: UInt16) -> (SharedStack, NetDevice, LockedRecordingPort, Box<Int>) {
        let stack = NetworkStack(name: "dt")
        let port = LockedRecordingPort()
        var cfg = DeviceConfiguration(name: "eth0", mac: MACAddress(2, 0, 0, 0, 0, 1))
        cfg.features = [.scatterGather]
        let dev = stack.addDevice(cfg, port: port)
        let shared = SharedStack(stack: stack)
        shared.deferTransmits(on: dev.nic)
        let kicks = Box(0)
        shared.withStack { _, _ in shared.transmitKick = { kicks.value += 1 } }
        shared.withStackLeavingTransmits { s, now in
            var pending: PacketBuffer? = .some(frame(s, tag: tag, seq: 0))
            s.processContext(now: now) { s.devQueueXmit(pending.take()!, device: dev) }
        }
        return (shared, dev, port, kicks)
    }

    /// Whether a caller sleeps on the stack's condition variable now.
    func sleeping(_ shared: SharedStack) -> Bool { shared.lock.withLock { shared.lock.hasSleepers } }
}
