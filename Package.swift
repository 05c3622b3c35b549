// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Skiff",
    products: [
        .library(name: "SkiffWire", targets: ["SkiffWire"]),
        .library(name: "Skiff", targets: ["Skiff"]),
        .library(name: "SkiffSim", targets: ["SkiffSim"]),
        .library(name: "SkiffLinux", targets: ["SkiffLinux"]),
        .executable(name: "skiff", targets: ["skiff"]),
        // packetdrill's shared-object interface: libSkiffPacketdrill.so for --so_filename.
        .library(name: "SkiffPacketdrill", type: .dynamic, targets: ["SkiffPacketdrill"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // Packet formats: pure, no dependencies, fuzzable.
        .target(name: "SkiffWire"),
        // The stack: one folder per stage of the transmit path.
        .target(name: "Skiff", dependencies: ["SkiffWire"]),
        // Simulated hosts: memory links, switch, impairments, virtual clock.
        .target(name: "SkiffSim", dependencies: ["Skiff", "SkiffWire"]),
        // Real hosts: TAP, TUN and AF_PACKET ports and the engine threads that poll them.
        .target(name: "CSkiffLinux"),
        .target(name: "SkiffLinux", dependencies: ["Skiff", "SkiffWire", "CSkiffLinux"]),
        // Counts heap allocations for the benchmarks (linked into the CLI only).
        .target(name: "CAllocCounter"),
        .executableTarget(
            name: "skiff",
            dependencies: [
                "Skiff", "SkiffSim", "SkiffWire", "SkiffLinux", "CAllocCounter",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The C side of the packetdrill interface: the table's declaration, the entry point and
        // the variadic fcntl / ioctl trampolines.
        .target(name: "CSkiffPacketdrill"),
        // A Skiff host behind packetdrill's table of system calls.
        .target(name: "SkiffPacketdrill", dependencies: ["Skiff", "SkiffWire", "CSkiffPacketdrill"]),
        .testTarget(name: "SkiffWireTests", dependencies: ["SkiffWire"], resources: [.copy("Golden")]),
        .testTarget(name: "SkiffTests", dependencies: ["Skiff", "SkiffSim", "SkiffWire"]),
        .testTarget(name: "SkiffLinuxTests", dependencies: ["SkiffLinux", "Skiff", "SkiffWire"]),
        // Skiff against the Linux kernel in network namespaces (root; skips otherwise).
        .testTarget(name: "SkiffInteropTests", dependencies: ["skiff"]),
        // driver.c is compiled by the test with the system C compiler, not by SwiftPM.
        .testTarget(name: "SkiffPacketdrillTests", dependencies: ["SkiffPacketdrill", "SkiffWire"],
                    exclude: ["driver.c"]),
    ],
    swiftLanguageModes: [.v6]
)
