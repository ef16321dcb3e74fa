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

/// Wrapper scripts in `directory`, one per Berth plugin, that append "<CNI_COMMAND> <plugin>
/// <container ID> <netns>" to `log` and run the plugin: what a runtime calls CNI for, seen from
/// the plugins' side.
func writeLoggingPlugins(into directory: String, log: String) throws {
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    for plugin in ["berth-bridge", "berth-ipam", "berth-host", "berth-container"] {
        try """
            #!/bin/sh
            echo "$CNI_COMMAND \(plugin) $CNI_CONTAINERID $CNI_NETNS" >> \(log)
            exec \(productsDirectory)/\(plugin)
            """.write(toFile: "\(directory)/\(plugin)", atomically: true, encoding: .utf8)
        chmod("\(directory)/\(plugin)", 0o755)
    }
}

/// The calls written to `log` since the last look (which empties it). Runtimes also run VERSION
/// on the plugins when they load configurations: left out unless asked for.
func loggedCNICalls(_ log: String, includingVersion: Bool = false) -> [String] {
    defer { try? FileManager.default.removeItem(atPath: log) }
    return ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        .filter { includingVersion || !$0.hasPrefix("VERSION ") }
}

/// The calls' command and plugin only ("ADD berth-bridge").
func verbs(_ calls: [String]) -> [String] { calls.map { $0.split(separator: " ").prefix(2).joined(separator: " ") } }

/// A container image's root filesystem from busybox-static (/bin/busybox and the applets the
/// tests use), serving `page` as /index.html, packed as a tar at `tarball`.
func writeBusyboxRootfs(tarball: String, page: String) throws {
    let rootfs = tarball + ".d"
    defer { try? FileManager.default.removeItem(atPath: rootfs) }
    try FileManager.default.createDirectory(atPath: rootfs + "/bin", withIntermediateDirectories: true)
    try FileManager.default.copyItem(atPath: "/bin/busybox", toPath: rootfs + "/bin/busybox")
    for applet in ["sh", "ip", "httpd", "sleep", "cat", "nc", "printf"] {
        try FileManager.default.createSymbolicLink(atPath: "\(rootfs)/bin/\(applet)", withDestinationPath: "busybox")
    }
    try page.write(toFile: rootfs + "/index.html", atomically: true, encoding: .utf8)
    try BerthTestSupport.run("tar", "-C", rootfs, "-cf", tarball, ".")
}

/// Starts `argv` without waiting for it, stdin from /dev/null, stdout and stderr to `log` and
/// `log`.err (posix_spawn: Foundation's Process misses the exit of a child whose pipes it does
/// not read); its process ID.
func spawnInBackground(_ argv: [String], environment: [String], log: String) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_addopen(&actions, 2, log + ".err", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    let arguments = argv.map { strdup($0) } + [nil]
    let variables = environment.map { strdup($0) } + [nil]
    defer { (arguments + variables).forEach { free($0) } }
    var pid: pid_t = 0
    let error = posix_spawn(&pid, argv[0], &actions, nil, arguments, variables)
    guard error == 0 else { throw CommandFailure(command: argv.joined(separator: " "), status: error, stderr: String(cString: strerror(error))) }
    return pid
}
