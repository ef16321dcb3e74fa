import BerthCNI
import BerthJSON
import BerthTestSupport
import Foundation
import Testing

/// Configs and observers for berth-host and berth-container, on the plugin lab: the "host" is
/// the lab's host namespace, containers are namespaces the test makes.
extension PluginLab {
    /// A berth-host config with the lab's state directory and a scratch resolv.conf, plus `extra`.
    func hostConfig(name: String = "hostnet", version: String = "1.1.0", extra: JSONObject = [:]) -> String {
        var object: JSONObject = [
            "cniVersion": .string(version), "name": .string(name), "type": .string("berth-host"),
            "stateDir": .string(stateDirectory), "resolvConf": .string(resolvConf),
        ]
        for member in extra { object[member.key] = member.value }
        return JSON.object(object).serialized()
    }

    /// A berth-container config joining `target` through the config key (nil: no key).
    func joinConfig(_ target: String?, name: String = "joined", version: String = "1.1.0", extra: JSONObject = [:]) -> String {
        var object: JSONObject = [
            "cniVersion": .string(version), "name": .string(name), "type": .string("berth-container"),
            "stateDir": .string(stateDirectory),
        ]
        if let target { object["container"] = .string(target) }
        for member in extra { object[member.key] = member.value }
        return JSON.object(object).serialized()
    }

    /// The scratch resolv.conf host configs point at.
    var resolvConf: String { dataDirectory + "/resolv.conf" }

    func writeResolvConf() throws {
        try "# test\nnameserver 192.0.2.53\nsearch berth.test\noptions ndots:2\n".write(toFile: resolvConf, atomically: true, encoding: .utf8)
    }

    func host(_ command: String, id: String = "", netns: String? = nil, config: String, environment: [String] = []) throws -> ProcessOutcome {
        try plugin(command, id: id, netns: netns, config: config, environment: environment, executable: "berth-host")
    }

    func join(_ command: String, id: String = "", netns: String? = nil, config: String, environment: [String] = []) throws -> ProcessOutcome {
        try plugin(command, id: id, netns: netns, config: config, environment: environment, executable: "berth-container")
    }

    /// The decoded record of an attachment, nil when there is none.
    func record(_ network: String, _ id: String, ifname: String = "eth0") throws -> JSON? {
        let path = "\(stateDirectory)/\(network)/\(id):\(ifname).json"
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try JSON.parse(readFile(path))
    }

    /// What the host's network looks like from outside Berth: addresses, routes of every table
    /// and the whole nftables ruleset.
    func hostSnapshot() throws -> [String] {
        [try run("ip", "-n", host.name, "addr", "show"), try run("ip", "-n", host.name, "route", "show", "table", "all"),
         try run("ip", "-n", host.name, "-6", "route", "show", "table", "all"), try host.nft("list", "ruleset")]
    }
}

/// The inode of a namespace file, as `stat` shows it.
func namespaceInode(_ path: String) throws -> String {
    try run("stat", "-L", "-c", "%i", path).trimmingCharacters(in: .whitespacesAndNewlines)
}

/// A port mapping as runtimes pass it in runtimeConfig.
func portMapping(_ hostPort: Int, _ containerPort: Int? = nil, proto: String = "tcp", hostIP: String? = nil) -> JSON {
    var object: JSONObject = ["hostPort": .int(hostPort), "containerPort": .int(containerPort ?? hostPort), "protocol": .string(proto)]
    if let hostIP { object["hostIP"] = .string(hostIP) }
    return .object(object)
}

func publishing(_ mappings: JSON...) -> JSONObject { ["runtimeConfig": .object(["portMappings": .array(mappings)])] }
