import BerthCNI
import BerthJSON
import BerthTestSupport
import Foundation
import Testing

/// Berth as each node's CNI in a simulated three-node cluster: "node" namespaces on one
/// "underlay" bridge (192.168.50.0/24), each with its own Berth state, the pod CIDR 10.244.N.0/24
/// and static routes to the other nodes' pod CIDRs via their addresses; a "world" namespace on
/// the underlay (192.168.50.254, the nodes' default gateway, and 203.0.113.1) plays the internet.
/// The same cluster as Scripts/cluster-demo.sh.
@Suite(needsKernel)
struct ClusterTests {
    let scope = NamespaceScope()

    static let clusterCIDR = "10.244.0.0/16"
    static let serviceCIDR = "10.96.0.0/12"
    static let internet = "203.0.113.1"

    final class Cluster {
        struct Node {
            let index: Int
            let namespace: ScratchNamespace
            let directory: String
            var address: String { "192.168.50.1\(index)" }
            let podPrefixLength: Int
            var podCIDR: String { "10.244.\(index).0/\(podPrefixLength)" }
        }

        let scope: NamespaceScope
        let underlay: ScratchNamespace
        let world: ScratchNamespace
        private(set) var nodes: [Node] = []
        private let listeners = Listeners()

        init(_ scope: NamespaceScope, nodes count: Int = 3, podPrefixLength: Int = 24) throws {
            self.scope = scope
            underlay = try scope.make()
            world = try scope.make(loopbackUp: true)
            try run("ip", "-n", underlay.name, "link", "add", "ul0", "type", "bridge")
            try run("ip", "-n", underlay.name, "link", "set", "ul0", "up")
            try plug(world, as: "192.168.50.254/24", port: "ulw")
            try run("ip", "-n", world.name, "addr", "add", "\(ClusterTests.internet)/32", "dev", "eth0")
            for index in 1...count {
                let node = Node(index: index, namespace: try scope.make(loopbackUp: true), directory: try makeTemporaryDirectory(),
                                podPrefixLength: podPrefixLength)
                try plug(node.namespace, as: "\(node.address)/24", port: "uln\(index)")
                try run("ip", "-n", node.namespace.name, "route", "add", "default", "via", "192.168.50.254")
                nodes.append(node)
            }
            // How the pod CIDRs reach each other: static routes via the node addresses (what a
            // cloud's route table or a routing daemon provides on a real cluster).
            for node in nodes {
                for other in nodes where other.index != node.index {
                    try run("ip", "-n", node.namespace.name, "route", "add", other.podCIDR, "via", other.address)
                }
            }
        }

        deinit { for node in nodes { removeTemporaryDirectory(node.directory) } }

        /// An `eth0` in `namespace` with `address`, its peer `port` on the underlay bridge.
        private func plug(_ namespace: ScratchNamespace, as address: String, port: String) throws {
            try run("ip", "-n", underlay.name, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", namespace.name)
            try run("ip", "-n", underlay.name, "link", "set", port, "master", "ul0", "up")
            try run("ip", "-n", namespace.name, "addr", "add", address, "dev", "eth0")
            try run("ip", "-n", namespace.name, "link", "set", "eth0", "up")
        }

        /// The node's network: Conf/70-berth-k8s-node.conflist's berth-bridge, with the node's pod
        /// CIDR and its own state and lease directories.
        func config(_ node: Node, version: String? = nil) throws -> String {
            let list = try JSON.parse(String(contentsOfFile: repositoryRoot + "/Conf/70-berth-k8s-node.conflist", encoding: .utf8))
            guard case .object(var plugin)? = list["plugins"]?[0], case .object(var ipam)? = plugin["ipam"] else {
                throw CommandFailure(command: "Conf/70-berth-k8s-node.conflist has no berth-bridge with ipam", status: 1)
            }
            ipam["ranges"] = .array([.array([.object(["subnet": .string(node.podCIDR)])])])
            ipam["dataDir"] = .string(node.directory + "/leases")
            plugin["ipam"] = .object(ipam)
            plugin["stateDir"] = .string(node.directory + "/state")
            plugin["cniVersion"] = version.map { .string($0) } ?? list["cniVersion"]
            plugin["name"] = list["name"]
            return JSON.object(plugin).serialized()
        }

        /// Runs berth-bridge on `node` for `pod`.
        func cni(_ command: String, _ pod: ScratchNamespace, on node: Node, runtimeConfig: JSONObject = [:],
                 version: String? = nil) throws -> ProcessOutcome {
            var config = try config(node, version: version)
            if !runtimeConfig.isEmpty, case .object(var object) = try JSON.parse(config) {
                object["runtimeConfig"] = .object(runtimeConfig)
                config = JSON.object(object).serialized()
            }
            return try runExecutable("/usr/bin/nsenter", arguments: ["--net=\(node.namespace.path)", "\(productsDirectory)/berth-bridge"],
                                     environment: ["CNI_COMMAND=\(command)", "CNI_CONTAINERID=\(pod.name)", "CNI_NETNS=\(pod.path)",
                                                   "CNI_IFNAME=eth0", "CNI_PATH=\(productsDirectory)", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
                                     stdin: Array(config.utf8))
        }

        /// A pod on `node`: its IP.
        func addPod(on node: Node, runtimeConfig: JSONObject = [:]) throws -> (pod: ScratchNamespace, ip: String) {
            let pod = try scope.make()
            let outcome = try cni("ADD", pod, on: node, runtimeConfig: runtimeConfig)
            guard outcome.status == 0, let address = try JSON.parse(outcome.stdout)["ips"]?[0]?["address"]?.stringValue else {
                throw CommandFailure(command: "ADD on node \(node.index)", status: outcome.status, stderr: outcome.stdout)
            }
            return (pod, String(address.prefix { $0 != "/" }))
        }

        func listen(in namespace: ScratchNamespace, port: Int) throws { try listeners.listen(in: namespace, port: port) }

        /// Counters in `namespace` of packets arriving from each source prefix.
        func countArrivals(in namespace: ScratchNamespace, from prefixes: [String]) throws {
            try namespace.nft("add", "table", "ip", "watch")
            try namespace.nft("add", "chain", "ip", "watch", "in", "{ type filter hook input priority 0; }")
            for prefix in prefixes { try namespace.nft("add", "rule", "ip", "watch", "in", "ip", "saddr", prefix, "counter") }
        }

        func arrivals(in namespace: ScratchNamespace) throws -> [Int] {
            let json = try JSON.parse(try namespace.nft("-j", "list", "chain", "ip", "watch", "in"))
            return (json["nftables"]?.arrayValue ?? []).compactMap { item -> Int? in
                item["rule"]?["expr"]?.arrayValue.compactMap { $0["counter"]?["packets"]?.intValue }.first
            }
        }

        /// Nothing of Berth's left on `node` but its bridge: no record, lease, veth or table.
        func isClean(_ node: Node) throws -> Bool {
            let records = FileManager.default.subpaths(atPath: node.directory + "/state")?.filter { $0.hasSuffix(".json") } ?? []
            let leases = FileManager.default.subpaths(atPath: node.directory + "/leases")?.filter { $0.hasPrefix("k8s-pod-network/10.") } ?? []
            let veths = try node.namespace.ip("-d", "link", "show", "type", "veth").arrayValue.filter {
                $0["ifname"]?.stringValue?.hasPrefix("veth") == true
            }
            let table = (try? node.namespace.nft("list", "table", "inet", "berth")) ?? ""
            return records.isEmpty && leases.isEmpty && veths.isEmpty && table.isEmpty
        }
    }

    @Test func podsReachEachOtherAcrossNodesWithoutNAT() throws {
        let cluster = try Cluster(scope)
        let (node1, node2, node3) = (cluster.nodes[0], cluster.nodes[1], cluster.nodes[2])
        let (pod1, ip1) = try cluster.addPod(on: node1)
        let (pod3, ip3) = try cluster.addPod(on: node3)
        #expect(ip1 == "10.244.1.2" && ip3 == "10.244.3.2")

        // Pod to pod across nodes: the receiving pod sees the sender's pod IP, not its node's.
        try cluster.countArrivals(in: pod3, from: [ip1, node1.address])
        #expect(pod1.pings(ip3))
        try cluster.listen(in: pod3, port: 8080)
        #expect(pod1.connects(to: ip3, port: 8080))
        let counts = try cluster.arrivals(in: pod3)
        #expect(counts[0] >= 2 && counts[1] == 0, "from pod 1's IP / from node 1's address: \(counts)")
        // And back the other way.
        #expect(pod3.pings(ip1))

        // Leaving the cluster: masqueraded to the node's address.
        try cluster.countArrivals(in: cluster.world, from: [node1.address, Self.clusterCIDR])
        #expect(pod1.pings(Self.internet))
        let world = try cluster.arrivals(in: cluster.world)
        #expect(world[0] >= 1 && world[1] == 0, "from node 1's address / from a pod IP: \(world)")

        // A hostPort on node 2 answers from another node and from a pod there.
        let (pod2, _) = try cluster.addPod(on: node2, runtimeConfig: [
            "portMappings": .array([.object(["hostPort": .int(8080), "containerPort": .int(80), "protocol": .string("tcp")])]),
        ])
        try cluster.listen(in: pod2, port: 80)
        #expect(node1.namespace.connects(to: node2.address, port: 8080), "from node 1")
        #expect(pod1.connects(to: node2.address, port: 8080), "from a pod on node 1")
        #expect(cluster.world.connects(to: node2.address, port: 8080), "from outside the cluster")

        for (pod, node) in [(pod1, node1), (pod2, node2), (pod3, node3)] {
            let deletion = try cluster.cni("DEL", pod, on: node)
            #expect(deletion.status == 0, "\(deletion.stdout)")
        }
        for node in cluster.nodes { #expect(try cluster.isClean(node), "node \(node.index)") }
    }

    /// The node CNI's STATUS (cniVersion 1.1.0: runtimes with libcni ≥ 1.2 ask it for the
    /// node's network readiness): fine on a working node; 50 once the pod CIDR has no free address.
    @Test func statusFollowsThePodCIDR() throws {
        let cluster = try Cluster(scope, nodes: 1, podPrefixLength: 29)
        let node = cluster.nodes[0]
        let status = { () throws -> ProcessOutcome in try cluster.cni("STATUS", try self.scope.make(), on: node, version: "1.1.0") }
        #expect(try status().status == 0)
        var pods: [ScratchNamespace] = []
        for _ in 0..<5 { pods.append(try cluster.addPod(on: node).pod) }  // 10.244.1.2 … .6 of 10.244.1.0/29
        let full = try status()
        let error = CNIError(json: try JSON.parse(full.stdout))
        #expect(full.status != 0 && error?.code == .pluginNotAvailable, "\(full.stdout)")
        #expect(try cluster.cni("DEL", pods[0], on: node).status == 0)
        #expect(try status().status == 0)
    }
}
