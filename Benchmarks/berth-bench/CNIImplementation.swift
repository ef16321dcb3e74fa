#if canImport(Glibc)
import Glibc
#endif
import BerthCNI
import BerthJSON
import BerthNetlink

/// A CNI implementation under test, run as a runtime runs it: one fork+exec+wait per plugin call,
/// the config on stdin, the CNI environment. Berth is berth-bridge with berth-ipam in process;
/// the reference is Debian's bridge with host-local, chained with portmap when ports are published.
struct CNIImplementation: Sendable {
    enum Kind: Sendable { case berth, reference }

    let kind: Kind
    let binDirectory: String
    let scratch: String

    var name: String { kind == .berth ? "Berth" : "reference" }
    var bridgePlugin: String { binDirectory + (kind == .berth ? "/berth-bridge" : "/bridge") }

    /// One network of a run: its own bridge, subnet and directories.
    struct Network: Sendable {
        let name: String
        let bridge: String
        let subnet: String
        let masquerade: Bool
        let publish: Bool
        let directory: String
    }

    /// A container: a namespace made before timing starts.
    struct Container: Sendable {
        let index: Int
        var id: String { "bench\(index)" }
        var path: String { "/run/netns/bench-\(index)" }
        /// The host port a publishing run gives it.
        var hostPort: Int { 10000 + index }
    }

    struct Call: Sendable {
        var milliseconds: Double
        var peakKilobytes: Int
        var result: JSON?
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    func network(_ name: String, index: Int, masquerade: Bool, publish: Bool) -> Network {
        let prefix = kind == .berth ? "bb" : "cb"
        return Network(name: name, bridge: "\(prefix)\(index)", subnet: "10.\(100 + index).0.0/16", masquerade: masquerade,
                       publish: publish, directory: "\(scratch)/\(self.name)-\(name)")
    }

    private func bridgeConfig(_ network: Network, _ container: Container) -> JSON {
        let ranges: JSON = .array([.array([.object(["subnet": .string(network.subnet)])])])
        var object: JSONObject = ["cniVersion": .string("1.0.0"), "name": .string(network.name), "bridge": .string(network.bridge),
                                  "ipMasq": .bool(network.masquerade)]
        switch kind {
        case .berth:
            object["type"] = .string("berth-bridge")
            object["stateDir"] = .string(network.directory + "/state")
            object["ipam"] = .object(["type": .string("berth-ipam"), "dataDir": .string(network.directory + "/leases"), "ranges": ranges])
            if network.publish { object["runtimeConfig"] = .object(["portMappings": portMappings(container)]) }
        case .reference:
            object["type"] = .string("bridge")
            object["isGateway"] = .bool(true)
            object["ipam"] = .object(["type": .string("host-local"), "dataDir": .string(network.directory + "/leases"), "ranges": ranges])
        }
        return .object(object)
    }

    private func portMappings(_ container: Container) -> JSON {
        .array([.object(["hostPort": .int(container.hostPort), "containerPort": .int(80), "protocol": .string("tcp")])])
    }

    /// The reference's portmap entry, with the bridge's result as prevResult.
    private func portmapConfig(_ network: Network, _ container: Container, prevResult: JSON?) -> JSON {
        var object: JSONObject = ["cniVersion": .string("1.0.0"), "name": .string(network.name), "type": .string("portmap"),
                                  "capabilities": .object(["portMappings": .bool(true)]),
                                  "runtimeConfig": .object(["portMappings": portMappings(container)])]
        if let prevResult { object["prevResult"] = prevResult }
        return .object(object)
    }

    private func invoke(_ plugin: String, _ command: String, _ container: Container, stdin: JSON) throws -> Call {
        let environment = ["CNI_COMMAND=\(command)", "CNI_CONTAINERID=\(container.id)", "CNI_NETNS=\(container.path)", "CNI_IFNAME=eth0",
                           "CNI_PATH=\(binDirectory)", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
        var output: Spawn.Output?
        let elapsed = try milliseconds {
            output = try Spawn.run(plugin, environment: environment, stdin: Array(stdin.serialized().utf8), stdoutLimit: 1 << 20)
        }
        guard let output, output.termination == .exited(0) else {
            throw Failure(description: "\(command) \(container.id) with \(plugin): \(output?.termination.description ?? "not run"): "
                          + String(decoding: output?.stdout ?? [], as: UTF8.self))
        }
        let result = command == "ADD" ? try? JSON.parse(output.stdout) : nil
        return Call(milliseconds: elapsed, peakKilobytes: output.peakMemoryKilobytes, result: result)
    }

    /// ADD of the whole chain; its time is the sum of the plugin calls.
    func add(_ network: Network, _ container: Container) throws -> Call {
        var call = try invoke(bridgePlugin, "ADD", container, stdin: bridgeConfig(network, container))
        if kind == .reference && network.publish {
            let portmap = try invoke(binDirectory + "/portmap", "ADD", container, stdin: portmapConfig(network, container, prevResult: call.result))
            call = Call(milliseconds: call.milliseconds + portmap.milliseconds, peakKilobytes: max(call.peakKilobytes, portmap.peakKilobytes),
                        result: portmap.result ?? call.result)
        }
        return call
    }

    /// DEL of the whole chain, in reverse, given the ADD's result as runtimes do.
    func del(_ network: Network, _ container: Container, result: JSON?) throws -> Call {
        var total = Call(milliseconds: 0, peakKilobytes: 0, result: nil)
        if kind == .reference && network.publish {
            total = try invoke(binDirectory + "/portmap", "DEL", container, stdin: portmapConfig(network, container, prevResult: result))
        }
        let bridge = try invoke(bridgePlugin, "DEL", container, stdin: bridgeConfig(network, container))
        return Call(milliseconds: total.milliseconds + bridge.milliseconds, peakKilobytes: max(total.peakKilobytes, bridge.peakKilobytes), result: nil)
    }

    /// VERSION: the plugin's start-up, nothing else.
    func version() throws -> Double {
        var output: Spawn.Output?
        let elapsed = try milliseconds {
            output = try Spawn.run(bridgePlugin, environment: ["CNI_COMMAND=VERSION"], stdin: Array(#"{"cniVersion":"1.0.0"}"#.utf8),
                                   stdoutLimit: 1 << 16)
        }
        guard output?.termination == .exited(0) else { throw Failure(description: "VERSION of \(bridgePlugin) failed") }
        return elapsed
    }

    /// What remains of a network once its containers are gone: its bridge.
    func removeLeftovers(_ network: Network) {
        if let host = try? RouteNetlink.current() { try? host.linkDelete(.named(network.bridge)) }
    }
}

/// The containers' namespaces, made and removed outside the timed calls.
enum BenchmarkNamespaces {
    static func make(_ count: Int) throws -> [CNIImplementation.Container] {
        mkdir("/run/netns", 0o755)
        return try (0..<count).map { index in
            let container = CNIImplementation.Container(index: index)
            try NetworkNamespace.create(at: container.path)
            return container
        }
    }

    static func remove(_ containers: [CNIImplementation.Container]) {
        for container in containers { try? NetworkNamespace.remove(at: container.path) }
    }
}
