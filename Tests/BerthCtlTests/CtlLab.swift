import BerthCNI
import BerthJSON
import BerthTestSupport
import Foundation
import Testing

/// netctl run as a person runs it on the lab's host: inside the host namespace, with the lab's
/// state, lease, configuration and cache directories.
extension PluginLab {
    /// Configurations and libcni's cache live beside the leases (dot names are never networks).
    var confDirectory: String { dataDirectory + "/.netctl-conf" }
    var cacheDirectory: String { dataDirectory + "/.netctl-cache" }

    /// Writes `name`.conflist: berth-bridge with berth-ipam on `subnets`, followed by `chained`
    /// plugin entries, in the lab's directories.
    @discardableResult
    func writeConflist(_ name: String = "berth", bridge: String = "berth0", subnets: [String] = ["10.88.0.0/16"],
                       version: String = "1.1.0", capabilities: JSONObject = ["portMappings": .bool(true)],
                       chained: [JSON] = []) throws -> String {
        try FileManager.default.createDirectory(atPath: confDirectory, withIntermediateDirectories: true)
        let list: JSON = .object([
            "cniVersion": .string(version), "name": .string(name),
            "plugins": .array([.object([
                "type": .string("berth-bridge"), "bridge": .string(bridge), "stateDir": .string(stateDirectory),
                "capabilities": .object(capabilities),
                "ipam": .object(["type": .string("berth-ipam"), "dataDir": .string(dataDirectory),
                                 "ranges": .array(subnets.map { .array([.object(["subnet": .string($0)])]) })]),
            ])] + chained),
        ])
        let path = "\(confDirectory)/\(name).conflist"
        try list.serialized(pretty: true).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// `netctl <command…>` in the host namespace with the lab's directories (after the
    /// subcommand words, where netctl takes its options).
    func netctl(_ words: [String], _ arguments: [String] = [], environment: [String] = []) throws -> ProcessOutcome {
        let options = ["--state-dir", stateDirectory, "--conf-dir", confDirectory, "--plugin-dir", "\(productsDirectory):/usr/lib/cni",
                       "--cache-dir", cacheDirectory, "--data-dir", dataDirectory]
        return try runExecutable("/usr/bin/nsenter", arguments: ["--net=\(host.path)", "\(productsDirectory)/netctl"] + words + options + arguments,
                                 environment: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"] + environment, stdin: [])
    }

    /// `netctl … --json` that must succeed, parsed.
    func netctlJSON(_ words: [String], _ arguments: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) throws -> JSON {
        let outcome = try netctl(words, arguments + ["--json"])
        try #require(outcome.status == 0, "netctl \(words) failed: \(outcome.stdout) \(outcome.stderr)", sourceLocation: sourceLocation)
        return try JSON.parse(outcome.stdout)
    }
}
