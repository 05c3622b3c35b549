/// What holds a connection's sending up, timed for TCP_INFO's `tcpi_busy_time`,
/// `tcpi_rwnd_limited` and `tcpi_sndbuf_limited`. Linux: `enum tcp_chrono`; a higher value takes
/// precedence over a lower one.
enum TCPChrono: Int {
    case none = 0
    /// Data is queued (Linux: `TCP_CHRONO_BUSY`).
    case busy = 1
    /// The peer's window holds data back (`TCP_CHRONO_RWND_LIMITED`).
    case receiveWindowLimited = 2
    /// Everything is sent but the writer found the send buffer full (`TCP_CHRONO_SNDBUF_LIMITED`).
    case sendBufferLimited = 3
}

/// The chronograph's state on a socket (Linux: `chrono_type`, `chrono_start`, `chrono_stat[]`),
/// counted in jiffies of 1 ms (`tcp_jiffies32` at HZ 1000).
struct TCPChronoState {
    var type: TCPChrono = .none
    var start: UInt64 = 0
    var busy: UInt64 = 0, receiveWindowLimited: UInt64 = 0, sendBufferLimited: UInt64 = 0
}

extension NetworkStack {
    @inline(__always)
    var chronoJiffies: UInt64 { now / Time.millisecond }

    /// Closes the running interval and starts `new`. Linux: `tcp_chrono_set()`.
    func chronoSet(_ sock: TCPSocket, _ new: TCPChrono) {
        let j = chronoJiffies
        let elapsed = j &- sock.chrono.start
        switch sock.chrono.type {
        case .none: break
        case .busy: sock.chrono.busy &+= elapsed
        case .receiveWindowLimited: sock.chrono.receiveWindowLimited &+= elapsed
        case .sendBufferLimited: sock.chrono.sendBufferLimited &+= elapsed
        }
        sock.chrono.start = j
        sock.chrono.type = new
    }

    /// Starts timing `type` unless something of higher precedence runs. Linux: `tcp_chrono_start()`.
    @inline(__always)
    func chronoStart(_ sock: TCPSocket, _ type: TCPChrono) {
        if type.rawValue > sock.chrono.type.rawValue { chronoSet(sock, type) }
    }

    /// Stops timing `type`: with nothing queued the clock stops, else if `type` was running the
    /// connection is merely busy. Linux: `tcp_chrono_stop()`.
    func chronoStop(_ sock: TCPSocket, _ type: TCPChrono) {
        if sock.writeQueue.head == PacketSlab.none && sock.retransmitQueue.head == PacketSlab.none {
            chronoSet(sock, .none)
        } else if type == sock.chrono.type {
            chronoSet(sock, .busy)
        }
    }

    /// The three times so far, the running interval included (Linux: `tcp_get_info_chrono_stats()`).
    func chronoTimes(_ sock: TCPSocket) -> (busy: Nanoseconds, receiveWindowLimited: Nanoseconds, sendBufferLimited: Nanoseconds) {
        var c = sock.chrono
        let running = chronoJiffies &- c.start
        switch c.type {
        case .none: break
        case .busy: c.busy &+= running
        case .receiveWindowLimited: c.receiveWindowLimited &+= running
        case .sendBufferLimited: c.sendBufferLimited &+= running
        }
        let rwnd = c.receiveWindowLimited * Time.millisecond, sndbuf = c.sendBufferLimited * Time.millisecond
        return (c.busy * Time.millisecond + rwnd + sndbuf, rwnd, sndbuf)
    }
}
