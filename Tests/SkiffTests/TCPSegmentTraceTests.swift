import Testing
@testable import Skiff
import SkiffSim
import SkiffWire

// MARK: - Segment-trace bench

/// One TCP segment as it was on the wire.
struct WireSegment: CustomStringConvertible {
    var time: Nanoseconds
    var source: IPv4Address, destination: IPv4Address
    var sourcePort: UInt16, destinationPort: UInt16
    var seq: UInt32, ack: UInt32
    var flags: TCPFlags
    var window: UInt16
    var options: TCPOptions
    var optionBytes: [UInt8]
    var payload: [UInt8]
    /// Segment size of a TSO frame the NIC handed over whole (0 for a plain frame).
    var gsoSize: UInt16 = 0
    /// The IP header's TOS byte.
    var tos: UInt8 = 0

    var length: Int { payload.count }
    /// Sequence after the segment: data plus SYN and FIN.
    var endSeq: UInt32 {
        seq &+ UInt32(payload.count) &+ (flags.contains(.syn) ? 1 : 0) &+ (flags.contains(.fin) ? 1 : 0)
    }
    var isPureAck: Bool { flags == .ack && payload.isEmpty }

    var description: String {
        "\(time / 1000)us \(sourcePort)>\(destinationPort) [\(flags)] seq=\(seq) ack=\(ack) win=\(window) len=\(payload.count)"
            + (options.sackBlocks.isEmpty ? "" : " sack=\(options.sackBlocks.map { "\($0.left)-\($0.right)" })")
    }
}

/// A scripted TCP peer at Lab.aIP facing a stack on a capturing port (Lab.Host at Lab.bIP):
/// the test writes the peer's segments by hand and reads back what the stack answered.
final class TCPPeer {
    let host: Lab.Host
    var stack: NetworkStack { host.stack }
    /// The peer's port and the host's port.
    var port: UInt16
    var hostPort: UInt16
    /// The peer's next sequence number and what it acknowledges.
    var seq: UInt32 = 1_000_000
    var ack: UInt32 = 0
    /// The peer's TS clock (TSval) and what it echoes.
    var tsVal: UInt32 = 5_000
    var tsEcho: UInt32 = 0
    var useTimestamps = true
    var window: UInt16 = 65535

    init(host: Lab.Host = TCPPeer.makeHost(), port: UInt16 = 40_000, hostPort: UInt16 = 80) {
        self.host = host
        self.port = port
        self.hostPort = hostPort
    }

    /// Host B with A's MAC known (no ARP in the traces).
    /// The traces come from packetdrill on Linux's tun, which orphans what it transmits (so TCP
    /// Small Queues never holds the host back); the host's device does the same.
    static func makeHost(offloads: Bool = false) -> Lab.Host {
        let h = offloads ? Lab.Host(name: "B", offloads: [.checksum, .tcpSegmentation]) {
            $0.features.formUnion([.tso, .txChecksum])
            $0.orphansOnTransmit = true
        } : Lab.Host(name: "B") { $0.orphansOnTransmit = true }
        h.stack.addPermanentNeighbour(Lab.aIP, mac: Lab.aMAC, device: h.dev)
        return h
    }

    var now: Nanoseconds { host.now }

    // MARK: Building segments

    /// The TCP bytes of a segment from the peer (checksum correct unless `badChecksum`).
    static func tcpBytes(sourcePort: UInt16, destinationPort: UInt16, seq: UInt32, ack: UInt32, flags: TCPFlags,
                         window: UInt16, options: TCPOptions = TCPOptions(), payload: [UInt8] = [],
                         source: IPv4Address = Lab.aIP, destination: IPv4Address = Lab.bIP) -> [UInt8] {
        let h = TCPHeader(sourcePort: sourcePort, destinationPort: destinationPort, sequenceNumber: seq,
                          acknowledgmentNumber: ack, flags: flags, window: window, options: options)
        var b = [UInt8](repeating: 0, count: h.headerLength + payload.count)
        b.withUnsafeMutableBytes { p in
            h.emit(into: p)
            for (i, x) in payload.enumerated() { p[h.headerLength + i] = x }
            TCPHeader.fillChecksum(segment: p, source: source, destination: destination)
        }
        return b
    }

    static func frame(tcp: [UInt8], source: IPv4Address = Lab.aIP, destination: IPv4Address = Lab.bIP) -> [UInt8] {
        Lab.ethernet(Lab.ipv4(tcp, from: source, to: destination, protocol: IPProtocol.tcp, dontFragment: true))
    }

    /// Options the peer puts on a segment: timestamps when on, plus any extras.
    func options(sack: [SACKBlock] = []) -> TCPOptions {
        var o = TCPOptions()
        if useTimestamps { o.timestamp = TCPTimestamp(value: tsVal, echo: tsEcho) }
        for b in sack { _ = o.sackBlocks.append(b) }
        return o
    }

    /// Sends one segment; `seq`/`ack` default to the peer's running values. Advances the peer's
    /// sequence by what the segment occupies unless `advance` is false.
    func send(_ flags: TCPFlags, seq s: UInt32? = nil, ack a: UInt32? = nil, payload: [UInt8] = [],
              window w: UInt16? = nil, options o: TCPOptions? = nil, sack: [SACKBlock] = [], advance: Bool = true) {
        let sq = s ?? seq
        let bytes = TCPPeer.tcpBytes(sourcePort: port, destinationPort: hostPort, seq: sq,
                                     ack: flags.contains(.ack) ? (a ?? ack) : (a ?? 0), flags: flags,
                                     window: w ?? window, options: o ?? options(sack: sack), payload: payload)
        host.inject(TCPPeer.frame(tcp: bytes))
        if advance && s == nil {
            seq &+= UInt32(payload.count) &+ (flags.contains(.syn) ? 1 : 0) &+ (flags.contains(.fin) ? 1 : 0)
        }
    }

    /// Injects raw TCP bytes (already checksummed or deliberately not).
    func inject(tcp: [UInt8]) { host.inject(TCPPeer.frame(tcp: tcp)) }

    // MARK: Reading what the host sent

    static func parse(_ f: Lab.Frame) -> WireSegment? {
        var bytes = f.bytes
        if f.offload.needsChecksum {
            // Finish the checksum as the far side of an offloading port does (virtio's
            // NEEDS_CSUM: the field holds the pseudo-header sum).
            let start = Int(f.offload.checksumStart), field = start + Int(f.offload.checksumOffset)
            guard field + 2 <= bytes.count else { return nil }
            let c = bytes.withUnsafeBytes { InternetChecksum.fold(InternetChecksum.sum(UnsafeRawBufferPointer(rebasing: $0[start...]))) }
            bytes[field] = UInt8(c >> 8); bytes[field + 1] = UInt8(c & 0xFF)
        }
        guard let ip = Lab.ipPacket(bytes), ip.header.protocol == IPProtocol.tcp else { return nil }
        return ip.payload.withUnsafeBytes { b -> WireSegment? in
            guard let v = try? TCPView(checking: b),
                  v.verifyChecksum(source: ip.header.source, destination: ip.header.destination) else { return nil }
            return WireSegment(time: f.time, source: ip.header.source, destination: ip.header.destination,
                               sourcePort: v.sourcePort, destinationPort: v.destinationPort,
                               seq: v.sequenceNumber, ack: v.acknowledgmentNumber, flags: v.flags, window: v.window,
                               options: v.options, optionBytes: Array(v.optionBytes), payload: Array(v.payload),
                               gsoSize: f.offload.segmentSize, tos: ip.header.tos)
        }
    }

    /// TCP segments the host sent since the last call (other frames are dropped).
    /// The peer echoes the newest TSval it saw (its TS.Recent).
    func take() -> [WireSegment] {
        let segs = host.port.take().compactMap(TCPPeer.parse)
        if let ts = segs.last(where: { $0.options.timestamp != nil && !$0.flags.contains(.rst) })?.options.timestamp {
            tsEcho = ts.value
        }
        return segs
    }

    /// Moves time on; returns the segments sent meanwhile.
    func advance(by d: Nanoseconds) -> [WireSegment] {
        host.advance(by: d)
        return take()
    }

    /// Advances to the stack's next timer (at most `limit` ahead) and returns what it sent.
    func advanceToNextTimer(limit: Nanoseconds = 200 * Time.second) -> [WireSegment] {
        let target = min(stack.nextDeadline() ?? (now + limit), now + limit)
        host.advance(to: max(target, now))
        return take()
    }

    /// Learns the host's sequence and timestamp from a segment it sent.
    func absorb(_ s: WireSegment) {
        if seqAfter(s.endSeq, ack) || ack == 0 { ack = s.endSeq }
        if let ts = s.options.timestamp { tsEcho = ts.value }
    }

    func seqAfter(_ a: UInt32, _ b: UInt32) -> Bool { Int32(bitPattern: a &- b) > 0 }

    // MARK: Ready-made openings

    /// Linux's SYN options: MSS 1460, SACK permitted, timestamps, window scale 7.
    func linuxSynOptions() -> TCPOptions {
        TCPOptions(maximumSegmentSize: 1460, windowScale: 7, sackPermitted: true,
                   timestamp: useTimestamps ? TCPTimestamp(value: tsVal, echo: 0) : nil)
    }

    /// A listener on the host's port.
    @discardableResult
    func listen(backlog: Int = 16) -> Int32 {
        let l = try! stack.socket().get()
        precondition(stack.bind(l, SocketAddress(.any, hostPort)) == nil)
        precondition(stack.listen(l, backlog: backlog) == nil)
        return l
    }

    /// The peer connects to the host's listener with `synOptions`; returns the accepted socket
    /// and the SYN-ACK. The peer's window field on the ACK is `window` (scaled by the peer's WS).
    func connectToListener(_ l: Int32, synOptions: TCPOptions? = nil) -> (fd: Int32, synAck: WireSegment) {
        send(.syn, options: synOptions ?? linuxSynOptions())
        let out = take()
        precondition(out.count == 1 && out[0].flags == [.syn, .ack], "expected a SYN-ACK, got \(out)")
        absorb(out[0])
        tsVal &+= 1
        send(.ack)
        guard case let .success((fd, _)) = stack.accept(l) else { preconditionFailure("not accepted") }
        return (fd, out[0])
    }

    /// The host connects to the peer, which answers with a SYN-ACK carrying `synAckOptions`.
    /// Returns the socket and the host's SYN; the host's ACK of the SYN-ACK is consumed.
    func hostConnects(synAckOptions: TCPOptions? = nil, window w: UInt16 = 65535) -> (fd: Int32, syn: WireSegment) {
        let fd = try! stack.socket().get()
        precondition(stack.connect(fd, SocketAddress(Lab.aIP, port), now: now) == .EINPROGRESS)
        let out = take()
        precondition(out.count == 1 && out[0].flags == .syn, "expected a SYN, got \(out)")
        let syn = out[0]
        hostPort = syn.sourcePort
        absorb(syn)
        var o = synAckOptions ?? linuxSynOptions()
        if o.timestamp != nil { o.timestamp = TCPTimestamp(value: tsVal, echo: syn.options.timestamp?.value ?? 0) }
        send([.syn, .ack], window: w, options: o)
        let ackOut = take()
        precondition(ackOut.count == 1 && ackOut[0].isPureAck, "expected an ACK, got \(ackOut)")
        return (fd, syn)
    }

    /// A connection accepted by the host from this peer, with the SYN-ACK's RTT set to `rtt`
    /// (the host's first RTT sample) and the peer's options chosen. Returns the host's socket.
    static func established(sack: Bool = true, timestamps: Bool = true, windowScale: UInt8? = 7, mss: UInt16 = 1460,
                            rtt: Nanoseconds = 10 * Time.millisecond, window: UInt16 = 65535, offloads: Bool = false,
                            host: Lab.Host? = nil,
                            configure: (NetworkStack) -> Void = { _ in }) -> (TCPPeer, Int32, TCPSocket) {
        let p = TCPPeer(host: host ?? TCPPeer.makeHost(offloads: offloads))
        configure(p.stack)
        p.useTimestamps = timestamps
        p.window = window
        let l = p.listen()
        p.send(.syn, options: TCPOptions(maximumSegmentSize: mss, windowScale: windowScale, sackPermitted: sack,
                                         timestamp: timestamps ? TCPTimestamp(value: p.tsVal, echo: 0) : nil))
        let out = p.take()
        precondition(out.count == 1 && out[0].flags == [.syn, .ack])
        p.absorb(out[0])
        p.host.advance(by: rtt)
        p.tsVal &+= 1
        p.send(.ack)
        guard case let .success((fd, _)) = p.stack.accept(l) else { preconditionFailure("not accepted") }
        return (p, fd, p.stack.tcpInfoSocket(fd)!)
    }

    /// A pure ACK from the peer up to `to` (default: everything the host sent), with SACK blocks.
    func ackTo(_ to: UInt32? = nil, sack: [SACKBlock] = [], window w: UInt16? = nil) {
        if let to { ack = to }
        send(.ack, window: w, sack: sack)
    }

    // MARK: Application helpers

    @discardableResult
    func write(_ fd: Int32, _ bytes: [UInt8], flags: SendFlags = []) -> Result<Int, Errno> {
        bytes.withUnsafeBytes { stack.send(fd, $0, flags: flags, now: now) }
    }

    func read(_ fd: Int32, max n: Int = 1 << 20) -> Result<[UInt8], Errno> {
        var buf = [UInt8](repeating: 0, count: n)
        let r = buf.withUnsafeMutableBytes { stack.recv(fd, into: $0, now: now) }
        return r.map { Array(buf[0..<$0]) }
    }
}

extension WireSegment {
    /// Payload of every data-carrying segment, in order sent.
    static func dataSeqs(_ segs: [WireSegment]) -> [UInt32] { segs.filter { $0.length > 0 }.map(\.seq) }
}

// MARK: - Handshakes

/// Segment traces of connection setup: the exact segments and option bytes Skiff sends, as
/// Linux sends them.
@Suite struct TCPSegmentTraceTests {
    static let ms = Time.millisecond

    @Test func synAckToALinuxSynCarriesLinuxOptionsInLinuxLayout() throws {
        let p = TCPPeer()
        let l = p.listen()
        p.host.advance(to: 3 * Time.second)
        p.send(.syn, options: p.linuxSynOptions())
        let out = p.take()
        try #require(out.count == 1)
        let sa = out[0]
        #expect(sa.flags == [.syn, .ack])
        #expect(sa.ack == 1_000_001)
        #expect(sa.sourcePort == 80 && sa.destinationPort == 40_000)
        // MSS 1460, SACK-permitted + timestamps, NOP + window scale 7 (Linux's order).
        let ts = UInt32(3000)   // the stack's TS clock is milliseconds of virtual time
        let expected: [UInt8] = [2, 4, 0x05, 0xb4, 4, 2, 8, 10] + be32(ts) + be32(5_000) + [1, 3, 3, 7]
        #expect(sa.optionBytes == expected)
        // Linux: the SYN-ACK's window is 64 KiB rounded down to whole MSS-less-timestamps (45 × 1448).
        #expect(sa.window == 65160)
        #expect(p.stack.tcpConfig.synCookies && p.stack.tcpCounters.synCookiesSent == 0)
        p.absorb(sa)
        p.send(.ack)
        let fd = try p.stack.accept(l).get().0
        let s = try #require(p.stack.tcpInfoSocket(fd))
        #expect(s.state == .established)
        #expect(s.mss == 1460 && p.stack.sendMSS(s) == 1448)
        #expect(s.sackEnabled && s.timestampsEnabled && s.sendWindowScale == 7 && s.receiveWindowScale == 7)
        #expect(s.sndUna == sa.seq &+ 1 && s.rcvNxt == 1_000_001)
        // The peer's window on its ACK is scaled by its WS of 7.
        #expect(s.sndWnd == 65535 << 7)
    }

    @Test func synWithoutOptionsGetsMSS536AndNoOptionsBack() throws {
        let p = TCPPeer()
        p.useTimestamps = false
        let l = p.listen()
        p.send(.syn, options: TCPOptions())
        let out = p.take()
        try #require(out.count == 1)
        let sa = out[0]
        #expect(sa.flags == [.syn, .ack])
        // Only our MSS goes back; no SACK-permitted, timestamps or window scale (RFC 7323 §2.2, RFC 2018).
        #expect(sa.optionBytes == [2, 4, 0x05, 0xb4])
        #expect(sa.window == 64240)   // 44 × 1460
        p.absorb(sa)
        p.send(.ack)
        let fd = try p.stack.accept(l).get().0
        let s = try #require(p.stack.tcpInfoSocket(fd))
        // RFC 9293 §3.7.1: no MSS option means 536.
        #expect(s.mss == 536 && p.stack.sendMSS(s) == 536)
        #expect(!s.sackEnabled && !s.timestampsEnabled && s.sendWindowScale == 0 && s.receiveWindowScale == 0)
        // Data goes out in 536-byte segments with no options at all; windows are unscaled.
        #expect(p.write(fd, Lab.pattern(1200)) == .success(1200))
        let data = p.take()
        #expect(data.map(\.length) == [536, 536, 128])
        #expect(data.allSatisfy { $0.optionBytes.isEmpty && $0.flags.contains(.ack) })
        #expect(data.map(\.seq) == [sa.seq &+ 1, sa.seq &+ 537, sa.seq &+ 1073])
        #expect(data.last!.flags.contains(.psh))
        #expect(s.sndWnd == 65535)
    }

    @Test func synWithMSSOnlyNegotiatesNothingElse() throws {
        let p = TCPPeer()
        p.useTimestamps = false
        let l = p.listen()
        let (fd, sa) = p.connectToListener(l, synOptions: TCPOptions(maximumSegmentSize: 1000))
        #expect(sa.optionBytes == [2, 4, 0x05, 0xb4])
        let s = try #require(p.stack.tcpInfoSocket(fd))
        #expect(s.mss == 1000 && !s.sackEnabled && !s.timestampsEnabled && !s.windowScalingEnabled)
    }

    @Test func sackWithoutTimestampsUsesTheNopNopSackPermittedLayout() throws {
        let p = TCPPeer()
        p.useTimestamps = false
        let l = p.listen()
        let (fd, sa) = p.connectToListener(l, synOptions: TCPOptions(maximumSegmentSize: 1460, windowScale: 2, sackPermitted: true))
        #expect(sa.optionBytes == [2, 4, 0x05, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7])
        #expect(sa.window == 64240)
        let s = try #require(p.stack.tcpInfoSocket(fd))
        #expect(s.sackEnabled && !s.timestampsEnabled && s.sendWindowScale == 2 && s.receiveWindowScale == 7)
        #expect(p.stack.sendMSS(s) == 1460)
    }

    @Test func activeOpenSendsLinuxSynAndAcksTheSynAck() throws {
        let p = TCPPeer()
        p.host.advance(to: 2 * Time.second)
        let fd = try p.stack.socket().get()
        #expect(p.stack.connect(fd, SocketAddress(Lab.aIP, 40_000), now: p.now) == .EINPROGRESS)
        let out = p.take()
        try #require(out.count == 1)
        let syn = out[0]
        #expect(syn.flags == .syn && syn.ack == 0)
        #expect(syn.optionBytes == [2, 4, 0x05, 0xb4, 4, 2, 8, 10] + be32(2000) + be32(0) + [1, 3, 3, 7])
        #expect(syn.window == 64240)   // Linux: 44 × 1460 on a SYN
        #expect((32768...60999).contains(syn.sourcePort))
        p.hostPort = syn.sourcePort
        p.absorb(syn)
        p.host.advance(by: 10 * Self.ms)
        var o = p.linuxSynOptions()
        o.timestamp = TCPTimestamp(value: 777, echo: 2000)
        o.windowScale = 9
        p.send([.syn, .ack], options: o)
        let acks = p.take()
        try #require(acks.count == 1)
        #expect(acks[0].isPureAck)
        #expect(acks[0].seq == syn.seq &+ 1 && acks[0].ack == 1_000_001)
        // NOP NOP TS(val, ecr=777), as every later segment.
        #expect(acks[0].optionBytes == [1, 1, 8, 10] + be32(2010) + be32(777))
        let s = try #require(p.stack.tcpInfoSocket(fd))
        #expect(s.state == .established && s.sendWindowScale == 9)
        // The SYN's RTT (10 ms) is the first sample.
        #expect(s.rtt.srtt == 10 * Self.ms)
        #expect(p.stack.connect(fd, SocketAddress(Lab.aIP, 40_000), now: p.now) == .EISCONN)
    }

    @Test func synAckWithoutWindowScaleTurnsOffOurScaleToo() throws {
        let p = TCPPeer()
        let (fd, _) = p.hostConnects(synAckOptions: TCPOptions(maximumSegmentSize: 1200, sackPermitted: true,
                                                               timestamp: TCPTimestamp(value: 1, echo: 0)))
        let s = try #require(p.stack.tcpInfoSocket(fd))
        // RFC 7323 §2.2: scaling only when both sides sent the option.
        #expect(!s.windowScalingEnabled && s.sendWindowScale == 0 && s.receiveWindowScale == 0)
        #expect(s.mss == 1200 && p.stack.sendMSS(s) == 1188 && s.sackEnabled && s.timestampsEnabled)
        // An unscaled window field can offer at most 65535.
        #expect(p.write(fd, [1]) == .success(1))
        let seg = try #require(p.take().first)
        #expect(seg.window == 65535)
    }

    @Test func simultaneousOpenCrossesSynsAndBothSidesEstablish() throws {
        let p = TCPPeer()
        let fd = try p.stack.socket().get()
        #expect(p.stack.bind(fd, SocketAddress(.any, 5555)) == nil)
        p.hostPort = 5555
        #expect(p.stack.connect(fd, SocketAddress(Lab.aIP, 40_000), now: p.now) == .EINPROGRESS)
        let syn = try #require(p.take().first)
        #expect(syn.flags == .syn && syn.sourcePort == 5555)
        // The peer's SYN crosses ours (RFC 9293 figure 7): we answer SYN-ACK with our ISS again.
        p.send(.syn, options: p.linuxSynOptions())
        let out = p.take()
        try #require(out.count == 1)
        #expect(out[0].flags == [.syn, .ack])
        #expect(out[0].seq == syn.seq && out[0].ack == 1_000_001)
        #expect(p.stack.tcpState(fd) == .synReceived)
        // The peer's SYN-ACK (to our SYN) completes it.
        p.absorb(out[0])
        p.send([.syn, .ack], seq: 1_000_000, ack: syn.seq &+ 1, options: p.linuxSynOptions())
        #expect(p.stack.tcpState(fd) == .established)
        let s = try #require(p.stack.tcpInfoSocket(fd))
        #expect(s.sndUna == syn.seq &+ 1 && s.rcvNxt == 1_000_001)
        #expect(p.write(fd, [1, 2, 3]) == .success(3))
        let d = try #require(p.take().last)
        #expect(d.seq == syn.seq &+ 1 && d.payload == [1, 2, 3])
    }

    @Test func synToAClosedPortGetsRstAckWithAckSeqPlusOne() throws {
        let p = TCPPeer()
        p.hostPort = 81
        p.send(.syn, options: p.linuxSynOptions())
        let out = p.take()
        try #require(out.count == 1)
        // RFC 9293 §3.10.7.1: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>, no options.
        #expect(out[0].flags == [.rst, .ack])
        #expect(out[0].seq == 0 && out[0].ack == 1_000_001 && out[0].window == 0 && out[0].optionBytes.isEmpty)
        #expect(p.stack.tcpCounters.outRsts == 1 && p.stack.drops[.tcpNoSocket] == 1)
        // A SYN with data: the ACK covers the data too.
        p.send(.syn, seq: 500, payload: Lab.pattern(10))
        let r1 = try #require(p.take().first)
        #expect(r1.flags == [.rst, .ack] && r1.ack == 511)
        // An ACK to nowhere: <SEQ=SEG.ACK><CTL=RST>.
        p.send(.ack, seq: 7, ack: 0xDEAD_BEEF)
        let r = try #require(p.take().first)
        #expect(r.flags == .rst && r.seq == 0xDEAD_BEEF && r.ack == 0)
        // A RST is never answered.
        p.send(.rst, seq: 9)
        p.send([.rst, .ack], seq: 9, ack: 1)
        #expect(p.take().isEmpty)
        #expect(p.stack.tcpCounters.outRsts == 3)
    }

    @Test func lostSynAckIsResentOnARetransmittedSyn() throws {
        let p = TCPPeer()
        let l = p.listen()
        p.send(.syn, options: p.linuxSynOptions())
        let first = try #require(p.take().first)
        p.host.advance(by: 100 * Self.ms)
        // The SYN again, the same ISN.
        p.send(.syn, seq: 1_000_000, options: p.linuxSynOptions(), advance: false)
        let again = p.take()
        try #require(again.count == 1)
        #expect(again[0].flags == [.syn, .ack] && again[0].seq == first.seq && again[0].ack == 1_000_001)
        p.absorb(again[0])
        p.send(.ack)
        #expect(p.stack.accept(l).map { _ in true } == .success(true))
    }

    @Test func synAckIsRetransmittedAt1Then3Then7SecondsAndTheChildDies() throws {
        let p = TCPPeer()
        let l = p.listen()
        p.send(.syn, options: p.linuxSynOptions())
        let t0 = p.now
        let sa = try #require(p.take().first)
        var times: [Nanoseconds] = []
        for _ in 0..<8 {
            for s in p.advance(by: 70 * Time.second) {
                #expect(s.flags == [.syn, .ack] && s.seq == sa.seq)
                times.append(s.time - t0)
            }
        }
        // tcp_synack_retries = 5: 1, 2, 4, 8, 16 s apart; then the request is dropped.
        #expect(times == [1, 3, 7, 15, 31].map { $0 * Time.second })
        #expect(p.stack.openSocketCount == 1)
        if case .failure(let e) = p.stack.accept(l) { #expect(e == .EAGAIN) } else { Issue.record("unexpected child") }
        // The peer's late ACK now finds no request: a SYN cookie cannot validate it either → RST.
        p.absorb(sa)
        p.send(.ack)
        #expect(p.take().first?.flags == .rst)
    }
}

func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }

/// A retransmission while an earlier transmission of the same buffer is still queued below TCP.
@Suite struct RetransmitHeadroomTests {
    @Test("an RTO retransmission leaves the headers of a clone still on its way down alone, and goes out whole")
    func retransmissionDoesNotOverwriteALiveClonesHeaders() throws {
        let (p, fd, sock) = TCPPeer.established()
        p.write(fd, [UInt8](repeating: 0x5A, count: 1000))
        let first = p.take()
        #expect(first.count == 1 && first[0].length == 1000)
        // An earlier transmission still in a host queue: a clone of the sent buffer whose
        // headroom holds its headers (here a marker where the TCP and IP headers would be).
        let slot = sock.retransmitQueue.head
        var held = p.stack.tcpSlab.clone(at: slot)
        let marker = held.push(40)
        for i in 0..<40 { marker.storeBytes(of: UInt8(0xA0 + i % 16), toByteOffset: i, as: UInt8.self) }
        // No ACK: the RTO retransmits the segment.
        let rto = p.advanceToNextTimer()
        #expect(rto.contains { $0.seq == first[0].seq && $0.length == 1000 && $0.payload == first[0].payload })
        // The held clone's headers are as they were.
        let after = (0..<40).map { held.bytes[$0] }
        #expect(after == (0..<40).map { UInt8(0xA0 + $0 % 16) })
        _ = consume held
    }
}
