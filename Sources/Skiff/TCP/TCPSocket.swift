import SkiffWire

/// Scoreboard bits of a segment on the retransmit queue (Linux: `TCPCB_*`).
enum SegmentMark {
    static let sacked: UInt8 = 0x01
    static let retransmitted: UInt8 = 0x02
    static let lost: UInt8 = 0x04
    static let everRetransmitted: UInt8 = 0x10
}

/// Which event the retransmit timer stands for (Linux: `ICSK_TIME_RETRANS`, `ICSK_TIME_PROBE0`,
/// `ICSK_TIME_LOSS_PROBE`, `ICSK_TIME_REO_TIMEOUT`).
enum PendingTimer { case none, rto, probe0, lossProbe, reorder }

/// Per-connection TCP settings a user can change (socket options).
public struct TCPOptionsState: Sendable {
    /// TCP_NODELAY: Nagle off.
    public var noDelay = false
    /// TCP_CORK: hold partial segments until uncorked.
    public var cork = false
    /// TCP_MAXSEG: user MSS clamp (0 = none).
    public var userMSS = 0
    /// SO_KEEPALIVE and TCP_KEEPIDLE / KEEPINTVL / KEEPCNT (Linux defaults 7200 s, 75 s, 9).
    public var keepalive = false
    public var keepIdle: Nanoseconds = 7200 * Time.second
    public var keepInterval: Nanoseconds = 75 * Time.second
    public var keepCount = 9
    /// TCP_USER_TIMEOUT (0 = off).
    public var userTimeout: Nanoseconds = 0
    /// TCP_NOTSENT_LOWAT in bytes; 0 = unset, `tcp_notsent_lowat` applies (Linux: `tp->notsent_lowat`).
    public var notSentLowat = 0
    /// TCP_INQ: `recvmsg` reports the bytes left to read (Linux: `tp->recvmsg_inq`).
    public var receiveQueueHint = false
    /// SO_LINGER: (on, seconds).
    public var linger: (Bool, Int) = (false, 0)
    /// SO_REUSEADDR / SO_REUSEPORT.
    public var reuseAddress = false
    public var reusePort = false
    /// TCP_SYNCNT: SYN retransmissions before giving up (0 = `tcp_syn_retries`).
    public var synCount = 0
    /// IP_TOS: the TOS byte of every packet of the connection (Linux: `inet->tos`).
    public var typeOfService: UInt8 = 0
    public init() {}
}

/// One TCP connection or listener (Linux: `struct tcp_sock` with its `inet_connection_sock`).
///
/// Data the application writes waits in `writeQueue` (Linux: `sk_write_queue`); once sent, the
/// original buffer moves to `retransmitQueue` (Linux: `tcp_rtx_queue`) and stays there until
/// acknowledged; a clone goes down the stack each time it is transmitted. Received in-order
/// data waits in `receiveQueue` (Linux: `sk_receive_queue`), out-of-order data in
/// `outOfOrderQueue` (Linux: `out_of_order_queue`), which feeds the SACK blocks we send.
public final class TCPSocket {
    public let handle: Int32
    @exclusivity(unchecked) public internal(set) var state: TCPState = .closed
    @exclusivity(unchecked) public internal(set) var localAddress = IPv4Address.any
    @exclusivity(unchecked) public internal(set) var localPort: UInt16 = 0
    @exclusivity(unchecked) public internal(set) var remoteAddress = IPv4Address.any
    @exclusivity(unchecked) public internal(set) var remotePort: UInt16 = 0

    // Send sequence space (RFC 9293 §3.3.1).
    @exclusivity(unchecked) var iss: UInt32 = 0
    @exclusivity(unchecked) public internal(set) var sndUna: UInt32 = 0
    @exclusivity(unchecked) public internal(set) var sndNxt: UInt32 = 0
    /// Sequence number after the last byte the application wrote (Linux: `write_seq`).
    @exclusivity(unchecked) var writeSeq: UInt32 = 0
    /// `write_seq` when a buffer was last marked PSH (Linux: `pushed_seq`, `tcp_mark_push()`).
    @exclusivity(unchecked) var pushedSeq: UInt32 = 0
    /// Peer's receive window in bytes, already scaled (Linux: `snd_wnd`).
    @exclusivity(unchecked) public internal(set) var sndWnd: UInt32 = 0
    @exclusivity(unchecked) var sndWl1: UInt32 = 0
    @exclusivity(unchecked) var sndWl2: UInt32 = 0
    /// Largest window the peer ever offered (Linux: `max_window`).
    @exclusivity(unchecked) var maxWindow: UInt32 = 0
    /// End of the last small segment sent, for Minshall's Nagle (Linux: `snd_sml`).
    @exclusivity(unchecked) var sndSml: UInt32 = 0

    // Receive sequence space.
    @exclusivity(unchecked) var irs: UInt32 = 0
    @exclusivity(unchecked) public internal(set) var rcvNxt: UInt32 = 0
    /// Window we last advertised, in bytes (Linux: `rcv_wnd`), from `rcvWup`.
    @exclusivity(unchecked) var rcvWnd: UInt32 = 0
    /// `rcv_nxt` when the window was last advertised (Linux: `rcv_wup`).
    @exclusivity(unchecked) var rcvWup: UInt32 = 0
    /// Window slow-start threshold: how far the offered window may grow, from the initial
    /// window up by about two segments per data segment received (Linux: `rcv_ssthresh`,
    /// `tcp_grow_window`); 0 until the SYN or SYN-ACK sets it. Only the read-side window update
    /// consults it.
    @exclusivity(unchecked) var rcvSSThresh: UInt32 = 0
    /// Bytes the application has read (Linux: `copied_seq`).
    @exclusivity(unchecked) var copiedSeq: UInt32 = 0

    // Negotiated options.
    /// Our MSS on the wire (payload bytes per segment, options not subtracted) (Linux: `mss_cache` before options).
    @exclusivity(unchecked) public internal(set) var mss: Int = 536
    /// MSS we advertise (Linux: `advmss`).
    @exclusivity(unchecked) var advertisedMSS = 1460
    @exclusivity(unchecked) public internal(set) var sendWindowScale: UInt8 = 0
    @exclusivity(unchecked) public internal(set) var receiveWindowScale: UInt8 = 0
    @exclusivity(unchecked) public internal(set) var timestampsEnabled = false
    @exclusivity(unchecked) public internal(set) var sackEnabled = false
    @exclusivity(unchecked) var windowScalingEnabled = false
    /// Peer's most recent timestamp (Linux: `ts_recent`) and when it was stored.
    @exclusivity(unchecked) var tsRecent: UInt32 = 0
    @exclusivity(unchecked) var tsRecentStamp: Nanoseconds = 0

    // Queues (lists in the stack's TCP slab).
    var writeQueue = PacketList()
    var retransmitQueue = PacketList()
    var receiveQueue = PacketList()
    var outOfOrderQueue = PacketList()
    /// Offset already read into the head of `receiveQueue`.
    @exclusivity(unchecked) var receiveHeadOffset = 0

    // Congestion control and loss recovery.
    @exclusivity(unchecked) public internal(set) var congestion: CongestionControl = .init(.cubic)
    @exclusivity(unchecked) public internal(set) var window = CongestionWindow()
    @exclusivity(unchecked) public internal(set) var rtt = RTTEstimator()
    @exclusivity(unchecked) public internal(set) var caState: TCPCAState = .open
    @exclusivity(unchecked) var dupAcks = 0
    /// Whether the current window was limited by cwnd, the most segments it had out, and where
    /// it ends (Linux: `is_cwnd_limited`, `max_packets_out`, `cwnd_usage_seq`).
    @exclusivity(unchecked) var isCwndLimited = false
    @exclusivity(unchecked) var maxPacketsOut: UInt32 = 0
    @exclusivity(unchecked) var cwndUsageSeq: UInt32 = 0
    /// Recovery point (Linux: `high_seq`).
    @exclusivity(unchecked) var highSeq: UInt32 = 0
    @exclusivity(unchecked) var priorCwnd: UInt32 = 0
    @exclusivity(unchecked) var priorSSThresh: UInt32 = 0
    /// PRR state (RFC 6937): delivered and sent since recovery started.
    @exclusivity(unchecked) var prrDelivered: UInt32 = 0
    @exclusivity(unchecked) var prrOut: UInt32 = 0
    @exclusivity(unchecked) var recoverFS: UInt32 = 0
    /// Segments SACKed, marked lost, retransmitted and still out (Linux: `sacked_out`, `lost_out`, `retrans_out`).
    @exclusivity(unchecked) public internal(set) var sackedOut: UInt32 = 0
    @exclusivity(unchecked) public internal(set) var lostOut: UInt32 = 0
    @exclusivity(unchecked) public internal(set) var retransOut: UInt32 = 0
    /// Segments on the retransmit queue (Linux: `packets_out`).
    @exclusivity(unchecked) public internal(set) var packetsOut: UInt32 = 0
    /// Consecutive RTO expirations (Linux: `icsk_retransmits`) and the total retransmissions.
    @exclusivity(unchecked) public internal(set) var backoffCount = 0
    @exclusivity(unchecked) public internal(set) var totalRetransmits: UInt64 = 0
    @exclusivity(unchecked) public internal(set) var fastRetransmits: UInt64 = 0
    @exclusivity(unchecked) public internal(set) var timeouts: UInt64 = 0
    @exclusivity(unchecked) public internal(set) var tailLossProbes: UInt64 = 0
    /// The TS clock when the first SYN left (Linux: `retrans_stamp` in SYN-SENT).
    @exclusivity(unchecked) var synTimestamp: UInt32? = nil
    /// When the first unacknowledged segment was first sent without progress (for user timeout).
    @exclusivity(unchecked) var retransmitStamp: Nanoseconds = 0
    /// RACK (RFC 8985): the most recent delivered segment's send time and end sequence.
    @exclusivity(unchecked) var rackTime: Nanoseconds = 0
    @exclusivity(unchecked) var rackEndSeq: UInt32 = 0
    @exclusivity(unchecked) var rackRTT: Nanoseconds = 0
    /// RACK has a delivered segment to compare with (Linux: `rack.mstamp` set).
    @exclusivity(unchecked) var rackValid = false
    /// How long until RACK could call the next outstanding segment lost (0 = none), from the
    /// last loss detection (Linux: `tcp_rack_detect_loss()`'s `reo_timeout`).
    @exclusivity(unchecked) var rackReoTimeout: Nanoseconds = 0
    /// Reordering was observed: a hole filled by an original transmission (Linux: `reord_seen`).
    @exclusivity(unchecked) var reordSeen = false
    /// How far out of order segments have arrived, in segments: starts at `tcp_reordering` (3)
    /// and grows when a SACK or ACK shows more (Linux: `tp->reordering`).
    @exclusivity(unchecked) var reordering: UInt32 = 3
    /// Highest SACKed sequence (Linux: `tcp_highest_sack_seq`), meaningful above `snd_una`.
    @exclusivity(unchecked) var fackSeq: UInt32 = 0
    @exclusivity(unchecked) var lastSendTime: Nanoseconds = 0
    @exclusivity(unchecked) var lastReceiveTime: Nanoseconds = 0
    /// When data last arrived, or the connection was established (Linux: `icsk_ack.lrcvtime`).
    @exclusivity(unchecked) var lastDataReceiveTime: Nanoseconds = 0
    /// Sequence of a pending TLP probe (Linux: `tlp_high_seq`); 0 = none.
    @exclusivity(unchecked) var tlpHighSeq: UInt32 = 0
    /// D-SACK block to send with the next ACK (RFC 2883).
    @exclusivity(unchecked) var dsack: (UInt32, UInt32)? = nil
    /// When the last ACK answering an invalid segment (out of window, challenge) went out
    /// (Linux: `last_oow_ack_time`, limited by `tcp_invalid_ratelimit`).
    @exclusivity(unchecked) var lastOutOfWindowAck: Nanoseconds? = nil

    // Delayed ACK (Linux: `icsk_ack`).
    @exclusivity(unchecked) var ackPending = false
    @exclusivity(unchecked) var quickAcks = 16
    /// Interactive (ping-pong) mode: data was sent within an ATO of data or the handshake
    /// arriving, so ACKs wait to ride on the answer instead of going out quickly (Linux:
    /// `icsk_ack.pingpong`, `inet_csk_in_pingpong_mode`, threshold `tcp_pingpong_thresh` = 1).
    @exclusivity(unchecked) var pingpong = false
    /// The delayed-ACK engine has started (Linux: `icsk_ack.ato` non-zero); until then sending
    /// cannot turn ping-pong mode on. Linux starts it with the first data received or when
    /// quick-ACK mode is entered; Skiff so far only where a SYN-ACK's ACK is delayed for a
    /// waiting writer (Fast Open). DIFFERENCE: starting it on the first data too (as Linux)
    /// stalls `AsyncSocketTests.concurrentClientsAreServedTogether`; not yet understood.
    @exclusivity(unchecked) var ackTimeoutStarted = false
    @exclusivity(unchecked) var segmentsSinceAck = 0
    /// Largest segment received (Linux: `rcv_mss`).
    @exclusivity(unchecked) var rcvMSS = 536

    // Buffers.
    @exclusivity(unchecked) public var sendBufferSize = 262_144 * 2
    @exclusivity(unchecked) public var receiveBufferSize = 131_072 * 2
    @exclusivity(unchecked) var receiveQueueBytes = 0
    /// Receive auto-tuning state (Linux: `rcvq_space`): bytes read in the last measured RTT,
    /// from which sequence and when the measurement started.
    @exclusivity(unchecked) var rcvqSpace = 0
    @exclusivity(unchecked) var rcvqSpaceSeq: UInt32 = 0
    @exclusivity(unchecked) var rcvqSpaceTime: Nanoseconds = 0
    /// SO_RCVBUF was set by the user, which turns auto-tuning off (Linux: `SOCK_RCVBUF_LOCK`).
    @exclusivity(unchecked) var receiveBufferLocked = false
    @exclusivity(unchecked) public internal(set) var receiveBufferGrowths: UInt64 = 0
    @exclusivity(unchecked) var outOfOrderBytes = 0
    /// What the write and retransmit queues cost: per buffer `tcpBufferOverhead` plus its payload
    /// (Linux: `sk_wmem_queued`, the sum of the skbs' truesize; see `TCPSendBuffer.swift`).
    @exclusivity(unchecked) var queuedBytes = 0
    /// SO_SNDBUF was set by the user: the send buffer no longer grows (Linux: `SOCK_SNDBUF_LOCK`).
    @exclusivity(unchecked) var sendBufferLocked = false
    /// A writer found the send buffer full (or poll found the socket not writable), so the next
    /// ACK that frees space wakes writers (Linux: `SOCK_NOSPACE`).
    @exclusivity(unchecked) var noSpace = false
    /// Counts write-space wake-ups (Linux: `sk_stream_write_space()` waking the wait queue): a
    /// new value is an EPOLLOUT edge.
    @exclusivity(unchecked) var writeSpaceWakes: UInt64 = 0
    /// The last write found no buffer in the pool: a change of the pool may let it on.
    @exclusivity(unchecked) var waitingForBuffers = false
    /// Busy, receive-window-limited and send-buffer-limited times (Linux: `chrono_*`).
    @exclusivity(unchecked) var chrono = TCPChronoState()

    // Timers.
    /// What the retransmit timer is armed for (Linux: `icsk_pending`).
    @exclusivity(unchecked) var pendingTimer: PendingTimer = .none
    /// Keepalive probes sent without an answer (Linux: `icsk_probes_out`).
    @exclusivity(unchecked) var probesOut = 0
    var retransmitTimer: TimerID
    var delayedAckTimer: TimerID
    var keepaliveTimer: TimerID
    /// The pacing timer, made when pacing is first needed (Linux: `tp->pacing_timer`).
    var pacingTimer: TimerID?

    // Pacing and TSO sizing.
    /// Bytes per second the flow may send at (Linux: `sk_pacing_rate`), recomputed on every ACK
    /// from cwnd and SRTT; 0 until there is an RTT sample (unlimited).
    @exclusivity(unchecked) public internal(set) var pacingRate: UInt64 = 0
    /// SO_MAX_PACING_RATE (bytes per second; 0 = none). Setting it turns pacing on, as in Linux.
    @exclusivity(unchecked) public internal(set) var maxPacingRate: UInt64 = 0
    /// When the next packet may leave under pacing (Linux: `tcp_wstamp_ns`).
    @exclusivity(unchecked) var pacingNextTime: Nanoseconds = 0
    /// Transmissions held back by pacing (timer armed).
    @exclusivity(unchecked) public internal(set) var pacingDelays: UInt64 = 0

    // Socket.
    @exclusivity(unchecked) public var options = TCPOptionsState()
    /// Pending error (Linux: `sk_err`, SO_ERROR).
    @exclusivity(unchecked) public internal(set) var pendingError: Errno?
    /// The error queue (Linux: `sk_error_queue`), SO_TIMESTAMPING (`sk_tsflags`, `sk_tskey`) and
    /// MSG_ZEROCOPY (`SOCK_ZEROCOPY`, `sk_zckey`) state: `Socket/ErrorQueue.swift`,
    /// `Socket/Timestamping.swift`, `TCP/TCPZerocopy.swift`.
    @exclusivity(unchecked) var errorQueue = ErrorQueue()
    @exclusivity(unchecked) var timestamping = TimestampingState()
    @exclusivity(unchecked) var zerocopy = ZerocopyState()
    /// Tells this socket from a later one on the same handle, for packets that name their socket
    /// (Linux: the socket cookie, `sock_gen_cookie()`).
    @exclusivity(unchecked) var cookie: UInt32 = 0
    @exclusivity(unchecked) var shutdownRead = false
    @exclusivity(unchecked) var shutdownWrite = false
    /// Closed by the application (an orphan while it finishes).
    @exclusivity(unchecked) var orphaned = false
    @exclusivity(unchecked) var finSent = false
    /// The last write had MSG_MORE (more data follows at once): its GSO packets get no PSH.
    @exclusivity(unchecked) var writingMore = false
    @exclusivity(unchecked) var finReceived = false
    @exclusivity(unchecked) var bound = false
    var routeCache = RouteCache()

    // Listener.
    @exclusivity(unchecked) var backlog = 0
    var acceptQueue: [Int32] = []
    @exclusivity(unchecked) var synQueueLength = 0
    /// For a child: the listener it will be accepted from.
    @exclusivity(unchecked) var parent: Int32 = -1
    /// TCP Fast Open: listener queue and key, passive child, client cookie and SYN data
    /// (`FastOpen/FastOpenState.swift`).
    @exclusivity(unchecked) var fastOpen = FastOpenState()

    // Counters (as `ss -ti` shows).
    @exclusivity(unchecked) public internal(set) var bytesSent: UInt64 = 0
    @exclusivity(unchecked) public internal(set) var bytesAcked: UInt64 = 0
    @exclusivity(unchecked) public internal(set) var bytesReceived: UInt64 = 0
    @exclusivity(unchecked) public internal(set) var segmentsOut: UInt64 = 0
    @exclusivity(unchecked) public internal(set) var segmentsIn: UInt64 = 0
    /// Segments delivered: cumulatively acknowledged or SACKed, each once (Linux: `tp->delivered`).
    @exclusivity(unchecked) public internal(set) var delivered: UInt64 = 0

    /// What this socket's transmitted buffers hold below it, with its TCP Small Queues state
    /// (Linux: `sk_wmem_alloc`, `sk_tsq_flags`); made at the first transmission.
    @exclusivity(unchecked) var transmitCharge: UnsafeMutablePointer<TransmitCharge>?

    init(handle: Int32, timers: inout TimerQueue<StackTimer>) {
        self.handle = handle
        retransmitTimer = timers.makeTimer(.tcp(handle: handle, kind: .retransmit))
        delayedAckTimer = timers.makeTimer(.tcp(handle: handle, kind: .delayedAck))
        keepaliveTimer = timers.makeTimer(.tcp(handle: handle, kind: .keepalive))
    }

    deinit {
        if let c = transmitCharge { TransmitCharge.orphan(c) }
    }

    /// Segments in flight (Linux: `tcp_packets_in_flight`: out − (sacked + lost) + retrans).
    @inline(__always)
    var inFlight: UInt32 {
        let leftOut = sackedOut + lostOut
        return (packetsOut > leftOut ? packetsOut - leftOut : 0) + retransOut
    }

    /// Bytes written but not yet sent.
    var unsentBytes: Int { Int(writeSeq &- sndNxt) }

    /// How `tcp_write_xmit` treats a short segment when an ACK or a completion sends more: at
    /// once with TCP_NODELAY, held by TCP_CORK, else Nagle's test (Linux: `tp->nonagle`).
    var nagleMode: NetworkStack.NagleMode { options.noDelay ? .push : (options.cork ? .cork : .nagle) }
}
