import Testing
@testable import Skiff
import SkiffWire

/// A port that keeps every frame it is given, as the wire would see it.
final class RecordingPort: NetworkPort {
    var frames: [[UInt8]] = []
    var segmentCounts: [Int] = []
    func transmit(_ segments: UnsafeBufferPointer<UnsafeRawBufferPointer>, length: Int, now: Nanoseconds) -> Int {
        var f: [UInt8] = []
        for s in segments { f.append(contentsOf: s) }
        frames.append(f)
        segmentCounts.append(segments.count)
        return 0
    }
}

@Suite struct ScatterGatherTests {
    /// A frame built from a linear header and two fragments leaves the NIC whole: three
    /// descriptors, three DMA mappings, one frame on the wire; completion unmaps all three
    /// and frees every block.
    @Test func headerPlusFragmentsGoOutAsOneFrame() {
        let stack = NetworkStack(name: "sg")
        let port = RecordingPort()
        var cfg = DeviceConfiguration(name: "eth0", mac: MACAddress(2, 0, 0, 0, 0, 1))
        cfg.features = [.scatterGather]
        let dev = stack.addDevice(cfg, port: port)
        let baseline = stack.pool.statistics.inUse
        let ring = dev.txQueues[0].ring

        var head = stack.pool.allocate(size: 64)!
        let h = head.put(42)
        for i in 0..<42 { (h + i).storeBytes(of: UInt8(i), as: UInt8.self) }
        for (k, n) in [(0xA0, 100), (0xB0, 300)] {
            var part = stack.pool.allocate(size: n, headroom: 0)!
            let p = part.put(n)
            p.initializeMemory(as: UInt8.self, repeating: UInt8(k), count: n)
            let added = head.addFragment(part)
            #expect(added)
        }
        let (len, nfrag) = (head.length, head.fragmentCount)
        #expect(len == 442 && nfrag == 2)
        var pending: PacketBuffer? = .some(head)
        stack.processContext(now: 1) {
            #expect(ring.nextToUse == 0)
            stack.devQueueXmit(pending.take()!, device: dev)
            // One descriptor for the header, one per fragment.
            #expect(ring.nextToUse == 3)
            // Posted RX buffers (size - 1) plus the three TX mappings.
            #expect(dev.nic.iommu.activeMappings == dev.rxQueues[0].ring.size - 1 + 3)
        }
        stack.run(now: 2)
        #expect(port.frames.count == 1)
        #expect(port.segmentCounts == [3])
        let f = port.frames[0]
        #expect(f.count == 442)
        #expect(Array(f[0..<42]) == (0..<42).map { UInt8($0) })
        #expect(f[42..<142].allSatisfy { $0 == 0xA0 } && f[142...].allSatisfy { $0 == 0xB0 })
        // Completion in NET_RX: the three TX mappings are gone, the header block and both
        // fragment blocks are back in the pool.
        #expect(ring.nextToClean == 3)
        #expect(stack.softirq.count(.netRX) == 1)
        #expect(stack.pool.statistics.inUse == baseline)
        stack.shutdownDevices()
        #expect(dev.nic.iommu.activeMappings == 0)
        #expect(stack.pool.statistics.inUse == 0)
    }

    /// A device without scatter-gather gets the frame made linear first (copy counted).
    @Test func withoutScatterGatherTheFrameIsLinearised() {
        let stack = NetworkStack(name: "nosg")
        let port = RecordingPort()
        var cfg = DeviceConfiguration(name: "eth0", mac: MACAddress(2, 0, 0, 0, 0, 1))
        cfg.features = []
        let dev = stack.addDevice(cfg, port: port)
        var head = stack.pool.allocate(size: 64)!
        head.put(42)
        var part = stack.pool.allocate(size: 200, headroom: 0)!
        part.put(200)
        let added = head.addFragment(part)
        #expect(added)
        _ = consume part
        var pending: PacketBuffer? = .some(head)
        stack.processContext(now: 1) { stack.devQueueXmit(pending.take()!, device: dev) }
        stack.run(now: 2)
        #expect(port.segmentCounts == [1])
        #expect(port.frames.first?.count == 242)
        #expect(stack.pool.ledger.bytes(.linearize) == 242)
    }
}
