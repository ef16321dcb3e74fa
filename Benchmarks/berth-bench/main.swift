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
default:
    FileDescriptorOutput.standardError.write("usage: berth-bench netlink [iterations]\n")
    exit(2)
}
