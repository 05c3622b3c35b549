/// EtherType values (IEEE 802.3, IANA registry).
public enum EtherType {
    public static let ipv4: UInt16 = 0x0800
    public static let arp: UInt16 = 0x0806
    /// IEEE 802.1Q customer VLAN tag (TPID).
    public static let vlan: UInt16 = 0x8100
    public static let ipv6: UInt16 = 0x86DD
}

/// An IEEE 802.1Q tag control field.
public struct VLANTag: Equatable, Hashable, Sendable {
    /// Priority code point, 0...7. Emit keeps only the low 3 bits.
    public var pcp: UInt8
    /// Drop eligible indicator.
    public var dei: Bool
    /// VLAN identifier, 0...4095. Emit keeps only the low 12 bits.
    public var vid: UInt16

    public init(pcp: UInt8 = 0, dei: Bool = false, vid: UInt16) {
        self.pcp = pcp
        self.dei = dei
        self.vid = vid
    }

    /// The 16-bit TCI as it sits on the wire after the 0x8100 TPID.
    public var tci: UInt16 {
        UInt16(pcp & 7) << 13 | (dei ? 0x1000 : 0) | (vid & 0x0FFF)
    }

    public init(tci: UInt16) {
        pcp = UInt8(tci >> 13)
        dei = tci & 0x1000 != 0
        vid = tci & 0x0FFF
    }
}

/// An Ethernet II header, optionally with one 802.1Q tag.
///
/// No preamble, no FCS: SkiffWire sees frames as a TAP/AF_PACKET socket
/// does. Stacked tags (QinQ, 0x88A8) are not decoded: an outer 0x88A8 is
/// reported as the `etherType`.
public struct EthernetHeader: Equatable, Sendable {
    public var destination: MACAddress
    public var source: MACAddress
    /// Present when the frame carried TPID 0x8100.
    public var vlan: VLANTag?
    /// The EtherType of the payload (the inner one when tagged).
    public var etherType: UInt16

    /// Untagged header length.
    public static let length = 14
    /// Tagged header length.
    public static let taggedLength = 18

    public init(destination: MACAddress, source: MACAddress, vlan: VLANTag? = nil, etherType: UInt16) {
        self.destination = destination
        self.source = source
        self.vlan = vlan
        self.etherType = etherType
    }

    /// 14, or 18 with a VLAN tag: the offset of the payload.
    public var length: Int { vlan == nil ? Self.length : Self.taggedLength }

    /// Parses the header at the start of `b`.
    ///
    /// Throws `.truncated` when `b` is shorter than 14 bytes, or shorter than
    /// 18 bytes when the TPID says 802.1Q. Values below 0x0600 (802.3
    /// length fields) are returned as they are; callers dispatch on
    /// `etherType` and ignore what they do not know.
    public static func parse(_ b: UnsafeRawBufferPointer) throws(WireError) -> EthernetHeader {
        guard b.count >= length, let p = b.baseAddress else { throw .truncated }
        let dst = MACAddress.read(from: p)
        let src = MACAddress.read(from: p + 6)
        let type = b.u16(12)
        if type == EtherType.vlan {
            guard b.count >= taggedLength else { throw .truncated }
            return EthernetHeader(destination: dst, source: src, vlan: VLANTag(tci: b.u16(14)), etherType: b.u16(16))
        }
        return EthernetHeader(destination: dst, source: src, vlan: nil, etherType: type)
    }

    /// Writes `length` bytes at the start of `buffer`.
    ///
    /// HAZARD: traps if `buffer.count < length`; sizing the buffer is the
    /// caller's job (this is not untrusted input).
    public func emit(into buffer: UnsafeMutableRawBufferPointer) {
        precondition(buffer.count >= length, "EthernetHeader.emit: buffer too small")
        let p = buffer.baseAddress!
        destination.write(to: p)
        source.write(to: p + 6)
        if let vlan {
            buffer.put16(EtherType.vlan, at: 12)
            buffer.put16(vlan.tci, at: 14)
            buffer.put16(etherType, at: 16)
        } else {
            buffer.put16(etherType, at: 12)
        }
    }
}

/// A checked, non-owning view of an Ethernet frame in untrusted bytes.
///
/// `init(checking:)` validates what ``EthernetHeader/parse(_:)`` does.
/// HAZARD: the view borrows `bytes`; it must not outlive them.
public struct EthernetView {
    public let bytes: UnsafeRawBufferPointer
    /// 14, or 18 when tagged.
    public let headerLength: Int

    public init(checking bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard bytes.count >= EthernetHeader.length else { throw .truncated }
        if bytes.u16(12) == EtherType.vlan {
            guard bytes.count >= EthernetHeader.taggedLength else { throw .truncated }
            headerLength = EthernetHeader.taggedLength
        } else {
            headerLength = EthernetHeader.length
        }
        self.bytes = bytes
    }

    public var destination: MACAddress { MACAddress.read(from: bytes.baseAddress!) }
    public var source: MACAddress { MACAddress.read(from: bytes.baseAddress! + 6) }
    public var vlan: VLANTag? {
        headerLength == EthernetHeader.taggedLength ? VLANTag(tci: bytes.u16(14)) : nil
    }
    /// The payload's EtherType (inner one when tagged).
    public var etherType: UInt16 { bytes.u16(headerLength - 2) }
    /// Everything after the header, including any padding to 60 bytes.
    public var payload: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[headerLength...])
    }
    public var header: EthernetHeader {
        EthernetHeader(destination: destination, source: source, vlan: vlan, etherType: etherType)
    }
}
