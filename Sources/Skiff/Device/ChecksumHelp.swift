import SkiffWire

extension NetworkStack {
    /// Finishes a transport checksum the stack left to the device, for a device that cannot: the
    /// field already holds the pseudo-header sum, so the sum over the transport header and
    /// payload (linear part and fragments) completes it. Linux: `skb_checksum_help()`.
    /// Returns false (and the caller drops the packet) when the headers are not all there.
    func checksumHelp(_ buffer: inout PacketBuffer, device dev: NetDevice) -> Bool {
        let l2 = dev.headerLength
        let linear = buffer.linearLength
        guard linear >= l2 + 20 else { return false }
        let p = buffer.data
        let ihl = Int(p.load(fromByteOffset: l2, as: UInt8.self) & 0x0F) * 4
        let proto = p.load(fromByteOffset: l2 + 9, as: UInt8.self)
        let start = l2 + ihl
        let field = proto == IPProtocol.tcp ? 16 : 6
        guard linear >= start + field + 2 else { return false }
        var c = InternetChecksum.fold(buffer.checksumSum(from: start, initial: 0))
        if proto == IPProtocol.udp && c == 0 { c = 0xFFFF }
        (p + start).storeBytes(of: c.bigEndian, toByteOffset: field, as: UInt16.self)
        buffer.meta.checksumPartial = false
        return true
    }
}
