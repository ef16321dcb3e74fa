import BerthCNI
import BerthIP
import BerthJSON
import BerthTestSupport
import Foundation
import Testing

/// Every berth-bridge example in Conf/ is a valid conflist that attaches and detaches a
/// container (with the state and lease directories moved into the test's scratch space). The
/// berth-host and berth-container examples are tested with those modes.
@Suite(needsKernel)
struct ExampleConfigTests {
    let scope = NamespaceScope()

    static let examples: [String] = ((try? FileManager.default.contentsOfDirectory(atPath: repositoryRoot + "/Conf")) ?? [])
        .filter { $0.hasSuffix(".conflist") && !$0.hasPrefix("50-") && !$0.hasPrefix("60-") }.sorted()

    @Test func thereAreFiveBridgeExamples() {
        #expect(Self.examples == ["10-berth.conflist", "20-berth-dualstack.conflist", "30-berth-internal.conflist", "40-berth-ports.conflist",
                                  "70-berth-k8s-node.conflist"])
    }

    @Test(arguments: examples)
    func exampleAttachesAndDetaches(name: String) throws {
        let lab = try Lab(scope)
        let container = try lab.container()
        let list = try NetworkConfigList(parsing: Array(try String(contentsOfFile: repositoryRoot + "/Conf/" + name, encoding: .utf8).utf8))
        let capabilityArgs: JSONObject = ["portMappings": .array([.object(["hostPort": .int(8080), "containerPort": .int(80), "protocol": .string("tcp")])])]
        guard case .object(var config) = try list.requestConfig(plugin: 0, capabilityArgs: capabilityArgs) else { return }
        config["stateDir"] = .string(lab.stateDirectory)
        guard case .object(var ipam)? = config["ipam"] else { return }
        ipam["dataDir"] = .string(lab.dataDirectory)
        config["ipam"] = .object(ipam)
        let text = JSON.object(config).serialized()

        let result = try lab.add("example", container, config: text)
        #expect(!result.ips.isEmpty)
        #expect(lab.pings(from: container, result.ips[0].gateway!.description))
        #expect(try lab.plugin("CHECK", id: "example", container: container, config: text).status == 0)
        #expect(try lab.plugin("DEL", id: "example", container: container, config: text).status == 0)
        #expect(lab.records(list.name).isEmpty && lab.leases(list.name).isEmpty)
    }
}
