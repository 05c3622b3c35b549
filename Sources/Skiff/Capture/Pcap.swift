#if canImport(Glibc)
import Glibc
#endif

/// Writes packets to a classic pcap file (microsecond timestamps), as `tcpdump -w` does.
/// Link type 1 (Ethernet) or 101 (raw IP, for TUN-like devices).
public final class PcapWriter {
    private var file: UnsafeMutablePointer<FILE>?
    public let path: String
    public let linkType: UInt32
    public private(set) var packets: UInt64 = 0
    /// Longest frame recorded whole (Linux tcpdump's default snaplen).
    public let snapLength: Int = 262_144

    /// Opens (truncates) `path`. Throws `PcapError.open(errno)` when the file cannot be created.
    public init(path: String, linkType: UInt32 = 1) throws(PcapError) {
        self.path = path
        self.linkType = linkType
        guard let f = fopen(path, "wb") else { throw .open(path: path, errno: errno) }
        file = f
        var header: [UInt32] = [0xA1B2_C3D4, 0x0004_0002, 0, 0, UInt32(snapLength), linkType]
        // Version 2.4: major 2 and minor 4 as two UInt16 in host order.
        header[1] = UInt32(2) | UInt32(4) << 16
        header.withUnsafeBytes { _ = fwrite($0.baseAddress, 1, $0.count, f) }
    }

    deinit { close() }

    /// Appends one packet: linear part and fragments.
    public func write(_ buffer: borrowing PacketBuffer, time: Nanoseconds) {
        guard let f = file else { return }
        let length = buffer.length
        let captured = min(length, snapLength)
        var record: (UInt32, UInt32, UInt32, UInt32) = (
            UInt32(truncatingIfNeeded: time / 1_000_000_000), UInt32(truncatingIfNeeded: (time % 1_000_000_000) / 1000),
            UInt32(captured), UInt32(length))
        withUnsafeBytes(of: &record) { _ = fwrite($0.baseAddress, 1, 16, f) }
        var left = captured
        let lin = buffer.bytes
        let n = min(left, lin.count)
        if n > 0 { _ = fwrite(lin.baseAddress, 1, n, f) }
        left -= n
        var i = 0
        while left > 0 && i < buffer.fragmentCount {
            let fr = buffer.fragment(i)
            let k = min(left, fr.count)
            _ = fwrite(fr.baseAddress, 1, k, f)
            left -= k
            i += 1
        }
        packets &+= 1
    }

    /// Flushes and closes the file.
    public func close() {
        if let f = file { fclose(f); file = nil }
    }

    public func flush() { if let f = file { fflush(f) } }
}

public enum PcapError: Error, Equatable, CustomStringConvertible {
    case open(path: String, errno: Int32)
    public var description: String {
        switch self {
        case let .open(path, e): "cannot open \(path) for writing: \(String(cString: strerror(e)))"
        }
    }
}

/// Which way a tapped packet was going.
public enum TapDirection: Sendable { case transmit, receive }

/// A packet tap on one device or all (Linux: a `ptype_all` handler, as AF_PACKET installs;
/// transmit taps run in `dev_queue_xmit_nit()`). Capture copies are outside the data path and
/// not counted in the ledger.
public final class PacketTap {
    public let writer: PcapWriter
    /// Device index to capture on, or nil for all.
    public let device: Int?
    public private(set) var captured: UInt64 = 0

    public init(writer: PcapWriter, device: Int? = nil) {
        self.writer = writer
        self.device = device
    }

    func capture(_ buffer: borrowing PacketBuffer, device dev: NetDevice, direction: TapDirection, now: Nanoseconds) {
        if let d = device, d != dev.index { return }
        captured &+= 1
        writer.write(buffer, time: now)
    }
}
