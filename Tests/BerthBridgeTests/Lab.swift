import BerthCNI
import BerthIP
import BerthJSON
import BerthNetlink
import BerthTestSupport
import Foundation
import Testing

/// A host namespace with an uplink to an "outside" namespace, scratch state and lease
/// directories, and the real berth-bridge binary run inside the host namespace as a runtime
/// runs it: CNI environment, config on stdin.
final class Lab: UplinkLab, @unchecked Sendable {
    let stateDirectory: String
    let dataDirectory: String

    override init(_ scope: NamespaceScope) throws {
        stateDirectory = try makeTemporaryDirectory()
        dataDirectory = try makeTemporaryDirectory()
        try super.init(scope)
    }

    deinit {
        removeTemporaryDirectory(stateDirectory)
        removeTemporaryDirectory(dataDirectory)
    }

    /// A berth-bridge config with berth-ipam (in process) on `subnets`, plus `extra` keys.
    func config(name: String = "berth", bridge: String = "berth0", subnets: [String] = ["10.88.0.0/16"],
                version: String = "1.0.0", extra: JSONObject = [:], ipam: JSON? = nil) -> String {
        var object: JSONObject = [
            "cniVersion": .string(version), "name": .string(name), "type": .string("berth-bridge"),
            "bridge": .string(bridge), "stateDir": .string(stateDirectory),
            "ipam": ipam ?? .object(["type": .string("berth-ipam"), "dataDir": .string(dataDirectory),
                                     "ranges": .array(subnets.map { .array([.object(["subnet": .string($0)])]) })]),
        ]
        for member in extra { object[member.key] = member.value }
        return JSON.object(object).serialized()
    }

    /// Runs berth-bridge in the host namespace.
    func plugin(_ command: String, id: String = "", container: ScratchNamespace? = nil, netns: String? = nil,
                ifname: String = "eth0", config: String, environment extra: [String] = []) throws -> ProcessOutcome {
        var environment = ["CNI_COMMAND=\(command)", "CNI_PATH=\(productsDirectory):/usr/lib/cni", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
        if !id.isEmpty { environment += ["CNI_CONTAINERID=\(id)", "CNI_IFNAME=\(ifname)"] }
        if let path = netns ?? container?.path { environment.append("CNI_NETNS=\(path)") }
        return try runExecutable("/usr/bin/nsenter", arguments: ["--net=\(host.path)", "\(productsDirectory)/berth-bridge"],
                                 environment: environment + extra, stdin: Array(config.utf8))
    }

    /// ADD that must succeed; its result in the config's version.
    @discardableResult
    func add(_ id: String, _ container: ScratchNamespace, config: String, version: CNIVersion = .v1_0_0,
             environment: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) throws -> CNIResult {
        let outcome = try plugin("ADD", id: id, container: container, config: config, environment: environment)
        try #require(outcome.status == 0, "ADD \(id): \(outcome.stdout)", sourceLocation: sourceLocation)
        return try CNIResult(json: JSONCursor(JSON.parse(outcome.stdout)), version: version)
    }

    /// The error an operation printed, after checking it failed.
    func failure(_ outcome: ProcessOutcome, sourceLocation: SourceLocation = #_sourceLocation) throws -> CNIError {
        #expect(outcome.status != 0, sourceLocation: sourceLocation)
        return try #require(CNIError(json: try JSON.parse(outcome.stdout)), sourceLocation: sourceLocation)
    }

    func container() throws -> ScratchNamespace { try scope.make() }

    // MARK: Observing

    /// Lease files of network `name`.
    func leases(_ name: String = "berth") -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "\(dataDirectory)/\(name)")) ?? []).filter { IPAddress($0) != nil }.sorted()
    }

    /// Attachment records of network `name`.
    func records(_ name: String = "berth") -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "\(stateDirectory)/\(name)")) ?? []).filter { $0.hasSuffix(".json") }.sorted()
    }

    /// Host links whose name starts with "veth".
    func hostVeths() throws -> [String] {
        try host.ip("link", "show").arrayValue.compactMap { $0["ifname"]?.stringValue }.filter { $0.hasPrefix("veth") }.sorted()
    }

    /// `nft list` of Berth's table in the host ("" when there is none).
    func table() -> String { (try? host.nft("list", "table", "inet", "berth")) ?? "" }
}
