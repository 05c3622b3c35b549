import SkiffWire

extension NetworkStack {
    /// Finishes a transport checksum the stack left to the device, for a device that cannot: the
    /// field already holds the pseudo-header sum, so the sum over the transport header and
    /// payload (linear part and fragments) completes it. Linux: `skb_checksum_help()`.
    /// Returns false (and the caller drops the packet) when the headers are not all there.
    func checksumHelp(_ buffer: inout PacketBuffer, device dev: NetDevice) -> Bool {
        guard let t = TransportLayout(buffer.bytes, linkHeader: dev.headerLength),
              buffer.linearLength >= t.start + t.checksumOffset + 2 else { return false }
        var c = InternetChecksum.fold(buffer.checksumSum(from: t.start, initial: 0))
        if t.ipProtocol == IPProtocol.udp && c == 0 { c = 0xFFFF }
        (buffer.data + t.start).storeBytes(of: c.bigEndian, toByteOffset: t.checksumOffset, as: UInt16.self)
        buffer.meta.checksumPartial = false
        return true
    }
}
