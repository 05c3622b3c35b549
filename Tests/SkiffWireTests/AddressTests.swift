import SkiffWire
import Testing

@Suite("Addresses and sequence numbers")
struct AddressTests {
    @Test func ipv4Text() {
        #expect(IPv4Address("10.99.0.1") == IPv4Address(10, 99, 0, 1))
        #expect(IPv4Address("255.255.255.255") == .broadcast)
        #expect(IPv4Address("0.0.0.0") == .any)
        #expect(IPv4Address(10, 99, 0, 1).value == 0x0A63_0001)
        #expect(IPv4Address(0xC000_0201).description == "192.0.2.1")
        for bad in ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1..2.3", "01.2.3.4", "1.2.3.4 ", "a.b.c.d", "1.2.3.", ".1.2.3", "1.2.3.1000"] {
            #expect(IPv4Address(bad) == nil, "\(bad)")
        }
    }

    @Test func ipv4Classes() {
        #expect(IPv4Address(224, 0, 0, 251).isMulticast && !IPv4Address(223, 255, 255, 255).isMulticast)
        #expect(IPv4Address(239, 255, 255, 255).isMulticast && !IPv4Address(240, 0, 0, 0).isMulticast)
        #expect(IPv4Address.broadcast.isBroadcast && !IPv4Address(10, 99, 0, 255).isBroadcast)
        #expect(IPv4Address(127, 0, 0, 1).isLoopback && !IPv4Address(128, 0, 0, 1).isLoopback)
        #expect(IPv4Address.any.isUnspecified)
        #expect(IPv4Address(10, 0, 0, 1) < IPv4Address(10, 0, 1, 0))
        #expect(IPv4Address(10, 99, 0, 1).isInSameSubnet(as: IPv4Address(10, 99, 0, 200), prefixLength: 24))
        #expect(!IPv4Address(10, 99, 0, 1).isInSameSubnet(as: IPv4Address(10, 99, 1, 1), prefixLength: 24))
        #expect(IPv4Address(1, 2, 3, 4).isInSameSubnet(as: IPv4Address(9, 9, 9, 9), prefixLength: 0))
    }

    @Test func macText() {
        let m = MACAddress("02:00:00:99:00:01")
        #expect(m == MACAddress(0x02, 0, 0, 0x99, 0, 0x01))
        #expect(m?.value == 0x0200_0099_0001)
        #expect(MACAddress("FF-ff-FF-ff-FF-ff") == .broadcast)
        #expect(MACAddress(0x0200_0099_0001).description == "02:00:00:99:00:01")
        #expect(MACAddress(0xFFFF_0000_0000_0001) == MACAddress(1))  // top bits dropped
        for bad in ["", "02:00:00:99:00", "02:00:00:99:00:01:02", "02:00:00:99:00:1g", "020:0:0:0:0:0", "02:00-00:99:00:01", "02::00:99:00:01"] {
            #expect(MACAddress(bad) == nil, "\(bad)")
        }
    }

    @Test func macBits() {
        #expect(MACAddress.broadcast.isBroadcast && MACAddress.broadcast.isMulticast)
        #expect(MACAddress(0x01, 0x00, 0x5E, 0, 0, 0xFB).isMulticast)
        #expect(!MACAddress(0x02, 0, 0, 0, 0, 1).isMulticast)
        #expect(MACAddress(0x02, 0, 0, 0, 0, 1).isLocallyAdministered)
        var bytes = [UInt8](repeating: 0, count: 6)
        let m = MACAddress(0xDE, 0xAD, 0xBE, 0xEF, 0x00, 0x42)
        bytes.withUnsafeMutableBytes { m.write(to: $0.baseAddress!) }
        #expect(bytes == [0xDE, 0xAD, 0xBE, 0xEF, 0x00, 0x42])
        #expect(bytes.withUnsafeBytes { MACAddress.read(from: $0.baseAddress!) } == m)
    }

    @Test func sequenceNumbersWrap() {
        let a = SequenceNumber(0xFFFF_FFF0)
        let b = a + 0x20  // wraps to 0x10
        #expect(b.rawValue == 0x10)
        #expect(a < b && a <= b && !(b < a) && b > a)
        #expect(b - a == 0x20 && a - b == -0x20)
        #expect(a.distance(to: b) == 0x20)
        #expect(b - UInt32(0x20) == a)
        #expect(a.advanced(by: -1).rawValue == 0xFFFF_FFEF)
        #expect(SequenceNumber.max(a, b) == b && SequenceNumber.min(a, b) == a)
        var c = a
        c += 16
        #expect(c.rawValue == 0)
        // Just under half the space ahead is still "after".
        #expect(SequenceNumber(0) < SequenceNumber(0x7FFF_FFFF))
        #expect(SequenceNumber(0x7FFF_FFFF + 2) < SequenceNumber(0))
        // RFC 9293 window test across the wrap.
        #expect(SequenceNumber(5).isInWindow(start: SequenceNumber(0xFFFF_FFFE), size: 10))
        #expect(!SequenceNumber(8).isInWindow(start: SequenceNumber(0xFFFF_FFFE), size: 10))
        #expect(!SequenceNumber(0xFFFF_FFFD).isInWindow(start: SequenceNumber(0xFFFF_FFFE), size: 10))
    }
}
