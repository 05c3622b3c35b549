/// ARP operation codes (RFC 826).
public enum ARPOperation: UInt16, Sendable {
    case request = 1
    case reply = 2
}

/// An ARP packet for IPv4 over Ethernet (RFC 826): hardware type 1,
/// protocol 0x0800, address lengths 6 and 4, 28 bytes.
///
/// Other hardware or protocol types are refused, not skipped: a stack on
/// Ethernet has no use for them.
public struct ARPPacket: Equatable, Sendable {
    public var operation: ARPOperation
    public var senderMAC: MACAddress
    public var senderIP: IPv4Address
    public var targetMAC: MACAddress
    public var targetIP: IPv4Address

    public static let length = 28

    public init(operation: ARPOperation, senderMAC: MACAddress, senderIP: IPv4Address,
                targetMAC: MACAddress, targetIP: IPv4Address) {
        self.operation = operation
        self.senderMAC = senderMAC
        self.senderIP = senderIP
        self.targetMAC = targetMAC
        self.targetIP = targetIP
    }

    /// A gratuitous ARP announcement as Linux sends it (`arping -U`,
    /// RFC 5227 §3): a request whose sender and target IP are both `ip`,
    /// target MAC zero. Send it to ``MACAddress/broadcast``.
    public static func gratuitous(mac: MACAddress, ip: IPv4Address) -> ARPPacket {
        ARPPacket(operation: .request, senderMAC: mac, senderIP: ip, targetMAC: .zero, targetIP: ip)
    }

    /// Parses the first 28 bytes of `b` (Ethernet padding after them is
    /// ignored).
    ///
    /// Throws, in this order: `.truncated` (< 28 bytes),
    /// `.badHardwareType` (≠ 1), `.badProtocolType` (≠ 0x0800),
    /// `.badAddressLength` (≠ 6/4), `.badOperation` (not 1 or 2).
    public static func parse(_ b: UnsafeRawBufferPointer) throws(WireError) -> ARPPacket {
        let v = try ARPView(checking: b)
        return ARPPacket(operation: v.operation, senderMAC: v.senderMAC, senderIP: v.senderIP,
                         targetMAC: v.targetMAC, targetIP: v.targetIP)
    }

    /// Writes 28 bytes at the start of `buffer`.
    ///
    /// HAZARD: traps if `buffer.count < 28`.
    public func emit(into buffer: UnsafeMutableRawBufferPointer) {
        precondition(buffer.count >= Self.length, "ARPPacket.emit: buffer too small")
        let p = buffer.baseAddress!
        buffer.put16(1, at: 0)
        buffer.put16(EtherType.ipv4, at: 2)
        buffer.put8(6, at: 4)
        buffer.put8(4, at: 5)
        buffer.put16(operation.rawValue, at: 6)
        senderMAC.write(to: p + 8)
        senderIP.write(to: p + 14)
        targetMAC.write(to: p + 18)
        targetIP.write(to: p + 24)
    }
}

/// A checked, non-owning view of an ARP packet in untrusted bytes.
///
/// `init(checking:)` validates everything ``ARPPacket/parse(_:)`` does;
/// afterwards every accessor is in bounds. HAZARD: the view borrows
/// `bytes`; it must not outlive them.
public struct ARPView {
    public let bytes: UnsafeRawBufferPointer
    public let operation: ARPOperation

    public init(checking bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard bytes.count >= ARPPacket.length else { throw .truncated }
        guard bytes.u16(0) == 1 else { throw .badHardwareType }
        guard bytes.u16(2) == EtherType.ipv4 else { throw .badProtocolType }
        guard bytes.u8(4) == 6, bytes.u8(5) == 4 else { throw .badAddressLength }
        guard let op = ARPOperation(rawValue: bytes.u16(6)) else { throw .badOperation }
        self.bytes = bytes
        operation = op
    }

    public var senderMAC: MACAddress { MACAddress.read(from: bytes.baseAddress! + 8) }
    public var senderIP: IPv4Address { IPv4Address(bytes.u32(14)) }
    public var targetMAC: MACAddress { MACAddress.read(from: bytes.baseAddress! + 18) }
    public var targetIP: IPv4Address { IPv4Address(bytes.u32(24)) }
}
