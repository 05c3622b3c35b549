/// A socket option with its value, for `setsockopt` (Linux: `SOL_SOCKET` and `SOL_TCP` options).
public enum SocketOption: Sendable, Equatable {
    /// SO_SNDBUF: Linux doubles the value (for bookkeeping overhead) and clamps it.
    case sendBuffer(Int)
    /// SO_RCVBUF: doubled and clamped like SO_SNDBUF.
    case receiveBuffer(Int)
    case reuseAddress(Bool)
    case reusePort(Bool)
    case keepalive(Bool)
    /// SO_LINGER: on, seconds. On with 0 seconds makes `close` abort with a RST.
    case linger(on: Bool, seconds: Int)
    /// TCP_NODELAY: setting it pushes what is queued.
    case noDelay(Bool)
    /// TCP_CORK: clearing it pushes what is queued.
    case cork(Bool)
    /// TCP_MAXSEG: clamp the MSS (before connecting; 88...65495 as Linux).
    case maxSegment(Int)
    /// TCP_KEEPIDLE / TCP_KEEPINTVL in seconds (1...32767), TCP_KEEPCNT (1...127).
    case keepIdle(seconds: Int)
    case keepInterval(seconds: Int)
    case keepCount(Int)
    /// TCP_USER_TIMEOUT in milliseconds (0 = off).
    case userTimeout(milliseconds: Int)
    /// TCP_CONGESTION by name ("reno", "cubic").
    case congestion(String)
    /// TCP_NOTSENT_LOWAT in bytes.
    case notSentLowat(Int)
    /// TCP_INQ: 0 or 1 (anything else is EINVAL): `recvmsg` reports the bytes left to read in a
    /// TCP_CM_INQ control message (Linux: `tp->recvmsg_inq`).
    case receiveQueueHint(Int)
    /// TCP_SYNCNT: SYN retransmissions of a connect (1...127; Linux: `icsk_syn_retries`).
    case synCount(Int)
    /// SO_MAX_PACING_RATE in bytes per second (0 = no cap). As in Linux, setting it also turns
    /// TCP's own pacing on for the socket.
    case maxPacingRate(UInt64)
    /// IP_TOS: the TOS byte of the connection's packets; for TCP the ECN bits are kept
    /// (Linux: `inet->tos`, `do_ip_setsockopt` masks `INET_ECN_MASK` on stream sockets).
    case typeOfService(UInt8)
    /// SO_ZEROCOPY: MSG_ZEROCOPY sends report their completion on the error queue
    /// (Linux: `SOCK_ZEROCOPY`; `TCP/TCPZerocopy.swift`).
    case zerocopy(Bool)
    /// SO_TIMESTAMPING (`TimestampingFlag` bits; `newLayout` for SO_TIMESTAMPING_NEW). EINVAL
    /// as Linux's `sock_set_timestamping()` (unknown bits, OPT_ID before the connection exists …).
    case timestamping(flags: UInt32, newLayout: Bool = false)
    /// TCP_FASTOPEN: the listener's Fast Open queue length (Linux: `fastopen_queue_tune`).
    case fastOpen(Int)
    /// TCP_FASTOPEN_KEY: the listener's 16-byte cookie key (a backup key after it is ignored).
    case fastOpenKey([UInt8])
    /// TCP_FASTOPEN_CONNECT: connect() returns at once and the first write goes in the SYN.
    case fastOpenConnect(Int)
    /// TCP_FASTOPEN_NO_COOKIE: SYN data without a cookie (client sends, listener accepts).
    case fastOpenNoCookie(Int)
}

/// Which option `getsockopt` reads.
public enum SocketOptionName: Sendable, CaseIterable {
    case sendBuffer, receiveBuffer, reuseAddress, reusePort, keepalive, linger, error
    case noDelay, cork, maxSegment, keepIdle, keepInterval, keepCount, userTimeout, congestion, notSentLowat
    case maxPacingRate, synCount, typeOfService, zerocopy, timestamping
    case fastOpen, fastOpenKey, fastOpenConnect, fastOpenNoCookie
    case receiveQueueHint
}

/// A value `getsockopt` returns.
public enum SocketOptionValue: Sendable, Equatable {
    case int(Int)
    case bool(Bool)
    case linger(on: Bool, seconds: Int)
    case string(String)
    /// SO_ERROR: the pending error (0 = none), cleared by reading it.
    case error(Errno?)
    case bytes([UInt8])
}

/// A connection's state as Linux's `struct tcp_info` (TCP_INFO, `ss -ti`) reports it.
public struct TCPInfo: Sendable, Equatable {
    public var state: TCPState
    public var caState: TCPCAState
    public var retransmits: Int
    public var probes: Int
    public var backoff: Int
    public var timestamps: Bool, sack: Bool, windowScale: Bool
    public var sendWindowScale: UInt8, receiveWindowScale: UInt8
    public var rto: Nanoseconds
    public var sendMSS: Int, receiveMSS: Int, advertisedMSS: Int
    public var unacked: UInt32, sacked: UInt32, lost: UInt32, retrans: UInt32
    public var rtt: Nanoseconds?, rttVariance: Nanoseconds?, minRTT: Nanoseconds?
    public var sendSSThresh: UInt32, sendCwnd: UInt32
    public var sendWindow: UInt32, receiveWindow: UInt32
    public var totalRetrans: UInt64
    public var bytesSent: UInt64, bytesAcked: UInt64, bytesReceived: UInt64
    public var segmentsOut: UInt64, segmentsIn: UInt64
    public var notSentBytes: Int
    public var congestion: String
    /// Bytes per second (Linux: `tcpi_pacing_rate`, `tcpi_max_pacing_rate`); 0 = not yet known / no cap.
    public var pacingRate: UInt64 = 0, maxPacingRate: UInt64 = 0
    /// Time since data was last sent, data last received and an ACK last received
    /// (Linux: `tcpi_last_data_sent`, `tcpi_last_data_recv`, `tcpi_last_ack_recv`).
    public var sinceDataSent: Nanoseconds = 0, sinceDataReceived: Nanoseconds = 0, sinceAckReceived: Nanoseconds = 0
    /// The SYN's data was acknowledged (TCP Fast Open; Linux: `TCPI_OPT_SYN_DATA`).
    public var synData = false
    /// Segments delivered (Linux: `tcpi_delivered`).
    public var delivered: UInt64 = 0
    /// Time with data queued, and the parts of it the peer's window and the send buffer held
    /// sending back, to the millisecond (Linux: `tcpi_busy_time`, `tcpi_rwnd_limited`,
    /// `tcpi_sndbuf_limited`).
    public var busyTime: Nanoseconds = 0, receiveWindowLimited: Nanoseconds = 0, sendBufferLimited: Nanoseconds = 0
    /// Reordering degree in segments (Linux: `tcpi_reordering`).
    public var reordering: UInt32 = 3
}

extension NetworkStack {
    /// Linux: `setsockopt()` → `sock_setsockopt()` / `do_tcp_setsockopt()`.
    public func setOption(_ fd: Int32, _ option: SocketOption, now t: Nanoseconds = 0) -> Errno? {
        guard let s = tcpSocket(fd) else { return .EBADF }
        switch option {
        case let .sendBuffer(v):
            guard v >= 0 else { return .EINVAL }
            s.sendBufferSize = max(4608, min(v, tcpConfig.sendMemory.2) * 2)
            s.sendBufferLocked = true
            tcpWriteSpace(s)   // Linux: sk->sk_write_space()
        case let .receiveBuffer(v):
            guard v >= 0 else { return .EINVAL }
            s.receiveBufferSize = max(2304, min(v, tcpConfig.receiveMemory.2) * 2)
            s.receiveBufferLocked = true
        case let .reuseAddress(b): s.options.reuseAddress = b
        case let .reusePort(b): s.options.reusePort = b
        case let .keepalive(b):
            s.options.keepalive = b
            if b && s.state == .established { timers.arm(s.keepaliveTimer, at: max(now, t) &+ s.options.keepIdle) }
            if !b && s.state.isSynchronized && s.state != .timeWait && s.state != .finWait2 { timers.cancel(s.keepaliveTimer) }
        case let .linger(on, seconds):
            guard seconds >= 0 else { return .EINVAL }
            s.options.linger = (on, seconds)
        case let .noDelay(b):
            // Turning Nagle off pushes what is queued once, even past a cork or MSG_MORE
            // (Linux: __tcp_sock_set_nodelay() sets TCP_NAGLE_PUSH, tcp_push_pending_frames()).
            s.options.noDelay = b
            if b { processContext(now: max(now, t)) { tcpPush(s, force: true) } }
        case let .cork(b):
            // Uncorking pushes what is queued; a partial segment still waits for Nagle unless
            // TCP_NODELAY is on (Linux: __tcp_sock_set_cork()).
            s.options.cork = b
            if !b { processContext(now: max(now, t)) { tcpPush(s, force: s.options.noDelay) } }
        case let .maxSegment(v):
            guard (88...65495).contains(v) else { return .EINVAL }
            s.options.userMSS = v
        case let .keepIdle(sec):
            guard (1...32767).contains(sec) else { return .EINVAL }
            s.options.keepIdle = UInt64(sec) * Time.second
        case let .keepInterval(sec):
            guard (1...32767).contains(sec) else { return .EINVAL }
            s.options.keepInterval = UInt64(sec) * Time.second
        case let .keepCount(n):
            guard (1...127).contains(n) else { return .EINVAL }
            s.options.keepCount = n
        case let .userTimeout(ms):
            guard ms >= 0 else { return .EINVAL }
            s.options.userTimeout = UInt64(ms) * Time.millisecond
        case let .congestion(name):
            guard let algo = CongestionAlgorithmName(rawValue: name) else { return Errno(2) }   // ENOENT
            if s.congestion.name != algo { s.congestion = CongestionControl(algo) }
        case let .notSentLowat(v):
            // Linux stores any int as the u32 tp->notsent_lowat (0xffffffff: no limit), then
            // calls sk->sk_write_space().
            s.options.notSentLowat = Int(UInt32(truncatingIfNeeded: v))
            tcpWriteSpace(s)
        case let .receiveQueueHint(v):
            guard v == 0 || v == 1 else { return .EINVAL }
            s.options.receiveQueueHint = v == 1
        case let .synCount(n):
            guard (1...127).contains(n) else { return .EINVAL }
            s.options.synCount = n
        case let .typeOfService(v):
            s.options.typeOfService = v & ~0x03 | s.options.typeOfService & 0x03
        case let .maxPacingRate(v):
            s.maxPacingRate = v
            if v > 0 && (s.pacingRate == 0 || s.pacingRate > v) { s.pacingRate = v }
            updatePacingRate(s)
        case let .zerocopy(b):
            s.zerocopy.enabled = b
        case let .timestamping(flags, newLayout):
            return setTimestamping(s, flags: flags, newLayout: newLayout)
        case .fastOpen, .fastOpenKey, .fastOpenConnect, .fastOpenNoCookie:
            return setFastOpenOption(s, option)
        }
        return nil
    }

    /// Linux: `getsockopt()`.
    public func option(_ fd: Int32, _ name: SocketOptionName) -> Result<SocketOptionValue, Errno> {
        guard let s = tcpSocket(fd) else { return .failure(.EBADF) }
        switch name {
        case .sendBuffer: return .success(.int(s.sendBufferSize))
        case .receiveBuffer: return .success(.int(s.receiveBufferSize))
        case .reuseAddress: return .success(.bool(s.options.reuseAddress))
        case .reusePort: return .success(.bool(s.options.reusePort))
        case .keepalive: return .success(.bool(s.options.keepalive))
        case .linger: return .success(.linger(on: s.options.linger.0, seconds: s.options.linger.1))
        case .error:
            let e = s.pendingError
            s.pendingError = nil
            return .success(.error(e))
        case .noDelay: return .success(.bool(s.options.noDelay))
        case .cork: return .success(.bool(s.options.cork))
        case .maxSegment: return .success(.int(s.state.isSynchronized ? sendMSS(s) : (s.options.userMSS > 0 ? s.options.userMSS : 536)))
        case .keepIdle: return .success(.int(Int(s.options.keepIdle / Time.second)))
        case .keepInterval: return .success(.int(Int(s.options.keepInterval / Time.second)))
        case .keepCount: return .success(.int(s.options.keepCount))
        case .userTimeout: return .success(.int(Int(s.options.userTimeout / Time.millisecond)))
        case .congestion: return .success(.string(s.congestion.name.rawValue))
        case .notSentLowat: return .success(.int(s.options.notSentLowat))
        case .synCount: return .success(.int(s.options.synCount > 0 ? s.options.synCount : tcpConfig.synRetries))
        case .maxPacingRate: return .success(.int(Int(clamping: s.maxPacingRate)))
        case .typeOfService: return .success(.int(Int(s.options.typeOfService)))
        case .zerocopy: return .success(.bool(s.zerocopy.enabled))
        case .timestamping: return .success(.int(Int(s.timestamping.flags)))
        case .fastOpen, .fastOpenKey, .fastOpenConnect, .fastOpenNoCookie: return fastOpenOption(s, name)
        case .receiveQueueHint: return .success(.bool(s.options.receiveQueueHint))
        }
    }

    /// TCP_INFO (Linux: `tcp_get_info()`).
    public func tcpInfo(_ fd: Int32) -> Result<TCPInfo, Errno> {
        guard let s = tcpSocket(fd) else { return .failure(.EBADF) }
        let chrono = chronoTimes(s)
        return .success(TCPInfo(
            state: s.state, caState: s.caState, retransmits: s.backoffCount, probes: s.probesOut, backoff: s.backoffCount,
            timestamps: s.timestampsEnabled, sack: s.sackEnabled, windowScale: s.windowScalingEnabled,
            sendWindowScale: s.sendWindowScale, receiveWindowScale: s.receiveWindowScale,
            rto: currentRTO(s), sendMSS: sendMSS(s), receiveMSS: s.rcvMSS, advertisedMSS: s.advertisedMSS,
            unacked: s.packetsOut, sacked: s.sackedOut, lost: s.lostOut, retrans: s.retransOut,
            rtt: s.rtt.srtt, rttVariance: s.rtt.srtt == nil ? nil : s.rtt.rttvar, minRTT: s.rtt.minRTT,
            sendSSThresh: s.window.ssthresh, sendCwnd: s.window.cwnd,
            sendWindow: s.sndWnd, receiveWindow: s.rcvWnd,
            totalRetrans: s.totalRetransmits, bytesSent: s.bytesSent, bytesAcked: s.bytesAcked,
            bytesReceived: s.bytesReceived, segmentsOut: s.segmentsOut, segmentsIn: s.segmentsIn,
            notSentBytes: Int(s.writeSeq &- s.sndNxt), congestion: s.congestion.name.rawValue,
            pacingRate: s.pacingRate, maxPacingRate: s.maxPacingRate,
            sinceDataSent: now &- s.lastSendTime, sinceDataReceived: now &- s.lastDataReceiveTime,
            sinceAckReceived: now &- s.lastReceiveTime, synData: s.fastOpen.synDataAcked, delivered: s.delivered,
            busyTime: chrono.busy, receiveWindowLimited: chrono.receiveWindowLimited,
            sendBufferLimited: chrono.sendBufferLimited, reordering: s.reordering))
    }
}
