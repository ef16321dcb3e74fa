import BerthCNI
import BerthIP
import BerthJSON
import BerthTestSupport
import Foundation
import Testing

/// berth-host, the real binary run in the lab's host namespace.
@Suite(needsKernel)
struct HostModeTests {
    let scope = NamespaceScope()

    /// A lab whose host also has an IPv6 uplink address and default route, and a resolv.conf.
    func dualStackLab() throws -> PluginLab {
        let lab = try PluginLab(scope)
        try run("ip", "-n", lab.host.name, "addr", "add", "2001:db8::1/64", "dev", "up0", "nodad")
        try run("ip", "-n", lab.host.name, "-6", "route", "add", "default", "via", "2001:db8::2", "dev", "up0")
        try lab.writeResolvConf()
        return lab
    }

    @Test func addWithTheHostNamespaceReportsTheHostsNetwork() throws {
        let lab = try dualStackLab()
        // A second up interface without a global address; a down one and an up port of that
        // bridge (a container's veth, say) that must not appear.
        try run("ip", "-n", lab.host.name, "link", "add", "extra0", "type", "bridge")
        try run("ip", "-n", lab.host.name, "link", "set", "extra0", "up")
        try run("ip", "-n", lab.host.name, "link", "add", "down0", "type", "bridge")
        try run("ip", "-n", lab.host.name, "link", "add", "port0", "master", "extra0", "up", "type", "veth", "peer", "name", "port1")

        let result = try lab.add("web", lab.host, config: lab.hostConfig(), version: .v1_1_0, executable: "berth-host")
        let kernel = try lab.host.ip("link", "show").arrayValue.filter {
            $0["flags"]?.arrayValue.contains(.string("UP")) == true && $0["link_type"]?.stringValue != "loopback" && $0["master"] == nil
        }
        #expect(result.interfaces.map(\.name) == kernel.compactMap { $0["ifname"]?.stringValue })
        #expect(result.interfaces.map(\.name) == ["up0", "extra0"])
        #expect(result.interfaces.map(\.mac) == kernel.map { $0["address"]?.stringValue })
        #expect(result.interfaces.allSatisfy { $0.sandbox == lab.host.path })
        #expect(result.ips == [
            .init(interface: 0, address: IPPrefix("192.0.2.1/24")!, gateway: IPAddress("192.0.2.2")!),
            .init(interface: 0, address: IPPrefix("2001:db8::1/64")!, gateway: IPAddress("2001:db8::2")!),
        ])
        #expect(result.routes.map(\.destination) == [IPPrefix("0.0.0.0/0")!, IPPrefix("::/0")!])
        #expect(result.routes.map(\.gateway) == [IPAddress("192.0.2.2")!, IPAddress("2001:db8::2")!])
        #expect(result.dns == CNIResult.DNS(nameservers: ["192.0.2.53"], search: ["berth.test"], options: ["ndots:2"]))

        let record = try #require(try lab.record("hostnet", "web"))
        #expect(record["mode"]?.stringValue == "host")
        #expect(record["netns"]?.stringValue == lab.host.path)
        #expect(record["namespace"]?["inode"]?.intValue.map(String.init) == (try namespaceInode(lab.host.path)))
    }

    @Test func includeLoopbackListsLo() throws {
        let lab = try dualStackLab()
        let result = try lab.add("web", lab.host, config: lab.hostConfig(extra: ["includeLoopback": .bool(true)]),
                                 version: .v1_1_0, executable: "berth-host")
        #expect(result.interfaces.map(\.name) == ["lo", "up0"])
        #expect(result.ips.allSatisfy { $0.interface == 1 }, "lo's addresses are not global")
    }

    @Test func aForeignNamespaceIsCode7NamingBothInodesAndRecordsNothing() throws {
        let lab = try dualStackLab()
        let foreign = try lab.container()
        let error = try lab.failure(try lab.host("ADD", id: "web", netns: foreign.path, config: lab.hostConfig()))
        #expect(error.code == .invalidConfig)
        #expect(error.msg.contains("net:[\(try namespaceInode(foreign.path))]"), "\(error.msg)")
        #expect(error.msg.contains("net:[\(try namespaceInode(lab.host.path))]"), "\(error.msg)")
        #expect(lab.records("hostnet").isEmpty)

        // Not a namespace at all: code 7 as well, naming the path and the host's namespace.
        let file = lab.dataDirectory + "/not-a-namespace"
        #expect(FileManager.default.createFile(atPath: file, contents: Data()))
        let hostInode = try namespaceInode(lab.host.path)
        for path in [file, lab.dataDirectory, "/run/netns/berth-no-such-namespace"] {
            let notNamespace = try lab.failure(try lab.host("ADD", id: "web", netns: path, config: lab.hostConfig()))
            #expect(notNamespace.code == .invalidConfig, "\(path): \(notNamespace)")
            #expect(notNamespace.msg.contains(path) && notNamespace.msg.contains("net:[\(hostInode)]"), "\(notNamespace.msg)")
        }
        #expect(lab.records("hostnet").isEmpty)
    }

    @Test func busyTCPAndUDPPortsAreRefusedNamingThePortAndTheProcess() throws {
        let lab = try dualStackLab()
        let tcp = try lab.listen(in: lab.host, port: 8080)
        let udp = try lab.listen(in: lab.host, port: 5353, udp: true)
        let tcpError = try lab.failure(try lab.host("ADD", id: "web", netns: lab.host.path,
                                                    config: lab.hostConfig(extra: publishing(portMapping(8080)))))
        #expect(tcpError.code.rawValue == 112)
        #expect(tcpError.msg == "host port 8080/tcp on 0.0.0.0 is in use on the host by nc (pid \(tcp))", "\(tcpError.msg)")
        let udpError = try lab.failure(try lab.host("ADD", id: "web", netns: lab.host.path,
                                                    config: lab.hostConfig(extra: publishing(portMapping(5353, proto: "udp")))))
        #expect(udpError.code.rawValue == 112)
        #expect(udpError.msg == "host port 5353/udp on 0.0.0.0 is in use on the host by nc (pid \(udp))", "\(udpError.msg)")
        #expect(lab.records("hostnet").isEmpty)

        // The same numbers in the other protocol are free.
        let swapped = lab.hostConfig(extra: publishing(portMapping(8080, proto: "udp"), portMapping(5353, proto: "tcp")))
        #expect(try lab.host("ADD", id: "web", netns: lab.host.path, config: swapped).status == 0)
    }

    @Test func hostIPIsHonoured() throws {
        let lab = try dualStackLab()
        try lab.listen(in: lab.host, port: 8081, address: "127.0.0.1")
        // A listener on 127.0.0.1 blocks that address and the wildcard, not the uplink address.
        let onLoopback = try lab.failure(try lab.host("ADD", id: "a", netns: lab.host.path,
                                                      config: lab.hostConfig(extra: publishing(portMapping(8081, hostIP: "127.0.0.1")))))
        #expect(onLoopback.code.rawValue == 112 && onLoopback.msg.contains("8081/tcp on 127.0.0.1"), "\(onLoopback.msg)")
        let anywhere = try lab.failure(try lab.host("ADD", id: "a", netns: lab.host.path,
                                                    config: lab.hostConfig(extra: publishing(portMapping(8081)))))
        #expect(anywhere.code.rawValue == 112 && anywhere.msg.contains("8081/tcp on 0.0.0.0"), "\(anywhere.msg)")
        #expect(try lab.host("ADD", id: "a", netns: lab.host.path,
                             config: lab.hostConfig(extra: publishing(portMapping(8081, hostIP: "192.0.2.1")))).status == 0)
        // An address the host does not have: code 7.
        let foreign = try lab.failure(try lab.host("ADD", id: "b", netns: lab.host.path,
                                                   config: lab.hostConfig(extra: publishing(portMapping(8082, hostIP: "198.51.100.7")))))
        #expect(foreign.code == .invalidConfig && foreign.msg.contains("198.51.100.7 is not an address of this host"), "\(foreign.msg)")
        #expect(lab.records("hostnet") == ["a:eth0.json"])
    }

    @Test func aPortPublishedForABridgeContainerOrReservedByAHostContainerIsRefused() throws {
        let lab = try dualStackLab()
        try lab.add("bridged", try lab.container(), config: lab.config(extra: publishing(portMapping(8080, 80))))
        let published = try lab.failure(try lab.host("ADD", id: "web", netns: lab.host.path,
                                                      config: lab.hostConfig(extra: publishing(portMapping(8080)))))
        #expect(published.code.rawValue == 112)
        #expect(published.msg.hasPrefix("host port 8080/tcp is published by Berth for container bridged/eth0"), "\(published.msg)")

        try lab.add("first", lab.host, config: lab.hostConfig(extra: publishing(portMapping(9000))), version: .v1_1_0, executable: "berth-host")
        let reserved = try lab.failure(try lab.host("ADD", id: "second", netns: lab.host.path,
                                                    config: lab.hostConfig(name: "other", extra: publishing(portMapping(9000)))))
        #expect(reserved.code.rawValue == 112)
        #expect(reserved.msg == "host port 9000/tcp is reserved by host-mode container first/eth0 on network hostnet", "\(reserved.msg)")
        #expect(lab.records("other").isEmpty)
    }

    @Test func delLeavesEveryHostAddressRouteAndRuleAndIsIdempotent() throws {
        let lab = try dualStackLab()
        try lab.add("bridged", try lab.container(), config: lab.config(extra: publishing(portMapping(8080, 80))))
        let before = try lab.hostSnapshot()
        let config = lab.hostConfig(extra: publishing(portMapping(9000)))
        try lab.add("web", lab.host, config: config, version: .v1_1_0, executable: "berth-host")
        #expect(try lab.hostSnapshot() == before, "ADD changes nothing on the host")
        for _ in 0..<2 {
            let outcome = try lab.host("DEL", id: "web", netns: lab.host.path, config: config)
            #expect(outcome.status == 0 && outcome.stdout.isEmpty, "\(outcome.stdout)")
        }
        #expect(try lab.host("DEL", id: "never-added", netns: "", config: config).status == 0)
        #expect(try lab.hostSnapshot() == before, "DEL changes nothing on the host")
        #expect(lab.records("hostnet").isEmpty)
    }

    @Test func checkVerifiesTheRecordAndTheNamespace() throws {
        let lab = try dualStackLab()
        let config = lab.hostConfig()
        try lab.add("web", lab.host, config: config, version: .v1_1_0, executable: "berth-host")
        let check = try lab.host("CHECK", id: "web", netns: lab.host.path, config: config)
        #expect(check.status == 0 && check.stdout.isEmpty, "\(check.stdout)")
        let moved = try lab.failure(try lab.host("CHECK", id: "web", netns: try lab.container().path, config: config))
        #expect(moved.code.rawValue == 114 && moved.msg.contains("is not the host's network namespace"), "\(moved.msg)")
        let unknown = try lab.failure(try lab.host("CHECK", id: "stranger", netns: lab.host.path, config: config))
        #expect(unknown.code == .unknownContainer)
    }

    @Test func gcKeepsValidAttachmentsAndStatusReportsTheStateDirectory() throws {
        let lab = try dualStackLab()
        for id in ["keep", "drop"] { try lab.add(id, lab.host, config: lab.hostConfig(), version: .v1_1_0, executable: "berth-host") }
        let valid: JSON = .array([.object(["containerID": .string("keep"), "ifname": .string("eth0")])])
        let gc = try lab.host("GC", config: lab.hostConfig(extra: ["cni.dev/valid-attachments": valid]))
        #expect(gc.status == 0, "\(gc.stdout)")
        #expect(lab.records("hostnet") == ["keep:eth0.json"])

        #expect(try lab.host("STATUS", config: lab.hostConfig()).status == 0)
        let file = lab.dataDirectory + "/file"
        #expect(FileManager.default.createFile(atPath: file, contents: Data()))
        let unusable = try lab.failure(try lab.host("STATUS", config: lab.hostConfig(extra: ["stateDir": .string(file)])))
        #expect(unusable.code == .pluginNotAvailable && unusable.msg.hasPrefix("state directory \(file)"), "\(unusable.msg)")
    }

    @Test func anotherPluginsAttachmentUnderTheSameNetworkNameIsLeftAlone() throws {
        let lab = try dualStackLab()
        try lab.add("c", lab.host, config: lab.hostConfig(name: "shared"), version: .v1_1_0, executable: "berth-host")
        try lab.add("target", lab.host, config: lab.hostConfig(), version: .v1_1_0, executable: "berth-host")
        let container = try lab.container()
        for (command, outcome) in [
            ("bridge ADD", try lab.plugin("ADD", id: "c", container: container, config: lab.config(name: "shared"))),
            ("bridge DEL", try lab.plugin("DEL", id: "c", container: container, config: lab.config(name: "shared"))),
            ("join ADD", try lab.join("ADD", id: "c", netns: lab.host.path, config: lab.joinConfig("target", name: "shared"))),
            ("join DEL", try lab.join("DEL", id: "c", netns: lab.host.path, config: lab.joinConfig("target", name: "shared"))),
        ] {
            let error = try lab.failure(outcome)
            #expect(error.code.rawValue == 113 && error.msg.contains("was attached by berth-host"), "\(command): \(error.msg)")
        }
        let none: JSONObject = ["cni.dev/valid-attachments": .array([])]
        #expect(try lab.plugin("GC", config: lab.config(name: "shared", version: "1.1.0", extra: none)).status == 0)
        #expect(try lab.join("GC", config: lab.joinConfig(nil, name: "shared", extra: none)).status == 0)
        #expect(try lab.records("shared") == ["c:eth0.json"] && lab.leases("shared").isEmpty && lab.hostVeths().isEmpty)
        #expect(try lab.host("CHECK", id: "c", netns: lab.host.path, config: lab.hostConfig(name: "shared")).status == 0)
    }

    @Test func addCheckDelInEveryVersion() throws {
        let lab = try dualStackLab()
        for version in CNIVersion.allCases {
            let config = lab.hostConfig(version: version.rawValue)
            let id = "v\(version.rawValue)"
            let add = try lab.host("ADD", id: id, netns: lab.host.path, config: config)
            try #require(add.status == 0, "\(version): \(add.stdout)")
            let printed = try JSON.parse(add.stdout)
            #expect(printed["cniVersion"]?.stringValue == version.rawValue)
            let result = try CNIResult(json: JSONCursor(printed), version: version)
            #expect(result.ips.first?.address == IPPrefix("192.0.2.1/24"), "\(version)")
            if version >= .v0_4_0 { #expect(try lab.host("CHECK", id: id, netns: lab.host.path, config: config).status == 0) }
            if version < .v1_1_0 { #expect(try lab.failure(try lab.host("GC", config: config)).code == .incompatibleVersion) }
            #expect(try lab.host("DEL", id: id, netns: lab.host.path, config: config).status == 0)
        }
        #expect(lab.records("hostnet").isEmpty)
    }

    static let badConfigs: [(JSONObject, String)] = [
        (["includeLoopback": .string("yes")], "includeLoopback"),
        (publishing(portMapping(0)), "runtimeConfig.portMappings[0].hostPort"),
        (publishing(.object(["hostPort": .int(80), "containerPort": .int(80), "protocol": .string("icmp")])), "runtimeConfig.portMappings[0].protocol"),
        (publishing(portMapping(80, hostIP: "not-an-ip")), "runtimeConfig.portMappings[0].hostIP"),
        (["stateDir": .string("relative/dir")], "stateDir"),
        (["resolvConf": .string("/nonexistent/resolv.conf")], "resolvConf"),
    ]

    @Test(arguments: badConfigs)
    func badConfigIsCode7NamingTheKeyAndChangesNothing(extra: JSONObject, key: String) throws {
        let lab = try dualStackLab()
        let before = try lab.hostSnapshot()
        let error = try lab.failure(try lab.host("ADD", id: "web", netns: lab.host.path, config: lab.hostConfig(extra: extra)))
        #expect(error.code == .invalidConfig)
        #expect(error.msg.hasPrefix("invalid network configuration: \(key)"), "\(error.msg)")
        #expect(lab.records("hostnet").isEmpty)
        #expect(try lab.hostSnapshot() == before)
    }
}
