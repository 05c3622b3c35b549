import Foundation
import SkiffWire
import Testing

// Frames captured from Linux 6.18 in two network namespaces joined by veth
// (see scripts/capture-golden.sh), stored in Golden/*.hex with tcpdump's
// summary above each frame. A = 10.99.0.1 / 02:00:00:99:00:01,
// B = 10.99.0.2 / 02:00:00:99:00:02. Expected values are the ones tcpdump
// printed for the same frames; re-capturing changes sequence numbers,
// timestamps and IP identifications, and these expectations with them.

private let macA = MACAddress(0x02, 0x00, 0x00, 0x99, 0x00, 0x01)
private let macB = MACAddress(0x02, 0x00, 0x00, 0x99, 0x00, 0x02)
private let ipA = IPv4Address(10, 99, 0, 1)
private let ipB = IPv4Address(10, 99, 0, 2)

@Suite("Golden Linux traces")
struct GoldenTests {
    @Test("every golden frame parses, verifies and re-emits byte for byte", arguments: Golden.names)
    func roundTrip(name: String) throws {
        let frames = try Golden.frames(name)
        #expect(!frames.isEmpty)
        for (i, frame) in frames.enumerated() {
            let d = try dissect(frame)
            let again = rebuild(d, like: frame)
            #expect(again == frame, "\(name) frame \(i): \(hexString(again)) != \(hexString(frame))")
        }
    }

    // 02:00:00:99:00:01 > ff:ff:ff:ff:ff:ff ARP Request who-has 10.99.0.2 tell 10.99.0.1
    // 02:00:00:99:00:02 > 02:00:00:99:00:01 ARP Reply 10.99.0.2 is-at 02:00:00:99:00:02
    // 10.99.0.1 > 10.99.0.2: ICMP echo request, id 6675, seq 1, length 64   (ip id 39517, DF)
    // 10.99.0.2 > 10.99.0.1: ICMP echo reply, id 6675, seq 1, length 64     (ip id 63238)
    @Test func arpThenPing() throws {
        let f = try Golden.frames("arp-ping")
        try #require(f.count == 4)

        let who = try dissect(f[0])
        #expect(f[0].count == 42)  // veth does not pad to 60
        #expect(who.ethernet == EthernetHeader(destination: .broadcast, source: macA, etherType: EtherType.arp))
        #expect(who.arp == ARPPacket(operation: .request, senderMAC: macA, senderIP: ipA, targetMAC: .zero, targetIP: ipB))

        let isAt = try dissect(f[1])
        #expect(isAt.ethernet.destination == macA)
        #expect(isAt.arp == ARPPacket(operation: .reply, senderMAC: macB, senderIP: ipB, targetMAC: macA, targetIP: ipA))

        let request = try dissect(f[2])
        let rq = try #require(request.ip)
        #expect(rq.source == ipA && rq.destination == ipB)
        #expect(rq.identification == 39517 && rq.dontFragment && !rq.isFragment)
        #expect(rq.ttl == 64 && rq.protocol == IPProtocol.icmp && rq.totalLength == 84)
        #expect(rq.checksum == 0x8B83)
        #expect(request.icmp?.message == .echoRequest(identifier: 6675, sequence: 1))
        #expect(request.payload.count == 56)
        #expect(Array(request.payload.suffix(40)) == Array(0x10...0x37))  // ping's pattern

        let reply = try dissect(f[3])
        #expect(reply.ip?.identification == 63238 && reply.ip?.dontFragment == false)
        #expect(reply.icmp?.message == .echoReply(identifier: 6675, sequence: 1))
        #expect(reply.payload == request.payload)
    }

    // ping -s 4000: three fragments each way, id 39875, offsets 0/1480/2960.
    @Test func fragmentedPingReassembles() throws {
        let f = try Golden.frames("ping-fragmented")
        try #require(f.count == 6)
        var message: [UInt8] = []
        let expect: [(offset: UInt16, more: Bool, total: UInt16)] = [(0, true, 1500), (1480, true, 1500), (2960, false, 1068)]
        for (k, e) in expect.enumerated() {
            let d = try dissect(f[k])
            let ip = try #require(d.ip)
            #expect(ip.identification == 39875)
            #expect(ip.fragmentOffset == e.offset && ip.moreFragments == e.more && ip.totalLength == e.total)
            #expect(ip.isFragment && !ip.dontFragment)
            try f[k].withUnsafeBytes { b in
                let v = try IPv4View(checking: UnsafeRawBufferPointer(rebasing: b[14...]))
                #expect(Int(v.fragmentOffset) == message.count)
                message += Array(v.payload)
            }
        }
        #expect(message.count == 8 + 4000)
        try message.withUnsafeBytes { b in
            let icmp = try ICMPv4Header.parse(b)  // checksum over the reassembled message
            #expect(icmp.message == .echoRequest(identifier: 6689, sequence: 1))
        }
        #expect(try dissect(f[3]).ip?.identification == 63262)
        #expect(try dissect(f[3]).icmp?.message == .echoReply(identifier: 6689, sequence: 1))
    }

    // ping -R: NOP + Record Route (len 39, ptr 8, first slot 10.99.0.1) on the
    // request; the reply carries RR with three slots filled, then EOL.
    @Test func recordRouteOptions() throws {
        let f = try Golden.frames("ping-record-route")
        try #require(f.count == 2)
        let rq = try #require(try dissect(f[0]).ip)
        #expect(rq.headerLength == 60 && rq.options.count == 40)
        #expect(Array(rq.options) == [
            IPv4Options.Option(type: 1, offset: 0, length: 1),
            IPv4Options.Option(type: 7, offset: 1, length: 39),
        ])
        #expect(rq.options[3] == 8)  // pointer
        #expect([rq.options[4], rq.options[5], rq.options[6], rq.options[7]] == [10, 99, 0, 1])

        let rp = try #require(try dissect(f[1]).ip)
        #expect(Array(rp.options) == [IPv4Options.Option(type: 7, offset: 0, length: 39)])
        #expect(rp.options[2] == 16)
        #expect(rp.options[39] == 0)  // End of Option List
        #expect(rp.headerLength == 60 && rp.totalLength == 124)
    }

    // 10.99.0.1.40000 > 10.99.0.2.7777: UDP, length 16  "skiff golden udp"
    // 10.99.0.2.7777 > 10.99.0.1.40000: UDP, length 4   "pong"
    @Test func udpExchange() throws {
        let f = try Golden.frames("udp")
        try #require(f.count == 2)
        let q = try dissect(f[0])
        #expect(q.udp == UDPHeader(sourcePort: 40000, destinationPort: 7777, length: 24, checksum: q.udp!.checksum))
        #expect(q.udp!.checksum != 0)
        #expect(String(decoding: q.payload, as: UTF8.self) == "skiff golden udp")
        #expect(q.ip?.identification == 7237)
        let a = try dissect(f[1])
        #expect(a.udp?.sourcePort == 7777 && a.udp?.destinationPort == 40000 && a.udp?.length == 12)
        #expect(String(decoding: a.payload, as: UTF8.self) == "pong")

        // The checksum the emitter computes equals Linux's.
        var copy = Array(f[0][34...])
        copy.withUnsafeMutableBytes { UDPHeader.fillChecksum(datagram: $0, source: ipA, destination: ipB) }
        #expect(copy == Array(f[0][34...]))
    }

    // 10.99.0.2 > 10.99.0.1: ICMP 10.99.0.2 udp port 9 unreachable, length 49
    //   quoting (ttl 64, id 7642, DF, UDP, length 41) 10.99.0.1.40001 > 10.99.0.2.9
    @Test func portUnreachableQuotesTheDatagram() throws {
        let f = try Golden.frames("port-unreachable")
        try #require(f.count == 2)
        let probe = try dissect(f[0])
        #expect(probe.udp?.destinationPort == 9)
        let err = try dissect(f[1])
        #expect(err.ip?.tos == 0xC0)  // Linux sends ICMP errors as CS6
        #expect(err.icmp?.message == .destinationUnreachable(code: ICMPv4UnreachableCode.port, nextHopMTU: 0))
        try err.payload.withUnsafeBytes { quoted in
            let inner = try IPv4View(checking: quoted)
            #expect(inner.identification == 7642 && inner.protocol == IPProtocol.udp)
            #expect(inner.source == ipA && inner.destination == ipB)
            let udp = try UDPView(checking: inner.payload)
            #expect(udp.sourcePort == 40001 && udp.destinationPort == 9)
            #expect(String(decoding: udp.payload, as: UTF8.self) == "anyone there?")
        }
        #expect(Array(err.payload) == Array(f[0][14...]))
    }

    // 10.99.0.1.45000 > 10.99.0.2.8080: Flags [S], seq 1768607737, win 64240,
    //   options [mss 1460,sackOK,TS val 1651629442 ecr 0,nop,wscale 10]
    // 10.99.0.2.8080 > 10.99.0.1.45000: Flags [S.], seq 2249478764, ack 1768607738, win 65160,
    //   options [mss 1460,sackOK,TS val 3072776690 ecr 1651629442,nop,wscale 10]
    // 10.99.0.1.45000 > 10.99.0.2.8080: Flags [.], ack 1, win 63, options [nop,nop,TS ...]
    // 10.99.0.1.45000 > 10.99.0.2.8080: Flags [P.], seq 1:13, ack 1, win 63  "hello skiff\n"
    @Test func tcpHandshakeAndData() throws {
        let f = try Golden.frames("tcp-handshake")
        try #require(f.count == 10)

        let syn = try #require(try dissect(f[0]).tcp)
        #expect(syn.sourcePort == 45000 && syn.destinationPort == 8080)
        #expect(syn.flags == .syn && syn.sequenceNumber == 1_768_607_737 && syn.window == 64240)
        #expect(syn.dataOffset == 40 && syn.headerLength == 40 && syn.checksum == 0xEF92)
        #expect(syn.options == TCPOptions(maximumSegmentSize: 1460, windowScale: 10, sackPermitted: true,
                                          timestamp: TCPTimestamp(value: 1_651_629_442, echo: 0)))
        // Linux's SYN option bytes, reproduced by TCPOptions.emit.
        #expect(Array(f[0][54..<74]) == hex("020405b4 0402080a 6271dd82 00000000 0103030a"))
        var opts = [UInt8](repeating: 0xEE, count: 20)
        #expect(opts.withUnsafeMutableBytes { syn.options.emit(into: $0) } == 20)
        #expect(opts == Array(f[0][54..<74]))

        let synAck = try #require(try dissect(f[1]).tcp)
        #expect(synAck.flags == [.syn, .ack])
        #expect(synAck.sequenceNumber == 2_249_478_764 && synAck.acknowledgmentNumber == 1_768_607_738)
        #expect(synAck.options.timestamp == TCPTimestamp(value: 3_072_776_690, echo: 1_651_629_442))
        #expect(try dissect(f[1]).ip?.identification == 0)

        let ack = try #require(try dissect(f[2]).tcp)
        #expect(ack.flags == .ack && ack.window == 63 && ack.dataOffset == 32)
        #expect(ack.options == TCPOptions(timestamp: TCPTimestamp(value: 1_651_629_442, echo: 3_072_776_690)))
        #expect(Array(f[2][54..<58]) == [1, 1, 8, 10])

        let data = try dissect(f[3])
        #expect(data.tcp?.flags == [.psh, .ack])
        #expect(data.tcp?.sequenceNumber == 1_768_607_738)
        #expect(String(decoding: data.payload, as: UTF8.self) == "hello skiff\n")

        let reply = try dissect(f[5])
        #expect(String(decoding: reply.payload, as: UTF8.self) == "hello linux\n")
        #expect(try dissect(f[7]).tcp?.flags == [.fin, .ack])
        #expect(try dissect(f[8]).tcp?.flags == [.fin, .ack])

        // The emitted header + fillChecksum reproduces Linux's checksum.
        var seg = Array(f[3][34...])
        seg.withUnsafeMutableBytes { TCPHeader.fillChecksum(segment: $0, source: ipA, destination: ipB) }
        #expect(seg == Array(f[3][34...]))
    }

    // net.ipv4.tcp_timestamps=0:
    // Flags [S], options [mss 1460,nop,nop,sackOK,nop,wscale 10]
    @Test func synWithoutTimestampsLayout() throws {
        let f = try Golden.frames("tcp-no-timestamps")
        try #require(f.count == 2)
        let syn = try #require(try dissect(f[0]).tcp)
        #expect(syn.options == TCPOptions(maximumSegmentSize: 1460, windowScale: 10, sackPermitted: true))
        #expect(Array(f[0][54..<66]) == hex("020405b4 01010402 0103030a"))
        #expect(syn.options.encodedLength == 12 && syn.dataOffset == 32)
        #expect(try dissect(f[1]).tcp?.flags == [.syn, .ack])
    }

    // B drops every 7th data segment; B's ACKs carry SACK blocks (sequence
    // numbers below are relative to A's ISN, as tcpdump prints them).
    // Flags [.], ack 2897, options [nop,nop,TS val 994940110 ecr 3685382582,nop,nop,sack 1 {4345:5793}]
    // Flags [.], ack 2897, ... sack 2 {14481:15929}{4345:13033}
    // Flags [.], ack 39097, ... sack 3 {59369:60817}{50681:57921}{40545:49233}
    @Test func sackBlocks() throws {
        let f = try Golden.frames("tcp-sack")
        let synAck = try #require(try dissect(f[0]).tcp)
        #expect(synAck.flags == [.syn, .ack])
        let isn = synAck.acknowledgmentNumber &- 1
        func rel(_ b: SACKBlock) -> [UInt32] { [b.left &- isn, b.right &- isn] }

        let first = try #require(try dissect(f[3]).tcp)
        #expect(first.acknowledgmentNumber &- isn == 2897)
        #expect(first.options.timestamp == TCPTimestamp(value: 994_940_110, echo: 3_685_382_582))
        #expect(first.options.sackBlocks.map(rel) == [[4345, 5793]])
        #expect(Array(f[3][66..<70]) == [1, 1, 5, 10])  // NOP NOP SACK len 10

        let two = try #require(try dissect(f[9]).tcp)
        #expect(two.options.sackBlocks.map(rel) == [[14481, 15929], [4345, 13033]])

        var sawThree = false
        for frame in f {
            let tcp = try #require(try dissect(frame).tcp)
            if tcp.options.sackBlocks.count == 3, tcp.acknowledgmentNumber &- isn == 39097 {
                #expect(tcp.options.sackBlocks.map(rel) == [[59369, 60817], [50681, 57921], [40545, 49233]])
                #expect(tcp.headerLength == 20 + 12 + 4 + 24)
                sawThree = true
                break
            }
        }
        #expect(sawThree)
    }

    // The capture kernel has no 802.1Q devices, so the script inserted the tag
    // into Linux's own echo request (see the note in Golden/vlan.hex).
    // 02:00:00:99:00:01 > 02:00:00:99:00:02, ethertype 802.1Q, vlan 5, p 0, ethertype IPv4
    //   10.99.0.1 > 10.99.0.2: ICMP echo request, id 6675, seq 1
    @Test func vlanTaggedFrame() throws {
        let f = try Golden.frames("vlan")
        try #require(f.count == 1)
        let d = try dissect(f[0])
        #expect(d.ethernet.vlan == VLANTag(pcp: 0, dei: false, vid: 5))
        #expect(d.ethernet.etherType == EtherType.ipv4 && d.ethernet.length == 18)
        #expect(d.icmp?.message == .echoRequest(identifier: 6675, sequence: 1))
        try f[0].withUnsafeBytes { b in
            let v = try EthernetView(checking: b)
            #expect(v.headerLength == 18 && v.vlan?.vid == 5)
            #expect(Array(v.payload) == Array(try Golden.frames("arp-ping")[2][14...]))
        }
    }
}
