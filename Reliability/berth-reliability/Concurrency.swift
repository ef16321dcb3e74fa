#if canImport(Glibc)
import Glibc
#endif
import BerthIP
import BerthJSON
import BerthTestSupport
import Foundation

/// Parallel ADD, CHECK, DEL and GC on a network that does not exist yet. Half the containers
/// stay (ADD, CHECK); the other half come and go (ADD, CHECK, DEL); GC runs in between, listing
/// only those that stay. Afterwards leases, records, host links and the containers themselves
/// must describe exactly the staying half, every address distinct.
struct ConcurrencyReport {
    var subject: String
    var containers = 0
    var calls = 0
    var duplicates = 0
    var orphans = 0
    var missing = 0
    var failures: [String] = []
    var seconds = 0.0

    var consistent: Bool { duplicates == 0 && orphans == 0 && missing == 0 && failures.isEmpty }
    var line: String {
        "\(pad(subject, 10)) containers \(pad(String(containers), 4)) calls \(pad(String(calls), 5)) in \(String(format: "%.1f", seconds)) s:"
            + " duplicate IPs \(duplicates), orphans \(orphans), missing \(missing), failed calls \(failures.count)"
    }
}

enum ConcurrencyRun {
    static func run(_ subject: Subject, network: Subject.Network, containers count: Int, workers: Int, gc: Bool,
                    scope: NamespaceScope, generator: inout SeededGenerator) -> ConcurrencyReport {
        var report = ConcurrencyReport(subject: subject.name, containers: count)
        let namespaces = (0..<count).compactMap { _ in try? scope.make(loopbackUp: true) }
        guard namespaces.count == count else { report.failures.append("could not make \(count) namespaces"); return report }
        let ids = (0..<count).map { "conc\($0)" }
        var tasks: [Task] = (0..<count).map { .container($0) }
        if gc { tasks += Array(repeating: .gc, count: max(1, count / 25)) }
        tasks.shuffle(using: &generator)
        let gcConfig = subject.bridgeConfig(network, version: "1.1.0", extra: [
            "cni.dev/valid-attachments": .array(ids.indices.filter(stays).map {
                .object(["containerID": .string(ids[$0]), "ifname": .string("eth0")])
            }),
        ])

        let shared = Shared(tasks: tasks)
        let start = ProcessRunner.now()
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while let task = shared.take() {
                var local: [String] = [], made = 0, address: (Int, String)?
                switch task {
                case .gc:
                    let outcome = subject.bridge("GC", network, id: nil, netns: nil, config: gcConfig)
                    made += 1
                    if !outcome.succeeded { local.append("GC: \(outcome.text.prefix(200))") }
                case .container(let index):
                    let id = ids[index], netns = namespaces[index].path
                    var added = subject.bridge("ADD", network, id: id, netns: netns)
                    made += 1
                    // Code 11: a GC swept the reservation meanwhile; the runtime tries again.
                    if !added.succeeded, errorCode(added) == 11 {
                        added = subject.bridge("ADD", network, id: id, netns: netns)
                        made += 1
                    }
                    if stays(index) {
                        if !added.succeeded { local.append("ADD \(id): \(added.text.prefix(200))") }
                        let checked = subject.bridge("CHECK", network, id: id, netns: netns,
                                                     config: withPrevResult(subject.bridgeConfig(network), added))
                        made += 1
                        if !checked.succeeded { local.append("CHECK \(id): \(checked.text.prefix(200))") }
                        if let first = firstAddress(added) { address = (index, first) }
                    } else {
                        // A container that goes may be swept by GC at any point: CHECK may fail; DEL may not.
                        _ = subject.bridge("CHECK", network, id: id, netns: netns, config: withPrevResult(subject.bridgeConfig(network), added))
                        let deleted = subject.bridge("DEL", network, id: id, netns: netns)
                        made += 2
                        if !deleted.succeeded { local.append("DEL \(id): \(deleted.text.prefix(200))") }
                    }
                }
                shared.record(failures: local, calls: made, address: address)
            }
        }
        let (results, failures, calls) = shared.outcome
        report.seconds = (ProcessRunner.now() - start) / 1000
        report.calls = calls
        report.failures = failures

        // What the kernel and the store say.
        let staying = Set(ids.indices.filter(stays).map { ids[$0] })
        let addresses = results.values
        report.duplicates = addresses.count - Set(addresses).count
        let leaseOwners = leaseOwners(subject, network)
        for (index, id) in ids.enumerated() {
            let owned = leaseOwners.filter { $0.value == id }.map(\.key)
            let inKernel = containerAddresses(namespaces[index])
            if stays(index) {
                guard let address = results[index] else { report.missing += 1; continue }
                if owned != [address] || !inKernel.contains(address) {
                    report.missing += 1
                    if getenv("BERTH_DEBUG") != nil { print("missing \(id): result \(address), leases \(owned), kernel \(inKernel)") }
                }
            } else if !owned.isEmpty || !inKernel.isEmpty {
                report.orphans += 1
                if getenv("BERTH_DEBUG") != nil { print("orphan \(id): leases \(owned), kernel \(inKernel)") }
            }
        }
        report.orphans += leaseOwners.values.filter { !ids.contains($0) }.count
        let veths = hostVeths(on: network.bridge)
        if veths.count != staying.count {
            report.failures.append("\(veths.count) veths on \(network.bridge), \(staying.count) containers stay")
        }
        if subject.kind == .berth {
            let records = (try? FileManager.default.contentsOfDirectory(atPath: "\(subject.stateDirectory)/\(network.name)")) ?? []
            let recorded = Set(records.filter { $0.hasSuffix(".json") }.map { String($0.split(separator: ":")[0]) })
            if recorded != staying { report.failures.append("records for \(recorded.count) containers, \(staying.count) stay") }
        }
        // Leave nothing: the staying half goes too.
        for index in ids.indices where stays(index) {
            _ = subject.bridge("DEL", network, id: ids[index], netns: namespaces[index].path)
        }
        return report
    }

    /// Even containers stay; odd ones come and go.
    static func stays(_ index: Int) -> Bool { index % 2 == 0 }

    enum Task: Sendable { case container(Int), gc }

    /// The workers' queue and what they found, behind one lock.
    final class Shared: @unchecked Sendable {
        private let lock = NSLock()
        private let tasks: [Task]
        private var next = 0
        private var results: [Int: String] = [:]
        private var failures: [String] = []
        private var calls = 0

        init(tasks: [Task]) { self.tasks = tasks }

        func take() -> Task? {
            lock.lock()
            defer { lock.unlock() }
            guard next < tasks.count else { return nil }
            next += 1
            return tasks[next - 1]
        }

        func record(failures more: [String], calls made: Int, address: (Int, String)?) {
            lock.lock()
            defer { lock.unlock() }
            failures += more
            calls += made
            if let address { results[address.0] = address.1 }
        }

        var outcome: ([Int: String], [String], Int) {
            lock.lock()
            defer { lock.unlock() }
            return (results, failures, calls)
        }
    }

    static func errorCode(_ outcome: RunOutcome) -> Int? {
        (try? JSON.parse(outcome.stdout))?["code"]?.intValue
    }

    static func firstAddress(_ outcome: RunOutcome) -> String? {
        guard outcome.succeeded, let json = try? JSON.parse(outcome.stdout) else { return nil }
        return json["ips"]?[0]?["address"]?.stringValue.map { String($0.split(separator: "/")[0]) }
    }

    static func withPrevResult(_ config: JSON, _ added: RunOutcome) -> JSON {
        guard case .object(var object) = config, let result = try? JSON.parse(added.stdout), added.succeeded else { return config }
        object["prevResult"] = result
        return .object(object)
    }

    /// Lease file name (an address) → the container ID on its first line.
    static func leaseOwners(_ subject: Subject, _ network: Subject.Network) -> [String: String] {
        let directory = "\(subject.dataDirectory)/\(network.name)"
        var owners: [String: String] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where IPAddress(name) != nil {
            let text = (try? String(contentsOfFile: "\(directory)/\(name)", encoding: .utf8)) ?? ""
            owners[name] = String(text.split(whereSeparator: \.isNewline).first ?? "")  // "\r\n" is one Character
        }
        return owners
    }

    static func containerAddresses(_ namespace: ScratchNamespace) -> [String] {
        ((try? namespace.ip("-4", "addr", "show"))?.arrayValue ?? []).flatMap { link in
            link["addr_info"]?.arrayValue.compactMap { $0["local"]?.stringValue }.filter { !$0.hasPrefix("127.") } ?? []
        }
    }

    static func hostVeths(on bridge: String) -> [String] {
        ((try? JSON.parse(BerthTestSupport.run("ip", "-j", "link", "show", "master", bridge)))?.arrayValue ?? []).compactMap { $0["ifname"]?.stringValue }
    }
}
