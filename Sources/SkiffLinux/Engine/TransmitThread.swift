#if canImport(Glibc)
import Glibc
#endif
import CSkiffLinux
import Skiff
import Synchronization

/// The NIC's transmitter as a thread: it puts on the port the frames that doorbells rung by the
/// engine threads handed over (`NICModel.deferredTransmit`), so that an engine reading ACKs never
/// spends its time in the system calls that write frames, each of which runs the kernel's receive
/// path. Application threads still put their own frames on the port when they leave the stack
/// lock and no one else is (lowest latency for a reply); whoever holds the transmit lock takes
/// everything handed over. While an application thread is inside a call, the transmitter leaves
/// the frames to it (`SharedStack.transmitHandedOver`). Linux: the hardware's DMA engine behind
/// the doorbell, and on the host side the completion interrupt it raises (completion runs in
/// this thread, under the lock).
public final class TransmitThread: @unchecked Sendable {
    let shared: SharedStack
    private let event: Int32
    private var thread = pthread_t()
    private var started = false
    private let stopFlag = Atomic<Bool>(false)
    /// Set by `kick` until the thread has looked: later kicks then skip the eventfd write.
    private let kicked = Atomic<Bool>(false)
    /// Wake-ups, and the ones that found frames to put on the port.
    private let wakeCount = Atomic<UInt64>(0)
    private let busyCount = Atomic<UInt64>(0)

    public init(shared: SharedStack) throws(PortError) {
        self.shared = shared
        event = skiff_eventfd()
        guard event >= 0 else { throw .system(operation: "eventfd", device: "transmitter", errno: errno) }
    }

    deinit { Glibc.close(event) }

    /// Frames were handed over and left for the transmitter (any thread, lock not needed).
    @inline(__always)
    public func kick() {
        guard !kicked.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var one: UInt64 = 1
        _ = write(event, &one, 8)
    }

    /// (wake-ups, wake-ups that transmitted), for `stat`.
    public var counters: (wakeups: UInt64, transmitted: UInt64) {
        (wakeCount.load(ordering: .relaxed), busyCount.load(ordering: .relaxed))
    }

    public func start() throws(PortError) {
        thread = try startNamedThread("skiff-tx") { [self] in loop() }.get()
        started = true
    }

    /// Stops the thread after it has put on the port what was handed over.
    public func stop() {
        guard started else { return }
        started = false
        stopFlag.store(true, ordering: .releasing)
        var one: UInt64 = 1
        _ = write(event, &one, 8)
        pthread_join(thread, nil)
    }

    private func loop() {
        var scratch: UInt64 = 0
        while true {
            var p = pollfd(fd: event, events: Int16(POLLIN), revents: 0)
            _ = poll(&p, 1, -1)
            _ = read(event, &scratch, 8)
            kicked.store(false, ordering: .sequentiallyConsistent)
            atomicMemoryFence(ordering: .sequentiallyConsistent)
            wakeCount.wrappingAdd(1, ordering: .relaxed)
            if shared.transmitHandedOver() { busyCount.wrappingAdd(1, ordering: .relaxed) }
            if stopFlag.load(ordering: .acquiring) {
                _ = shared.transmitHandedOver(leavingToCallers: false)
                return
            }
        }
    }
}
