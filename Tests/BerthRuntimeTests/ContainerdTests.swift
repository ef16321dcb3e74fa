import BerthJSON
import BerthTestSupport
import Foundation
import Testing

/// Debian's containerd (1.6) with its CRI plugin attaching pods through Berth, driven over the
/// CRI socket the way the kubelet drives it (Tests/Interop/cri-client). containerd runs in the
/// lab's host namespace with its root, state, socket, CNI bin_dir and conf_dir in a scratch
/// directory; a wrapper around each plugin logs the CNI calls the CRI plugin makes.
let containerdAvailable = FileManager.default.isExecutableFile(atPath: "/usr/bin/containerd")
    || ProcessInfo.processInfo.environment["BERTH_REQUIRE_KERNEL_TESTS"] == "1"

@Suite(needsKernel, .enabled(if: containerdAvailable, "needs containerd, runc and busybox-static (Scripts/test.sh installs them)"))
struct ContainerdTests {
    let scope = NamespaceScope()

    final class Containerd {
        static let sandboxImage = "berth.test/pause:1"
        let lab: PluginLab
        let directory: String
        var socket: String { directory + "/containerd.sock" }
        var confDirectory: String { directory + "/net.d" }
        private var unsharePID: pid_t = 0
        private var pods: [String] = []

        /// containerd with `conflists` (file name → text) in its CNI conf_dir, serving once this returns.
        init(lab: PluginLab, conflists: [String: String]) throws {
            self.lab = lab
            // A unix socket's path has at most 107 bytes: a short scratch directory.
            directory = "/tmp/" + uniqueName("berth-ctd-")
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
            let plugins = directory + "/bin"
            try writeLoggingPlugins(into: plugins, log: directory + "/cni.log")
            // The CRI plugin adds the loopback network first (the reference loopback plugin).
            try FileManager.default.createSymbolicLink(atPath: plugins + "/loopback", withDestinationPath: "/usr/lib/cni/loopback")
            try FileManager.default.createDirectory(atPath: confDirectory, withIntermediateDirectories: true)
            for (name, text) in conflists { try text.write(toFile: "\(confDirectory)/\(name)", atomically: true, encoding: .utf8) }
            // The node setup a user writes (README), plus what this machine kind needs: the
            // native snapshotter (no overlay mounts needed), and oom_score_adj not lowered below
            // containerd's own (-998 for sandboxes needs CAP_SYS_RESOURCE, which the sandbox lacks).
            try """
                version = 2
                root = "\(directory)/root"
                state = "\(directory)/state"
                [grpc]
                  address = "\(socket)"
                [plugins."io.containerd.internal.v1.opt"]
                  path = "\(directory)/opt"
                [plugins."io.containerd.grpc.v1.cri"]
                  sandbox_image = "\(Self.sandboxImage)"
                  restrict_oom_score_adj = true
                  [plugins."io.containerd.grpc.v1.cri".containerd]
                    snapshotter = "native"
                  [plugins."io.containerd.grpc.v1.cri".cni]
                    bin_dir = "\(plugins)"
                    conf_dir = "\(confDirectory)"
                    max_conf_num = 1
                """.write(toFile: directory + "/config.toml", atomically: true, encoding: .utf8)

            // containerd is the first process of PID and mount namespaces of its own (/proc
            // mounted for it: runc reads its children there by their PIDs). The shims it starts
            // leave it (they outlive containerd by design) and would become orphans of this
            // machine's init, which does not reap them; in the namespace they are containerd's,
            // and when it exits the kernel ends and reaps everything left in it, and the mounts
            // it made (network namespaces, root filesystems) go with the mount namespace.
            unsharePID = try spawnInBackground(["/usr/bin/nsenter", "--net=\(lab.host.path)", "/usr/bin/unshare", "--pid", "--fork",
                                                "--mount-proc", "--kill-child", "/usr/bin/containerd", "--config", directory + "/config.toml"],
                                               environment: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], log: directory + "/containerd.log")
            for _ in 0..<1000 where !FileManager.default.fileExists(atPath: socket) { usleep(10_000) }
            guard FileManager.default.fileExists(atPath: socket) else {
                throw CommandFailure(command: "containerd never served \(socket)", status: 1, stderr: log)
            }
            try BerthTestSupport.run("ctr", "--address", socket, "--namespace", "k8s.io", "images", "import",
                                     "--snapshotter", "native", try sandboxImageArchive())
        }

        deinit {
            for pod in pods { _ = try? cri("stopp", pod); _ = try? cri("rmp", pod) }
            // unshare ignores SIGTERM while it waits: stop containerd itself (its child), then
            // reap unshare, which exits with it.
            if unsharePID > 0 {
                let children = (try? String(contentsOfFile: "/proc/\(unsharePID)/task/\(unsharePID)/children", encoding: .utf8)) ?? ""
                if let containerd = children.split(separator: " ").first.flatMap({ pid_t($0) }) { kill(containerd, SIGTERM) }
                var status: Int32 = 0
                waitpid(unsharePID, &status, 0)
            }
            removeTemporaryDirectory(directory)
        }

        /// containerd's warnings and errors.
        var log: String {
            ((try? String(contentsOfFile: directory + "/containerd.log.err", encoding: .utf8)) ?? "").split(separator: "\n")
                .filter { !$0.contains("level=info") }.suffix(20).joined(separator: "\n")
        }

        /// The sandbox ("pause") image as a docker archive: busybox-static sleeping for ever.
        private func sandboxImageArchive() throws -> String {
            let image = directory + "/image"
            try FileManager.default.createDirectory(atPath: image, withIntermediateDirectories: true)
            try writeBusyboxRootfs(tarball: image + "/layer.tar", page: "Hello from a containerd pod on Berth\n")
            let digest = try BerthTestSupport.run("sha256sum", image + "/layer.tar").prefix(64)
            try """
                {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sleep", "2147483647"]},
                 "rootfs": {"type": "layers", "diff_ids": ["sha256:\(digest)"]}}
                """.write(toFile: image + "/config.json", atomically: true, encoding: .utf8)
            try #"[{"Config": "config.json", "RepoTags": ["\#(Self.sandboxImage)"], "Layers": ["layer.tar"]}]"#
                .write(toFile: image + "/manifest.json", atomically: true, encoding: .utf8)
            try BerthTestSupport.run("tar", "-C", image, "-cf", directory + "/image.tar", "manifest.json", "config.json", "layer.tar")
            return directory + "/image.tar"
        }

        func criAllowingFailure(_ arguments: [String]) throws -> ProcessOutcome {
            try InteropProgram.criClient.run(in: lab.host, [socket] + arguments)
        }

        @discardableResult
        func cri(_ arguments: String...) throws -> String { try cri(arguments) }

        func cri(_ arguments: [String]) throws -> String {
            let outcome = try criAllowingFailure(arguments)
            guard outcome.status == 0 else {
                throw CommandFailure(command: "cri-client \(arguments.joined(separator: " "))", status: outcome.status, stderr: outcome.stderr + log)
            }
            return outcome.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        /// RunPodSandbox: the pod's ID.
        func runPod(_ name: String, _ options: String...) throws -> String {
            let pod = try cri(["runp", name] + options)
            pods.append(pod)
            return pod
        }

        func inspect(_ pod: String) throws -> JSON { try JSON.parse(try cri("inspectp", pod)) }

        /// The NetworkReady condition of the runtime's Status.
        func networkReady() throws -> JSON { try JSON.parse(try cri("status")) }

        /// The CNI calls the CRI plugin made since the last look.
        func cniCalls() -> [String] { loggedCNICalls(directory + "/cni.log") }
    }

    static let conflistWithPorts = "10-berth.conflist"

    func berthConflist(_ lab: PluginLab) -> String {
        conflist("berth", lab.bridgePlugin(extra: ["capabilities": .object(["portMappings": .bool(true)])]))
    }

    /// A pod with a hostPort, as the kubelet runs it: the CRI plugin attaches it once (ADD) when
    /// the sandbox starts, its containers join the sandbox's namespace without a CNI call, the
    /// port answers from outside, and stopping the sandbox detaches it (DEL) — nothing left.
    @Test func podWithAHostPort() throws {
        let lab = try PluginLab(scope)
        let containerd = try Containerd(lab: lab, conflists: [Self.conflistWithPorts: berthConflist(lab)])
        #expect(try containerd.networkReady()["ready"]?.boolValue == true)

        let pod = try containerd.runPod("web", "--port", "8086:80")
        let calls = containerd.cniCalls()
        #expect(verbs(calls) == ["ADD berth-bridge"], "\(calls)")
        let status = try containerd.inspect(pod)
        #expect(status["state"]?.stringValue == "ready")
        #expect(status["ip"]?.stringValue == "10.88.0.2", "the pod IP the kubelet reports is Berth's lease: \(status)")
        let netns = try #require(status["netns"]?.stringValue)
        #expect(calls.first?.hasSuffix(" \(pod) \(netns)") == true, "\(calls) \(netns)")
        #expect(lab.records().count == 1 && lab.leases().count == 1)
        #expect(lab.pings(from: lab.host, "10.88.0.2"))

        // A container in the pod serving the port, from the sandbox image.
        let server = try containerd.cri("run", pod, "httpd", Containerd.sandboxImage, "/bin/httpd", "-f", "-p", "80", "-h", "/")
        var page = ""
        for _ in 0..<200 {
            page = (try? lab.outside.exec("curl", "-s", "--max-time", "1", "http://\(PluginLab.hostUplink):8086/index.html")) ?? ""
            if !page.isEmpty { break }
            usleep(10_000)
        }
        #expect(page == "Hello from a containerd pod on Berth\n", "\(lab.table())")
        try containerd.cri("stop", server)
        try containerd.cri("rm", server)
        #expect(containerd.cniCalls().isEmpty, "containers join the sandbox's namespace without CNI")

        try containerd.cri("stopp", pod)
        #expect(verbs(containerd.cniCalls()) == ["DEL berth-bridge"])
        #expect(lab.clean, "\(lab.leftovers)")
        #expect(!lab.table().contains("8086"))
        try containerd.cri("rmp", pod)
        #expect(lab.clean, "\(lab.leftovers)")
    }

    /// The kubelet marks a node Ready from the runtime's NetworkReady condition. containerd's
    /// CRI plugin sets it from whether a network configuration loaded from conf_dir (go-cni's
    /// Status: it does not run the plugins' STATUS), and watches the directory.
    @Test func networkReadyFollowsTheConfDirectory() throws {
        let lab = try PluginLab(scope)
        let containerd = try Containerd(lab: lab, conflists: [:])
        let notReady = try containerd.networkReady()
        #expect(notReady["ready"]?.boolValue == false && notReady["reason"]?.stringValue == "NetworkPluginNotReady", "\(notReady)")
        #expect(notReady["message"]?.stringValue?.contains("cni plugin not initialized") == true, "\(notReady)")
        let refused = try containerd.criAllowingFailure(["runp", "early"])
        #expect(refused.status != 0 && refused.stderr.contains("cni plugin not initialized"), "\(refused.stderr)")
        #expect(containerd.cniCalls().isEmpty && lab.clean)

        try berthConflist(lab).write(toFile: "\(containerd.confDirectory)/\(Self.conflistWithPorts)", atomically: true, encoding: .utf8)
        var ready = false
        for _ in 0..<500 {
            ready = try containerd.networkReady()["ready"]?.boolValue == true
            if ready { break }
            usleep(10_000)
        }
        #expect(ready, "containerd loads a conflist written to conf_dir while it runs")
        let pod = try containerd.runPod("late")
        #expect(try containerd.inspect(pod)["ip"]?.stringValue == "10.88.0.2")
        try containerd.cri("stopp", pod)
        try containerd.cri("rmp", pod)
        #expect(lab.clean, "\(lab.leftovers)")
    }

    /// hostNetwork: true — the pod runs in the node's namespace and the CRI plugin makes no CNI
    /// call for it, start or stop.
    @Test func hostNetworkPodMakesNoCNICall() throws {
        let lab = try PluginLab(scope)
        let containerd = try Containerd(lab: lab, conflists: [Self.conflistWithPorts: berthConflist(lab)])
        let pod = try containerd.runPod("node-agent", "--host-network")
        let status = try containerd.inspect(pod)
        #expect(status["state"]?.stringValue == "ready" && status["netns"]?.stringValue == "", "no namespace of its own: \(status)")
        try containerd.cri("stopp", pod)
        try containerd.cri("rmp", pod)
        #expect(containerd.cniCalls().isEmpty)
        #expect(lab.clean, "\(lab.leftovers)")
    }
}
