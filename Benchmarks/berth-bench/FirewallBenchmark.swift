#if canImport(Glibc)
import Glibc
#endif
import BerthFirewall
import BerthIP

/// The firewall cost of one container publishing two ports (tcp and udp) and withdrawing them,
/// with 10, 1 000 and 10 000 ports already published by others: Berth's libnftnl transactions
/// (map elements, one batch each way) against running `nft` for the same two changes, as
/// runtimes that shell out do. Target: the same cost at 10 000 as at 10 (≤ 1.5×).
struct FirewallBenchmark {
    let iterations: Int
    let network = FirewallNetwork(bridge: "bench0", subnets: [IPPrefix("10.210.0.0/16")!])

    func run() throws {
        let firewall = try Firewall.current()
        try firewall.apply(network: network)
        var published = 0
        var rows: [(count: Int, berth: Samples, apply: Samples, nft: Samples)] = []
        for count in [10, 1000, 10_000] {
            try publishFillers(firewall, from: published, to: count)
            published = count
            rows.append((count, try measureBerth(firewall, count: count), try measureApply(firewall, count: count),
                         try measureNft(count: count)))
        }
        var table: [Samples] = []
        for row in rows {
            table.append(renamed(row.berth, "Berth publish+withdraw 2 ports, \(row.count) published"))
            table.append(renamed(row.apply, "Berth full ADD transaction + withdraw, \(row.count) published"))
            table.append(renamed(row.nft, "nft process: add+delete 2 elements, \(row.count) published"))
        }
        print("firewall work per container, \(iterations) containers per row (µs = p50 × 1000)")
        printTable(table)
        let first = rows.first!, last = rows.last!
        print("Berth 10k/10: \(format(last.berth.p50 / first.berth.p50, decimals: 2))×   "
              + "Berth/nft process at 10k: \(format(last.berth.p50 / last.nft.p50, decimals: 3))×")
        print("RESULT nft per_container_us_10=\(format(first.berth.p50 * 1000, decimals: 1)) "
              + "per_container_us_10k=\(format(last.berth.p50 * 1000, decimals: 1))")
    }

    private func renamed(_ samples: Samples, _ name: String) -> Samples {
        var renamed = Samples(name)
        renamed.values = samples.values
        return renamed
    }

    private func mappings(container: Int) -> [PortMapping] {
        let address = IPAddress(v4: 0x0AD2_0000 + UInt32(container % 60000) + 2)
        return [NFTProtocol.tcp, .udp].map {
            PortMapping(proto: $0, hostPort: UInt16(40000 + container % 20000), containerIP: address, containerPort: 80)
        }
    }

    /// Other containers' ports, 500 elements per transaction.
    private func publishFillers(_ firewall: Firewall, from start: Int, to end: Int) throws {
        var index = start
        while index < end {
            let chunk = (index..<min(end, index + 500)).map {
                PortMapping(proto: .tcp, hostPort: UInt16(1024 + $0), containerIP: IPAddress(v4: 0x0AD2_0000 + UInt32($0 % 60000) + 2),
                            containerPort: 80)
            }
            var batch = FirewallBatch()
            batch.publish(chunk, owner: "filler")
            try firewall.commit(batch)
            index += chunk.count
        }
    }

    private func measureBerth(_ firewall: Firewall, count: Int) throws -> Samples {
        var samples = Samples("berth")
        for iteration in 0..<(iterations + 10) {
            let ports = mappings(container: iteration)
            let elapsed = try milliseconds {
                var publish = FirewallBatch()
                publish.publish(ports, owner: "bench\(iteration)/eth0")
                try firewall.commit(publish)
                try firewall.withdraw(ports, owner: "bench\(iteration)/eth0")
            }
            if iteration >= 10 { samples.values.append(elapsed) }
        }
        return samples
    }

    private func measureApply(_ firewall: Firewall, count: Int) throws -> Samples {
        var samples = Samples("apply")
        for iteration in 0..<(iterations + 10) {
            let ports = mappings(container: iteration)
            let elapsed = try milliseconds {
                try firewall.apply(network: network, publishing: ports, owner: "bench\(iteration)/eth0")
                try firewall.withdraw(ports, owner: "bench\(iteration)/eth0")
            }
            if iteration >= 10 { samples.values.append(elapsed) }
        }
        return samples
    }

    private func measureNft(count: Int) throws -> Samples {
        var samples = Samples("nft")
        for iteration in 0..<(min(iterations, 100) + 5) {
            let ports = mappings(container: iteration)
            let elements = ports.map { "\($0.proto) . \($0.hostPort) : \($0.containerIP) . \($0.containerPort)" }.joined(separator: ", ")
            let keys = ports.map { "\($0.proto) . \($0.hostPort)" }.joined(separator: ", ")
            let elapsed = try milliseconds {
                try spawn(["/usr/sbin/nft", "add element inet berth ports4_any { \(elements) }"])
                try spawn(["/usr/sbin/nft", "delete element inet berth ports4_any { \(keys) }"])
            }
            if iteration >= 5 { samples.values.append(elapsed) }
        }
        return samples
    }

    private func spawn(_ arguments: [String]) throws {
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        guard posix_spawn(&pid, arguments[0], nil, nil, argv, environ) == 0 else {
            throw BenchmarkSetupError()
        }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        guard status == 0 else { throw BenchmarkSetupError() }
    }
}
