import BerthCNI
import BerthIP
import BerthJSON
import BerthTestSupport
import Foundation
import Testing

/// berth-container, the real binary, joining containers berth-bridge and berth-host attached.
@Suite(needsKernel)
struct ContainerModeTests {
    let scope = NamespaceScope()

    /// A lab with one bridge container "web" publishing 8080 → 80; its namespace and result.
    func labWithTarget() throws -> (PluginLab, ScratchNamespace, CNIResult) {
        let lab = try PluginLab(scope)
        let web = try lab.container()
        let result = try lab.add("web", web, config: lab.config(extra: publishing(portMapping(8080, 80))))
        return (lab, web, result)
    }

    @Test func joinReturnsTheTargetsInterfaceAddressAndRoutes() throws {
        let (lab, web, target) = try labWithTarget()
        let result = try lab.add("sidecar", web, config: lab.joinConfig("web"), version: .v1_1_0, executable: "berth-container")
        #expect(result.interfaces.map(\.name) == ["eth0"])
        #expect(result.interfaces[0].mac == target.interfaces[2].mac)
        #expect(result.interfaces[0].sandbox == web.path)
        #expect(result.ips == [.init(interface: 0, address: IPPrefix("10.88.0.2/16")!, gateway: IPAddress("10.88.0.1")!)])
        #expect(result.routes == [CNIResult.Route(destination: IPPrefix("0.0.0.0/0")!, gateway: IPAddress("10.88.0.1")!)])

        let record = try #require(try lab.record("joined", "sidecar"))
        #expect(record["mode"]?.stringValue == "container")
        #expect(record["target"]?["containerID"]?.stringValue == "web")
        #expect(record["target"]?["network"]?.stringValue == "berth")
        #expect(record["namespace"]?["inode"]?.intValue.map(String.init) == (try namespaceInode(web.path)))
    }

    @Test func laterSourcesOfTheTargetOverrideEarlierOnes() throws {
        let (lab, web, _) = try labWithTarget()
        // CNI_ARGS overrides the config key.
        let fromArgs = try lab.join("ADD", id: "a", netns: web.path, config: lab.joinConfig("ghost"),
                                    environment: ["CNI_ARGS=IgnoreUnknown=1;BERTH_JOIN=web"])
        #expect(fromArgs.status == 0, "\(fromArgs.stdout)")
        // runtimeConfig.joinContainer overrides both.
        let fromRuntime = try lab.failure(try lab.join("ADD", id: "b", netns: web.path,
                                                       config: lab.joinConfig("web", extra: ["runtimeConfig": .object(["joinContainer": .string("ghost")])]),
                                                       environment: ["CNI_ARGS=BERTH_JOIN=web"]))
        #expect(fromRuntime.code == .unknownContainer && fromRuntime.msg.contains("ghost"), "\(fromRuntime.msg)")
        let runtimeOnly = try lab.join("ADD", id: "c", netns: web.path,
                                       config: lab.joinConfig(nil, extra: ["runtimeConfig": .object(["joinContainer": .string("web")])]))
        #expect(runtimeOnly.status == 0, "\(runtimeOnly.stdout)")
        #expect(lab.records("joined") == ["a:eth0.json", "c:eth0.json"])
    }

    @Test func joinWithAnotherNamespaceIsCode7NamingBothInodes() throws {
        let (lab, web, _) = try labWithTarget()
        let other = try lab.container()
        let error = try lab.failure(try lab.join("ADD", id: "sidecar", netns: other.path, config: lab.joinConfig("web")))
        #expect(error.code == .invalidConfig)
        let otherInode = try namespaceInode(other.path), webInode = try namespaceInode(web.path)
        #expect(error.msg.contains("net:[\(otherInode)]") && error.msg.contains("net:[\(webInode)]"), "\(error.msg)")
        #expect(lab.records("joined").isEmpty)
    }

    @Test func joinOfAnUnknownContainerIsCode3AndWithoutATargetCode7() throws {
        let (lab, web, _) = try labWithTarget()
        let unknown = try lab.failure(try lab.join("ADD", id: "sidecar", netns: web.path, config: lab.joinConfig("ghost")))
        #expect(unknown.code == .unknownContainer)
        #expect(unknown.msg.hasPrefix("container ghost has no Berth attachment to join"), "\(unknown.msg)")
        let none = try lab.failure(try lab.join("ADD", id: "sidecar", netns: web.path, config: lab.joinConfig(nil)))
        #expect(none.code == .invalidConfig && none.msg.contains("needs the container to join"), "\(none.msg)")
        let itself = try lab.failure(try lab.join("ADD", id: "web", netns: web.path, config: lab.joinConfig("web")))
        #expect(itself.code == .invalidConfig)
        // A joiner is not joinable: its target is.
        #expect(try lab.join("ADD", id: "first", netns: web.path, config: lab.joinConfig("web")).status == 0)
        let chained = try lab.failure(try lab.join("ADD", id: "second", netns: web.path, config: lab.joinConfig("first", name: "again")))
        #expect(chained.code == .unknownContainer && chained.msg.contains("join web instead"), "\(chained.msg)")
        #expect(lab.records("joined") == ["first:eth0.json"] && lab.records("again").isEmpty)
    }

    @Test func aProcessInTheJoinedNamespaceReachesOutsideAndServesThePublishedPort() throws {
        let (lab, web, _) = try labWithTarget()
        try lab.add("sidecar", web, config: lab.joinConfig("web"), version: .v1_1_0, executable: "berth-container")
        // The joiner's process runs in the namespace it joined: it serves the target's
        // published port and reaches the outside through the target's interface.
        try lab.listen(in: web, port: 80)
        #expect(lab.connects(from: lab.outside, to: PluginLab.hostUplink, port: 8080))
        #expect(lab.pings(from: web, PluginLab.outsideAddress))
    }

    @Test func delOfTheJoinerLeavesTheTargetIntact() throws {
        let (lab, web, _) = try labWithTarget()
        let config = lab.joinConfig("web")
        try lab.add("sidecar", web, config: config, version: .v1_1_0, executable: "berth-container")
        let addresses = try web.ip("addr", "show")
        let veths = try lab.hostVeths(), leases = lab.leases(), table = lab.table()
        for _ in 0..<2 {
            let del = try lab.join("DEL", id: "sidecar", netns: web.path, config: config)
            #expect(del.status == 0 && del.stdout.isEmpty, "\(del.stdout)")
        }
        #expect(lab.records("joined").isEmpty)
        #expect(try web.ip("addr", "show") == addresses)
        #expect(try lab.hostVeths() == veths && lab.leases() == leases && lab.table() == table)
        #expect(lab.table().contains("tcp . 8080"))
        #expect(try lab.plugin("CHECK", id: "web", container: web, config: lab.config()).status == 0)
    }

    @Test func delOfTheTargetOrphansTheJoinerAndGCRemovesTheJoin() throws {
        let (lab, web, _) = try labWithTarget()
        let config = lab.joinConfig("web")
        try lab.add("sidecar", web, config: config, version: .v1_1_0, executable: "berth-container")
        #expect(try lab.join("CHECK", id: "sidecar", netns: web.path, config: config).status == 0)
        let del = try lab.plugin("DEL", id: "web", container: web, config: lab.config(extra: publishing(portMapping(8080, 80))))
        #expect(del.status == 0, "\(del.stdout)")
        #expect(lab.leases().isEmpty && lab.records().isEmpty)

        let orphaned = try lab.failure(try lab.join("CHECK", id: "sidecar", netns: web.path, config: config))
        #expect(orphaned.code.rawValue == 114 && orphaned.msg.contains("is orphaned"), "\(orphaned.msg)")
        // Listed as valid, the join still goes: it is orphaned.
        let valid: JSON = .array([.object(["containerID": .string("sidecar"), "ifname": .string("eth0")])])
        let gc = try lab.join("GC", config: lab.joinConfig("web", extra: ["cni.dev/valid-attachments": valid]))
        #expect(gc.status == 0, "\(gc.stdout)")
        #expect(lab.records("joined").isEmpty)
    }

    @Test func joiningAHostModeContainerReportsTheHostsNetwork() throws {
        let lab = try PluginLab(scope)
        let host = try lab.add("h", lab.host, config: lab.hostConfig(extra: ["resolvConf": .string("/dev/null")]),
                               version: .v1_1_0, executable: "berth-host")
        let joined = try lab.add("j", lab.host, config: lab.joinConfig("h"), version: .v1_1_0, executable: "berth-container")
        #expect(joined == host)
        #expect(joined.ips.map(\.address) == [IPPrefix("192.0.2.1/24")!])
    }

    @Test func checkNamesAMovedNamespaceAndAnUnknownJoin() throws {
        let (lab, web, _) = try labWithTarget()
        let config = lab.joinConfig("web")
        try lab.add("sidecar", web, config: config, version: .v1_1_0, executable: "berth-container")
        let moved = try lab.failure(try lab.join("CHECK", id: "sidecar", netns: try lab.container().path, config: config))
        #expect(moved.code.rawValue == 114 && moved.msg.contains("not the joined namespace"), "\(moved.msg)")
        let unknown = try lab.failure(try lab.join("CHECK", id: "stranger", netns: web.path, config: config))
        #expect(unknown.code == .unknownContainer)
        #expect(try lab.join("STATUS", config: config).status == 0)
    }

    @Test func addCheckDelInEveryVersion() throws {
        let (lab, web, _) = try labWithTarget()
        for version in CNIVersion.allCases {
            let config = lab.joinConfig("web", version: version.rawValue)
            let id = "v\(version.rawValue)"
            let add = try lab.join("ADD", id: id, netns: web.path, config: config)
            try #require(add.status == 0, "\(version): \(add.stdout)")
            let printed = try JSON.parse(add.stdout)
            #expect(printed["cniVersion"]?.stringValue == version.rawValue)
            let result = try CNIResult(json: JSONCursor(printed), version: version)
            #expect(result.ips.first?.address == IPPrefix("10.88.0.2/16"), "\(version)")
            if version >= .v0_4_0 { #expect(try lab.join("CHECK", id: id, netns: web.path, config: config).status == 0) }
            #expect(try lab.join("DEL", id: id, netns: web.path, config: config).status == 0)
        }
        #expect(lab.records("joined").isEmpty)
    }

    static let badInputs: [(JSONObject, [String], CNIError.Code, String)] = [
        (["container": .int(5)], [], .invalidConfig, "invalid network configuration: container: expected a string"),
        (["container": .string("../web")], [], .invalidConfig, "invalid network configuration: container: \"../web\" is not a container ID"),
        (["runtimeConfig": .object(["joinContainer": .string("a/b")])], [], .invalidConfig,
         "invalid network configuration: runtimeConfig.joinContainer: \"a/b\" is not a container ID"),
        ([:], ["CNI_ARGS=BERTH_JOIN=.."], .invalidEnvironment, "invalid CNI_ARGS BERTH_JOIN: \"..\" is not a container ID"),
        (["stateDir": .string("/tmp/../etc")], [], .invalidConfig, "invalid network configuration: stateDir"),
    ]

    @Test(arguments: badInputs)
    func badInputIsAClearErrorAndChangesNothing(extra: JSONObject, environment: [String], code: CNIError.Code, message: String) throws {
        let (lab, web, _) = try labWithTarget()
        let addresses = try web.ip("addr", "show")
        let error = try lab.failure(try lab.join("ADD", id: "sidecar", netns: web.path, config: lab.joinConfig("web", extra: extra),
                                                 environment: environment))
        #expect(error.code == code)
        #expect(error.msg.hasPrefix(message), "\(error.msg)")
        #expect(lab.records("joined").isEmpty)
        #expect(try web.ip("addr", "show") == addresses)
    }
}
