import BerthCNI
import BerthIP
import BerthJSON
import BerthNetlink
import BerthTestSupport
import Foundation
import Testing

/// CNI-CONFORMANCE items 17–24, GC and STATUS, with the real binary.
@Suite(needsKernel)
struct LifecycleTests {
    let scope = NamespaceScope()
    static let webPorts: JSON = .array([.object(["hostPort": .int(8080), "containerPort": .int(80), "protocol": .string("tcp")])])

    /// Nothing of the attachment is left on the host; `bystanders` other attachments stay.
    func expectGone(_ lab: Lab, bystanders: Int = 0, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(lab.leases().count == bystanders, "leases", sourceLocation: sourceLocation)
        #expect(lab.records().count == bystanders, "records", sourceLocation: sourceLocation)
        #expect(try lab.hostVeths().count == bystanders, "host veths", sourceLocation: sourceLocation)
        #expect(!lab.table().contains("8080"), "port elements", sourceLocation: sourceLocation)
        if bystanders > 0 { #expect(lab.table().contains("in_berth0"), "the network stays", sourceLocation: sourceLocation) }
    }

    @Test func addOfAnInterfaceThatExistsFailsAndLeavesItAlone() throws {
        let lab = try Lab(scope)
        let container = try lab.container()
        try run("ip", "-n", container.name, "link", "add", "eth0", "type", "bridge")
        let error = try lab.failure(try lab.plugin("ADD", id: "c", container: container, config: lab.config()))
        #expect(error.code.rawValue == 115)
        #expect(error.msg == "eth0 already exists in \(container.path)")
        #expect(try container.ip("link", "show", "eth0")[0]?["linkinfo"]?["info_kind"]?.stringValue == "bridge")
        try expectGone(lab)
    }

    /// A CNI_NETNS that is not a container's namespace is refused before anything is written:
    /// no state or lease directory, no bridge, no link in the host (the host's own namespace
    /// would otherwise receive the container end as eth0).
    @Test func aNetnsThatIsNotAContainersIsRefusedAndNothingIsWritten() throws {
        let lab = try Lab(scope)
        let file = lab.stateDirectory + "-file"
        try "not a namespace".write(toFile: file, atomically: false, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let linksBefore = try lab.host.ip("link", "show").arrayValue.compactMap { $0["ifname"]?.stringValue }
        let cases: [(netns: String, code: Int, message: String)] = [
            (lab.host.path, 4, "invalid environment: CNI_NETNS \(lab.host.path) is the host's network namespace"),
            (file, 3, "\(file) is not a network namespace"),
            (lab.dataDirectory, 3, "\(lab.dataDirectory) is not a network namespace"),
            ("/run/netns/never-made", 3, "cannot open the container's network namespace /run/netns/never-made: No such file or directory"),
        ]
        for (netns, code, message) in cases {
            let error = try lab.failure(try lab.plugin("ADD", id: "c", netns: netns, config: lab.config()))
            #expect(error.code.rawValue == code, "\(netns)")
            #expect(error.msg == message)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: lab.stateDirectory).isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: lab.dataDirectory).isEmpty)
        #expect(try lab.host.ip("link", "show").arrayValue.compactMap { $0["ifname"]?.stringValue } == linksBefore)
        #expect(lab.table().isEmpty)
    }

    @Test func delTwiceSucceedsSilently() throws {
        let lab = try Lab(scope)
        let container = try lab.container()
        let config = lab.config(extra: ["runtimeConfig": .object(["portMappings": Self.webPorts])])
        try lab.add("bystander", try lab.container(), config: lab.config())
        try lab.add("c", container, config: config)
        for _ in 0..<2 {
            let outcome = try lab.plugin("DEL", id: "c", container: container, config: config)
            #expect(outcome.status == 0 && outcome.stdout.isEmpty, "\(outcome.stdout)")
        }
        try expectGone(lab, bystanders: 1)
        #expect(try container.ip("link", "show").arrayValue.map { $0["ifname"]?.stringValue } == ["lo"])
    }

    @Test func delWithTheNamespaceGoneOrUnnamedCleansTheHost() throws {
        for netns in ["deleted", ""] {
            let lab = try Lab(scope)
            let container = try lab.container()
            let config = lab.config(extra: ["runtimeConfig": .object(["portMappings": Self.webPorts])])
            let bystander = try lab.container()
            try lab.add("bystander", bystander, config: lab.config())
            try lab.add("c", container, config: config)
            var path = container.path
            if netns == "deleted" {
                try run("ip", "netns", "del", container.name)
            } else {
                path = ""
            }
            let outcome = try lab.plugin("DEL", id: "c", netns: path, config: config)
            #expect(outcome.status == 0, "\(outcome.stdout)")
            try expectGone(lab, bystanders: 1)
            #expect(try lab.plugin("DEL", id: "bystander", container: bystander, config: lab.config()).status == 0)
            try expectGone(lab)
            #expect(lab.table().isEmpty, "the last attachment took the network's firewall objects with it")
        }
    }

    @Test func delWithoutRuntimeConfigOrPrevResultRemovesThePorts() throws {
        let lab = try Lab(scope)
        let container = try lab.container()
        try lab.add("bystander", try lab.container(), config: lab.config())
        try lab.add("c", container, config: lab.config(extra: ["runtimeConfig": .object(["portMappings": Self.webPorts])]))
        #expect(lab.table().contains("tcp . 8080"))
        let outcome = try lab.plugin("DEL", id: "c", container: container, config: lab.config())
        #expect(outcome.status == 0)
        try expectGone(lab, bystanders: 1)
    }

    @Test func aSecondClaimOfAPublishedPortFailsCleanly() throws {
        let lab = try Lab(scope)
        let first = try lab.container(), second = try lab.container()
        let config = lab.config(extra: ["runtimeConfig": .object(["portMappings": Self.webPorts])])
        try lab.add("first", first, config: config)
        let leases = lab.leases(), veths = try lab.hostVeths(), table = lab.table()

        let error = try lab.failure(try lab.plugin("ADD", id: "second", container: second, config: config))
        #expect(error.code.rawValue == 112)
        #expect(error.msg == "8080/tcp on 0.0.0.0 is already published by first/eth0")
        // Everything the failed ADD did is undone: lease, veth, record; the first is untouched.
        #expect(lab.leases() == leases)
        #expect(try lab.hostVeths() == veths)
        #expect(lab.records() == ["first:eth0.json"])
        #expect(lab.table() == table)
        #expect(try second.ip("link", "show").arrayValue.count == 1)
    }

    @Test func aFailureInTheContainerSideUndoesTheLinkAndTheLease() throws {
        let lab = try Lab(scope)
        let container = try lab.container()
        // The static IPAM plugin returns a route whose gateway is not on the container's link.
        let ipam: JSON = .object([
            "type": .string("static"),
            "addresses": .array([.object(["address": .string("10.88.0.9/16"), "gateway": .string("10.88.0.1")])]),
            "routes": .array([.object(["dst": .string("192.168.50.0/24"), "gw": .string("172.16.0.1")])]),
        ])
        let error = try lab.failure(try lab.plugin("ADD", id: "c", container: container, config: lab.config(ipam: ipam)))
        #expect(error.code.rawValue == 110)
        #expect(error.msg.hasPrefix("add route 192.168.50.0/24 via 172.16.0.1 dev eth0 in \(container.path)"))
        try expectGone(lab)
        #expect(try container.ip("link", "show").arrayValue.count == 1)
    }

    @Test func checkPassesAfterAddAndNamesWhatGoesMissing() throws {
        let lab = try Lab(scope)
        let container = try lab.container()
        let config = lab.config(extra: ["runtimeConfig": .object(["portMappings": Self.webPorts])])
        let result = try lab.add("c", container, config: config)
        let check = { try lab.plugin("CHECK", id: "c", container: container, config: config) }
        let passed = try check()
        #expect(passed.status == 0 && passed.stdout.isEmpty, "\(passed.stdout)")

        try lab.host.nft("delete", "element", "inet", "berth", "ports4_any", "{ tcp . 8080 }")
        #expect(try lab.failure(try check()).msg.contains("published port 8080/tcp on 0.0.0.0"))
        try run("ip", "-n", container.name, "route", "del", "default")
        #expect(try lab.failure(try check()).msg.contains("default route via 10.88.0.1 in the container"))
        try run("ip", "-n", container.name, "addr", "del", "10.88.0.2/16", "dev", "eth0")
        #expect(try lab.failure(try check()).msg.contains("address 10.88.0.2/16 on eth0"))
        try FileManager.default.removeItem(atPath: "\(lab.dataDirectory)/berth/10.88.0.2")
        #expect(try lab.failure(try check()).msg.contains("the lease"))
        try run("ip", "-n", lab.host.name, "link", "del", result.interfaces[1].name)
        let last = try lab.failure(try check())
        #expect(last.code.rawValue == 114)
        #expect(last.msg.contains("host interface \(result.interfaces[1].name)"))
        #expect(last.msg.contains("eth0 in \(container.path)"))
    }

    @Test func fiftyParallelAddsStartingWithoutABridge() async throws {
        let lab = try Lab(scope)
        let containers = try (0..<50).map { _ in try lab.container() }
        let config = lab.config(subnets: ["10.88.0.0/24"])
        let outcomes = try await withThrowingTaskGroup(of: ProcessOutcome.self) { group in
            for (index, container) in containers.enumerated() {
                group.addTask { try lab.plugin("ADD", id: "p\(index)", container: container, config: config) }
            }
            var all: [ProcessOutcome] = []
            for try await outcome in group { all.append(outcome) }
            return all
        }
        #expect(outcomes.allSatisfy { $0.status == 0 }, "\(outcomes.filter { $0.status != 0 }.map(\.stdout))")
        let addresses = try outcomes.map { try CNIResult(json: JSONCursor(JSON.parse($0.stdout)), version: .v1_0_0).ips[0].address }
        #expect(Set(addresses).count == 50)
        #expect(lab.leases().count == 50 && lab.records().count == 50)
        #expect(try lab.hostVeths().count == 50)
        #expect(lab.pings(from: containers[0], addresses[49].address.description) || lab.pings(from: containers[49], addresses[0].address.description))
    }

    @Test func concurrentAddDelAndGCKeepStoreRecordsAndKernelConsistent() async throws {
        let lab = try Lab(scope)
        let containers = try (0..<16).map { _ in try lab.container() }
        let config = lab.config(extra: ["runtimeConfig": .object(["portMappings": .array([])])])
        for (index, container) in containers.prefix(8).enumerated() { try lab.add("c\(index)", container, config: config) }
        let gcConfig = lab.config(version: "1.1.0", extra: [
            "cni.dev/valid-attachments": .array((0..<16).filter { $0 % 2 == 0 }.map {
                .object(["containerID": .string("c\($0)"), "ifname": .string("eth0")])
            }),
        ])
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, container) in containers.enumerated() {
                group.addTask {
                    if index < 8 {
                        _ = try lab.plugin("DEL", id: "c\(index)", container: container, config: config)
                    } else {
                        _ = try lab.plugin("ADD", id: "c\(index)", container: container, config: config)
                    }
                }
            }
            group.addTask { _ = try lab.plugin("GC", config: gcConfig) }
            try await group.waitForAll()
        }
        // Whatever interleaving happened, leases, records and host links describe the same set.
        let records = lab.records().map { String($0.dropLast(".json".count).split(separator: ":")[0]) }.sorted()
        let leaseOwners = try lab.leases().map {
            String(try String(contentsOfFile: "\(lab.dataDirectory)/berth/\($0)", encoding: .utf8).split(separator: "\r\n")[0])
        }.sorted()
        #expect(records == leaseOwners)
        #expect(try lab.hostVeths().count == records.count)
        #expect(Set(records).isSubset(of: Set((8..<16).map { "c\($0)" })))
    }

    /// The last DEL of a network takes its chains and map entries with it, leaves other networks
    /// alone, and keeps the bridge unless `removeBridgeWhenEmpty` is set.
    @Test func theLastDelOfANetworkRemovesItsFirewallObjectsAndTheBridgeOnlyWhenAsked() throws {
        let lab = try Lab(scope)
        let kept = lab.config(name: "kept", bridge: "berth0", subnets: ["10.88.0.0/16"])
        let removed = lab.config(name: "removed", bridge: "berth1", subnets: ["10.89.0.0/16"],
                                 extra: ["removeBridgeWhenEmpty": .bool(true)])
        let first = try lab.container(), second = try lab.container()
        try lab.add("a", first, config: kept)
        try lab.add("b", second, config: removed)
        let bridges = { try lab.host.ip("link", "show", "type", "bridge").arrayValue.compactMap { $0["ifname"]?.stringValue }.sorted() }
        #expect(try bridges() == ["berth0", "berth1"])

        #expect(try lab.plugin("DEL", id: "a", container: first, config: kept).status == 0)
        #expect(!lab.table().contains("berth0"), "network kept's chains and map entries are gone")
        #expect(lab.table().contains("in_berth1"), "network removed is untouched")
        #expect(try bridges() == ["berth0", "berth1"], "the bridge stays by default")

        #expect(try lab.plugin("DEL", id: "b", container: second, config: removed).status == 0)
        #expect(lab.table().isEmpty, "the last network took the table with it")
        #expect(try bridges() == ["berth0"])
    }

    @Test func gcRemovesEverythingOfUnlistedAttachments() throws {
        let lab = try Lab(scope)
        let keep = try lab.container(), drop = try lab.container()
        try lab.add("keep", keep, config: lab.config())
        try lab.add("drop", drop, config: lab.config(extra: ["runtimeConfig": .object(["portMappings": Self.webPorts])]))
        let gc = try lab.plugin("GC", config: lab.config(version: "1.1.0", extra: [
            "cni.dev/valid-attachments": .array([.object(["containerID": .string("keep"), "ifname": .string("eth0")])]),
        ]))
        #expect(gc.status == 0, "\(gc.stdout)")
        #expect(lab.records() == ["keep:eth0.json"])
        #expect(lab.leases() == ["10.88.0.2"])
        #expect(try lab.hostVeths().count == 1)
        #expect(!lab.table().contains("8080"))
        #expect(try drop.ip("link", "show").arrayValue.count == 1)
        #expect(lab.pings(from: keep, "10.88.0.1"))
    }

    @Test func statusReportsWhetherAnAddCanSucceed() throws {
        let lab = try Lab(scope)
        let status = { (config: String) in try lab.plugin("STATUS", config: config) }
        #expect(try status(lab.config(version: "1.1.0")).status == 0)
        let full = lab.config(subnets: ["10.88.0.0/30"], version: "1.1.0")
        try lab.add("c", try lab.container(), config: full, version: .v1_1_0)
        let exhausted = try lab.failure(try status(full))
        #expect(exhausted.code == .pluginNotAvailable)
        try run("ip", "-n", lab.host.name, "link", "add", "taken0", "type", "veth", "peer", "name", "taken1")
        let taken = try lab.failure(try status(lab.config(bridge: "taken0", version: "1.1.0")))
        #expect(taken.code == .pluginNotAvailable)
        #expect(taken.msg.contains("taken0 exists and is not a bridge"))
        let file = lab.stateDirectory + "/not-a-directory"
        #expect(FileManager.default.createFile(atPath: file, contents: Data()))
        let unusable = try lab.failure(try status(lab.config(version: "1.1.0", extra: ["stateDir": .string(file)])))
        #expect(unusable.code == .pluginNotAvailable)
        #expect(unusable.msg.hasPrefix("state directory \(file): "), "\(unusable.msg)")
        // nftables out of reach: the plugin without CAP_NET_ADMIN (nfnetlink refuses every message).
        let withoutNetAdmin = try runExecutable("/usr/bin/nsenter", arguments: [
            "--net=\(lab.host.path)", "/usr/bin/setpriv", "--bounding-set", "-net_admin", "\(productsDirectory)/berth-bridge",
        ], environment: ["CNI_COMMAND=STATUS", "CNI_PATH=\(productsDirectory)", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
           stdin: Array(lab.config(version: "1.1.0").utf8))
        let noNftables = try lab.failure(withoutNetAdmin)
        #expect(noNftables.code == .pluginNotAvailable)
        #expect(noNftables.msg.hasPrefix("nftables is not usable"), "\(noNftables.msg)")
    }

    @Test func addCheckDelInEveryVersion() throws {
        let lab = try Lab(scope)
        for version in CNIVersion.allCases {
            let container = try lab.container()
            let config = lab.config(version: version.rawValue)
            let add = try lab.plugin("ADD", id: "v\(version.rawValue)", container: container, config: config)
            try #require(add.status == 0, "\(version): \(add.stdout)")
            let printed = try JSON.parse(add.stdout)
            #expect(printed["cniVersion"]?.stringValue == version.rawValue)
            let result = try CNIResult(json: JSONCursor(printed), version: version)
            #expect(result.ips.count == 1)
            if version >= .v0_4_0 {
                #expect(try lab.plugin("CHECK", id: "v\(version.rawValue)", container: container, config: config).status == 0)
            }
            #expect(try lab.plugin("DEL", id: "v\(version.rawValue)", container: container, config: config).status == 0)
        }
        #expect(lab.records().isEmpty && lab.leases().isEmpty)
    }

    /// GC and STATUS reach a delegated IPAM plugin (the recording fixture stands in for one).
    @Test func gcAndStatusAreForwardedToADelegatedIPAM() throws {
        let lab = try Lab(scope)
        let record = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(record) }
        let ipam: JSON = .object(["type": .string("fixture-ipam"), "record": .string(record), "replies": .object([
            "STATUS": .object(["stdout": .string(#"{"cniVersion":"1.1.0","code":50,"msg":"pool empty"}"#), "exitCode": .int(1)]),
        ])])
        let config = lab.config(version: "1.1.0", extra: ["cni.dev/valid-attachments": .array([])], ipam: ipam)
        let gc = try lab.plugin("GC", config: config)
        #expect(gc.status == 0, "\(gc.stdout)")
        #expect(try String(contentsOfFile: record + "/GC.stdin", encoding: .utf8) == config)
        let status = try lab.failure(try lab.plugin("STATUS", config: config))
        #expect(status == CNIError(.pluginNotAvailable, "pool empty"))
    }
}
