import SkiffWire

/// Bits of `net.ipv4.tcp_fastopen` (Linux: `TFO_*` in `include/net/tcp.h`).
public enum FastOpenFlags {
    /// Clients may send data in the SYN (Linux: `TFO_CLIENT_ENABLE`).
    public static let clientEnable = 0x1
    /// Listeners with a Fast Open queue accept data in the SYN (Linux: `TFO_SERVER_ENABLE`).
    public static let serverEnable = 0x2
    /// Clients send SYN data without a cookie (Linux: `TFO_CLIENT_NO_COOKIE`).
    public static let clientNoCookie = 0x4
    /// Listeners accept SYN data without a cookie (Linux: `TFO_SERVER_COOKIE_NOT_REQD`).
    public static let serverCookieNotRequired = 0x200
    /// Every listener gets a Fast Open queue of its backlog's length without `TCP_FASTOPEN`
    /// (Linux: `TFO_SERVER_WO_SOCKOPT1`).
    public static let serverWithoutSocketOption = 0x400
}

/// A socket's TCP Fast Open state (RFC 7413). Listener: the Fast Open queue and its own key.
/// Passive child: made from a SYN with a valid cookie, accepted while still in SYN-RECV.
/// Client: `TCP_FASTOPEN_CONNECT`, the cookie sent and whether the SYN's data was acknowledged.
struct FastOpenState {
    // Listener (Linux: `icsk_accept_queue.fastopenq`).
    /// Most children in SYN-RECV at once (Linux: `max_qlen`; 0: Fast Open off on this listener).
    var maxQueue = 0
    /// Children still in SYN-RECV (Linux: `qlen`).
    var queueLength = 0
    /// `TCP_FASTOPEN_KEY` (Linux: `fastopenq.ctx`); nil: the stack's key.
    var key: SipHashKey?
    /// `TCP_FASTOPEN_NO_COOKIE` (Linux: `fastopen_no_cookie`).
    var noCookie = false
    /// `TCP_FASTOPEN_CONNECT` (Linux: `fastopen_connect`).
    var connect = false

    // Passive child.
    /// In SYN-RECV and counted in its listener's queue (Linux: `tp->fastopen_rsk != NULL`).
    var passiveChild = false
    /// The listener whose queue counts this child.
    weak var listener: TCPSocket?
    /// The cookie option the SYN-ACK carries, sent once (Linux: `send_synack`'s `foc`).
    var synAckCookie: TCPFastOpenOption?

    // Client (Linux: `tp->fastopen_req`, `syn_fastopen`, `syn_data`, `DEFER_CONNECT`).
    /// The Fast Open option the next SYN carries (a cookie or a cookie request); taken by the
    /// first SYN, so retransmitted SYNs carry none.
    var synOption: TCPFastOpenOption?
    /// The SYN carried a Fast Open option, of kind 254 (Linux: `syn_fastopen`, `syn_fastopen_exp`).
    var synFastOpen = false
    var synFastOpenExperimental = false
    /// The SYN carried data (Linux: `syn_data`).
    var synData = false
    /// TCP_FASTOPEN_CONNECT found a cookie: connect() returned at once and the SYN waits for the
    /// first write (Linux: `DEFER_CONNECT`).
    var deferred = false
    /// A blocking writer waits for the handshake with more to send: the SYN-ACK's ACK is
    /// delayed so that the data carries it (Linux: `sk_write_pending` in `inet_wait_for_connect`).
    var writePending = false

    /// The SYN's data was acknowledged: the peer's SYN-ACK covered it (client), or it was taken
    /// with a valid cookie (server) (Linux: `syn_data_acked`, TCP_INFO's `TCPI_OPT_SYN_DATA`).
    var synDataAcked = false
}

extension NetworkStack {
    /// The key that makes and checks cookies for `l` (Linux: `tcp_fastopen_get_ctx`).
    func fastOpenKey(_ l: TCPSocket) -> SipHashKey {
        l.fastOpen.key ?? tcpConfig.fastOpenKey ?? fastOpenDefaultKey
    }

    /// Gives a listener a Fast Open queue of `length` (Linux: `fastopen_queue_tune`).
    func fastOpenQueueTune(_ l: TCPSocket, _ length: Int) {
        l.fastOpen.maxQueue = min(max(length, 0), 4096)
    }

    /// A passive child leaves SYN-RECV (handshake done, reset or closed): its listener's queue
    /// has room again. Linux: `reqsk_fastopen_remove()`.
    func fastOpenChildDone(_ c: TCPSocket) {
        guard c.fastOpen.passiveChild else { return }
        c.fastOpen.passiveChild = false
        if let l = c.fastOpen.listener { l.fastOpen.queueLength = max(0, l.fastOpen.queueLength - 1) }
        c.fastOpen.listener = nil
    }
}
