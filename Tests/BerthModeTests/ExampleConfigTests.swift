import BerthCNI
import BerthIP
import BerthJSON
import BerthTestSupport
import Foundation
import Testing

/// Conf/50-berth-host.conflist and Conf/60-berth-container.conflist, run as a runtime runs
/// them: the config libcni would build, with capability arguments, state moved to scratch space.
@Suite(needsKernel)
struct ModeExampleConfigTests {
    let scope = NamespaceScope()

    func example(_ name: String, _ lab: PluginLab, capabilityArgs: JSONObject) throws -> (NetworkConfigList, String) {
        let list = try NetworkConfigList(parsing: Array(try String(contentsOfFile: repositoryRoot + "/Conf/" + name, encoding: .utf8).utf8))
        guard case .object(var config) = try list.requestConfig(plugin: 0, capabilityArgs: capabilityArgs) else {
            throw CommandFailure(command: "requestConfig of \(name)", status: 1)
        }
        config["stateDir"] = .string(lab.stateDirectory)
        return (list, JSON.object(config).serialized())
    }

    @Test func hostExampleAttachesChecksAndDetaches() throws {
        let lab = try PluginLab(scope)
        let (list, config) = try example("50-berth-host.conflist", lab, capabilityArgs: ["portMappings": .array([portMapping(8080)])])
        #expect(config.contains("\"portMappings\""), "the example declares the portMappings capability")
        let result = try lab.add("example", lab.host, config: config, executable: "berth-host")
        #expect(result.ips.map(\.address) == [IPPrefix("192.0.2.1/24")!])
        #expect(try lab.host("CHECK", id: "example", netns: lab.host.path, config: config).status == 0)
        #expect(try lab.host("DEL", id: "example", netns: lab.host.path, config: config).status == 0)
        #expect(lab.records(list.name).isEmpty)
    }

    @Test func containerExampleJoinsChecksAndDetaches() throws {
        let lab = try PluginLab(scope)
        let web = try lab.container()
        try lab.add("web", web, config: lab.config())
        let (list, config) = try example("60-berth-container.conflist", lab, capabilityArgs: ["joinContainer": .string("web")])
        let result = try lab.add("example", web, config: config, executable: "berth-container")
        #expect(result.ips.map(\.address) == [IPPrefix("10.88.0.2/16")!])
        #expect(try lab.join("CHECK", id: "example", netns: web.path, config: config).status == 0)
        #expect(try lab.join("DEL", id: "example", netns: web.path, config: config).status == 0)
        #expect(lab.records(list.name).isEmpty && lab.records().count == 1)
    }
}
