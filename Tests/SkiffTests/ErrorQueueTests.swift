import Testing
@testable import Skiff
import SkiffWire

/// The socket error queue as packetdrill's zerocopy/ and timestamping/ scripts see it: segment
/// traces against `TCPPeer`, then `recvmsg(MSG_ERRQUEUE)` read back in Linux's layout.
@Suite struct ErrorQueueTests {
    static let ms = Time.millisecond
    static let mss = 1448

    /// One control message as `recvmsg` wrote it.
    struct Cmsg {
        var length: Int, level: Int32, type: Int32
        var data: [UInt8]
        func u32(_ o: Int) -> UInt32 { data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: o, as: UInt32.self) } }
        func u64(_ o: Int) -> UInt64 { data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: o, as: UInt64.self) } }
        /// `struct sock_extended_err`: errno, origin, type, code, info, data.
        var ee: (errno: UInt32, origin: UInt8, type: UInt8, code: UInt8, info: UInt32, data: UInt32) {
            (u32(0), data[4], data[5], data[6], u32(8), u32(12))
        }
    }

    /// Walks the control buffer as CMSG_FIRSTHDR / CMSG_NXTHDR do.
    static func cmsgs(_ b: [UInt8], used: Int) -> [Cmsg] {
        var out: [Cmsg] = []
        var o = 0
        while o + 16 <= used {
            let len = Int(b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: o, as: UInt64.self) })
            let level = b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: o + 8, as: Int32.self) }
            let type = b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: o + 12, as: Int32.self) }
            guard len >= 16, o + len <= used else { break }
            out.append(Cmsg(length: len, level: level, type: type, data: Array(b[(o + 16)..<(o + len)])))
            o += 16 + (len - 16 + 7) & ~7
        }
        return out
    }

    /// recvmsg(fd, MSG_ERRQUEUE) with `data` bytes of iov and `control` bytes of msg_control.
    static func receive(_ p: TCPPeer, _ fd: Int32, data: Int = 0, control: Int = 256, flags: ReceiveFlags = [.errorQueue])
        -> (result: Result<ReceivedMessage, Errno>, cmsgs: [Cmsg], bytes: [UInt8], raw: [UInt8]) {
        var d = [UInt8](repeating: 0, count: data)
        var c = [UInt8](repeating: 0xEE, count: control)
        let r = d.withUnsafeMutableBytes { db in
            c.withUnsafeMutableBytes { cb in p.stack.recvmsg(fd, into: db, control: cb, flags: flags, now: p.now) }
        }
        guard case let .success(m) = r else { return (r, [], [], c) }
        return (r, cmsgs(c, used: m.controlLength), Array(d[0..<m.bytes]), c)
    }

    static func zerocopyConnection() -> (TCPPeer, Int32, TCPSocket) {
        let (p, fd, s) = TCPPeer.established(rtt: 10 * ms)
        #expect(p.stack.setOption(fd, .zerocopy(true), now: p.now) == nil)
        return (p, fd, s)
    }

    /// A second listener, on port 9999.
    static func listener(_ p: TCPPeer) throws -> Int32 {
        let l = try p.stack.socket().get()
        #expect(p.stack.bind(l, SocketAddress(.any, 9999)) == nil && p.stack.listen(l, backlog: 1) == nil)
        return l
    }

    static let allStamps = TimestampingFlag.txSched | TimestampingFlag.txSoftware | TimestampingFlag.txAck
        | TimestampingFlag.software | TimestampingFlag.optID

    // MARK: MSG_ZEROCOPY

    /// zerocopy/basic.pkt: the completion comes once the data is acknowledged, ids 0 then 1,
    /// marked copied (Skiff copies, as Linux does on a device that cannot take user pages).
    @Test func zerocopyCompletionArrivesWithTheAckAndSaysCopied() throws {
        let (p, fd, s) = Self.zerocopyConnection()
        let base = s.sndNxt
        #expect(p.write(fd, Lab.pattern(4000), flags: .zerocopy) == .success(4000))
        #expect(p.take().reduce(0) { $0 + $1.length } == 4000)
        #expect(p.stack.errorQueueLength(fd) == 0 && !p.stack.poll(fd).contains(.error))
        p.ackTo(base &+ 2000)
        #expect(p.stack.errorQueueLength(fd) == 0, "half acknowledged: not complete")
        p.ackTo(base &+ 4000)
        #expect(p.stack.poll(fd).contains(.error))
        let r = Self.receive(p, fd)
        #expect(try r.result.get() == ReceivedMessage(bytes: 0, flags: .errorQueue, controlLength: 48))
        #expect(r.cmsgs.count == 1 && r.cmsgs[0].level == 0 && r.cmsgs[0].type == 11 && r.cmsgs[0].length == 48)
        let ee = r.cmsgs[0].ee
        #expect(ee.errno == 0 && ee.origin == 5 && ee.type == 0 && ee.code == 1 && ee.info == 0 && ee.data == 0)
        #expect(r.cmsgs[0].data[16...].allSatisfy { $0 == 0 }, "no offender address")
        #expect(!p.stack.poll(fd).contains(.error))
        #expect(Self.receive(p, fd).result.failureValue == .EAGAIN)
        #expect(p.write(fd, Lab.pattern(4000), flags: .zerocopy) == .success(4000))
        _ = p.take()
        p.ackTo(base &+ 8000)
        let second = try p.stack.nextErrorMessage(fd).get()
        #expect(second.info == 1 && second.data == 1 && second.code == 1)
    }

    /// zerocopy/batch.pkt: completions not yet read merge into one range.
    @Test func unreadCompletionsMergeIntoOneRange() throws {
        let (p, fd, s) = Self.zerocopyConnection()
        let base = s.sndNxt
        for k in 1...3 {
            #expect(p.write(fd, Lab.pattern(1000), flags: .zerocopy) == .success(1000))
            _ = p.take()
            p.ackTo(base &+ UInt32(1000 * k))
        }
        #expect(p.stack.errorQueueLength(fd) == 1)
        let m = try p.stack.nextErrorMessage(fd).get()
        #expect(m.origin == ErrorOrigin.zerocopy && m.info == 0 && m.data == 2)
    }

    /// msg_zerocopy_realloc(): sends that land in the same unsent buffer share one id range
    /// from the start, and complete together.
    @Test func sendsIntoTheSameUnsentBufferShareARange() throws {
        let (p, fd, s) = Self.zerocopyConnection()
        let base = s.sndNxt
        #expect(p.stack.setOption(fd, .cork(true), now: p.now) == nil)
        #expect(p.write(fd, Lab.pattern(100), flags: .zerocopy) == .success(100))
        #expect(p.write(fd, Lab.pattern(100), flags: .zerocopy) == .success(100))
        #expect(p.take().isEmpty, "corked")
        #expect(p.stack.setOption(fd, .cork(false), now: p.now) == nil)
        let out = p.take()
        #expect(out.count == 1 && out[0].length == 200)
        p.ackTo(base &+ 200)
        #expect(p.stack.errorQueueLength(fd) == 1)
        let m = try p.stack.nextErrorMessage(fd).get()
        #expect(m.info == 0 && m.data == 1)
    }

    /// Without SO_ZEROCOPY, MSG_ZEROCOPY is ignored (Linux): no completion. Either way the bytes
    /// are copied once, and the ledger says so.
    @Test func withoutSOZerocopyTheFlagIsIgnoredAndTheCopyIsCounted() throws {
        let (p, fd, s) = TCPPeer.established(rtt: 10 * Self.ms)
        let before = p.stack.pool.ledger.bytes(.userToBuffer)
        #expect(p.write(fd, Lab.pattern(3000), flags: .zerocopy) == .success(3000))
        _ = p.take()
        p.ackTo(s.sndNxt)
        #expect(p.stack.errorQueueLength(fd) == 0)
        #expect(p.stack.pool.ledger.bytes(.userToBuffer) - before == 3000)
        #expect(p.stack.setOption(fd, .zerocopy(true), now: p.now) == nil)
        #expect(p.write(fd, Lab.pattern(3000), flags: .zerocopy) == .success(3000))
        #expect(p.stack.pool.ledger.bytes(.userToBuffer) - before == 6000, "a zerocopy send is a copy here")
    }

    /// zerocopy/closed.pkt: a send that queues nothing gives its id back.
    @Test func aSendThatQueuesNothingGivesItsIDBack() throws {
        let (p, fd, s) = Self.zerocopyConnection()
        let base = s.sndNxt
        #expect(p.stack.setOption(fd, .cork(true), now: p.now) == nil)
        var queued = 0
        while case let .success(n) = p.write(fd, Lab.pattern(65536)) { queued += n }
        #expect(p.write(fd, Lab.pattern(100), flags: .zerocopy).failureValue == .EAGAIN)
        #expect(p.stack.setOption(fd, .cork(false), now: p.now) == nil)
        var acked = base
        while acked != base &+ UInt32(queued) {
            let out = p.take()
            guard let last = out.last else { _ = p.advance(by: 10 * Self.ms); continue }
            acked = last.endSeq
            p.ackTo(acked)
        }
        #expect(p.write(fd, Lab.pattern(100), flags: .zerocopy) == .success(100))
        _ = p.take()
        p.ackTo(acked &+ 100)
        let m = try p.stack.nextErrorMessage(fd).get()
        #expect(m.info == 0 && m.data == 0)
    }

    /// zerocopy/maxfrags.pkt: each element of a zerocopy vector is its own user page, so a
    /// buffer takes 17 of them and is pushed; contiguous elements share a fragment.
    @Test func zerocopyBuffersHoldSeventeenUserPages() throws {
        let (p, fd, s) = Self.zerocopyConnection()
        var base = s.sndNxt
        let arena = UnsafeMutableRawBufferPointer.allocate(byteCount: 18 * 64, alignment: 64)
        defer { arena.deallocate() }
        for i in 0..<arena.count { arena[i] = UInt8(truncatingIfNeeded: i) }
        func vector(stride: Int) -> [UnsafeRawBufferPointer] {
            (0..<18).map { UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(arena)[($0 * stride)..<($0 * stride + 1)]) }
        }
        // A plain vector: one 18-byte segment.
        #expect(vector(stride: 64).withUnsafeBufferPointer { p.stack.sendmsg(fd, $0, now: p.now) } == .success(18))
        var out = p.take()
        #expect(out.map(\.length) == [18])
        base &+= 18
        p.ackTo(base)
        // Zerocopy, elements apart: 17 + 1, both pushed.
        #expect(vector(stride: 64).withUnsafeBufferPointer { p.stack.sendmsg(fd, $0, flags: .zerocopy, now: p.now) } == .success(18))
        out = p.take()
        #expect(out.map(\.length) == [17])
        #expect(out.allSatisfy { $0.flags.contains(.psh) })
        p.ackTo(base &+ 17)
        out = p.take()
        #expect(out.map(\.length) == [1] && out[0].flags.contains(.psh))
        base &+= 18
        p.ackTo(base)
        #expect(out[0].payload == [arena[17 * 64]])
        // Zerocopy, elements adjacent in one page: one fragment, one segment.
        #expect(vector(stride: 1).withUnsafeBufferPointer { p.stack.sendmsg(fd, $0, flags: .zerocopy, now: p.now) } == .success(18))
        #expect(p.take().map(\.length) == [18])
    }

    /// sendmsg with bad input: a descriptor that is not open, or not a TCP socket, is EBADF; an
    /// empty vector and zero-length elements send nothing and are not errors; zero-length
    /// elements around data leave only the data on the wire; none of it takes a zerocopy id.
    @Test func sendmsgWithBadDescriptorsOrEmptyPartsIsAnErrorOrNothing() throws {
        let (p, fd, s) = Self.zerocopyConnection()
        let udp = try p.stack.socket(.datagram).get()
        let empty: [UnsafeRawBufferPointer] = []
        for bad in [Int32(-1), 9999, udp] {
            #expect(empty.withUnsafeBufferPointer { p.stack.sendmsg(bad, $0, now: p.now) } == .failure(.EBADF))
        }
        #expect(empty.withUnsafeBufferPointer { p.stack.sendmsg(fd, $0, flags: .zerocopy, now: p.now) } == .success(0))
        let data: [UInt8] = [1, 2, 3]
        let base = s.sndNxt
        data.withUnsafeBytes { d in
            let none = UnsafeRawBufferPointer(start: nil, count: 0)
            let zeros = [none, none]
            #expect(zeros.withUnsafeBufferPointer { p.stack.sendmsg(fd, $0, flags: .zerocopy, now: p.now) } == .success(0))
            let mixed = [none, d, none]
            #expect(mixed.withUnsafeBufferPointer { p.stack.sendmsg(fd, $0, now: p.now) } == .success(3))
        }
        let out = p.take()
        #expect(out.map(\.length) == [3] && out[0].payload == data && out[0].seq == base)
        p.ackTo(base &+ 3)
        #expect(p.stack.nextErrorMessage(fd) == .failure(.EAGAIN))
    }

    /// A reset frees the queues: outstanding sends complete; after close nothing is reported.
    @Test func aResetCompletesOutstandingSends() throws {
        let (p, fd, s) = Self.zerocopyConnection()
        #expect(p.write(fd, Lab.pattern(500), flags: .zerocopy) == .success(500))
        _ = p.take()
        p.send([.rst, .ack], seq: p.seq, ack: s.sndUna)
        #expect(p.stack.tcpState(fd) == .closed)
        let m = try p.stack.nextErrorMessage(fd).get()
        #expect(m.origin == ErrorOrigin.zerocopy && m.info == 0 && m.data == 0)
        #expect(p.stack.close(fd, now: p.now) == nil)
        #expect(p.stack.errorQueueLength(fd) == 0)
    }

    /// Linux: sock_orphan() marks the socket dead, so its sends complete silently.
    @Test func closingWithOutstandingSendsReportsNothing() throws {
        let (p, fd, s) = Self.zerocopyConnection()
        #expect(p.write(fd, Lab.pattern(500), flags: .zerocopy) == .success(500))
        _ = p.take()
        #expect(p.stack.close(fd, now: p.now) == nil)
        p.ackTo(s.sndNxt)
        #expect(p.stack.errorQueueLength(fd) == 0)
    }

    // MARK: SO_TIMESTAMPING

    /// timestamping/server.pkt: SCHED and SND when the last byte of the write leaves, ACK when it
    /// is acknowledged, keyed from snd_una, on the stack's clock; each carries the packet.
    @Test func timestampsAtTheQdiscTheDriverAndTheAck() throws {
        let (p, fd, s) = TCPPeer.established(rtt: 10 * Self.ms)
        let base = s.sndNxt
        #expect(p.stack.setOption(fd, .timestamping(flags: Self.allStamps), now: p.now) == nil)
        let t0 = p.now
        #expect(p.write(fd, Lab.pattern(1000)) == .success(1000))
        #expect(p.take().count == 1)
        #expect(p.stack.errorQueueLength(fd) == 2)
        let sched = Self.receive(p, fd)
        #expect(try sched.result.get() == ReceivedMessage(bytes: 0, flags: [.errorQueue, .truncated], controlLength: 112))
        #expect(sched.cmsgs.map(\.level) == [1, 0] && sched.cmsgs.map(\.type) == [37, 11] && sched.cmsgs.map(\.length) == [64, 48])
        #expect(sched.cmsgs[0].u64(0) == t0 / 1_000_000_000 && sched.cmsgs[0].u64(8) == t0 % 1_000_000_000)
        #expect(sched.cmsgs[0].data[16...].allSatisfy { $0 == 0 }, "no legacy or hardware stamp")
        let ee = sched.cmsgs[1].ee
        #expect(ee.errno == 42 && ee.origin == 4 && ee.code == 0 && ee.info == 1 && ee.data == 999)
        // SND: the packet it carries is the frame that went to the driver.
        let snd = Self.receive(p, fd, data: 2000)
        let m = try snd.result.get()
        #expect(m.flags == .errorQueue && m.bytes == 14 + 20 + 32 + 1000)
        #expect(Array(snd.bytes.suffix(1000)) == Lab.pattern(1000))
        #expect(snd.cmsgs[1].ee.info == 0 && snd.cmsgs[1].ee.data == 999 && snd.cmsgs[0].u64(8) == t0 % 1_000_000_000)
        p.host.advance(by: 10 * Self.ms)
        #expect(p.stack.errorQueueLength(fd) == 0)
        p.ackTo(base &+ 1000)
        let ack = Self.receive(p, fd, data: 2000)
        #expect(try ack.result.get().bytes == 1000, "the acknowledged buffer: payload only")
        #expect(ack.bytes == Lab.pattern(1000))
        #expect(ack.cmsgs[1].ee.info == 2 && ack.cmsgs[1].ee.data == 999)
        let t1 = t0 + 10 * Self.ms
        #expect(ack.cmsgs[0].u64(0) * 1_000_000_000 + ack.cmsgs[0].u64(8) == t1)
    }

    /// A retransmission writes its headers where the first transmission's were: the queued
    /// message keeps the packet as it was stamped.
    @Test func aRetransmissionDoesNotRewriteAStampedPacket() throws {
        let (p, fd, _) = TCPPeer.established(rtt: 10 * Self.ms)
        #expect(p.stack.setOption(fd, .timestamping(flags: TimestampingFlag.txSoftware | TimestampingFlag.optID), now: p.now) == nil)
        #expect(p.write(fd, Lab.pattern(100)) == .success(100))
        let out = p.take()
        let tsval = try #require(out.first?.options.timestamp?.value)
        let again = p.advanceToNextTimer()
        #expect(again.first?.seq == out[0].seq && again.first?.options.timestamp?.value != tsval, "an RTO retransmission")
        #expect(p.stack.errorQueueLength(fd) == 2)
        let r = Self.receive(p, fd, data: 200)
        #expect(try r.result.get().bytes == 14 + 20 + 32 + 100)
        // Ethernet, IP, then TCP: 20 bytes, nop, nop, TS kind 8 length 10, TSval.
        let at = 14 + 20 + 20 + 4
        #expect(r.bytes[at - 2] == 8 && r.bytes[at - 1] == 10)
        let v = r.bytes[at..<(at + 4)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        #expect(v == tsval)
    }

    /// timestamping/client-only-last-byte.pkt: only the buffer holding the write's last byte is
    /// stamped, also after it was split by the window.
    @Test func onlyTheLastByteOfAWriteIsStamped() throws {
        let (p, fd, s) = TCPPeer.established(windowScale: nil, rtt: 10 * Self.ms, window: 3000)
        let base = s.sndNxt
        #expect(p.stack.setOption(fd, .timestamping(flags: Self.allStamps | TimestampingFlag.optTSOnly), now: p.now) == nil)
        #expect(p.write(fd, Lab.pattern(5000)) == .success(5000))
        let first = p.take()
        #expect(first.reduce(0) { $0 + $1.length } < 5000)
        #expect(p.stack.errorQueueLength(fd) == 0, "the key byte has not left")
        var acked = base
        while acked != base &+ 5000 {
            let out = p.take()
            let end = (out.last ?? first.last!).endSeq
            acked = end
            p.window = 65535
            p.ackTo(end)
        }
        var stages: [UInt32] = []
        while case let .success(m) = p.stack.nextErrorMessage(fd) {
            #expect(m.data == 4999 && m.payloadLength == 0)
            stages.append(m.info)
        }
        #expect(stages == [TimestampStage.scheduled, TimestampStage.sent, TimestampStage.acknowledged])
    }

    /// A GSO packet cut before the driver is stamped once, by the segment holding the key
    /// (Linux: tcp_gso_tstamp()).
    @Test func aSoftwareSegmentedPacketIsStampedOnce() throws {
        let (p, fd, _) = TCPPeer.established(rtt: 10 * Self.ms)
        #expect(p.stack.setOption(fd, .timestamping(flags: TimestampingFlag.txSoftware | TimestampingFlag.optID
                                                     | TimestampingFlag.optTSOnly), now: p.now) == nil)
        #expect(p.write(fd, Lab.pattern(4000)) == .success(4000))
        #expect(p.take().count == 3)
        #expect(p.stack.errorQueueLength(fd) == 1)
        let m = try p.stack.nextErrorMessage(fd).get()
        #expect(m.info == TimestampStage.sent && m.data == 3999)
    }

    /// OPT_TSONLY: no packet (so no MSG_TRUNC); without SOFTWARE the message has no timestamp cmsg.
    @Test func tsonlyCarriesNoPacketAndWithoutSoftwareNoTimestamp() throws {
        let (p, fd, _) = TCPPeer.established(rtt: 10 * Self.ms)
        #expect(p.stack.setOption(fd, .timestamping(flags: TimestampingFlag.txSched | TimestampingFlag.optTSOnly), now: p.now) == nil)
        #expect(p.write(fd, Lab.pattern(100)) == .success(100))
        let r = Self.receive(p, fd)
        #expect(try r.result.get() == ReceivedMessage(bytes: 0, flags: .errorQueue, controlLength: 48))
        #expect(r.cmsgs.map(\.type) == [11] && r.cmsgs[0].ee.data == 0, "no OPT_ID: no key")
    }

    /// Linux's sock_set_timestamping() checks; OPT_ID keys count from snd_una, or with
    /// OPT_ID_TCP from write_seq.
    @Test func timestampingOptionIsCheckedAsLinuxChecksIt() throws {
        let (p, fd, s) = TCPPeer.established(rtt: 10 * Self.ms)
        let l = try Self.listener(p)
        let fresh = try p.stack.socket().get()
        for bad in [TimestampingFlag.optID, TimestampingFlag.optID | TimestampingFlag.software] {
            #expect(p.stack.setOption(fresh, .timestamping(flags: bad), now: p.now) == .EINVAL, "before connecting")
            #expect(p.stack.setOption(l, .timestamping(flags: bad), now: p.now) == .EINVAL, "a listener")
        }
        #expect(p.stack.setOption(fd, .timestamping(flags: 1 << 19), now: p.now) == .EINVAL)
        #expect(p.stack.setOption(fd, .timestamping(flags: TimestampingFlag.optIDTCP), now: p.now) == .EINVAL)
        #expect(p.stack.setOption(fd, .timestamping(flags: TimestampingFlag.optStats), now: p.now) == .EINVAL)
        #expect(p.stack.setOption(fd, .timestamping(flags: TimestampingFlag.bindPHC), now: p.now) == .EINVAL)
        #expect(try p.stack.option(fd, .timestamping).get() == .int(0), "a refused setting changes nothing")
        #expect(p.stack.setOption(fresh, .timestamping(flags: TimestampingFlag.software), now: p.now) == nil)
        // 100 bytes out, unacknowledged: OPT_ID now counts from snd_una.
        #expect(p.write(fd, Lab.pattern(100)) == .success(100))
        _ = p.take()
        let f = TimestampingFlag.txSched | TimestampingFlag.optID | TimestampingFlag.optTSOnly
        #expect(p.stack.setOption(fd, .timestamping(flags: f), now: p.now) == nil)
        #expect(try p.stack.option(fd, .timestamping).get() == .int(Int(f)))
        p.ackTo(s.sndNxt)
        #expect(p.write(fd, Lab.pattern(50)) == .success(50))
        #expect(try p.stack.nextErrorMessage(fd).get().data == 149)
        _ = p.take()
        p.ackTo(s.sndNxt)
        // Off and on again with OPT_ID_TCP: from write_seq.
        #expect(p.stack.setOption(fd, .timestamping(flags: 0), now: p.now) == nil)
        #expect(p.stack.setOption(fd, .timestamping(flags: f | TimestampingFlag.optIDTCP), now: p.now) == nil)
        #expect(p.write(fd, Lab.pattern(50)) == .success(50))
        #expect(try p.stack.nextErrorMessage(fd).get().data == 49)
    }

    // MARK: recvmsg(MSG_ERRQUEUE), malformed

    /// An empty queue is EAGAIN whatever the flags; handles that are not TCP sockets answer as
    /// Linux's do.
    @Test func anEmptyQueueOrAWrongHandleFailsAtOnce() throws {
        let (p, fd, _) = Self.zerocopyConnection()
        for flags: ReceiveFlags in [[.errorQueue], [.errorQueue, .peek], [.errorQueue, .waitAll], [.errorQueue, .dontWait]] {
            #expect(Self.receive(p, fd, flags: flags).result.failureValue == .EAGAIN)
        }
        var b = [UInt8](repeating: 0, count: 8)
        #expect(b.withUnsafeMutableBytes { p.stack.recv(fd, into: $0, flags: .errorQueue, now: p.now) }.failureValue == .EAGAIN)
        #expect(Self.receive(p, 9999).result.failureValue == .EBADF)
        #expect(Self.receive(p, -1).result.failureValue == .EBADF)
        let ep = p.stack.epollCreate()
        #expect(Self.receive(p, ep).result.failureValue == .ENOTSOCK)
        let udp = try p.stack.socket(.datagram).get()
        #expect(Self.receive(p, udp).result.failureValue == .EAGAIN)
        #expect(p.stack.nextErrorMessage(udp).failureValue == .EBADF)
        let l = try Self.listener(p)
        #expect(Self.receive(p, l).result.failureValue == .EAGAIN)
    }

    /// Control buffers too small for a message cut it as Linux's put_cmsg() does; the message is
    /// taken anyway, MSG_CTRUNC says what happened, and MSG_PEEK does not keep it.
    @Test func shortControlBuffersCutTheMessages() throws {
        let (p, fd, _) = TCPPeer.established(rtt: 10 * Self.ms)
        #expect(p.stack.setOption(fd, .timestamping(flags: TimestampingFlag.txSched | TimestampingFlag.software
                                                     | TimestampingFlag.optTSOnly), now: p.now) == nil)
        #expect(p.stack.setOption(fd, .noDelay(true), now: p.now) == nil)
        for _ in 0..<7 { #expect(p.write(fd, Lab.pattern(10)) == .success(10)) }
        #expect(p.stack.errorQueueLength(fd) == 7)
        // 0 bytes: nothing written.
        var r = Self.receive(p, fd, control: 0)
        #expect(try r.result.get() == ReceivedMessage(bytes: 0, flags: [.errorQueue, .controlTruncated], controlLength: 0))
        // Less than a header: nothing written, nothing touched.
        r = Self.receive(p, fd, control: 15)
        #expect(try r.result.get().controlLength == 0 && r.raw.allSatisfy { $0 == 0xEE })
        // 20 bytes: the first message cut to 20, its length says so.
        r = Self.receive(p, fd, control: 20)
        #expect(try r.result.get() == ReceivedMessage(bytes: 0, flags: [.errorQueue, .controlTruncated], controlLength: 20))
        #expect(r.raw.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) } == 20)
        // 64: the timestamp fits, IP_RECVERR has no room for a header.
        r = Self.receive(p, fd, control: 64)
        #expect(try r.result.get() == ReceivedMessage(bytes: 0, flags: [.errorQueue, .controlTruncated], controlLength: 64))
        #expect(r.cmsgs.map(\.type) == [37])
        // 80: IP_RECVERR's header alone.
        r = Self.receive(p, fd, control: 80)
        #expect(try r.result.get().controlLength == 80 && r.raw.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 64, as: UInt64.self) } == 16)
        // Exactly 112: both whole, no MSG_CTRUNC.
        r = Self.receive(p, fd, control: 112)
        #expect(try r.result.get() == ReceivedMessage(bytes: 0, flags: .errorQueue, controlLength: 112))
        // MSG_PEEK is ignored: the message goes.
        #expect(p.stack.errorQueueLength(fd) == 1)
        r = Self.receive(p, fd, flags: [.errorQueue, .peek])
        #expect(r.result.isSuccess && p.stack.errorQueueLength(fd) == 0)
    }

    /// Every control length from 0 to 120 against a message needing 112 bytes: nothing is
    /// written past the buffer, what is written is whole headers, MSG_CTRUNC exactly when short.
    @Test func everyControlLengthIsHandled() throws {
        let (p, fd, s) = TCPPeer.established(rtt: 10 * Self.ms)
        #expect(p.stack.setOption(fd, .noDelay(true), now: p.now) == nil)
        #expect(p.stack.setOption(fd, .timestamping(flags: TimestampingFlag.txSched | TimestampingFlag.software
                                                     | TimestampingFlag.optTSOnly), now: p.now) == nil)
        for length in 0...120 {
            #expect(p.write(fd, Lab.pattern(1)) == .success(1))
            _ = p.take()
            p.ackTo(s.sndNxt)
            let r = Self.receive(p, fd, control: length)
            let m = try r.result.get()
            #expect(m.controlLength <= length)
            #expect(m.flags.contains(.controlTruncated) == (length < 112), "length \(length)")
            #expect(r.raw[m.controlLength...].allSatisfy { $0 == 0xEE }, "nothing past what it says it wrote")
            let expected = length < 16 ? 0 : length < 64 ? length : length < 80 ? 64 : min(length, 112)
            #expect(m.controlLength == expected, "length \(length)")
        }
        #expect(p.stack.errorQueueLength(fd) == 0)
    }

    /// skb_zerocopy_notify_extend(): only a range that follows on, in a zerocopy message at the
    /// tail, and only while the merged range counts fewer than 2^32 ids.
    @Test func rangesMergeOnlyWhenTheyFollowOnAndFitIn32Bits() {
        var q = ErrorQueue()
        let r1 = q.extendZerocopy(first: 0, last: 0)
        #expect(!r1, "empty")
        let r2 = q.append(SocketErrorMessage(errno: 42, origin: ErrorOrigin.timestamping))
        #expect(r2)
        let r3 = q.extendZerocopy(first: 0, last: 0)
        #expect(!r3, "the tail is a timestamp")
        let r4 = q.append(SocketErrorMessage(errno: 0, origin: ErrorOrigin.zerocopy, info: 5, data: 5))
        #expect(r4)
        let r5 = q.extendZerocopy(first: 7, last: 7)
        #expect(!r5, "a gap")
        let r6 = q.extendZerocopy(first: 6, last: 9)
        #expect(r6)
        let r7 = q.append(SocketErrorMessage(errno: 0, origin: ErrorOrigin.zerocopy, info: 0, data: 0xFFFF_FFFD))
        #expect(r7)
        let r8 = q.extendZerocopy(first: 0xFFFF_FFFE, last: 0xFFFF_FFFE)
        #expect(r8, "2^32 - 1 ids")
        let r9 = q.extendZerocopy(first: 0xFFFF_FFFF, last: 0xFFFF_FFFF)
        #expect(!r9, "2^32 ids")
        _ = q.removeFirst()
        let a = q.removeFirst(), b = q.removeFirst(), c = q.removeFirst()
        #expect(a?.data == 9 && b?.data == 0xFFFF_FFFE && c == nil)
    }

    // MARK: poll and epoll

    /// zerocopy/epoll_edge.pkt: an edge-triggered item fires once per notification, even one
    /// merged into a range still queued; one-shot waits for a re-arm.
    @Test func edgeTriggeredEpollFiresOncePerNotification() throws {
        let (p, fd, s) = Self.zerocopyConnection()
        let base = s.sndNxt
        let ep = p.stack.epollCreate()
        #expect(p.stack.epollControl(ep, .add, fd, events: .writable, edgeTriggered: true) == nil)
        #expect(try p.stack.epollWait(ep, maxEvents: 1).get().map(\.events) == [.writable])
        for k in 1...2 {
            #expect(p.write(fd, Lab.pattern(100), flags: .zerocopy) == .success(100))
            _ = p.take()
            p.ackTo(base &+ UInt32(100 * k))
        }
        #expect(try p.stack.epollWait(ep, maxEvents: 1).get().map(\.events) == [[.error, .writable]])
        #expect(try p.stack.epollWait(ep, maxEvents: 1).get().isEmpty)
        #expect(p.write(fd, Lab.pattern(100), flags: .zerocopy) == .success(100))
        _ = p.take()
        p.ackTo(base &+ 300)
        #expect(p.stack.errorQueueLength(fd) == 1, "merged into the queued range")
        #expect(try p.stack.epollWait(ep, maxEvents: 1).get().map(\.events) == [[.error, .writable]])
        #expect(try p.stack.epollWait(ep, maxEvents: 1).get().isEmpty)
        let m = try p.stack.nextErrorMessage(fd).get()
        #expect(m.info == 0 && m.data == 2)
        #expect(!p.stack.poll(fd).contains(.error))
    }

    /// The queue is bounded: past its capacity messages are dropped, not queued.
    @Test func theQueueIsBounded() throws {
        let (p, fd, s) = TCPPeer.established(rtt: 10 * Self.ms)
        #expect(p.stack.setOption(fd, .timestamping(flags: TimestampingFlag.txSched | TimestampingFlag.txSoftware
                                                     | TimestampingFlag.optTSOnly), now: p.now) == nil)
        for _ in 0..<(ErrorQueue.capacity / 2 + 5) {
            #expect(p.write(fd, Lab.pattern(10)) == .success(10))
            _ = p.take()
            p.ackTo(s.sndNxt)
        }
        #expect(p.stack.errorQueueLength(fd) == ErrorQueue.capacity)
        var n = 0
        while case .success = p.stack.nextErrorMessage(fd) { n += 1 }
        #expect(n == ErrorQueue.capacity)
    }
}
