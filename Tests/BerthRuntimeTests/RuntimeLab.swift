import BerthCNI
import BerthJSON
import BerthTestSupport
import Foundation
import Testing

/// What the runtime tests share: the Go programs built from Tests/Interop (the runtimes' own
/// libraries driving the plugins), conflists written to a scratch directory, and the plugin lab
/// (a host namespace with an uplink to an outside namespace) as the machine the runtime runs on.

/// A Go program under Tests/Interop, built into .build/ by `berth_build_interop_drivers`.
struct InteropProgram {
    let path: String

    init(_ name: String) { path = repositoryRoot + "/.build/" + name }

    /// Available, or required to be (the test command builds them): a missing one then fails.
    var enabled: Bool {
        FileManager.default.isExecutableFile(atPath: path) || ProcessInfo.processInfo.environment["BERTH_REQUIRE_KERNEL_TESTS"] == "1"
    }

    /// Runs the program in `namespace` (the lab's host) with the CNI plugin path set.
    func run(in namespace: ScratchNamespace, _ arguments: [String], environment: [String] = []) throws -> ProcessOutcome {
        try runExecutable("/usr/bin/nsenter", arguments: ["--net=\(namespace.path)", path] + arguments,
                          environment: ["CNI_PATH=\(productsDirectory):/usr/lib/cni", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"] + environment,
                          stdin: [])
    }

    static let libcni = InteropProgram("libcni-driver")
    static let gocni = InteropProgram("gocni-driver")
    static let criClient = InteropProgram("cri-client")
}

extension PluginLab {
    /// berth-bridge's entry of a conflist: the lab's state and lease directories, `extra` keys.
    func bridgePlugin(bridge: String = "berth0", subnet: String = "10.88.0.0/16", extra: JSONObject = [:]) -> JSON {
        var object: JSONObject = [
            "type": .string("berth-bridge"), "bridge": .string(bridge), "stateDir": .string(stateDirectory),
            "ipam": .object(["type": .string("berth-ipam"), "dataDir": .string(dataDirectory),
                             "ranges": .array([.array([.object(["subnet": .string(subnet)])])])]),
        ]
        for member in extra { object[member.key] = member.value }
        return .object(object)
    }

    func hostPlugin(extra: JSONObject = [:]) -> JSON {
        var object: JSONObject = ["type": .string("berth-host"), "stateDir": .string(stateDirectory),
                                  "resolvConf": .string(dataDirectory + "/resolv.conf")]
        for member in extra { object[member.key] = member.value }
        return .object(object)
    }

    func joinPlugin(extra: JSONObject = [:]) -> JSON {
        var object: JSONObject = ["type": .string("berth-container"), "stateDir": .string(stateDirectory)]
        for member in extra { object[member.key] = member.value }
        return .object(object)
    }

    /// Nothing of Berth's left: no record, lease, host veth or nftables table.
    var clean: Bool {
        let states = (try? FileManager.default.contentsOfDirectory(atPath: stateDirectory)) ?? []
        let records = states.flatMap { network in
            ((try? FileManager.default.contentsOfDirectory(atPath: "\(stateDirectory)/\(network)")) ?? []).filter { $0.hasSuffix(".json") }
        }
        let networks = (try? FileManager.default.contentsOfDirectory(atPath: dataDirectory)) ?? []
        let leaseFiles = networks.flatMap { leases($0) }
        return records.isEmpty && leaseFiles.isEmpty && ((try? hostVeths()) ?? ["?"]).isEmpty && table().isEmpty
    }

    /// The paths left under the state and lease directories, for failure messages.
    var leftovers: String {
        [stateDirectory, dataDirectory].compactMap { FileManager.default.subpaths(atPath: $0)?.joined(separator: " ") }.joined(separator: " | ")
            + " veths: \((try? hostVeths()) ?? [])"
    }
}

/// A conflist's text.
func conflist(_ name: String, version: String = "1.0.0", _ plugins: JSON...) -> String {
    JSON.object(["cniVersion": .string(version), "name": .string(name), "plugins": .array(plugins)]).serialized()
}

/// A scratch directory for a test's conflists and caches, removed when the test's value goes.
final class ScratchFiles {
    let path: String
    init() throws { path = try makeTemporaryDirectory() }
    deinit { removeTemporaryDirectory(path) }

    /// Writes `text` to `name` in the directory; its path.
    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        let file = "\(path)/\(name)"
        try FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }
}

/// The mapping runtimes pass for `-p hostPort:containerPort` in runtimeConfig.portMappings.
func mapping(_ hostPort: Int, _ containerPort: Int, proto: String = "tcp") -> JSON {
    .object(["hostPort": .int(hostPort), "containerPort": .int(containerPort), "protocol": .string(proto)])
}

/// A CNI result printed by a driver, in `version`.
func parseResult(_ text: String, version: String) throws -> CNIResult {
    try CNIResult(json: JSONCursor(JSON.parse(text)), version: try #require(CNIVersion(rawValue: version)))
}
