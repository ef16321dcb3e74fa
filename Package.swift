// swift-tools-version:6.1
import PackageDescription

// Berth: Docker's network model as CNI plugins, over raw netlink (libmnl) and nftables (libnftnl).
//
// Plugin code imports at most FoundationEssentials (start-up cost, see ARCHITECTURE.md);
// the protocol, JSON and IP modules import no Foundation at all.
let package = Package(
    name: "Berth",
    dependencies: [
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // Linux calls hidden behind _GNU_SOURCE in Swift's Glibc module (pipe2, setns, unshare).
        .systemLibrary(name: "CLinux"),
        // C libraries, linked dynamically (Debian ships no libmnl.a).
        .systemLibrary(
            name: "CMnl",
            pkgConfig: "libmnl",
            providers: [.apt(["libmnl-dev"])]
        ),
        .systemLibrary(
            name: "CNftnl",
            pkgConfig: "libnftnl",
            providers: [.apt(["libnftnl-dev"])]
        ),

        // JSON values with ordered objects, a strict parser and a stable writer.
        .target(name: "BerthJSON"),
        // IPv4/IPv6 addresses and prefixes.
        .target(name: "BerthIP"),
        // The CNI protocol: env, config, versions, results, errors, entry point, delegation.
        .target(
            name: "BerthCNI",
            dependencies: [
                "BerthJSON", "BerthIP", "CLinux",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // Address management: host-local-compatible config, allocator and on-disk lease store.
        .target(
            name: "BerthIPAM",
            dependencies: [
                "BerthCNI", "BerthIP", "BerthJSON", "CLinux",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // nftables: the model, its nft text, the generator, libnftnl batches and their transport.
        .target(
            name: "BerthFirewall",
            dependencies: ["BerthNetlink", "BerthIP", "CMnl", "CNftnl"]
        ),
        // What every plugin (and netctl) shares: attachment records and the network lock,
        // namespace identity, a namespace read back as a CNI result, undo and GC/STATUS plumbing,
        // the mapping of lower-layer errors to CNI codes.
        .target(
            name: "BerthAttachments",
            dependencies: [
                "BerthCNI", "BerthFirewall", "BerthNetlink", "BerthIP", "BerthJSON", "CLinux",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // berth-bridge: Docker's default network mode over the layers above.
        .target(
            name: "BerthBridge",
            dependencies: [
                "BerthAttachments", "BerthCNI", "BerthIPAM", "BerthFirewall", "BerthNetlink", "BerthIP", "BerthJSON", "CLinux",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // berth-host: Docker's `--network host`; berth-container: `--network container:<id>`.
        .target(
            name: "BerthHost",
            dependencies: ["BerthAttachments", "BerthCNI", "BerthFirewall", "BerthNetlink", "BerthIP", "BerthJSON", "CLinux"]
        ),
        .target(
            name: "BerthContainer",
            dependencies: ["BerthAttachments", "BerthCNI", "BerthNetlink", "BerthIP", "BerthJSON"]
        ),
        // rtnetlink and nfnetlink sockets, bound to network namespaces.
        .target(
            name: "BerthNetlink",
            dependencies: [
                "BerthIP", "CMnl", "CNftnl", "CLinux",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),

        // Plugins: thin executables over the library modules.
        .executableTarget(name: "berth-ipam", dependencies: ["BerthIPAM", "BerthCNI"]),
        .executableTarget(name: "berth-bridge", dependencies: ["BerthBridge", "BerthCNI"]),
        .executableTarget(name: "berth-host", dependencies: ["BerthHost", "BerthCNI"]),
        .executableTarget(name: "berth-container", dependencies: ["BerthContainer", "BerthCNI"]),

        // netctl: the debugging CLI (a CNI runtime by hand, namespaces, attachments, rules, doctor).
        .target(
            name: "BerthCtl",
            dependencies: [
                "BerthAttachments", "BerthCNI", "BerthFirewall", "BerthIPAM", "BerthNetlink", "BerthIP", "BerthJSON",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .executableTarget(name: "netctl", dependencies: ["BerthCtl"]),

        // Test fixtures: a scripted IPAM plugin and a minimal plugin on the entry point. Tests run
        // them from the build's products directory (`swift build --build-tests` builds them).
        .executableTarget(
            name: "fixture-ipam",
            dependencies: ["BerthCNI", "BerthJSON"],
            path: "Tests/Fixtures/fixture-ipam"
        ),
        .executableTarget(
            name: "fixture-plugin",
            dependencies: ["BerthCNI"],
            path: "Tests/Fixtures/fixture-plugin"
        ),

        // Benchmarks (Scripts/bench.sh): release builds run inside a network sandbox.
        .executableTarget(
            name: "berth-bench",
            dependencies: ["BerthNetlink", "BerthIP", "BerthIPAM", "BerthCNI", "BerthFirewall", "BerthJSON"],
            path: "Benchmarks/berth-bench"
        ),

        // Reliability (Scripts/reliability.sh): kills, concurrency, fuzzing, isolation and input
        // limits against the built plugins and the reference, inside a network sandbox.
        .executableTarget(
            name: "berth-reliability",
            dependencies: ["BerthTestSupport", "BerthCNI", "BerthIP", "BerthJSON"],
            path: "Reliability/berth-reliability"
        ),

        // Helpers shared by the test targets and the reliability harness: running programs and
        // built executables, scratch namespaces, data-plane labs.
        .target(
            name: "BerthTestSupport",
            dependencies: ["BerthCNI", "BerthIP", "BerthJSON", "BerthNetlink", "CLinux"],
            path: "Tests/BerthTestSupport"
        ),

        .testTarget(name: "BerthJSONTests", dependencies: ["BerthJSON"]),
        .testTarget(name: "BerthIPTests", dependencies: ["BerthIP"]),
        .testTarget(
            name: "BerthCNITests",
            dependencies: ["BerthCNI", "BerthJSON", "BerthIP", "BerthTestSupport"]
        ),
        .testTarget(name: "BerthIPAMTests", dependencies: ["BerthIPAM", "BerthCNI", "BerthIP", "BerthJSON", "BerthTestSupport"]),
        .testTarget(name: "BerthFirewallTests", dependencies: ["BerthFirewall", "BerthNetlink", "BerthIP", "BerthJSON", "BerthTestSupport"]),
        .testTarget(name: "BerthBridgeTests", dependencies: ["BerthBridge", "BerthCNI", "BerthIP", "BerthJSON", "BerthNetlink", "BerthFirewall", "BerthTestSupport"]),
        .testTarget(name: "BerthAttachmentsTests", dependencies: ["BerthAttachments", "BerthCNI", "BerthIP", "BerthJSON", "BerthNetlink", "BerthTestSupport"]),
        .testTarget(name: "BerthModeTests", dependencies: ["BerthHost", "BerthContainer", "BerthAttachments", "BerthCNI", "BerthIP", "BerthJSON", "BerthNetlink", "BerthTestSupport"]),
        .testTarget(name: "BerthCtlTests", dependencies: ["BerthCtl", "BerthCNI", "BerthIP", "BerthJSON", "BerthTestSupport"]),
        .testTarget(name: "BerthRuntimeTests", dependencies: ["BerthCNI", "BerthIP", "BerthJSON", "BerthTestSupport"]),
        .testTarget(name: "BerthNetlinkTests", dependencies: ["BerthNetlink", "BerthIP", "BerthJSON", "BerthTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
