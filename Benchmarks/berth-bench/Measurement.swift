#if canImport(Glibc)
import Glibc
#endif

/// Monotonic wall-clock time of `body`, in milliseconds.
func milliseconds(_ body: () throws -> Void) rethrows -> Double {
    var start = timespec(), end = timespec()
    clock_gettime(CLOCK_MONOTONIC, &start)
    try body()
    clock_gettime(CLOCK_MONOTONIC, &end)
    return Double(end.tv_sec - start.tv_sec) * 1000 + Double(end.tv_nsec - start.tv_nsec) / 1_000_000
}

/// Samples of one operation, reported as percentiles.
struct Samples {
    let name: String
    var values: [Double] = []

    init(_ name: String) { self.name = name }

    func percentile(_ fraction: Double) -> Double {
        guard !values.isEmpty else { return .nan }
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * fraction).rounded()))]
    }

    var p50: Double { percentile(0.5) }
    var p90: Double { percentile(0.9) }
    var p99: Double { percentile(0.99) }
}

func format(_ value: Double, decimals: Int = 3) -> String {
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    var text = String(rounded)
    if let dot = text.firstIndex(of: ".") {
        let fraction = text[text.index(after: dot)...]
        text += String(repeating: "0", count: max(0, decimals - fraction.count))
    }
    return text
}

func printTable(_ rows: [Samples]) {
    let width = rows.map(\.name.count).max() ?? 10
    func pad(_ text: String, _ count: Int) -> String { text + String(repeating: " ", count: max(0, count - text.count)) }
    print(pad("operation", width) + "   p50 ms    p90 ms    p99 ms   n")
    for row in rows {
        print(pad(row.name, width) + "  " + [row.p50, row.p90, row.p99].map { pad(format($0), 8) }.joined(separator: "  ")
              + "  \(row.values.count)")
    }
}

enum FileDescriptorOutput {
    case standardError

    func write(_ text: String) {
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }
}
