#if canImport(Glibc)
import Glibc
#endif

/// Step timings on stderr when `BERTH_TRACE` is set (`berth-trace <step> +0.412 ms, 2.031 ms`):
/// what each millisecond of a call is spent on, for people and for the README's breakdown.
/// Disabled, a step costs one branch.
public enum Trace {
    static let enabled = getenv("BERTH_TRACE") != nil
    nonisolated(unsafe) private static var start = 0.0
    nonisolated(unsafe) private static var last = 0.0

    private static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) * 1000 + Double(time.tv_nsec) / 1_000_000
    }

    /// Marks the end of `name`: prints the time since the previous step and since the first.
    public static func step(_ name: @autoclosure () -> String) {
        guard enabled else { return }
        let time = now()
        if start == 0 { start = time; last = time }
        PluginIO.write("berth-trace \(name()) +\(format(time - last)) ms, \(format(time - start)) ms\n", to: .standardError)
        last = time
    }

    private static func format(_ value: Double) -> String {
        let thousandths = Int((value * 1000).rounded())
        let fraction = String(thousandths % 1000)
        return "\(thousandths / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }
}
