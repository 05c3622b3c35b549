/// Receive without a bounce buffer, for a port whose wire is a `read()` (a TAP or TUN
/// descriptor): the kernel's copy into the posted receive buffer *is* the NIC's DMA, so the frame
/// is read straight into the buffers the driver posted instead of into a batch and then copied.
/// The port reads without the stack lock into the buffers between the NIC's head and the tail
/// register, which only the NIC owns; then, under the lock, `completeDirectReceive` writes the
/// descriptors back as the NIC's receive does. Linux: the device side of a virtio or igb receive.
extension NICModel {
    /// Up to `max` posted buffers the NIC would fill next on `queue`, in ring order (call under the
    /// stack lock; the buffers stay the NIC's until completed). Returns how many.
    public func postedReceiveBuffers(queue q: Int, max: Int, into out: UnsafeMutablePointer<UnsafeMutableRawBufferPointer>) -> Int {
        guard q >= 0, q < rxRings.count, maxFrameLength < Int.max else { return 0 }
        let ring = rxRings[q]
        var i = ring.hardwareHead
        var n = 0
        while n < max && i != ring.tailRegister {
            guard let p = iommu.translate(ring.descriptors[i].address, length: maxFrameLength) else { break }
            out[n] = UnsafeMutableRawBufferPointer(start: p, count: maxFrameLength)
            n += 1
            i = (i + 1) & ring.mask
        }
        return n
    }

    /// Writes back `count` buffers filled directly, in ring order from the NIC's head: frame
    /// lengths (a length outside 1...buffer size, or above 65 535, marks a frame the port could
    /// not use: its buffer is completed empty and counted as a length error) and offload
    /// information. Raises the interrupt once. Call under the stack lock.
    public func completeDirectReceive(queue q: Int, lengths: UnsafePointer<Int>, offloads: UnsafePointer<FrameOffload>,
                                      count: Int, now: Nanoseconds) {
        guard q >= 0, q < rxRings.count, count > 0 else { return }
        let ring = rxRings[q]
        var bytes = 0
        for k in 0..<count {
            let i = ring.hardwareHead
            guard i != ring.tailRegister else { break }
            let len = lengths[k]
            let valid = len > 0 && len <= maxFrameLength && len <= Int(UInt16.max)
            let o = offloads[k]
            ring.descriptors[i].length = valid ? UInt16(len) : 0
            ring.descriptors[i].endOfPacket = true
            ring.descriptors[i].segmentSize = valid ? o.segmentSize : 0
            ring.descriptors[i].checksumValid = valid && (o.checksumValid || o.needsChecksum)
            ring.descriptors[i].done = true
            ring.hardwareHead = (i + 1) & ring.mask
            if valid { rxFrames &+= 1; bytes += len } else { rxLengthErrors &+= 1 }
        }
        if bytes > 0 { stack.pool.recordCopy(.portIO, bytes: bytes) }
        assertInterrupt(vector: q, now: now)
    }
}
