#if canImport(Glibc)
import Glibc
#endif
import BerthJSON
import BerthTestSupport

/// Docker's isolation promise, checked from the outside: an attacker on the host's uplink segment,
/// with routes to the container subnets through the host, reaches published ports and nothing
/// else; two networks cannot reach each other; containers still reach the outside.
enum Isolation {
    static let attackerAddress = "192.0.2.66"

    /// The uplink segment: a bridge `uplink0` in the harness's (host) namespace with 192.0.2.1,
    /// the "outside" (192.0.2.2, the host's default route) and the attacker on it.
    final class Segment {
        let outside: ScratchNamespace
        let attacker: ScratchNamespace

        init(scope: NamespaceScope) throws {
            outside = try scope.make(loopbackUp: true)
            attacker = try scope.make(loopbackUp: true)
            try BerthTestSupport.run("ip", "link", "add", "uplink0", "type", "bridge")
            try BerthTestSupport.run("ip", "addr", "add", "192.0.2.1/24", "dev", "uplink0")
            try BerthTestSupport.run("ip", "link", "set", "uplink0", "up")
            for (namespace, address, name) in [(outside, "192.0.2.2", "upout"), (attacker, attackerAddress, "upatk")] {
                try BerthTestSupport.run("ip", "link", "add", name, "type", "veth", "peer", "name", "eth0", "netns", namespace.name)
                try BerthTestSupport.run("ip", "link", "set", name, "master", "uplink0", "up")
                try BerthTestSupport.run("ip", "-n", namespace.name, "addr", "add", "\(address)/24", "dev", "eth0")
                try BerthTestSupport.run("ip", "-n", namespace.name, "link", "set", "eth0", "up")
            }
            try BerthTestSupport.run("ip", "route", "replace", "default", "via", "192.0.2.2")
            // The attacker routes every private address through the host.
            try BerthTestSupport.run("ip", "-n", attacker.name, "route", "add", "10.0.0.0/8", "via", "192.0.2.1")
        }

        deinit {
            _ = try? BerthTestSupport.run("ip", "link", "del", "uplink0")
            _ = try? BerthTestSupport.run("ip", "route", "del", "default", "via", "192.0.2.2")
        }
    }

    struct Check {
        var name: String
        var expected: Bool
        var observed: Bool
        var passed: Bool { expected == observed }
    }

    static func run(_ subject: Subject, networks: (Subject.Network, Subject.Network), publishedPort: Int,
                    segment: Segment, scope: NamespaceScope) throws -> [Check] {
        let listeners = Listeners()
        let first = try scope.make(loopbackUp: true), second = try scope.make(loopbackUp: true)
        let firstResult = try add(subject, networks.0, id: "iso-a", container: first, publish: publishedPort)
        let secondResult = try add(subject, networks.1, id: "iso-b", container: second, publish: nil)
        defer {
            remove(subject, networks.0, id: "iso-a", container: first, publish: publishedPort, result: firstResult)
            remove(subject, networks.1, id: "iso-b", container: second, publish: nil, result: secondResult)
        }
        let firstAddress = address(firstResult), secondAddress = address(secondResult)
        try listeners.listen(in: first, port: 80)
        try listeners.listen(in: first, port: 9000)
        try listeners.listen(in: second, port: 80)
        return [
            Check(name: "attacker pings a container", expected: false, observed: segment.attacker.pings(firstAddress)),
            Check(name: "attacker reaches an unpublished port", expected: false,
                  observed: segment.attacker.connects(to: firstAddress, port: 9000, timeout: 1)),
            Check(name: "attacker reaches a published port's container directly", expected: false,
                  observed: segment.attacker.connects(to: firstAddress, port: 80, timeout: 1)),
            Check(name: "attacker reaches the published port on the host", expected: true,
                  observed: segment.attacker.connects(to: "192.0.2.1", port: publishedPort, timeout: 2)),
            Check(name: "network A reaches network B", expected: false,
                  observed: first.pings(secondAddress) || first.connects(to: secondAddress, port: 80, timeout: 1)),
            Check(name: "network B reaches network A", expected: false,
                  observed: second.pings(firstAddress) || second.connects(to: firstAddress, port: 9000, timeout: 1)),
            Check(name: "containers reach the outside", expected: true,
                  observed: first.pings("192.0.2.2") && second.pings("192.0.2.2")),
        ]
    }

    static func address(_ result: JSON) -> String {
        result["ips"]?[0]?["address"]?.stringValue.map { String($0.split(separator: "/")[0]) } ?? "0.0.0.0"
    }

    struct SetupFailure: Error, CustomStringConvertible { let description: String }

    /// ADD as a runtime does it: Berth publishes through runtimeConfig; the reference chains
    /// its portmap with the bridge's result.
    static func add(_ subject: Subject, _ network: Subject.Network, id: String, container: ScratchNamespace, publish: Int?) throws -> JSON {
        let config = subject.kind == .berth ? subject.bridgeConfig(network, ports: publish.map { [$0] } ?? []) : subject.bridgeConfig(network)
        let added = subject.bridge("ADD", network, id: id, netns: container.path, config: config)
        guard added.succeeded, var result = try? JSON.parse(added.stdout) else { throw SetupFailure(description: "ADD \(id): \(added.text)") }
        if subject.kind == .reference, let publish {
            let portmap = ProcessRunner.run(ProcessCall(executable: subject.binDirectory + "/portmap",
                                                      environment: subject.environment("ADD", id: id, netns: container.path),
                                                      stdin: Array(portmapConfig(network, publish, prevResult: result).serialized().utf8)))
            guard portmap.succeeded, let chained = try? JSON.parse(portmap.stdout) else {
                throw SetupFailure(description: "portmap ADD \(id): \(portmap.text)")
            }
            result = chained
        }
        return result
    }

    static func remove(_ subject: Subject, _ network: Subject.Network, id: String, container: ScratchNamespace, publish: Int?, result: JSON) {
        if subject.kind == .reference, let publish {
            _ = ProcessRunner.run(ProcessCall(executable: subject.binDirectory + "/portmap",
                                            environment: subject.environment("DEL", id: id, netns: container.path),
                                            stdin: Array(portmapConfig(network, publish, prevResult: result).serialized().utf8)))
        }
        let config = subject.kind == .berth ? subject.bridgeConfig(network, ports: publish.map { [$0] } ?? []) : subject.bridgeConfig(network)
        _ = subject.bridge("DEL", network, id: id, netns: container.path, config: config)
    }

    static func portmapConfig(_ network: Subject.Network, _ port: Int, prevResult: JSON) -> JSON {
        .object(["cniVersion": .string("1.0.0"), "name": .string(network.name), "type": .string("portmap"),
                 "capabilities": .object(["portMappings": .bool(true)]),
                 "runtimeConfig": .object(["portMappings": .array([.object(["hostPort": .int(port), "containerPort": .int(80),
                                                                            "protocol": .string("tcp")])])]),
                 "prevResult": prevResult])
    }
}
