import SkiffWire

/// What a socket handle refers to.
enum SocketEntry {
    case free
    case tcp(TCPSocket)
    case udp(UDPSocket)
    /// An epoll instance (Linux: an `eventpoll` file in the same descriptor table).
    case epoll(EpollInstance)
}

/// A TCP connection's identity: local and remote address and port (Linux: the `ehash` key).
struct ConnectionKey: Hashable {
    var localAddress: UInt32, remoteAddress: UInt32
    var localPort: UInt16, remotePort: UInt16
}

/// Socket types (Linux: `SOCK_STREAM`, `SOCK_DGRAM`).
public enum SocketType: Sendable { case stream, datagram }

extension NetworkStack {
    /// Looks up a TCP socket by handle.
    @inline(__always)
    func tcpSocket(_ fd: Int32) -> TCPSocket? {
        guard fd >= 0, Int(fd) < sockets.count, case let .tcp(s) = sockets[Int(fd)] else { return nil }
        return s
    }

    func allocateHandle() -> Int32 {
        lastHandleGeneration &+= 1
        if let h = freeHandles.popLast() {
            fileStates[Int(h)] = FileState()
            handleGenerations[Int(h)] = lastHandleGeneration
            return h
        }
        sockets.append(.free)
        fileStates.append(FileState())
        handleGenerations.append(lastHandleGeneration)
        return Int32(sockets.count - 1)
    }

    func newTCPSocket() -> TCPSocket {
        let h = allocateHandle()
        let s = TCPSocket(handle: h, timers: &timers)
        s.congestion = CongestionControl(tcpConfig.congestionControl)
        s.sendBufferSize = tcpConfig.sendMemory.1   // Linux: tcp_init_sock() takes tcp_wmem[1]
        s.receiveBufferSize = tcpConfig.receiveMemory.1 * 2
        lastSocketCookie &+= 1
        s.cookie = lastSocketCookie
        sockets[Int(h)] = .tcp(s)
        return s
    }

    func connectionKey(_ s: TCPSocket) -> ConnectionKey {
        ConnectionKey(localAddress: s.localAddress.value, remoteAddress: s.remoteAddress.value,
                      localPort: s.localPort, remotePort: s.remotePort)
    }

    /// Frees a socket: its queues, timers, hash entries and handle (Linux: `inet_csk_destroy_sock`).
    func destroyTCPSocket(_ s: TCPSocket) {
        fastOpenChildDone(s)
        for list in [\TCPSocket.writeQueue, \TCPSocket.retransmitQueue, \TCPSocket.receiveQueue, \TCPSocket.outOfOrderQueue] {
            _ = tcpSlab.removeAll(&s[keyPath: list])
        }
        purgeErrorQueue(s)
        s.zerocopy.removeAll()
        timers.destroyTimer(s.retransmitTimer)
        timers.destroyTimer(s.delayedAckTimer)
        timers.destroyTimer(s.keepaliveTimer)
        let key = connectionKey(s)
        if tcpConnections[key] == s.handle { tcpConnections[key] = nil }
        if s.state == .listen && tcpListeners[s.localPort] == s.handle { tcpListeners[s.localPort] = nil }
        if s.bound, let n = tcpBoundPorts[s.localPort] { tcpBoundPorts[s.localPort] = n > 1 ? n - 1 : nil }
        if s.orphaned { orphanCount -= 1 }
        s.state = .closed
        sockets[Int(s.handle)] = .free
        freeHandles.append(s.handle)
    }

    func releaseAllSockets() {
        for entry in sockets {
            switch entry {
            case let .tcp(s): destroyTCPSocket(s)
            case let .udp(s): destroyUDPSocket(s)
            case .epoll, .free: break
            }
        }
    }

    /// Number of open socket handles.
    public var openSocketCount: Int { sockets.count - freeHandles.count }
}
