import BerthCNI
import BerthIP
import BerthJSON
import BerthNetlink
import BerthTestSupport
import Foundation
import Testing

/// CNI-CONFORMANCE item 35: Berth in chains with the reference plugins, the reference bridge
/// with berth-ipam, and the whole chain driven by libcni, as runtimes drive it.
@Suite(needsKernel)
struct InteropTests {
    let scope = NamespaceScope()

    /// Runs a conflist the way libcni does: each plugin gets the list's name and version, the
    /// previous result, and the capabilities it declares; DEL runs in reverse order.
    struct Chain {
        let lab: Lab
        let list: NetworkConfigList
        let capabilityArgs: JSONObject

        func executable(_ type: String) -> String {
            type.hasPrefix("berth-") ? "\(productsDirectory)/\(type)" : "/usr/lib/cni/\(type)"
        }

        func run(_ command: String, _ id: String, _ container: ScratchNamespace, prevResult: CNIResult?,
                 skipping skipped: Set<String> = []) throws -> CNIResult? {
            var previous = prevResult
            let order = command == "DEL" ? Array(list.plugins.indices.reversed()) : Array(list.plugins.indices)
            for index in order {
                let type = list.plugins[index]["type"]!.stringValue!
                if skipped.contains(type) { continue }
                let stdin = try list.requestConfig(plugin: index, prevResult: previous, capabilityArgs: capabilityArgs).serialized()
                let environment = ["CNI_COMMAND=\(command)", "CNI_CONTAINERID=\(id)", "CNI_NETNS=\(container.path)", "CNI_IFNAME=eth0",
                                   "CNI_PATH=\(productsDirectory):/usr/lib/cni", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
                let outcome = try runExecutable("/usr/bin/nsenter", arguments: ["--net=\(lab.host.path)", executable(type)],
                                                environment: environment, stdin: Array(stdin.utf8))
                guard outcome.status == 0 else {
                    throw CommandFailure(command: "\(command) \(type)", status: outcome.status, stderr: outcome.stdout + outcome.stderr)
                }
                if command == "ADD" { previous = try CNIResult(json: JSONCursor(JSON.parse(outcome.stdout)), version: list.cniVersion) }
            }
            return previous
        }
    }

    func chain(_ lab: Lab, plugins: [JSON], capabilityArgs: JSONObject = [:]) throws -> Chain {
        let text = JSON.object(["cniVersion": .string("1.0.0"), "name": .string("berth"), "plugins": .array(plugins)]).serialized()
        return Chain(lab: lab, list: try NetworkConfigList(parsing: Array(text.utf8)), capabilityArgs: capabilityArgs)
    }

    func berthBridge(_ lab: Lab) throws -> JSON {
        var object = JSONObject()
        if case .object(let config) = try JSON.parse(lab.config()) { object = config }
        object["cniVersion"] = nil
        object["name"] = nil
        return .object(object)
    }

    @Test func berthBridgeChainedWithReferencePortmapTuningAndBandwidth() throws {
        let lab = try Lab(scope)
        let container = try lab.container()
        let chain = try chain(lab, plugins: [
            try berthBridge(lab),
            .object(["type": .string("portmap"), "capabilities": .object(["portMappings": .bool(true)]), "snat": .bool(true)]),
            .object(["type": .string("tuning"), "sysctl": .object(["net.ipv4.conf.eth0.arp_ignore": .string("1")])]),
            .object(["type": .string("bandwidth"), "ingressRate": .int(1_000_000), "ingressBurst": .int(100_000),
                     "egressRate": .int(1_000_000), "egressBurst": .int(100_000)]),
        ], capabilityArgs: ["portMappings": .array([.object(["hostPort": .int(8081), "containerPort": .int(80), "protocol": .string("tcp")])])])

        let result = try #require(try chain.run("ADD", "chained", container, prevResult: nil))
        #expect(result.ips.first?.address == IPPrefix("10.88.0.2/16"))
        // tuning ran in the container, bandwidth put a token bucket on the host veth.
        #expect(try container.exec("cat", "/proc/sys/net/ipv4/conf/eth0/arp_ignore") == "1\n")
        let hostVeth = try #require(result.interfaces.first { $0.name.hasPrefix("veth") }?.name)
        #expect(try lab.host.exec("tc", "qdisc", "show", "dev", hostVeth).contains("tbf"))
        // portmap's DNAT (iptables) reaches the container through Berth's forward chain.
        try lab.listen(in: container, port: 80)
        #expect(lab.connects(from: lab.outside, to: Lab.hostUplink, port: 8081))
        // The reference portmap 1.1.1 fails its own CHECK on an IPv4-only container ("could not
        // check ipv6 dnat: chain … not found"), whoever the other plugins are: it sits this out.
        #expect(try chain.run("CHECK", "chained", container, prevResult: result, skipping: ["portmap"]) != nil)

        _ = try chain.run("DEL", "chained", container, prevResult: result)
        #expect(lab.records().isEmpty && lab.leases().isEmpty)
        #expect(try lab.hostVeths().isEmpty)
    }

    /// The reference firewall plugin (iptables backend) after berth-bridge: it admits the
    /// container's address in its CNI-FORWARD chain, the container still reaches the outside,
    /// CHECK passes, and DEL takes its rules and Berth's objects away.
    @Test func berthBridgeChainedWithReferenceFirewall() throws {
        let lab = try Lab(scope)
        let container = try lab.container()
        let chain = try chain(lab, plugins: [try berthBridge(lab), .object(["type": .string("firewall"), "backend": .string("iptables")])])

        let result = try #require(try chain.run("ADD", "guarded", container, prevResult: nil))
        #expect(result.ips.first?.address == IPPrefix("10.88.0.2/16"))
        #expect(try lab.host.exec("iptables", "-S", "CNI-FORWARD").contains("10.88.0.2"))
        #expect(lab.pings(from: container, Lab.outsideAddress))
        #expect(try chain.run("CHECK", "guarded", container, prevResult: result) != nil)

        _ = try chain.run("DEL", "guarded", container, prevResult: result)
        #expect(try !lab.host.exec("iptables", "-S", "CNI-FORWARD").contains("10.88.0.2"))
        #expect(lab.records().isEmpty && lab.leases().isEmpty)
        #expect(try lab.hostVeths().isEmpty)
    }

    @Test func referenceBridgeWithBerthIPAM() throws {
        let lab = try Lab(scope)
        let container = try lab.container()
        let chain = try chain(lab, plugins: [.object([
            "type": .string("bridge"), "bridge": .string("cni-ref0"), "isGateway": .bool(true), "ipMasq": .bool(true),
            "ipam": .object(["type": .string("berth-ipam"), "dataDir": .string(lab.dataDirectory),
                             "ranges": .array([.array([.object(["subnet": .string("10.77.0.0/24")])])])]),
        ])])
        let result = try #require(try chain.run("ADD", "ref", container, prevResult: nil))
        #expect(result.ips.first?.address == IPPrefix("10.77.0.2/24"))
        #expect(lab.leases() == ["10.77.0.2"])
        #expect(lab.pings(from: container, "10.77.0.1"))
        _ = try chain.run("DEL", "ref", container, prevResult: result)
        #expect(lab.leases().isEmpty)
    }

    @Test func delegatedReferenceIPAMPlugins() throws {
        let lab = try Lab(scope)
        let first = try lab.container(), second = try lab.container()
        let hostLocal: JSON = .object(["type": .string("host-local"), "dataDir": .string(lab.dataDirectory),
                                       "ranges": .array([.array([.object(["subnet": .string("10.66.0.0/24")])])])])
        let result = try lab.add("hl", first, config: lab.config(ipam: hostLocal))
        #expect(result.ips.first?.address == IPPrefix("10.66.0.2/24"))
        let staticIPAM: JSON = .object(["type": .string("static"),
                                        "addresses": .array([.object(["address": .string("10.66.0.50/24"), "gateway": .string("10.66.0.1")])])])
        try lab.add("st", second, config: lab.config(ipam: staticIPAM))
        #expect(lab.pings(from: first, "10.66.0.50"))
        #expect(try lab.plugin("CHECK", id: "hl", container: first, config: lab.config(ipam: hostLocal)).status == 0)
        #expect(try lab.plugin("DEL", id: "hl", container: first, config: lab.config(ipam: hostLocal)).status == 0)
        #expect(try lab.plugin("DEL", id: "st", container: second, config: lab.config(ipam: staticIPAM)).status == 0)
        #expect(lab.leases().isEmpty && lab.records().isEmpty)
    }

    static let driver = repositoryRoot + "/.build/libcni-driver"
    static let driverAvailable = FileManager.default.isExecutableFile(atPath: driver)
        || ProcessInfo.processInfo.environment["BERTH_REQUIRE_KERNEL_TESTS"] == "1"

    @Test(.enabled(if: driverAvailable, "needs .build/libcni-driver (Scripts/test.sh builds it)"))
    func drivenByLibcni() throws {
        let lab = try Lab(scope)
        let container = try lab.container()
        let directory = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(directory) }
        var bridge = JSONObject()
        if case .object(let object) = try berthBridge(lab) { bridge = object }
        bridge["capabilities"] = .object(["portMappings": .bool(true)])
        let list = JSON.object(["cniVersion": .string("1.0.0"), "name": .string("berth"), "plugins": .array([
            .object(bridge),
            .object(["type": .string("tuning"), "sysctl": .object(["net.ipv4.conf.eth0.arp_ignore": .string("2")])]),
        ])]).serialized()
        try list.write(toFile: directory + "/berth.conflist", atomically: true, encoding: .utf8)
        func libcni(_ command: String) throws -> ProcessOutcome {
            try runExecutable("/usr/bin/nsenter", arguments: ["--net=\(lab.host.path)", Self.driver, command, directory + "/berth.conflist",
                                                              "libcni", container.path, "eth0"],
                              environment: ["CNI_PATH=\(productsDirectory):/usr/lib/cni", "BERTH_CACHE_DIR=\(directory)/cache",
                                            #"BERTH_CAPABILITY_ARGS={"portMappings":[{"hostPort":8082,"containerPort":80,"protocol":"tcp"}]}"#,
                                            "PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
                              stdin: [])
        }
        let add = try libcni("add")
        try #require(add.status == 0, "\(add.stderr)")
        let result = try CNIResult(json: JSONCursor(JSON.parse(add.stdout)), version: .v1_0_0)
        #expect(result.ips.first?.address == IPPrefix("10.88.0.2/16"))
        #expect(try container.exec("cat", "/proc/sys/net/ipv4/conf/eth0/arp_ignore") == "2\n")
        try lab.listen(in: container, port: 80)
        #expect(lab.connects(from: lab.outside, to: Lab.hostUplink, port: 8082))
        let check = try libcni("check")
        #expect(check.status == 0, "\(check.stderr)")
        let del = try libcni("del")
        #expect(del.status == 0, "\(del.stderr)")
        #expect(lab.records().isEmpty && lab.leases().isEmpty)
        #expect(!lab.table().contains("8082"))
    }
}
