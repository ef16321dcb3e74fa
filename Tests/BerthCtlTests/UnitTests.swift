import ArgumentParser
@testable import BerthCtl
import BerthJSON
import BerthTestSupport
import Foundation
import Testing

@Suite struct NetctlUnitTests {
    /// Every command and subcommand, by its path of names.
    static func commands(_ command: any ParsableCommand.Type = Netctl.self, path: [String] = []) -> [(path: [String], type: any ParsableCommand.Type)] {
        let name = command.configuration.commandName ?? String(describing: command).lowercased()
        let here = path + [name]
        return [(here, command)] + command.configuration.subcommands.flatMap { commands($0, path: here) }
    }

    @Test func everyCommandHasExamplesInItsHelp() {
        for (path, command) in Self.commands() where command.configuration.subcommands.isEmpty || path.count == 1 {
            let help = Netctl.helpMessage(for: command)
            #expect(help.contains("Examples:\n"), "netctl \(path.dropFirst().joined(separator: " ")) --help has no examples")
        }
    }

    @Test(arguments: ["bash", "zsh", "fish"])
    func completionScriptsKnowEveryCommand(shell: String) throws {
        let outcome = try runExecutable("netctl", arguments: ["--generate-completion-script", shell], environment: [], stdin: [])
        #expect(outcome.status == 0)
        for command in ["add", "check", "del", "gc", "status", "ns", "ps", "inspect", "ipam", "rules", "doctor", "run"] {
            #expect(outcome.stdout.contains(command), "\(shell) completion lacks \(command)")
        }
    }

    @Test(arguments: [
        ("8080:80", nil, 8080, 80, "tcp"),
        ("8080:80/udp", nil, 8080, 80, "udp"),
        ("127.0.0.1:8080:80/tcp", "127.0.0.1", 8080, 80, "tcp"),
        ("[::1]:8443:443/sctp", "::1", 8443, 443, "sctp"),
    ] as [(String, String?, Int, Int, String)])
    func publishSpecs(text: String, hostIP: String?, hostPort: Int, containerPort: Int, proto: String) throws {
        let spec = try PortSpec(text)
        #expect(spec.hostIP == hostIP && spec.hostPort == hostPort && spec.containerPort == containerPort && spec.proto == proto)
    }

    @Test(arguments: ["8080", "80:", "x:80", "0:80", "8080:80/icmp", "nothere:8080:80", "1:2:3:4"])
    func badPublishSpecsAreRefused(text: String) {
        #expect(throws: CtlError.self) { try PortSpec(text) }
    }

    @Test func derivedIDsAreStableValidAndDistinct() {
        let a = AttachmentOptions.derivedID("/run/netns/a"), b = AttachmentOptions.derivedID("/run/netns/b")
        #expect(a == AttachmentOptions.derivedID("/run/netns/a") && a != b)
        #expect(a.hasPrefix("netctl-") && a.count == 23)
    }

    @Test func pathsComeFromFlagsThenTheEnvironmentThenDefaults() {
        let environment = ["BERTH_STATE_DIR": "/env/state", "NETCONFPATH": "/env/conf", "CNI_PATH": "/env/a:/env/b"]
        let fromEnvironment = CtlPaths(environment: environment)
        #expect(fromEnvironment.stateDirectory == "/env/state" && fromEnvironment.confDirectory == "/env/conf")
        #expect(fromEnvironment.pluginDirectories == ["/env/a", "/env/b"])
        let fromFlags = CtlPaths(stateDirectory: "/flag/state", confDirectory: "/flag/conf", pluginDirectory: "/flag/bin", environment: environment)
        #expect(fromFlags.stateDirectory == "/flag/state" && fromFlags.confDirectory == "/flag/conf" && fromFlags.pluginDirectories == ["/flag/bin"])
        let defaults = CtlPaths(environment: [:])
        #expect(defaults.stateDirectory == "/var/lib/berth" && defaults.confDirectory == "/etc/cni/net.d" && defaults.pluginDirectories == ["/opt/cni/bin"])
        #expect(defaults.cacheDirectory == "/var/lib/cni" && defaults.dataDirectory == "/var/lib/cni/networks")
    }

    @Test func tablesAlignColumns() {
        var table = Table("network", "address")
        table.add("berth", "10.88.0.2")
        table.add("a", "b")
        #expect(table.text == "NETWORK  ADDRESS\nberth    10.88.0.2\na        b\n")
        #expect(Table("x").text == "X\n(none)\n")
    }

    @Test func theResultCacheIsLibcnisFormat() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(directory) }
        let cache = ResultCache(cacheDirectory: directory)
        try cache.save(.init(network: "berth", containerID: "web", ifname: "eth0", netns: "/run/netns/web", config: Array("{}".utf8),
                             capabilityArgs: ["portMappings": .array([])], cniArgs: [("IP", "10.88.0.9")], result: .object(["cniVersion": .string("1.1.0")])))
        let stored = try JSON.parse(readFile(directory + "/results/berth-web-eth0"))
        #expect(stored["kind"]?.stringValue == "cniCacheV1" && stored["containerId"]?.stringValue == "web" && stored["ifName"]?.stringValue == "eth0")
        #expect(stored["config"]?.stringValue == "e30=", "config is base64, as Go encodes []byte")
        #expect(stored["cniArgs"]?[0]?.arrayValue == [.string("IP"), .string("10.88.0.9")])
        #expect(cache.entries(network: "berth").map(\.containerID) == ["web"])
        #expect(cache.entries(network: "ber").isEmpty, "a network whose name is a prefix of another's")
    }
}
