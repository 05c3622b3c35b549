import Foundation
import Testing
@testable import Skiff
import SkiffSim
import SkiffWire

/// Packet capture: what a `PacketTap` writes is a valid classic pcap file with one record per
/// tapped packet, and (when tshark is installed) Wireshark's dissectors find nothing malformed
/// and no bad checksum in a capture of every kind of traffic the stack makes.
@Suite struct PcapTests {
    typealias P = Scenarios.SwitchedPair

    /// tshark on PATH, if any.
    static let tshark: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") + ["/usr/bin", "/usr/local/bin"] {
            let p = "\(dir)/tshark"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }()

    /// A's view of a conversation with B: ARP, pings (one fragmented), UDP delivered and to a
    /// closed port (ICMP error back), and a software-GSO UDP burst. Returns the tap.
    static func capture(_ path: String) throws -> (PacketTap, Scenarios.SwitchedPair) {
        let s = Scenarios.switchedPair()
        let tap = PacketTap(writer: try PcapWriter(path: path))
        s.a.taps.append(tap)
        s.b.udpListeners.insert(7)
        _ = s.a.ping(P.bAddress, identifier: 3, sequence: 1, now: s.world.now)
        s.world.run(until: s.world.now + Time.millisecond)
        _ = s.a.ping(P.bAddress, identifier: 3, sequence: 2, payloadSize: 4000, now: s.world.now)
        s.world.run(until: s.world.now + Time.millisecond)
        var cache = RouteCache()
        for port: UInt16 in [7, 9] {
            _ = s.a.processContext(now: s.world.now) {
                s.a.udpSend(to: P.bAddress, sourcePort: 1234, destinationPort: port, payloadLength: 333, route: &cache) { b in
                    for i in 0..<b.count { b[i] = UInt8(truncatingIfNeeded: i) }
                }
            }
            s.world.run(until: s.world.now + Time.millisecond)
        }
        _ = DeviceTests.sendGSO(s.a, to: P.bAddress, payload: 3000, gso: 1200, now: s.world.now)
        s.world.run(until: s.world.now + Time.millisecond)
        tap.writer.close()
        return (tap, s)
    }

    @Test func pingExchangeIsWrittenRecordForRecord() throws {
        let path = Lab.temporaryPath("ping")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (tap, s) = try Self.capture(path)
        #expect(s.a.echoReplies.map(\.sequence) == [1, 2])
        #expect(s.a.counters.icmpInDestUnreachs == 1)
        #expect(s.b.udpDelivered == 1 + 3)
        let file = try #require(Lab.readPcap(path))
        // Global header: magic, version 2.4, zone 0, sigfigs 0, snaplen, link type Ethernet.
        #expect(file.header == [0xD4, 0xC3, 0xB2, 0xA1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                0x00, 0x00, 0x04, 0x00, 1, 0, 0, 0])
        #expect(file.records.count == Int(tap.captured))
        #expect(tap.writer.packets == tap.captured)
        // ARP request+reply, 2 echo requests (the second in 3 fragments) and their replies,
        // 2 UDP, 1 ICMP error, 3 GSO segments.
        #expect(tap.captured == 2 + (1 + 3) + (1 + 3) + 2 + 1 + 3)
        #expect(file.records.allSatisfy { $0.capturedLength == $0.length && $0.bytes.count == $0.length })
        let first = try #require(file.records.first)
        #expect(Lab.arpPacket(first.bytes)?.operation == .request)
        #expect(Lab.destinationMAC(first.bytes) == .broadcast)
        let times = file.records.map { UInt64($0.seconds) * 1_000_000 + UInt64($0.microseconds) }
        #expect(times == times.sorted())
        // Every IPv4 record has a good header checksum.
        let ip = file.records.filter { Lab.etherType($0.bytes) == EtherType.ipv4 }
        #expect(ip.count == Int(tap.captured) - 2)
        #expect(ip.allSatisfy { Lab.ipPacket($0.bytes) != nil })
    }

    @Test(.enabled(if: PcapTests.tshark != nil, "tshark is not installed"))
    func tsharkFindsNothingMalformedAndNoBadChecksum() throws {
        let path = Lab.temporaryPath("tshark")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (tap, _) = try Self.capture(path)
        let out = try Self.run(Self.tshark!, ["-n", "-r", path,
                                              "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
                                              "-o", "tcp.check_checksum:TRUE",
                                              "-T", "fields", "-e", "frame.number", "-e", "_ws.col.Protocol",
                                              "-e", "_ws.expert.message"])
        let lines = out.split(separator: "\n")
        #expect(lines.count == Int(tap.captured))
        let lower = out.lowercased()
        #expect(!lower.contains("malformed"), "\(out)")
        #expect(!lower.contains("bad checksum"), "\(out)")
        #expect(!lower.contains("incorrect"), "\(out)")
        #expect(!lower.contains("bogus"), "\(out)")
        // The dissectors recognised every layer we sent.
        let protocols = Set(lines.map { $0.split(separator: "\t", omittingEmptySubsequences: false)[1] })
        #expect(protocols.isSuperset(of: ["ARP", "ICMP", "UDP"]), "\(protocols)")
        // The expert summary agrees: no errors or warnings.
        let expert = try Self.run(Self.tshark!, ["-n", "-r", path, "-o", "ip.check_checksum:TRUE",
                                                 "-o", "udp.check_checksum:TRUE", "-q", "-z", "expert,warn"])
        #expect(!expert.contains("Errors ("), "\(expert)")
        #expect(!expert.contains("Warns ("), "\(expert)")
    }

    @Test func skipNoticeWhenTsharkIsMissing() {
        if Self.tshark == nil {
            print("PcapTests: tshark not found on PATH; the dissector cross-check is skipped")
        }
        #expect(Self.tshark == nil || FileManager.default.isExecutableFile(atPath: Self.tshark!))
    }

    @Test func unwritablePathThrowsOpenError() {
        let path = "/nonexistent-skiff-dir/\(getpid())/x.pcap"
        #expect(throws: PcapError.open(path: path, errno: ENOENT)) { _ = try PcapWriter(path: path) }
        do {
            _ = try PcapWriter(path: path)
            Issue.record("opened \(path)")
        } catch {
            #expect(String(describing: error).contains("cannot open \(path)"))
        }
    }

    static func run(_ exe: String, _ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
