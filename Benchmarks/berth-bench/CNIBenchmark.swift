#if canImport(Glibc)
import Glibc
#endif
import BerthIP
import BerthJSON
import BerthNetlink

/// Berth against the reference CNI plugins in one run, on identical networks: start-up, ADD and
/// DEL sequentially at several network sizes (first and last tenth separately), with and without
/// masquerade and with a published port per container, 8 workers in parallel, peak memory per
/// call, and podman's network setup with netavark against its CNI backend on Berth. Ratios are
/// Berth / reference unless said otherwise; the last line is `RESULT cni …`.
struct CNIBenchmark {
    let sizes: [Int]
    let parallelContainers: Int
    let workers = 8
    let berth: CNIImplementation
    let reference: CNIImplementation
    let podman: PodmanComparison?

    struct Scenario: Sendable {
        let name: String
        let masquerade: Bool
        let publish: Bool
    }

    static let scenarios = [
        Scenario(name: "masquerade on", masquerade: true, publish: false),
        Scenario(name: "masquerade off", masquerade: false, publish: false),
        Scenario(name: "1 published port", masquerade: true, publish: true),
    ]

    /// One sequential run: every ADD (in order), then every DEL.
    struct Run {
        var add: [Double] = []
        var del: [Double] = []
        var peakKilobytes = 0

        var addSamples: Samples { samples(add) }
        var delSamples: Samples { samples(del) }
        var firstTenth: Samples { samples(Array(add.prefix(max(1, add.count / 10)))) }
        var lastTenth: Samples { samples(Array(add.suffix(max(1, add.count / 10)))) }
        /// Containers added per second, one after the other.
        var addsPerSecond: Double { Double(add.count) / (add.reduce(0, +) / 1000) }

        private func samples(_ values: [Double]) -> Samples {
            var samples = Samples("")
            samples.values = values
            return samples
        }
    }

    func run() throws {
        say("CNI side by side: Berth (berth-bridge + berth-ipam) vs the reference (bridge + host-local, + portmap for ports), \(Self.dateLine())")
        var startup: [String: Samples] = [:]
        for implementation in [berth, reference] {
            var samples = Samples(implementation.name)
            for _ in 0..<200 { samples.values.append(try implementation.version()) }
            startup[implementation.name] = samples
        }
        say("VERSION (process start-up) p50: Berth \(format(startup["Berth"]!.p50)) ms, reference \(format(startup["reference"]!.p50)) ms"
              + " (\(format(startup["Berth"]!.p50 / startup["reference"]!.p50, decimals: 2))×)")

        // Sequential runs: implementations alternate per scenario and size, so drift hits both.
        var runs: [String: Run] = [:]
        var networkIndex = 0
        say("\nSequential, ms (first/last tenth: ADD p50 of the first and the last tenth of the containers)")
        say(pad("scenario", 18) + pad("N", 6) + pad("impl", 11) + "ADD p50   p90      p99      1st 10%  last 10% DEL p50   p90      p99      peak RSS")
        for size in sizes {
            for scenario in Self.scenarios {
                for implementation in [berth, reference] {
                    networkIndex += 1
                    let run = try sequential(implementation, scenario, size: size, index: networkIndex)
                    runs[key(implementation, scenario, size)] = run
                    if let directory = getenv("BERTH_BENCH_SERIES").map({ String(cString: $0) }) {
                        // Every ADD and DEL in order, one per line, for a closer look at drift.
                        let name = "\(directory)/\(implementation.name)-\(scenario.name.replacing(" ", with: "-"))-\(size)"
                        writeLines(run.add.map { String($0) }, to: name + ".add")
                        writeLines(run.del.map { String($0) }, to: name + ".del")
                    }
                    let add = run.addSamples, del = run.delSamples
                    say(pad(scenario.name, 18) + pad(String(size), 6) + pad(implementation.name, 11)
                          + [add.p50, add.p90, add.p99, run.firstTenth.p50, run.lastTenth.p50, del.p50, del.p90, del.p99]
                            .map { pad(format($0, decimals: 2), 9) }.joined() + "\(run.peakKilobytes / 1024) MiB")
                }
            }
        }

        // Parallel: 8 workers over one network.
        say("\n\(workers) workers over \(parallelContainers) containers (masquerade on)")
        var parallel: [String: ParallelRun] = [:]
        for implementation in [berth, reference] {
            networkIndex += 1
            let run = try concurrent(implementation, index: networkIndex)
            parallel[implementation.name] = run
            say(pad(implementation.name, 11) + "ADD \(format(run.addsPerSecond, decimals: 1))/s, DEL \(format(run.delsPerSecond, decimals: 1))/s; "
                  + "IPs distinct: \(run.distinct ? "yes" : "NO"); every container carries its IP: \(run.carried ? "yes" : "NO")")
        }

        if let podman {
            do {
                say("\n" + (try podman.run()).text)
            } catch {
                say("\npodman comparison not run: \(error)")
            }
        }

        // The targets (issue [8/11]), measured at the largest size with masquerade on.
        let largest = sizes.max()!
        let on = Self.scenarios[0], off = Self.scenarios[1]
        func run(_ implementation: CNIImplementation, _ scenario: Scenario) -> Run { runs[key(implementation, scenario, largest)]! }
        let addFirst = run(berth, on).firstTenth.p50 / run(reference, on).firstTenth.p50
        let addLast = run(berth, on).lastTenth.p50 / run(reference, on).lastTenth.p50
        let delRatio = run(berth, on).delSamples.p50 / run(reference, on).delSamples.p50
        let flatOn = run(berth, on).lastTenth.p50 / run(berth, on).firstTenth.p50
        let flatOff = run(berth, off).lastTenth.p50 / run(berth, off).firstTenth.p50
        let concurrentGain = parallel["Berth"]!.addsPerSecond / run(berth, on).addsPerSecond
        let delThroughput = parallel["Berth"]!.delsPerSecond / parallel["reference"]!.delsPerSecond
        let memory = Double(runs.filter { $0.key.hasPrefix("Berth") }.map(\.value.peakKilobytes).max()!)
            / Double(runs.filter { $0.key.hasPrefix("reference") }.map(\.value.peakKilobytes).max()!)
        let startupRatio = startup["Berth"]!.p50 / startup["reference"]!.p50
        say("\nTargets (N = \(largest), masquerade on unless said)")
        say(pad("metric", 58) + pad("target", 10) + pad("measured", 11) + "met")
        let rows: [(String, String, Double, Bool)] = [
            ("VERSION start-up, Berth / reference", "≤ 1.0", startupRatio, startupRatio <= 1.0),
            ("ADD p50 first tenth, Berth / reference first tenth", "≤ 0.25", addFirst, addFirst <= 0.25),
            ("ADD p50 last tenth, Berth / reference last tenth", "≤ 0.1", addLast, addLast <= 0.1),
            ("DEL p50, Berth / reference", "≤ 0.3", delRatio, delRatio <= 0.3),
            ("Berth ADD p50 last tenth / first tenth, masquerade on", "≤ 1.3", flatOn, flatOn <= 1.3),
            ("Berth ADD p50 last tenth / first tenth, masquerade off", "≤ 1.3", flatOff, flatOff <= 1.3),
            ("\(workers) workers: Berth ADD/s / Berth sequential ADD/s", "≥ 1.5", concurrentGain, concurrentGain >= 1.5),
            ("\(workers) workers: DEL/s, Berth / reference", "≥ 5", delThroughput, delThroughput >= 5),
            ("peak RSS per call, Berth / reference", "≤ 1.0", memory, memory <= 1.0),
        ]
        for (metric, target, measured, met) in rows {
            say(pad(metric, 58) + pad(target, 10) + pad(format(measured, decimals: 3), 11) + (met ? "yes" : "NO"))
        }
        say("RESULT cni add_ratio_first=\(format(addFirst)) add_ratio_last=\(format(addLast)) del_ratio=\(format(delRatio)) "
              + "add_flatness=\(format(max(flatOn, flatOff))) conc_add_per_s=\(format(parallel["Berth"]!.addsPerSecond, decimals: 1))")
    }

    private func key(_ implementation: CNIImplementation, _ scenario: Scenario, _ size: Int) -> String {
        "\(implementation.name)/\(scenario.name)/\(size)"
    }

    private func sequential(_ implementation: CNIImplementation, _ scenario: Scenario, size: Int, index: Int) throws -> Run {
        let network = implementation.network("bench\(index)", index: index, masquerade: scenario.masquerade, publish: scenario.publish)
        let containers = try BenchmarkNamespaces.make(size)
        defer {
            BenchmarkNamespaces.remove(containers)
            implementation.removeLeftovers(network)
        }
        var run = Run()
        var results: [JSON?] = []
        Self.settle()
        for container in containers {
            let call = try implementation.add(network, container)
            run.add.append(call.milliseconds)
            run.peakKilobytes = max(run.peakKilobytes, call.peakKilobytes)
            results.append(call.result)
        }
        for (container, result) in zip(containers, results) {
            let call = try implementation.del(network, container, result: result)
            run.del.append(call.milliseconds)
            run.peakKilobytes = max(run.peakKilobytes, call.peakKilobytes)
        }
        return run
    }

    struct ParallelRun {
        var addsPerSecond: Double
        var delsPerSecond: Double
        var distinct: Bool
        var carried: Bool
    }

    private func concurrent(_ implementation: CNIImplementation, index: Int) throws -> ParallelRun {
        let network = implementation.network("bench\(index)", index: index, masquerade: true, publish: false)
        let containers = try BenchmarkNamespaces.make(parallelContainers)
        defer {
            BenchmarkNamespaces.remove(containers)
            implementation.removeLeftovers(network)
        }
        let results = ResultBox(count: containers.count)
        Self.settle()
        let addSeconds = try Workers.run(count: workers, items: containers.count) { item in
            results.set(item, try implementation.add(network, containers[item]).result)
        } / 1000
        let addresses = results.all.map { $0?["ips"]?[0]?["address"]?.stringValue.flatMap(IPPrefix.init) }
        let distinct = addresses.allSatisfy { $0 != nil } && Set(addresses.compactMap { $0 }).count == containers.count
        let carried = try zip(containers, addresses).allSatisfy { container, address in
            guard let address else { return false }
            return try RouteNetlink.open(in: .path(container.path)).addresses().contains { $0.prefix == address }
        }
        let delSeconds = try Workers.run(count: workers, items: containers.count) { item in
            _ = try implementation.del(network, containers[item], result: results.all[item])
        } / 1000
        return ParallelRun(addsPerSecond: Double(containers.count) / addSeconds, delsPerSecond: Double(containers.count) / delSeconds,
                           distinct: distinct, carried: carried)
    }

    /// Lets the previous phase's clean-up finish before the next phase is timed.
    ///
    /// Files: on ext4 without a journal (this machine kind's root file system), allocating an
    /// inode skips every free one deleted less than 5 s ago, or 300 s while its inode-table block
    /// is still dirty (recently_deleted() in fs/ext4/ialloc.c): right after a thousand DELs, each
    /// new lease or record file costs more, whichever plugin writes it.
    ///
    /// CPU: deleting a network namespace only queues it; the kernel tears it down later in a
    /// kworker (cleanup_net), and a thousand of them keep a CPU of this 2-CPU machine busy for
    /// seconds, which the next phase would pay for. So after the pause, wait (at most a minute)
    /// until the machine is idle: under 10 % busy over half a second. Both implementations get
    /// the same treatment.
    static func settle() {
        sync()
        sleep(6)
        var checks = 0
        while checks < 120 && busyFraction(overMilliseconds: 500) >= 0.1 { checks += 1 }
    }

    /// The share of all CPUs' time spent not idle (and not waiting for I/O) during the interval,
    /// from /proc/stat's first line.
    static func busyFraction(overMilliseconds interval: Int) -> Double {
        func sample() -> (busy: UInt64, total: UInt64)? {
            let fd = open("/proc/stat", O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { return nil }
            defer { close(fd) }
            var buffer = [UInt8](repeating: 0, count: 512)
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { return nil }
            let line = String(decoding: buffer[..<count].prefix { $0 != UInt8(ascii: "\n") }, as: UTF8.self)
            let fields = line.split(separator: " ").dropFirst().compactMap { UInt64($0) }
            guard fields.count >= 5 else { return nil }
            let total = fields.reduce(0, +)
            return (total - fields[3] - fields[4], total)
        }
        guard let before = sample() else { return 0 }
        usleep(useconds_t(interval * 1000))
        guard let after = sample(), after.total > before.total else { return 0 }
        return Double(after.busy - before.busy) / Double(after.total - before.total)
    }

    static func dateLine() -> String {
        var now = time(nil)
        var parts = tm()
        gmtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        strftime(&buffer, buffer.count, "%Y-%m-%d %H:%M UTC", &parts)
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            + ", Linux \(release), \(sysconf(Int32(_SC_NPROCESSORS_ONLN))) CPUs"
    }
}

func writeLines(_ lines: [String], to path: String) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { return }
    defer { close(fd) }
    var bytes = Array((lines.joined(separator: "\n") + "\n").utf8)
    _ = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
}

/// A line on stdout at once (not buffered: a long run shows each row as it is measured).
func say(_ text: String) {
    var bytes = Array((text + "\n").utf8)
    _ = bytes.withUnsafeMutableBytes { Glibc.write(1, $0.baseAddress, $0.count) }
}

func pad(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(1, width - text.count)) }

extension JSON {
    subscript(key: String) -> JSON? {
        guard case .object(let object) = self else { return nil }
        return object[key]
    }

    subscript(index: Int) -> JSON? {
        guard case .array(let elements) = self, elements.indices.contains(index) else { return nil }
        return elements[index]
    }

    var stringValue: String? { if case .string(let value) = self { value } else { nil } }
}

/// Results written by several workers, one slot each.
final class ResultBox: @unchecked Sendable {
    private var values: [JSON?]
    private var lock = pthread_mutex_t()

    init(count: Int) {
        values = Array(repeating: nil, count: count)
        pthread_mutex_init(&lock, nil)
    }

    func set(_ index: Int, _ value: JSON?) {
        pthread_mutex_lock(&lock)
        values[index] = value
        pthread_mutex_unlock(&lock)
    }

    var all: [JSON?] {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return values
    }
}

/// `count` threads taking items 0..<items in turn; the wall time in milliseconds. The first
/// error stops every worker and is thrown.
enum Workers {
    final class Queue: @unchecked Sendable {
        let items: Int
        let body: (Int) throws -> Void
        var next = 0
        var failure: (any Error)?
        var lock = pthread_mutex_t()

        init(items: Int, body: @escaping (Int) throws -> Void) {
            self.items = items
            self.body = body
            pthread_mutex_init(&lock, nil)
        }

        func take() -> Int? {
            pthread_mutex_lock(&lock)
            defer { pthread_mutex_unlock(&lock) }
            guard failure == nil, next < items else { return nil }
            next += 1
            return next - 1
        }

        func fail(_ error: any Error) {
            pthread_mutex_lock(&lock)
            if failure == nil { failure = error }
            pthread_mutex_unlock(&lock)
        }
    }

    static func run(count: Int, items: Int, _ body: @escaping (Int) throws -> Void) throws -> Double {
        let queue = Queue(items: items, body: body)
        var threads: [pthread_t] = []
        let elapsed = milliseconds {
            for _ in 0..<count {
                var thread = pthread_t()
                pthread_create(&thread, nil, { raw in
                    let queue = Unmanaged<Queue>.fromOpaque(raw!).takeRetainedValue()
                    while let item = queue.take() {
                        do { try queue.body(item) } catch { queue.fail(error) }
                    }
                    return nil
                }, Unmanaged.passRetained(queue).toOpaque())
                threads.append(thread)
            }
            for thread in threads { pthread_join(thread, nil) }
        }
        if let failure = queue.failure { throw failure }
        return elapsed
    }
}
