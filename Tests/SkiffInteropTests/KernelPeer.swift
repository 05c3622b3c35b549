/// Small Python programs the kernel side of a test runs inside the namespace. Each bounds
/// itself in time (socket timeouts) and prints one line the test parses.
enum KernelPeer {
    /// Accepts one connection on 10.0.0.1:PORT, reads to the end, prints "received N SHA".
    static func receiver(port: Int) -> [String] {
        ["python3", "-c", """
        import socket, hashlib, sys
        l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        l.bind(('10.0.0.1', \(port))); l.listen(1); l.settimeout(60)
        print('listening', flush=True)
        c, _ = l.accept(); c.settimeout(60); h = hashlib.sha256(); n = 0
        while True:
            d = c.recv(1 << 20)
            if not d: break
            h.update(d); n += len(d)
        print('received', n, h.hexdigest(), flush=True)
        """]
    }

    /// Connects to HOST:PORT, sends N bytes (a seeded random MiB repeated), closes; prints
    /// "sent N SHA".
    static func sender(host: String, port: Int, bytes: Int) -> [String] {
        ["python3", "-c", """
        import socket, hashlib, random
        block = random.Random(5).randbytes(1 << 20)
        s = socket.create_connection(('\(host)', \(port)), timeout=60); h = hashlib.sha256(); left = \(bytes)
        while left > 0:
            b = block[:min(left, len(block))]
            s.sendall(b); h.update(b); left -= len(b)
        s.shutdown(socket.SHUT_WR)
        s.recv(1)
        s.close()
        print('sent', \(bytes), h.hexdigest(), flush=True)
        """]
    }

    /// N concurrent clients of an echo service, each sending its own bytes and checking the
    /// echo; prints "echo ok N" or the failures.
    static func echoClients(host: String, port: Int, count: Int, bytes: Int) -> [String] {
        ["python3", "-c", """
        import socket, threading, os
        ok = []; bad = []; lock = threading.Lock()
        def client(i):
            try:
                data = os.urandom(\(bytes))
                s = socket.create_connection(('\(host)', \(port)), timeout=30)
                got = bytearray()
                def reader():
                    while len(got) < len(data):
                        d = s.recv(65536)
                        if not d: break
                        got.extend(d)
                t = threading.Thread(target=reader); t.start()
                s.sendall(data); t.join(40); s.close()
                with lock: (ok if bytes(got) == data else bad).append(i)
            except Exception as e:
                with lock: bad.append((i, repr(e)))
        ts = [threading.Thread(target=client, args=(i,)) for i in range(\(count))]
        for t in ts: t.start()
        for t in ts: t.join(60)
        print('echo ok', len(ok), 'bad', bad[:5], flush=True)
        """]
    }
}
