import BerthCNI
import BerthIP
import BerthJSON
import BerthTestSupport
import Foundation
import Testing

/// libcni (Debian's 1.1.2, the library podman's CNI backend, containerd and CRI-O are built on)
/// drives every Berth mode at every CNI version a runtime may configure: a bridge container with
/// a published port, a host-mode container asking for host ports, and a sidecar joining the
/// bridge container, through ADD, CHECK and DEL.
@Suite(needsKernel, .enabled(if: InteropProgram.libcni.enabled, "needs .build/libcni-driver (Scripts/test.sh builds it)"))
struct LibcniVersionTests {
    let scope = NamespaceScope()

    struct Libcni {
        let lab: PluginLab
        let files: ScratchFiles

        func callAllowingFailure(_ command: String, _ list: String, id: String, netns: String,
                                 capabilities: JSONObject = [:], cniArgs: String? = nil) throws -> ProcessOutcome {
            var environment = ["BERTH_CACHE_DIR=\(files.path)/cache"]
            if !capabilities.isEmpty { environment.append("BERTH_CAPABILITY_ARGS=\(JSON.object(capabilities).serialized())") }
            if let cniArgs { environment.append("BERTH_CNI_ARGS=\(cniArgs)") }
            return try InteropProgram.libcni.run(in: lab.host, [command.lowercased(), "\(files.path)/\(list)", id, netns, "eth0"], environment: environment)
        }

        @discardableResult
        func call(_ command: String, _ list: String, id: String, netns: String, capabilities: JSONObject = [:],
                  cniArgs: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
            let outcome = try callAllowingFailure(command, list, id: id, netns: netns, capabilities: capabilities, cniArgs: cniArgs)
            try #require(outcome.status == 0, "libcni \(command) \(list) \(id): \(outcome.stderr)", sourceLocation: sourceLocation)
            return outcome.stdout
        }
    }

    func setUp(_ lab: PluginLab, version: String) throws -> Libcni {
        let files = try ScratchFiles()
        try "nameserver 192.0.2.53\nsearch berth.test\n".write(toFile: lab.dataDirectory + "/resolv.conf", atomically: true, encoding: .utf8)
        try files.write("bridge.conflist", conflist("berth", version: version,
            lab.bridgePlugin(extra: ["capabilities": .object(["portMappings": .bool(true)])])))
        try files.write("host.conflist", conflist("hostnet", version: version,
            lab.hostPlugin(extra: ["capabilities": .object(["portMappings": .bool(true)])])))
        try files.write("join.conflist", conflist("joined", version: version,
            lab.joinPlugin(extra: ["capabilities": .object(["joinContainer": .bool(true)])])))
        return Libcni(lab: lab, files: files)
    }

    @Test(arguments: ["0.3.1", "0.4.0", "1.0.0"])
    func everyModeAtVersion(_ version: String) throws {
        let lab = try PluginLab(scope)
        let libcni = try setUp(lab, version: version)
        let web = try lab.container()

        // Bridge: an address, the gateway, a published port from outside.
        let bridgeOutput = try libcni.call("ADD", "bridge.conflist", id: "web", netns: web.path,
                                           capabilities: ["portMappings": .array([mapping(8090, 80)])])
        #expect(try JSON.parse(bridgeOutput)["cniVersion"]?.stringValue == version)
        let bridge = try parseResult(bridgeOutput, version: version)
        #expect(bridge.ips.map(\.address) == [IPPrefix("10.88.0.2/16")!])
        #expect(lab.pings(from: web, "10.88.0.1"))
        try lab.listen(in: web, port: 80)
        #expect(lab.connects(from: lab.outside, to: PluginLab.hostUplink, port: 8090))

        // Host mode: the host's addresses; a host port the bridge container publishes is refused
        // and the refusal reaches libcni's caller with the port named.
        let host = try parseResult(try libcni.call("ADD", "host.conflist", id: "hostapp", netns: lab.host.path,
                                                   capabilities: ["portMappings": .array([mapping(9090, 9090)])]), version: version)
        #expect(host.ips.map(\.address).contains(IPPrefix("\(PluginLab.hostUplink)/24")!))
        let clash = try libcni.callAllowingFailure("ADD", "host.conflist", id: "hostapp2", netns: lab.host.path,
                                                   capabilities: ["portMappings": .array([mapping(8090, 8090)])])
        #expect(clash.status != 0 && clash.stderr.contains("8090"), "\(clash.stderr)")

        // Container mode: a sidecar joins web, once through the capability and once through CNI_ARGS.
        let sidecar = try parseResult(try libcni.call("ADD", "join.conflist", id: "sidecar", netns: web.path,
                                                      capabilities: ["joinContainer": .string("web")]), version: version)
        #expect(sidecar.ips.map(\.address) == bridge.ips.map(\.address))
        try libcni.call("ADD", "join.conflist", id: "sidecar2", netns: web.path, cniArgs: "IgnoreUnknown=1;BERTH_JOIN=web")

        // CHECK from 0.4.0 on; libcni itself refuses CHECK for older versions.
        for (list, id, netns) in [("bridge.conflist", "web", web.path), ("host.conflist", "hostapp", lab.host.path),
                                  ("join.conflist", "sidecar", web.path)] {
            let check = try libcni.callAllowingFailure("CHECK", list, id: id, netns: netns)
            if version == "0.3.1" {
                #expect(check.status != 0 && check.stderr.contains("does not support the CHECK command"), "\(check.stderr)")
            } else {
                #expect(check.status == 0, "CHECK \(list): \(check.stderr)")
            }
        }

        try libcni.call("DEL", "join.conflist", id: "sidecar2", netns: web.path)
        try libcni.call("DEL", "join.conflist", id: "sidecar", netns: web.path)
        try libcni.call("DEL", "host.conflist", id: "hostapp", netns: lab.host.path)
        try libcni.call("DEL", "bridge.conflist", id: "web", netns: web.path)
        #expect(lab.clean, "\(lab.leftovers)")
        #expect(!lab.connects(from: lab.outside, to: PluginLab.hostUplink, port: 8090, timeout: 1))
    }

    /// Debian's libcni 1.1.2 predates CNI 1.1.0: it cannot read a 1.1.0 result, so ADD fails
    /// after the plugin succeeded. What a runtime does then — DEL — must leave nothing behind,
    /// in every mode.
    @Test func version110ResultsAreBeyondThisLibcniAndItsDELCleansUp() throws {
        let lab = try PluginLab(scope)
        let libcni = try setUp(lab, version: "1.1.0")
        let web = try lab.container()
        // The sidecar needs a target attached at a version libcni reads.
        try libcni.files.write("bridge100.conflist", conflist("berth", version: "1.0.0", lab.bridgePlugin()))
        try libcni.call("ADD", "bridge100.conflist", id: "target", netns: web.path)

        let other = try lab.container()
        for (list, id, netns, capabilities) in [("bridge.conflist", "web", other.path, JSONObject()),
                                                ("host.conflist", "hostapp", lab.host.path, JSONObject()),
                                                ("join.conflist", "sidecar", web.path, ["joinContainer": JSON.string("target")])] {
            let add = try libcni.callAllowingFailure("ADD", list, id: id, netns: netns, capabilities: capabilities)
            #expect(add.status != 0 && add.stderr.contains(#"unsupported CNI result version "1.1.0""#), "\(list): \(add.stderr)")
            try libcni.call("DEL", list, id: id, netns: netns)
        }
        try libcni.call("DEL", "bridge100.conflist", id: "target", netns: web.path)
        #expect(lab.clean, "\(lab.leftovers)")
    }
}
