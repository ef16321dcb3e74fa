import BerthCNI
import BerthIP
import BerthJSON
import BerthTestSupport
import Foundation
import Testing

/// containerd's go-cni (Debian's 1.1.7), set up as containerd's CRI plugin sets it up (the
/// loopback network, then the first conflist of the configuration directory), attaching a pod
/// with what the CRI plugin passes: the pod's labels as CNI_ARGS, port mappings, IP ranges,
/// bandwidth and DNS.
@Suite(needsKernel, .enabled(if: InteropProgram.gocni.enabled, "needs .build/gocni-driver (Scripts/test.sh builds it)"))
struct GoCNITests {
    let scope = NamespaceScope()

    struct GoCNI {
        let lab: PluginLab
        let confDir: String

        func callAllowingFailure(_ command: String, id: String = "", netns: String = "", options: JSONObject = [:]) throws -> ProcessOutcome {
            try InteropProgram.gocni.run(in: lab.host, [command, confDir, id, netns],
                                         environment: options.isEmpty ? [] : ["BERTH_GOCNI_OPTIONS=\(JSON.object(options).serialized())"])
        }

        @discardableResult
        func call(_ command: String, id: String = "", netns: String = "", options: JSONObject = [:],
                  sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
            let outcome = try callAllowingFailure(command, id: id, netns: netns, options: options)
            try #require(outcome.status == 0, "go-cni \(command): \(outcome.stderr)", sourceLocation: sourceLocation)
            return outcome.stdout
        }
    }

    /// What the CRI plugin derives from a pod's sandbox config (pkg/cri/server/sandbox_run.go).
    static func podOptions(name: String, hostPort: Int, containerPort: Int) -> JSONObject {
        [
            "Labels": .object(["K8S_POD_NAMESPACE": .string("default"), "K8S_POD_NAME": .string(name),
                               "K8S_POD_INFRA_CONTAINER_ID": .string(name + "-sandbox"), "K8S_POD_UID": .string("uid-" + name),
                               "IgnoreUnknown": .string("1")]),
            "PortMappings": .array([.object(["HostPort": .int(hostPort), "ContainerPort": .int(containerPort), "Protocol": .string("tcp")])]),
            "IPRanges": .array([.object(["Subnet": .string("10.90.7.0/24")])]),
            "BandWidth": .object(["IngressRate": .int(1_000_000), "IngressBurst": .int(100_000),
                                  "EgressRate": .int(1_000_000), "EgressBurst": .int(100_000)]),
            "DNS": .object(["Servers": .array([.string("10.96.0.10")]), "Searches": .array([.string("default.svc.cluster.local")]),
                            "Options": .array([.string("ndots:5")])]),
        ]
    }

    @Test func podLifecycleWithTheCapabilitiesContainerdPasses() throws {
        let lab = try PluginLab(scope)
        let files = try ScratchFiles()
        let confDir = files.path + "/net.d"
        try FileManager.default.createDirectory(atPath: confDir, withIntermediateDirectories: true)
        let gocni = GoCNI(lab: lab, confDir: confDir)

        // No configuration yet: go-cni is not ready (containerd's NetworkReady=false).
        let empty = try gocni.callAllowingFailure("status")
        #expect(empty.status != 0 && empty.stderr.contains("cni plugin not initialized"), "\(empty.stderr)")

        // berth-bridge with its IPAM taking the pod's range from the ipRanges capability, and the
        // reference bandwidth plugin for the bandwidth capability.
        var ipam = JSONObject()
        if case .object(let bridge) = lab.bridgePlugin(), case .object(let object)? = bridge["ipam"] { ipam = object }
        ipam["ranges"] = nil
        try files.write("net.d/10-berth.conflist", conflist("berth", version: "1.0.0",
            lab.bridgePlugin(extra: ["ipam": .object(ipam),
                                     "capabilities": .object(["portMappings": .bool(true), "ipRanges": .bool(true), "dns": .bool(true)])]),
            .object(["type": .string("bandwidth"), "capabilities": .object(["bandwidth": .bool(true)])])))
        #expect(try gocni.call("status") == "ready\n")

        let pod = try lab.container()
        let options = Self.podOptions(name: "web", hostPort: 8091, containerPort: 80)
        let setup = try gocni.call("setup", id: "web-sandbox", netns: pod.path, options: options)
        #expect(!setup.contains("10.96.0.10"), "berth-bridge leaves the dns capability to the runtime: \(setup)")
        let result = try JSON.parse(setup)
        let eth0 = try #require(result["Interfaces"]?["eth0"])
        #expect(eth0["IPConfigs"]?[0]?["IP"]?.stringValue == "10.90.7.2")
        #expect(eth0["IPConfigs"]?[0]?["Gateway"]?.stringValue == "10.90.7.1")
        #expect(eth0["Sandbox"]?.stringValue == pod.path)
        #expect(result["Interfaces"]?["lo"] != nil, "go-cni's loopback network")

        #expect(lab.pings(from: pod, "10.90.7.1"))
        try lab.listen(in: pod, port: 80)
        #expect(lab.connects(from: lab.outside, to: PluginLab.hostUplink, port: 8091))
        let hostVeth = try #require(try lab.hostVeths().first)
        #expect(try lab.host.exec("tc", "qdisc", "show", "dev", hostVeth).contains("tbf"), "bandwidth's token bucket")

        try gocni.call("check", id: "web-sandbox", netns: pod.path, options: options)

        try gocni.call("remove", id: "web-sandbox", netns: pod.path, options: options)
        #expect(lab.clean, "\(lab.leftovers)")
        #expect(!lab.connects(from: lab.outside, to: PluginLab.hostUplink, port: 8091, timeout: 1))
        // The kubelet retries StopPodSandbox; containerd removes again, and after the namespace is gone.
        try gocni.call("remove", id: "web-sandbox", netns: pod.path, options: options)
        try gocni.call("remove", id: "web-sandbox", netns: "", options: options)
        #expect(lab.clean, "\(lab.leftovers)")
    }

    /// A second pod asking for the host port the first publishes: Setup fails with Berth's error
    /// naming the port, the first pod keeps it, and the failed pod leaves nothing.
    @Test func hostPortConflictBetweenPods() throws {
        let lab = try PluginLab(scope)
        let files = try ScratchFiles()
        try files.write("net.d/10-berth.conflist", conflist("berth", version: "1.0.0",
            lab.bridgePlugin(extra: ["capabilities": .object(["portMappings": .bool(true)])])))
        let gocni = GoCNI(lab: lab, confDir: files.path + "/net.d")
        let first = try lab.container(), second = try lab.container()
        try gocni.call("setup", id: "a", netns: first.path, options: ["PortMappings": .array([.object(["HostPort": .int(8092), "ContainerPort": .int(80), "Protocol": .string("tcp")])])])
        let clash = try gocni.callAllowingFailure("setup", id: "b", netns: second.path,
                                                  options: ["PortMappings": .array([.object(["HostPort": .int(8092), "ContainerPort": .int(80), "Protocol": .string("tcp")])])])
        #expect(clash.status != 0 && clash.stderr.contains("8092"), "\(clash.stderr)")
        #expect(lab.records().count == 1 && lab.leases().count == 1)
        try lab.listen(in: first, port: 80)
        #expect(lab.connects(from: lab.outside, to: PluginLab.hostUplink, port: 8092))
        try gocni.call("remove", id: "b", netns: second.path)
        try gocni.call("remove", id: "a", netns: first.path)
        #expect(lab.clean, "\(lab.leftovers)")
    }
}
