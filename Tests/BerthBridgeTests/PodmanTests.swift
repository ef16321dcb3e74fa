import BerthCNI
import BerthJSON
import BerthTestSupport
import Foundation
import Testing

/// CNI-CONFORMANCE item 35: podman's CNI backend runs containers on a Berth network — address,
/// published port, and cleanup when the container goes. Everything podman stores lives in a
/// scratch directory; the network's host side lives in a namespace of the test's own.
let podmanAvailable = FileManager.default.isExecutableFile(atPath: "/usr/bin/podman")
    || ProcessInfo.processInfo.environment["BERTH_REQUIRE_KERNEL_TESTS"] == "1"

@Suite(needsKernel, .enabled(if: podmanAvailable, "needs podman, runc and busybox-static (Scripts/test.sh installs them)"))
struct PodmanTests {
    let scope = NamespaceScope()

    /// podman with its storage, runtime state and configuration in `directory`, run inside the
    /// lab's host namespace.
    struct Podman {
        let lab: Lab
        let directory: String

        init(lab: Lab, directory: String) throws {
            self.lab = lab
            self.directory = directory
            let plugins = directory + "/plugins"
            try FileManager.default.createDirectory(atPath: plugins, withIntermediateDirectories: true)
            for plugin in ["berth-bridge", "berth-ipam"] {
                try FileManager.default.createSymbolicLink(atPath: "\(plugins)/\(plugin)", withDestinationPath: "\(productsDirectory)/\(plugin)")
            }
            try FileManager.default.createDirectory(atPath: directory + "/networks", withIntermediateDirectories: true)
            let network = JSON.object(["cniVersion": .string("1.0.0"), "name": .string("berth"), "plugins": .array([.object([
                "type": .string("berth-bridge"), "bridge": .string("berth0"), "stateDir": .string(lab.stateDirectory),
                "capabilities": .object(["portMappings": .bool(true), "ips": .bool(true), "mac": .bool(true)]),
                "ipam": .object(["type": .string("berth-ipam"), "dataDir": .string(lab.dataDirectory),
                                 "ranges": .array([.array([.object(["subnet": .string("10.88.0.0/16")])])])]),
            ])])]).serialized()
            try network.write(toFile: directory + "/networks/berth.conflist", atomically: true, encoding: .utf8)
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
                network_config_dir = "\(directory)/networks"
                [engine]
                cgroup_manager = "cgroupfs"
                events_logger = "file"
                runtime = "runc"
                tmp_dir = "\(directory)/tmp"
                """.write(toFile: directory + "/containers.conf", atomically: true, encoding: .utf8)

            // An image from busybox-static, imported offline.
            let rootfs = directory + "/rootfs"
            try FileManager.default.createDirectory(atPath: rootfs + "/bin", withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: "/bin/busybox", toPath: rootfs + "/bin/busybox")
            for applet in ["sh", "ip", "httpd", "sleep", "cat"] {
                try FileManager.default.createSymbolicLink(atPath: "\(rootfs)/bin/\(applet)", withDestinationPath: "busybox")
            }
            try "Hello from a podman container on Berth\n".write(toFile: rootfs + "/index.html", atomically: true, encoding: .utf8)
            try BerthTestSupport.run("tar", "-C", rootfs, "-cf", directory + "/rootfs.tar", ".")
            _ = try self.run("import", directory + "/rootfs.tar", "berth-test:latest")
        }

        private var command: [String] {
            ["--net=\(lab.host.path)", "/usr/bin/podman", "--root", directory + "/storage", "--runroot", directory + "/run",
             "--storage-driver", "vfs"]
        }
        private var environment: [String] {
            ["CONTAINERS_CONF=\(directory)/containers.conf", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=\(directory)"]
        }

        @discardableResult
        func run(_ arguments: String...) throws -> String {
            let outcome = try runExecutable("/usr/bin/nsenter", arguments: command + arguments, environment: environment, stdin: [])
            guard outcome.status == 0 else {
                throw CommandFailure(command: "podman \(arguments.joined(separator: " "))", status: outcome.status, stderr: outcome.stderr)
            }
            return outcome.stdout
        }

        /// `podman run -d …`: its output goes to a file, because the container's monitor (conmon)
        /// keeps podman's stdout open for as long as the container runs; posix_spawn and waitpid,
        /// because Foundation's Process does not notice a child whose pipes it does not read exit.
        func start(_ arguments: String...) throws {
            let log = directory + "/start.log"
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
            let argv = (["/usr/bin/nsenter"] + command + ["run", "-d"] + arguments).map { strdup($0) } + [nil]
            let envp = environment.map { strdup($0) } + [nil]
            defer { (argv + envp).forEach { free($0) } }
            var pid: pid_t = 0
            guard posix_spawn(&pid, "/usr/bin/nsenter", &actions, nil, argv, envp) == 0 else {
                throw CommandFailure(command: "podman run -d", status: -1)
            }
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            guard status == 0 else {
                throw CommandFailure(command: "podman run -d \(arguments.joined(separator: " "))", status: status,
                                     stderr: (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
            }
        }
    }

    @Test func podmanRunsContainersOnABerthNetwork() throws {
        let lab = try Lab(scope)
        // podman refuses a runroot path longer than 50 characters: a short scratch directory.
        let directory = "/tmp/" + uniqueName("berth-pm-")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        defer { removeTemporaryDirectory(directory) }
        let podman = try Podman(lab: lab, directory: directory)

        #expect(try podman.run("network", "ls", "--format", "{{.Name}} {{.Driver}}").contains("berth berth-bridge"))
        let addresses = try podman.run("run", "--rm", "--network", "berth", "berth-test", "ip", "-4", "-o", "addr", "show", "eth0")
        #expect(addresses.contains("inet 10.88.0.2/16"), "\(addresses)")
        #expect(lab.records().isEmpty && lab.leases().isEmpty, "--rm detached the container")

        // A published port, as `podman run -p 8084:80` asks for it.
        try podman.start("--name", "web", "--network", "berth", "-p", "8084:80", "berth-test", "httpd", "-f", "-p", "80", "-h", "/")
        #expect(lab.records().count == 1)
        var page = ""
        for _ in 0..<100 {
            page = (try? lab.outside.exec("curl", "-s", "--max-time", "1", "http://\(Lab.hostUplink):8084/index.html")) ?? ""
            if !page.isEmpty { break }
            usleep(10_000)
        }
        let diagnostics = "\(lab.table()) \((try? podman.run("ps", "-a")) ?? "") \((try? podman.run("logs", "web")) ?? "")"
        #expect(page == "Hello from a podman container on Berth\n", "\(diagnostics)")
        try podman.run("rm", "-f", "-t", "0", "web")
        #expect(lab.records().isEmpty && lab.leases().isEmpty)
        #expect(!lab.table().contains("8084"))
    }
}
