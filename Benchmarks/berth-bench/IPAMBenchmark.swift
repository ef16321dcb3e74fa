#if canImport(Glibc)
import Glibc
#endif
import BerthCNI

/// ADD and DEL of one container through the berth-ipam executable and through the reference
/// host-local, each with an empty store and with 10 000 leases already on the network, timed
/// around fork+exec+wait as a runtime runs them. The target: berth-ipam's ADD with 10 000 leases
/// no slower than 1.5× its ADD on an empty store (it never reads every lease; host-local does).
struct IPAMBenchmark {
    let iterations: Int
    let leaseCount = 10_000
    let berthIPAM: String
    let hostLocal = "/usr/lib/cni/host-local"

    struct Row {
        var add: Samples
        var del: Samples
    }

    func run() throws {
        var rows: [(plugin: String, scenario: String, row: Row)] = []
        for (name, path) in [("berth-ipam", berthIPAM), ("host-local", hostLocal)] {
            for (scenario, existing) in [("empty", 0), ("10k", leaseCount)] {
                rows.append((name, scenario, try measure(plugin: path, type: name, existingLeases: existing)))
            }
        }

        var table: [Samples] = []
        for (plugin, scenario, row) in rows {
            var add = row.add, del = row.del
            add = rename(add, "\(plugin) ADD, \(scenario == "empty" ? "empty store" : "10 000 leases")")
            del = rename(del, "\(plugin) DEL, \(scenario == "empty" ? "empty store" : "10 000 leases")")
            table += [add, del]
        }
        print("IPAM ADD/DEL through the plugin executables, \(iterations) containers per row")
        printTable(table)
        func p50(_ plugin: String, _ scenario: String, add: Bool = true) -> Double {
            let row = rows.first { $0.plugin == plugin && $0.scenario == scenario }!.row
            return add ? row.add.p50 : row.del.p50
        }
        let berthEmpty = p50("berth-ipam", "empty"), berth10k = p50("berth-ipam", "10k")
        print("berth-ipam 10k/empty ADD p50: \(format(berth10k / berthEmpty, decimals: 2))×   "
              + "host-local 10k/empty ADD p50: \(format(p50("host-local", "10k") / p50("host-local", "empty"), decimals: 2))×")
        print("berth-ipam/host-local ADD p50: empty \(format(berthEmpty / p50("host-local", "empty"), decimals: 2))×, "
              + "10k \(format(berth10k / p50("host-local", "10k"), decimals: 2))×; "
              + "DEL p50: empty \(format(p50("berth-ipam", "empty", add: false) / p50("host-local", "empty", add: false), decimals: 2))×, "
              + "10k \(format(p50("berth-ipam", "10k", add: false) / p50("host-local", "10k", add: false), decimals: 2))×")
        print("RESULT ipam add_p50_ms_empty=\(format(berthEmpty)) add_p50_ms_10k=\(format(berth10k))")
    }

    private func rename(_ samples: Samples, _ name: String) -> Samples {
        var renamed = Samples(name)
        renamed.values = samples.values
        return renamed
    }

    private func measure(plugin path: String, type: String, existingLeases: Int) throws -> Row {
        // Scripts/bench.sh makes the scratch directory and removes it afterwards.
        let scratch = getenv("BERTH_BENCH_DIR").map { String(cString: $0) } ?? "/tmp"
        let dataDirectory = "\(scratch)/ipam-\(type)-\(existingLeases)"
        let config = #"{"cniVersion":"1.0.0","name":"bench","type":"bridge","ipam":{"type":"\#(type)","dataDir":"\#(dataDirectory)","ranges":[[{"subnet":"10.90.0.0/16"}]]}}"#
        if existingLeases > 0 { try populate(dataDirectory + "/bench", count: existingLeases) }
        let delegate = try IPAMDelegate(type: String(path.split(separator: "/").last!),
                                        searchPath: [String(path[..<path.lastIndex(of: "/")!])])
        var row = Row(add: Samples("add"), del: Samples("del"))
        let warmup = 10
        for iteration in 0..<(iterations + warmup) {
            let request = try makeRequest(containerID: "bench\(iteration)", config: config)
            let add = try milliseconds { _ = try delegate.add(request) }
            let del = try milliseconds { try delegate.run(.del, request) }
            if iteration >= warmup {
                row.add.values.append(add)
                row.del.values.append(del)
            }
        }
        return row
    }

    private func makeRequest(containerID: String, config: String) throws -> CNIRequest {
        let environment = try CNIEnvironment(variables: [
            "CNI_COMMAND=ADD", "CNI_CONTAINERID=\(containerID)", "CNI_NETNS=/var/run/netns/\(containerID)",
            "CNI_IFNAME=eth0", "CNI_PATH=/usr/lib/cni", "PATH=/usr/bin:/bin",
        ])
        let bytes = Array(config.utf8)
        return CNIRequest(environment: environment, config: try NetworkConfig(parsing: bytes), stdin: bytes)
    }

    /// `count` leases in host-local's format from 10.90.0.2 on, and the last one as
    /// last_reserved_ip.0, as a long-running network would have them.
    private func populate(_ directory: String, count: Int) throws {
        mkdirTree(directory)
        var last = ""
        for index in 0..<count {
            let address = "10.90.\((index + 2) / 256).\((index + 2) % 256)"
            writeFile("\(directory)/\(address)", "existing\(index)\r\neth0")
            last = address
        }
        writeFile("\(directory)/last_reserved_ip.0", last)
    }

    private func writeFile(_ path: String, _ content: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        precondition(fd >= 0, "cannot write \(path)")
        var bytes = Array(content.utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    private func mkdirTree(_ path: String) {
        var prefix = ""
        for component in path.split(separator: "/") {
            prefix += "/" + component
            mkdir(prefix, 0o755)
        }
    }
}
