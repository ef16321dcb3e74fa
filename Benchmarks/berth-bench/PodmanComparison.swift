#if canImport(Glibc)
import Glibc
#endif
import BerthCNI

/// What a podman user would otherwise choose between: `podman run --rm` on Debian's podman with
/// its netavark backend (the default "podman" network: bridge, NAT) against its CNI backend on a
/// Berth network. The network's cost per run is the median run with the network minus the
/// median run with `--network none`, each backend with its own storage, alternating runs.
struct PodmanComparison {
    let berthBin: String
    let runs: Int

    struct Row {
        var netavark: Double
        var berth: Double

        var text: String {
            "podman run --rm, network setup + teardown per run (median minus --network none): netavark \(format(netavark, decimals: 1)) ms, "
                + "CNI backend + Berth \(format(berth, decimals: 1)) ms (\(format(berth / netavark, decimals: 2))×)"
        }
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    func run() throws -> Row {
        let netavark = try measure(backend: "netavark", network: "podman")
        let berth = try measure(backend: "cni", network: "berth")
        return Row(netavark: netavark, berth: berth)
    }

    /// A podman with its own storage and configuration under a short directory (podman refuses
    /// a runroot path longer than 50 characters).
    private func measure(backend: String, network: String) throws -> Double {
        let directory = "/tmp/bpm-\(backend)-\(getpid())"
        try shell("rm -rf \(directory) && mkdir -p \(directory)/plugins \(directory)/networks \(directory)/rootfs/bin \(directory)/tmp")
        defer { _ = try? shell("rm -rf \(directory)") }
        try shell("ln -s \(berthBin)/berth-bridge \(berthBin)/berth-ipam \(directory)/plugins/")
        if backend == "cni" {
            let list = #"{"cniVersion":"1.0.0","name":"berth","plugins":[{"type":"berth-bridge","bridge":"pberth0","stateDir":"\#(directory)/state","ipam":{"type":"berth-ipam","dataDir":"\#(directory)/leases","ranges":[[{"subnet":"10.99.0.0/16"}]]}}]}"#
            try write(list, to: "\(directory)/networks/berth.conflist")
        }
        try write("""
            [containers]
            default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]
            [network]
            network_backend = "\(backend)"
            cni_plugin_dirs = ["\(directory)/plugins", "/usr/lib/cni"]
            network_config_dir = "\(directory)/networks"
            [engine]
            cgroup_manager = "cgroupfs"
            events_logger = "file"
            runtime = "runc"
            tmp_dir = "\(directory)/tmp"
            """, to: "\(directory)/containers.conf")
        try shell("cp /bin/busybox \(directory)/rootfs/bin/ && ln -s busybox \(directory)/rootfs/bin/true && tar -C \(directory)/rootfs -cf \(directory)/rootfs.tar .")
        let podman = "podman --root \(directory)/storage --runroot \(directory)/run --storage-driver vfs"
        let environment = "CONTAINERS_CONF=\(directory)/containers.conf HOME=\(directory)"
        try shell("\(environment) \(podman) import \(directory)/rootfs.tar bench:latest >/dev/null 2>&1")
        var none = Samples("none"), attached = Samples(network)
        for iteration in 0..<(runs + 2) {
            let withoutNetwork = try milliseconds { try shell("\(environment) \(podman) run --rm --network none bench true") }
            let withNetwork = try milliseconds { try shell("\(environment) \(podman) run --rm --network \(network) bench true") }
            if iteration >= 2 {
                none.values.append(withoutNetwork)
                attached.values.append(withNetwork)
            }
        }
        return attached.p50 - none.p50
    }

    private func write(_ text: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Failure(description: "cannot write \(path)") }
        defer { close(fd) }
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    }

    @discardableResult
    private func shell(_ command: String) throws -> String {
        let output = try Spawn.run("/bin/sh", environment: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], stdin: Array(command.utf8), stdoutLimit: 1 << 20)
        guard output.termination == .exited(0) else {
            throw Failure(description: "`\(command)` \(output.termination): \(String(decoding: output.stdout, as: UTF8.self))")
        }
        return String(decoding: output.stdout, as: UTF8.self)
    }
}
