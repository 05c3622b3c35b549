import Testing
@testable import SkiffPacketdrill

/// `put_cmsg` as Linux does it: a whole message when it fits, a cut one (MSG_CTRUNC) when not.
@Suite struct ControlMessageTests {
    func put(capacity: Int, buffer: Int = 64) -> (used: Int, truncated: Bool, bytes: [UInt8]) {
        var bytes = [UInt8](repeating: 0xEE, count: buffer)
        let r = bytes.withUnsafeMutableBytes {
            ControlMessages.putInt(level: 6, type: 36, value: 8000, into: $0.baseAddress, capacity: capacity)
        }
        return (r.used, r.truncated, bytes)
    }

    @Test func anInqMessageFills24Bytes() {
        let r = put(capacity: 64)
        #expect(r.used == 24 && !r.truncated)
        #expect(Array(r.bytes[0..<8]) == [20, 0, 0, 0, 0, 0, 0, 0])      // cmsg_len = CMSG_LEN(4)
        #expect(Array(r.bytes[8..<16]) == [6, 0, 0, 0, 36, 0, 0, 0])     // SOL_TCP, TCP_CM_INQ
        #expect(Array(r.bytes[16..<20]) == [0x40, 0x1F, 0, 0])           // 8000
        #expect(r.bytes[20] == 0xEE)                                     // padding left alone
    }

    @Test func noBufferOrLessThanAHeaderHoldsNothing() {
        let none = ControlMessages.putInt(level: 6, type: 36, value: 1, into: nil, capacity: 24)
        #expect(none.used == 0 && none.truncated)
        let short = put(capacity: 15)
        #expect(short.used == 0 && short.truncated)
        #expect(short.bytes.allSatisfy { $0 == 0xEE })
    }

    @Test func aShortBufferGetsWhatFitsAndCtrunc() {
        let r = put(capacity: 18)
        #expect(r.used == 18 && r.truncated)
        #expect(r.bytes[0] == 18)                  // cmsg_len says what was copied
        #expect(Array(r.bytes[16..<18]) == [0x40, 0x1F])
        #expect(r.bytes[18] == 0xEE)
        let exact = put(capacity: 20)
        #expect(exact.used == 20 && !exact.truncated)
    }
}
