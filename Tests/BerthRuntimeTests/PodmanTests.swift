import BerthCNI
import BerthJSON
import BerthTestSupport
import Foundation
import Testing

/// podman's CNI backend (Debian's podman 4.3) running containers on Berth in every mode, with
/// every CNI call podman makes written to a log by a wrapper around each plugin — so the tests
/// show what podman calls CNI for, not only what ends up in the kernel. Everything podman stores
/// lives in a scratch directory; the machine podman runs on is the lab's host namespace.
let podmanAvailable = FileManager.default.isExecutableFile(atPath: "/usr/bin/podman")
    || ProcessInfo.processInfo.environment["BERTH_REQUIRE_KERNEL_TESTS"] == "1"

@Suite(needsKernel, .enabled(if: podmanAvailable, "needs podman, runc and busybox-static (Scripts/test.sh installs them)"))
struct PodmanTests {
    let scope = NamespaceScope()

    /// podman with its storage, runtime state and configuration in `directory`, run inside the
    /// lab's host namespace, with three CNI networks: `berth` (berth-bridge), `berth-host`
    /// (berth-host) and `berth-join` (berth-container).
    final class Podman {
        let lab: PluginLab
        let directory: String

        init(lab: PluginLab) throws {
            self.lab = lab
            // podman refuses a runroot path longer than 50 characters: a short scratch directory.
            directory = "/tmp/" + uniqueName("berth-pm-")
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
            let plugins = directory + "/plugins"
            try writeLoggingPlugins(into: plugins, log: directory + "/cni.log")
            let networks = directory + "/networks"
            try FileManager.default.createDirectory(atPath: networks, withIntermediateDirectories: true)
            try conflist("berth", lab.bridgePlugin(extra: [
                "capabilities": .object(["portMappings": .bool(true), "ips": .bool(true), "mac": .bool(true)]),
            ])).write(toFile: networks + "/berth.conflist", atomically: true, encoding: .utf8)
            try conflist("berth-host", lab.hostPlugin(extra: ["capabilities": .object(["portMappings": .bool(true)])]))
                .write(toFile: networks + "/berth-host.conflist", atomically: true, encoding: .utf8)
            try conflist("berth-join", lab.joinPlugin(extra: ["capabilities": .object(["joinContainer": .bool(true)])]))
                .write(toFile: networks + "/berth-join.conflist", atomically: true, encoding: .utf8)
            // The CNI backend with Berth's plugins first. runc rather than crun (this machine's
            // cgroups are in hybrid mode, which crun refuses); limits at or below this
            // process's (the sandbox lacks CAP_SYS_RESOURCE to raise them).
            let limits = "\"nofile=1024:1024\", \"nproc=1000:1000\""
            try """
                [containers]
                default_ulimits = [\(limits)]
                [network]
                network_backend = "cni"
                cni_plugin_dirs = ["\(plugins)", "/usr/lib/cni"]
                network_config_dir = "\(networks)"
                [engine]
                cgroup_manager = "cgroupfs"
                events_logger = "file"
                runtime = "runc"
                tmp_dir = "\(directory)/tmp"
                """.write(toFile: directory + "/containers.conf", atomically: true, encoding: .utf8)

            // An image from busybox-static, imported offline.
            try writeBusyboxRootfs(tarball: directory + "/rootfs.tar", page: "Hello from a podman container on Berth\n")
            try run("import", directory + "/rootfs.tar", "berth-test:latest")
        }

        deinit {
            _ = try? run("rm", "--all", "--force", "--time", "0")
            removeTemporaryDirectory(directory)
        }

        private var command: [String] {
            ["--net=\(lab.host.path)", "/usr/bin/podman", "--root", directory + "/storage", "--runroot", directory + "/run",
             "--storage-driver", "vfs"]
        }
        private var environment: [String] {
            ["CONTAINERS_CONF=\(directory)/containers.conf", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=\(directory)"]
        }

        func runAllowingFailure(_ arguments: [String]) throws -> ProcessOutcome {
            try runExecutable("/usr/bin/nsenter", arguments: command + arguments, environment: environment, stdin: [])
        }

        @discardableResult
        func run(_ arguments: String...) throws -> String {
            let outcome = try runAllowingFailure(arguments)
            guard outcome.status == 0 else {
                throw CommandFailure(command: "podman \(arguments.joined(separator: " "))", status: outcome.status, stderr: outcome.stderr)
            }
            return outcome.stdout
        }

        /// A podman command that leaves a container running (`run -d`, `start`), its output. The
        /// output goes to files, because the container's monitor (conmon) keeps podman's stdout
        /// open for as long as the container runs; posix_spawn and waitpid, because Foundation's
        /// Process does not notice a child whose pipes it does not read exit.
        @discardableResult
        func detached(_ arguments: [String]) throws -> String {
            let log = directory + "/detached.log"
            let pid = try spawnInBackground(["/usr/bin/nsenter"] + command + arguments, environment: environment, log: log)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            guard status == 0 else {
                throw CommandFailure(command: "podman \(arguments.joined(separator: " "))", status: status,
                                     stderr: (try? String(contentsOfFile: log + ".err", encoding: .utf8)) ?? "")
            }
            return ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        }

        /// `podman run -d …`: the container's ID.
        @discardableResult
        func start(_ arguments: String...) throws -> String { try detached(["run", "-d"] + arguments) }

        /// The CNI calls podman made since the last look: "ADD berth-bridge <id> <netns>" lines.
        func cniCalls(includingVersion: Bool = false) -> [String] {
            loggedCNICalls(directory + "/cni.log", includingVersion: includingVersion)
        }
    }

    @Test func bridgeNetworkWithAPublishedPort() throws {
        let lab = try PluginLab(scope)
        let podman = try Podman(lab: lab)

        let networks = try podman.run("network", "ls", "--format", "{{.Name}} {{.Driver}}")
        #expect(networks.contains("berth berth-bridge") && networks.contains("berth-host berth-host")
                && networks.contains("berth-join berth-container"), "\(networks)")
        #expect(Set(verbs(podman.cniCalls(includingVersion: true))) == ["VERSION berth-bridge", "VERSION berth-host", "VERSION berth-container"])
        let addresses = try podman.run("run", "--rm", "--network", "berth", "berth-test", "ip", "-4", "-o", "addr", "show", "eth0")
        #expect(addresses.contains("inet 10.88.0.2/16"), "\(addresses)")
        #expect(lab.records().isEmpty && lab.leases().isEmpty, "--rm detached the container")
        // One ADD when the container starts, one DEL when it goes, with podman's own namespace.
        let calls = podman.cniCalls()
        #expect(verbs(calls) == ["ADD berth-bridge", "DEL berth-bridge"], "\(calls)")
        #expect(calls.first?.split(separator: " ").last?.hasPrefix("/run/netns/netns-") == true, "\(calls)")

        // A published port, as `podman run -p 8084:80` asks for it.
        try podman.start("--name", "web", "--network", "berth", "-p", "8084:80", "berth-test", "httpd", "-f", "-p", "80", "-h", "/")
        #expect(lab.records().count == 1)
        var page = ""
        for _ in 0..<100 {
            page = (try? lab.outside.exec("curl", "-s", "--max-time", "1", "http://\(PluginLab.hostUplink):8084/index.html")) ?? ""
            if !page.isEmpty { break }
            usleep(10_000)
        }
        let diagnostics = "\(lab.table()) \((try? podman.run("ps", "-a")) ?? "") \((try? podman.run("logs", "web")) ?? "")"
        #expect(page == "Hello from a podman container on Berth\n", "\(diagnostics)")
        try podman.run("stop", "-t", "0", "web")
        #expect(lab.records().isEmpty && lab.leases().isEmpty, "stop detaches")
        try podman.detached(["start", "web"])
        #expect(lab.records().count == 1, "start attaches again")
        try podman.run("rm", "-f", "-t", "0", "web")
        #expect(lab.clean, "\(lab.leftovers)")
        #expect(!lab.table().contains("8084"))
        #expect(verbs(podman.cniCalls()) == ["ADD berth-bridge", "DEL berth-bridge", "ADD berth-bridge", "DEL berth-bridge"])
    }

    /// `--network host` and `--network container:<id>`: podman makes no CNI call at all — it
    /// runs the container in its own (host) namespace, or in the other container's namespace.
    @Test func hostAndContainerModesMakeNoCNICall() throws {
        let lab = try PluginLab(scope)
        let podman = try Podman(lab: lab)

        let hostAddresses = try podman.run("run", "--rm", "--network", "host", "berth-test", "ip", "-4", "-o", "addr", "show", "up0")
        #expect(hostAddresses.contains("inet \(PluginLab.hostUplink)/24"), "\(hostAddresses)")
        #expect(podman.cniCalls().isEmpty)

        try podman.start("--name", "web", "--network", "berth", "berth-test", "httpd", "-f", "-p", "80", "-h", "/")
        #expect(verbs(podman.cniCalls()) == ["ADD berth-bridge"])
        let joined = try podman.run("run", "--rm", "--network", "container:web", "berth-test", "ip", "-4", "-o", "addr", "show", "eth0")
        #expect(joined.contains("inet 10.88.0.2/16"), "the joiner sees web's interface: \(joined)")
        // web's server on the loopback of the namespace they share.
        var page = ""
        for _ in 0..<100 {
            page = (try? podman.run("run", "--rm", "--network", "container:web", "berth-test", "sh", "-c",
                                    #"printf 'GET /index.html HTTP/1.0\r\n\r\n' | nc 127.0.0.1 80"#)) ?? ""
            if page.contains("Hello") { break }
            usleep(10_000)
        }
        #expect(page.contains("Hello from a podman container on Berth"), "\(page)")
        #expect(podman.cniCalls().isEmpty, "joining is podman's own business")
        try podman.run("rm", "-f", "-t", "0", "web")
        #expect(verbs(podman.cniCalls()) == ["DEL berth-bridge"])
        #expect(lab.clean, "\(lab.leftovers)")
    }

    /// podman gives every container on a CNI network a namespace of its own, so a network whose
    /// plugin is berth-host or berth-container cannot serve it: the plugin refuses with the
    /// reason, podman reports it, and nothing is left. (podman's `--network host` and
    /// `--network container:<id>` are the way to these modes, without CNI.)
    @Test func hostAndJoinNetworksRefusePodmansFreshNamespace() throws {
        let lab = try PluginLab(scope)
        let podman = try Podman(lab: lab)
        let web = try podman.start("--name", "web", "--network", "berth", "berth-test", "sleep", "600")
        _ = podman.cniCalls()

        let host = try podman.runAllowingFailure(["run", "--rm", "--network", "berth-host", "berth-test", "true"])
        #expect(host.status != 0 && host.stderr.contains("is not the host's network namespace"), "\(host.stderr)")
        let hostCalls = verbs(podman.cniCalls())
        #expect(hostCalls.first == "ADD berth-host" && Set(hostCalls).isSubset(of: ["ADD berth-host", "DEL berth-host"]), "\(hostCalls)")

        let join = try podman.runAllowingFailure(["run", "--rm", "--network", "berth-join", "berth-test", "true"])
        #expect(join.status != 0 && join.stderr.contains("berth-container needs the container to join"), "\(join.stderr)")
        #expect(verbs(podman.cniCalls()).first == "ADD berth-container")

        // Even with the target named in the config, podman's new namespace is not web's.
        let networks = podman.directory + "/networks"
        try conflist("berth-join-web", lab.joinPlugin(extra: ["container": .string(web)]))
            .write(toFile: networks + "/berth-join-web.conflist", atomically: true, encoding: .utf8)
        let joinWeb = try podman.runAllowingFailure(["run", "--rm", "--network", "berth-join-web", "berth-test", "true"])
        #expect(joinWeb.status != 0 && joinWeb.stderr.contains("is not the network namespace of container"), "\(joinWeb.stderr)")

        #expect(lab.records("hostnet").isEmpty && lab.records("berth-host").isEmpty && lab.records("berth-join").isEmpty
                && lab.records("berth-join-web").isEmpty)
        #expect(lab.records().count == 1, "web is untouched")
        try podman.run("rm", "-f", "-t", "0", "web")
        #expect(lab.clean, "\(lab.leftovers)")
    }
}
