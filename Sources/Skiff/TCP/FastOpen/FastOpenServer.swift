import SkiffWire

/// What a listener does with a SYN's Fast Open option and data.
struct FastOpenDecision {
    /// Make the child now, acknowledge the SYN's data and put the child on the accept queue.
    var createChild = false
    /// The cookie option the SYN-ACK carries (a fresh cookie for a request or a bad cookie).
    var reply: TCPFastOpenOption?
}

extension NetworkStack {
    /// Whether the listener may take one more Fast Open child (Linux: `tcp_fastopen_queue_check`).
    func fastOpenQueueCheck(_ l: TCPSocket) -> Bool {
        l.fastOpen.maxQueue > 0 && l.fastOpen.queueLength < l.fastOpen.maxQueue
    }

    /// Decides, for a SYN reaching listener `l`, between a Fast Open child (a valid cookie, or
    /// none needed) and an ordinary handshake, and which cookie the SYN-ACK carries: a cookie
    /// request or a wrong cookie gets the right one, a valid cookie gets none.
    /// Linux: `tcp_try_fastopen()`, `tcp_fastopen_cookie_gen_check()`.
    func fastOpenTry(_ l: TCPSocket, _ seg: TCPSegmentInfo) -> FastOpenDecision {
        let option = seg.options.fastOpen
        let synData = seg.payloadLength > 0 || seg.has.fin
        if option?.cookie.count == 0 { tcpCounters.fastOpenCookieRequests &+= 1 }
        guard tcpConfig.fastOpen & FastOpenFlags.serverEnable != 0, synData || option != nil else { return FastOpenDecision() }
        guard fastOpenQueueCheck(l) else {
            if l.fastOpen.maxQueue > 0 { tcpCounters.fastOpenListenOverflow &+= 1 }
            return FastOpenDecision()
        }
        if tcpConfig.fastOpen & FastOpenFlags.serverCookieNotRequired != 0 || l.fastOpen.noCookie {
            tcpCounters.fastOpenPassive &+= 1
            return FastOpenDecision(createChild: true)
        }
        guard let option else { return FastOpenDecision() }
        let valid = FastOpenCookie.generate(key: fastOpenKey(l), source: seg.source, destination: seg.destination)
        let reply = TCPFastOpenOption(cookie: valid, experimental: option.experimental)
        if option.cookie.count == 0 { return FastOpenDecision(reply: reply) }
        if option.cookie == valid {
            tcpCounters.fastOpenPassive &+= 1
            return FastOpenDecision(createChild: true)
        }
        tcpCounters.fastOpenPassiveFail &+= 1
        return FastOpenDecision(reply: reply)
    }

    /// Turns a new child into a Fast Open child before its SYN-ACK leaves: the SYN's data is
    /// acknowledged, the child counts in the listener's Fast Open queue and will be on the
    /// accept queue in SYN-RECV. Linux: `tcp_fastopen_create_child()`.
    func fastOpenMakeChild(_ l: TCPSocket, _ c: TCPSocket, _ seg: TCPSegmentInfo) {
        c.fastOpen.passiveChild = true
        c.fastOpen.listener = l
        l.fastOpen.queueLength += 1
        if seg.payloadLength > 0 {
            c.rcvNxt = seg.seq &+ 1 &+ UInt32(seg.payloadLength)
            c.rcvWup = c.rcvNxt
            c.fastOpen.synDataAcked = true
            c.bytesReceived &+= UInt64(seg.payloadLength)
            c.lastDataReceiveTime = now
        }
    }

    /// Queues the SYN's payload for the application to read after `accept`.
    /// Linux: `tcp_fastopen_add_skb()`.
    func fastOpenAddSynData(_ c: TCPSocket, _ buffer: consuming PacketBuffer) {
        let b = buffer
        guard b.length > 0, !tcpSlab.isFull else { return }
        c.receiveQueueBytes += b.length
        tcpSlab.pushBack(b, onto: &c.receiveQueue)
    }
}
