import BerthCNI
import BerthIP
import BerthJSON
import BerthNetlink
import Foundation
#if canImport(Testing)
import Testing
#endif

/// A host namespace with an uplink to an "outside" namespace, scratch state and lease
/// directories, and the real plugin binaries (berth-bridge unless told otherwise) run inside the
/// host namespace as a runtime runs them: CNI environment, config on stdin.
public final class PluginLab: UplinkLab, @unchecked Sendable {
    public let stateDirectory: String
    public let dataDirectory: String

    public override init(_ scope: NamespaceScope) throws {
        stateDirectory = try makeTemporaryDirectory()
        dataDirectory = try makeTemporaryDirectory()
        try super.init(scope)
    }

    deinit {
        removeTemporaryDirectory(stateDirectory)
        removeTemporaryDirectory(dataDirectory)
    }

    /// A berth-bridge config with berth-ipam (in process) on `subnets`, plus `extra` keys.
    public func config(name: String = "berth", bridge: String = "berth0", subnets: [String] = ["10.88.0.0/16"],
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

    /// Runs `executable` (berth-bridge by default) in the host namespace.
    public func plugin(_ command: String, id: String = "", container: ScratchNamespace? = nil, netns: String? = nil,
                       ifname: String = "eth0", config: String, environment extra: [String] = [],
                       executable: String = "berth-bridge") throws -> ProcessOutcome {
        var environment = ["CNI_COMMAND=\(command)", "CNI_PATH=\(productsDirectory):/usr/lib/cni", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
        if !id.isEmpty { environment += ["CNI_CONTAINERID=\(id)", "CNI_IFNAME=\(ifname)"] }
        if let path = netns ?? container?.path { environment.append("CNI_NETNS=\(path)") }
        return try runExecutable("/usr/bin/nsenter", arguments: ["--net=\(host.path)", "\(productsDirectory)/\(executable)"],
                                 environment: environment + extra, stdin: Array(config.utf8))
    }

    #if canImport(Testing)
    /// ADD that must succeed; its result in the config's version.
    @discardableResult
    public func add(_ id: String, _ container: ScratchNamespace, config: String, version: CNIVersion = .v1_0_0,
                    environment: [String] = [], executable: String = "berth-bridge",
                    sourceLocation: SourceLocation = #_sourceLocation) throws -> CNIResult {
        let outcome = try plugin("ADD", id: id, container: container, config: config, environment: environment, executable: executable)
        try #require(outcome.status == 0, "ADD \(id): \(outcome.stdout)", sourceLocation: sourceLocation)
        return try CNIResult(json: JSONCursor(JSON.parse(outcome.stdout)), version: version)
    }

    /// The error an operation printed, after checking it failed.
    public func failure(_ outcome: ProcessOutcome, sourceLocation: SourceLocation = #_sourceLocation) throws -> CNIError {
        #expect(outcome.status != 0, sourceLocation: sourceLocation)
        return try #require(CNIError(json: try JSON.parse(outcome.stdout)), sourceLocation: sourceLocation)
    }
    #endif

    public func container() throws -> ScratchNamespace { try scope.make() }

    // MARK: Observing

    /// Lease files of network `name`.
    public func leases(_ name: String = "berth") -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "\(dataDirectory)/\(name)")) ?? []).filter { IPAddress($0) != nil }.sorted()
    }

    /// Attachment records of network `name`.
    public func records(_ name: String = "berth") -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "\(stateDirectory)/\(name)")) ?? []).filter { $0.hasSuffix(".json") }.sorted()
    }

    /// Host links whose name starts with "veth".
    public func hostVeths() throws -> [String] {
        try host.ip("link", "show").arrayValue.compactMap { $0["ifname"]?.stringValue }.filter { $0.hasPrefix("veth") }.sorted()
    }

    /// `nft list` of Berth's table in the host ("" when there is none).
    public func table() -> String { (try? host.nft("list", "table", "inet", "berth")) ?? "" }
}
