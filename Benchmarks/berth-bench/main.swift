// Berth's benchmarks, run by Scripts/bench.sh inside a network sandbox (never on a real host
// namespace). Each prints a table and a last line `RESULT <name> key=value …`.
#if canImport(Glibc)
import Glibc
#endif

let arguments = CommandLine.arguments.dropFirst()
switch arguments.first {
case "netlink":
    do {
        try NetlinkBenchmark(iterations: arguments.dropFirst().first.flatMap { Int($0) } ?? 200).run()
    } catch {
        FileDescriptorOutput.standardError.write("berth-bench netlink: \(error)\n")
        exit(1)
    }
case "ipam":
    do {
        let iterations = arguments.dropFirst().first.flatMap { Int($0) } ?? 200
        // berth-ipam is built next to this executable.
        guard let executable = realpath("/proc/self/exe", nil) else { throw BenchmarkSetupError() }
        let directory = String(cString: executable).split(separator: "/").dropLast().joined(separator: "/")
        free(executable)
        try IPAMBenchmark(iterations: iterations, berthIPAM: "/" + directory + "/berth-ipam").run()
    } catch {
        FileDescriptorOutput.standardError.write("berth-bench ipam: \(error)\n")
        exit(1)
    }
case "nft":
    do {
        try FirewallBenchmark(iterations: arguments.dropFirst().first.flatMap { Int($0) } ?? 300).run()
    } catch {
        FileDescriptorOutput.standardError.write("berth-bench nft: \(error)\n")
        exit(1)
    }
case "cni":
    do {
        // berth-bridge and berth-ipam are built next to this executable.
        guard let executable = realpath("/proc/self/exe", nil) else { throw BenchmarkSetupError() }
        let directory = "/" + String(cString: executable).split(separator: "/").dropLast().joined(separator: "/")
        free(executable)
        let scratch = getenv("BERTH_BENCH_DIR").map { String(cString: $0) } ?? "/tmp"
        let environment = { (name: String) in getenv(name).map { String(cString: $0) } }
        let sizes = (environment("BERTH_BENCH_SIZES") ?? "50,200,1000").split(separator: ",").compactMap { Int($0) }
        let parallel = environment("BERTH_BENCH_PARALLEL").flatMap { Int($0) } ?? 1000
        let podmanRuns = environment("BERTH_BENCH_PODMAN_RUNS").flatMap { Int($0) } ?? 20
        try CNIBenchmark(sizes: sizes.isEmpty ? [50, 200, 1000] : sizes, parallelContainers: parallel,
                         berth: CNIImplementation(kind: .berth, binDirectory: directory, scratch: scratch),
                         reference: CNIImplementation(kind: .reference, binDirectory: "/usr/lib/cni", scratch: scratch),
                         podman: podmanRuns > 0 ? PodmanComparison(berthBin: directory, runs: podmanRuns) : nil).run()
    } catch {
        FileDescriptorOutput.standardError.write("berth-bench cni: \(error)\n")
        exit(1)
    }
default:
    FileDescriptorOutput.standardError.write("usage: berth-bench netlink|ipam|nft|cni [iterations]\n")
    exit(2)
}

struct BenchmarkSetupError: Error, CustomStringConvertible {
    var description: String { "benchmark setup failed (executable directory or a helper process)" }
}
