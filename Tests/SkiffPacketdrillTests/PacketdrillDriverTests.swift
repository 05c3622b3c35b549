import Foundation
import Testing
@testable import SkiffPacketdrill
import SkiffWire

/// packetdrill's view of Skiff: `driver.c`, compiled here with the system C compiler, dlopens
/// the built libSkiffPacketdrill.so and drives it as packetdrill does — a passive open checked
/// byte by byte, data out and its virtual times, a retransmission, both closes, a non-blocking
/// connect, malformed input — and prints one line per check.
@Suite struct PacketdrillDriverTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// The system C compiler, if there is one.
    static func compiler() -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(dir)/cc"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    /// The library built with these tests: next to the test binary first, then the package's
    /// debug and release folders.
    static func library() -> String? {
        let name = "libSkiffPacketdrill.so"
        var dirs = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()]
        for config in ["debug", "release"] { dirs.append(packageRoot.appendingPathComponent(".build/\(config)")) }
        for dir in dirs {
            var d = dir
            for _ in 0..<3 {
                let p = d.appendingPathComponent(name).path
                if FileManager.default.fileExists(atPath: p) { return p }
                d = d.deletingLastPathComponent()
            }
        }
        return nil
    }

    /// Runs `path` with `arguments`; kills it (by its pid) after `seconds`.
    static func run(_ path: String, _ arguments: [String], seconds: Double,
                    environment: [String: String] = [:]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = arguments
        if !environment.isEmpty {
            p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("skiff-pd-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let out = try FileHandle(forWritingTo: log)
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let deadline = Date().addingTimeInterval(seconds)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        try out.close()
        let data = (try? Data(contentsOf: log)) ?? Data()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test func driverProgram() throws {
        guard let cc = Self.compiler() else {
            print("PacketdrillDriverTests: skipped — no C compiler (cc) on PATH")
            return
        }
        guard let lib = Self.library() else {
            Issue.record("libSkiffPacketdrill.so not built: run `swift build --product SkiffPacketdrill`")
            return
        }
        let source = Self.packageRoot.appendingPathComponent("Tests/SkiffPacketdrillTests/driver.c").path
        let include = Self.packageRoot.appendingPathComponent("Sources/CSkiffPacketdrill/include").path
        let exe = FileManager.default.temporaryDirectory.appendingPathComponent("skiff-pd-driver-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: exe) }
        let (ccStatus, ccOutput) = try Self.run(cc, ["-Wall", "-I", include, "-o", exe, source, "-ldl"], seconds: 120)
        #expect(ccStatus == 0, "cc failed:\n\(ccOutput)")
        guard ccStatus == 0 else { return }
        // The getsockopt shim the suite runner preloads (scripts/packetdrill-preload.c).
        let shimSource = Self.packageRoot.appendingPathComponent("scripts/packetdrill-preload.c").path
        let shim = FileManager.default.temporaryDirectory.appendingPathComponent("skiff-pd-preload-\(getpid()).so").path
        defer { try? FileManager.default.removeItem(atPath: shim) }
        let (shimStatus, shimOutput) = try Self.run(cc, ["-Wall", "-shared", "-fPIC", "-o", shim, shimSource, "-ldl", "-lpthread"], seconds: 120)
        #expect(shimStatus == 0, "cc (shim) failed:\n\(shimOutput)")
        guard shimStatus == 0 else { return }
        let (status, output) = try Self.run(exe, [lib], seconds: 120,
                                            environment: ["LD_PRELOAD": shim, "SKIFF_PD_PRELOAD_CHECK": "1"])
        let failed = output.split(separator: "\n").filter { $0.hasPrefix("not ok") }
        #expect(status == 0 && failed.isEmpty, "driver against \(lib):\n\(output)")
        #expect(output.contains("checks, 0 failed"))
    }

    @Test func flagsParse() {
        let d = PacketdrillFlags(parsing: nil)
        #expect(d.localAddress == IPv4Address(192, 168, 0, 1) && d.prefixLength == 16 && d.problems.isEmpty)
        let f = PacketdrillFlags(parsing: "local_ip=10.0.0.2,netmask=255.255.255.0,gateway=10.0.0.1,mtu=9000,sysctl=0")
        #expect(f.localAddress == IPv4Address(10, 0, 0, 2) && f.prefixLength == 24 && f.gateway == IPv4Address(10, 0, 0, 1))
        #expect(f.mtu == 9000 && !f.followSysctls && f.problems.isEmpty)
        let bad = PacketdrillFlags(parsing: "local_ip=999.1.1.1,netmask=255.0.255.0,x,mtu=10")
        #expect(bad.localAddress == IPv4Address(192, 168, 0, 1) && bad.prefixLength == 16 && bad.mtu == 1500)
        #expect(bad.problems.count == 4)
    }
}
