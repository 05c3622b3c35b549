extension NetworkStack {
    /// Handles of every TCP socket, listeners and orphans included, for `ss`-like listings.
    /// Linux: walking `tcp_hashinfo` as `inet_diag` does for `ss -tin`. Not on the packet path.
    public var tcpSocketHandles: [Int32] {
        var out: [Int32] = []
        for (i, entry) in sockets.enumerated() {
            if case .tcp = entry { out.append(Int32(i)) }
        }
        return out
    }
}
