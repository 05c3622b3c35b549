import Skiff

/// `struct tcp_info` as Linux lays it out (`include/uapi/linux/tcp.h`), filled from Skiff's
/// `TCPInfo`; fields Skiff does not track are zero. 280 bytes, the size of Linux 6.18's (with
/// the AccECN counters), which packetdrill's code events require.
enum LinuxTCPInfo {
    static let size = 280

    /// Linux's `TCP_*` state numbers (`include/net/tcp_states.h`).
    static func number(_ s: TCPState) -> UInt8 {
        switch s {
        case .established: 1
        case .synSent: 2
        case .synReceived: 3
        case .finWait1: 4
        case .finWait2: 5
        case .timeWait: 6
        case .closed: 7
        case .closeWait: 8
        case .lastAck: 9
        case .listen: 10
        case .closing: 11
        }
    }

    /// Linux's `TCP_CA_*` numbers.
    static func number(_ s: TCPCAState) -> UInt8 {
        switch s {
        case .open: 0
        case .disorder: 1
        case .cwr: 2
        case .recovery: 3
        case .loss: 4
        }
    }

    static func encode(_ i: TCPInfo) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: size)
        func u32(_ offset: Int, _ v: UInt64) {
            let x = UInt32(truncatingIfNeeded: min(v, UInt64(UInt32.max)))
            for k in 0..<4 { b[offset + k] = UInt8(truncatingIfNeeded: x >> (8 * UInt32(k))) }
        }
        func u64(_ offset: Int, _ v: UInt64) {
            for k in 0..<8 { b[offset + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
        }
        let us = { (t: Nanoseconds?) -> UInt64 in (t ?? 0) / 1000 }
        b[0] = number(i.state)
        b[1] = number(i.caState)
        b[2] = UInt8(clamping: i.retransmits)
        b[3] = UInt8(clamping: i.probes)
        b[4] = UInt8(clamping: i.backoff)
        b[5] = (i.timestamps ? 1 : 0) | (i.sack ? 2 : 0) | (i.windowScale ? 4 : 0) | (i.synData ? 32 : 0)
        b[6] = (i.sendWindowScale & 0xF) | (i.receiveWindowScale & 0xF) << 4
        u32(8, us(i.rto))
        u32(16, UInt64(i.sendMSS)); u32(20, UInt64(i.receiveMSS))
        u32(24, UInt64(i.unacked)); u32(28, UInt64(i.sacked)); u32(32, UInt64(i.lost)); u32(36, UInt64(i.retrans))
        let ms = { (t: Nanoseconds) -> UInt64 in t / Time.millisecond }
        u32(44, ms(i.sinceDataSent)); u32(52, ms(i.sinceDataReceived)); u32(56, ms(i.sinceAckReceived))
        u32(60, 1500)                                             // pmtu
        u32(68, us(i.rtt)); u32(72, us(i.rttVariance))
        u32(76, UInt64(i.sendSSThresh)); u32(80, UInt64(i.sendCwnd)); u32(84, UInt64(i.advertisedMSS))
        u32(88, UInt64(i.reordering))
        u32(100, i.totalRetrans)
        u64(120, i.bytesAcked); u64(128, i.bytesReceived)
        u32(136, i.segmentsOut); u32(140, i.segmentsIn); u32(144, UInt64(i.notSentBytes)); u32(148, us(i.minRTT))
        u32(192, i.delivered)                                     // tcpi_delivered
        u64(168, us(i.busyTime)); u64(176, us(i.receiveWindowLimited)); u64(184, us(i.sendBufferLimited))
        u64(200, i.bytesSent)
        u32(228, UInt64(i.sendWindow)); u32(232, UInt64(i.receiveWindow))
        return b
    }
}
