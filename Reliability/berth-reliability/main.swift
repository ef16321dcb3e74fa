// berth-reliability: kills, concurrency, sloppy DELs, fuzzing, isolation and input limits, run by
// Scripts/reliability.sh inside a network sandbox (never on a real host namespace), against
// Berth and, side by side, the reference plugins. Prints a summary; the last line is
// `RESULT reliability kills=… leaks=… conc=… fuzz_cases=… crashes=… hangs=… bad_errors=…`.
// Exit status 1 when Berth fails any part.
#if canImport(Glibc)
import Glibc
#endif
import BerthJSON
import BerthTestSupport
import Foundation


// A plugin that exits before reading all of its stdin makes our write fail with EPIPE, not kill
// the harness (plugins are started with SIGPIPE at its default).
signal(SIGPIPE, SIG_IGN)
let arguments = Array(CommandLine.arguments.dropFirst())
func option(_ name: String, in arguments: [String] = Array(CommandLine.arguments.dropFirst())) -> String? {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}
let short = arguments.contains("--short")
let seed = option("--seed").flatMap { UInt64($0) } ?? 20261205
let berthBin = option("--berth-bin") ?? ".build/release"
let parts = option("--parts").map { Set($0.split(separator: ",").map(String.init)) }
    ?? ["kills", "concurrency", "del", "fuzz", "isolation", "limits"]
let withReference = !short && !arguments.contains("--berth-only")
let killRounds = short ? 10 : 200
let concurrentContainers = short ? 40 : 200
let fuzzPerPlugin = short ? 300 : 2500

var generator = SeededGenerator(seed: seed)
let scope = NamespaceScope()
// Removed before the exit at the end: exit() ends the process before a top-level defer runs.
let scratch = try makeTemporaryDirectory()
let berth = Subject(kind: .berth, binDirectory: berthBin.hasPrefix("/") ? berthBin : FileManager.default.currentDirectoryPath + "/" + berthBin,
                    scratch: scratch + "/berth")
let reference = Subject(kind: .reference, binDirectory: "/usr/lib/cni", scratch: scratch + "/reference")
let subjects = withReference ? [berth, reference] : [berth]
var berthFailed = false
var totals = (kills: 0, leaks: 0, conc: "skipped", fuzzCases: 0, crashes: 0, hangs: 0, badErrors: 0)

say("Reliability: Berth (\(berth.binDirectory))\(withReference ? " and the reference (/usr/lib/cni)" : ""), seed \(seed)\(short ? ", short" : "")")

// MARK: Kills

if parts.contains("kills") {
    say("\nSIGKILL at a random moment of ADD and DEL (alternating), then DEL; the next ADD must work")
    for subject in subjects {
        let network = Subject.Network(name: "kills", bridge: subject.kind == .berth ? "bk0" : "rk0",
                                      subnet: subject.kind == .berth ? "10.91.0.0/16" : "10.92.0.0/16")
        let pristine = HostSnapshot.take(directories: [subject.scratch])
        let bystander = try scope.make(loopbackUp: true), joinTarget = try scope.make(loopbackUp: true)
        let bystanderConfig = subject.kind == .berth ? subject.bridgeConfig(network, ports: [18081]) : subject.bridgeConfig(network)
        subject.bridge("ADD", network, id: "bystander", netns: bystander.path, config: bystanderConfig)
        subject.bridge("ADD", network, id: "join-target", netns: joinTarget.path)
        let portOf = { (id: String) in 20000 + id.utf8.reduce(0) { ($0 &* 31 &+ Int($1)) % 10000 } }
        var targets: [KillTarget] = [
            KillTarget(label: "\(subject.name) \(subject.kind == .berth ? "berth-bridge" : "bridge")", call: { command, id, netns in
                ProcessCall(executable: subject.bridgePlugin, environment: subject.environment(command, id: id, netns: netns),
                           stdin: Array((subject.kind == .berth ? subject.bridgeConfig(network, ports: [portOf(id)]) : subject.bridgeConfig(network))
                               .serialized().utf8))
            }, works: { $0.pings(network.gateway) }),
        ]
        let ipamConfig = JSON.object(["cniVersion": .string("1.0.0"), "name": .string("kills-ipam"), "type": .string("bridge"),
                                      "ipam": .object(["type": .string(subject.kind == .berth ? "berth-ipam" : "host-local"),
                                                       "dataDir": .string(subject.dataDirectory),
                                                       "ranges": .array([.array([.object(["subnet": .string(subject.kind == .berth ? "10.93.0.0/16" : "10.94.0.0/16")])])])])])
        targets.append(KillTarget(label: "\(subject.name) \(subject.kind == .berth ? "berth-ipam" : "host-local")", call: { command, id, netns in
            ProcessCall(executable: subject.ipamPlugin, environment: subject.environment(command, id: id, netns: netns), stdin: Array(ipamConfig.serialized().utf8))
        }))
        if subject.kind == .berth {
            let hostConfig = JSON.object(["cniVersion": .string("1.0.0"), "name": .string("kills-host"), "type": .string("berth-host"),
                                          "stateDir": .string(subject.stateDirectory),
                                          "runtimeConfig": .object(["portMappings": .array([.object(["hostPort": .int(19090), "containerPort": .int(19090),
                                                                                                      "protocol": .string("tcp")])])])])
            targets.append(KillTarget(label: "Berth berth-host", call: { command, id, netns in
                ProcessCall(executable: subject.binDirectory + "/berth-host", environment: subject.environment(command, id: id, netns: netns),
                           stdin: Array(hostConfig.serialized().utf8))
            }, netnsFor: { _ in "/proc/self/ns/net" }))
            let joinConfig = JSON.object(["cniVersion": .string("1.0.0"), "name": .string("kills-join"), "type": .string("berth-container"),
                                          "stateDir": .string(subject.stateDirectory), "container": .string("join-target")])
            targets.append(KillTarget(label: "Berth berth-container", call: { command, id, netns in
                ProcessCall(executable: subject.binDirectory + "/berth-container", environment: subject.environment(command, id: id, netns: netns),
                           stdin: Array(joinConfig.serialized().utf8))
            }, netnsFor: { _ in joinTarget.path }))
        }
        for target in targets {
            let report = KillRounds.run(target, rounds: killRounds, directories: [subject.scratch], scope: scope, generator: &generator)
            say(report.line)
            for failure in report.failures.prefix(4) { say("    \(failure)") }
            if subject.kind == .berth {
                totals.kills += report.killsDelivered
                totals.leaks += report.leaks
                if report.leaks > 0 || report.blocked > 0 || !report.failures.isEmpty { berthFailed = true }
            }
        }
        // The end: DEL of the last containers, then GC with no valid attachment (Berth: CNI 1.1).
        subject.bridge("DEL", network, id: "bystander", netns: bystander.path, config: bystanderConfig)
        subject.bridge("DEL", network, id: "join-target", netns: joinTarget.path)
        if subject.kind == .berth {
            let gc = subject.bridge("GC", network, id: nil, netns: nil,
                                    config: subject.bridgeConfig(network, version: "1.1.0", extra: ["cni.dev/valid-attachments": .array([])]))
            if !gc.succeeded { say("    GC: \(gc.text)"); berthFailed = true }
        }
        let left = HostSnapshot.take(directories: [subject.scratch]).differences(from: pristine).filter {
            // What a network keeps by design: its bridge, lock files, the round-robin position, directories.
            !$0.hasPrefix("link left: \(network.bridge)") && !$0.hasPrefix("file left:") || $0.contains(".json") || $0.contains("berth-attachments")
        }
        let files = (FileManager.default.enumerator(atPath: subject.scratch)?.allObjects as? [String] ?? []).filter {
            !$0.hasSuffix("lock") && !$0.contains("last_reserved_ip") && !isDirectory(subject.scratch + "/" + $0)
        }
        let leftovers = left.filter { !$0.hasPrefix("file left:") } + (files.isEmpty ? [] : ["files: \(files.prefix(5).joined(separator: ", "))"])
        say("\(pad(subject.name, 10)) after the last DEL\(subject.kind == .berth ? " and GC" : ""): \(leftovers.isEmpty ? "nothing left" : leftovers.joined(separator: "; "))")
        if subject.kind == .berth && !leftovers.isEmpty { totals.leaks += 1; berthFailed = true }
    }
}

func isDirectory(_ path: String) -> Bool {
    var info = stat()
    return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
}

// MARK: Concurrency

if parts.contains("concurrency") {
    say("\n\(concurrentContainers) containers, 8 workers: parallel ADD, CHECK, DEL\(withReference ? " (and GC for Berth; the reference has no GC)" : " and GC") on a new network")
    for subject in subjects {
        let network = Subject.Network(name: "conc", bridge: subject.kind == .berth ? "bc0" : "rc0",
                                      subnet: subject.kind == .berth ? "10.95.0.0/16" : "10.96.0.0/16")
        let report = ConcurrencyRun.run(subject, network: network, containers: concurrentContainers, workers: 8, gc: subject.kind == .berth,
                                        scope: scope, generator: &generator)
        say(report.line)
        for failure in report.failures.prefix(4) { say("    \(failure)") }
        if subject.kind == .berth {
            totals.conc = report.consistent ? "ok" : "fail"
            if !report.consistent { berthFailed = true }
        }
    }
}

// MARK: DEL edge cases

if parts.contains("del") {
    say("\nDEL after the netns is gone, twice, of an ID never added: exit 0, nothing left")
    for subject in subjects {
        let network = Subject.Network(name: "dels", bridge: subject.kind == .berth ? "bd0" : "rd0",
                                      subnet: subject.kind == .berth ? "10.97.0.0/16" : "10.98.0.0/16")
        // The network exists first (its directories and bridge are not what these cases test).
        let warm = try scope.make(loopbackUp: true)
        subject.bridge("ADD", network, id: "warm", netns: warm.path)
        subject.bridge("DEL", network, id: "warm", netns: warm.path)
        for (name, outcome) in DelCases.run(subject, network: network, scope: scope).sorted(by: { $0.key < $1.key }) {
            say("\(pad(subject.name, 10)) \(pad(name, 28)) \(outcome.passed ? "ok" : "FAILED: \(outcome.detail)")")
            if subject.kind == .berth && !outcome.passed { berthFailed = true }
        }
    }
}

// MARK: Fuzzing

if parts.contains("fuzz") {
    say("\nFuzzing: \(fuzzPerPlugin) seeded invalid inputs per plugin; every 100, the host is compared with before")
    let regularFile = scratch + "/not-a-namespace"
    _ = FileManager.default.createFile(atPath: regularFile, contents: Array("x".utf8).withUnsafeBytes { Data($0) })
    for subject in subjects {
        let container = try scope.make(loopbackUp: true), target = try scope.make(loopbackUp: true)
        let network = Subject.Network(name: "fuzz", bridge: subject.kind == .berth ? "bf0" : "rf0",
                                      subnet: subject.kind == .berth ? "10.81.0.0/16" : "10.82.0.0/16")
        // The network exists (directories, bridge), and a container to join.
        subject.bridge("ADD", network, id: "fuzz-target", netns: target.path)
        let base = ["CNI_COMMAND": "ADD", "CNI_CONTAINERID": "fuzz", "CNI_NETNS": container.path, "CNI_IFNAME": "eth0",
                    "CNI_PATH": subject.cniPath, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
        let badNetns: [(String, Set<Int>)] = [(regularFile, [3]), (scratch, [3]), ("/run/netns/never-made", [3])]
        var fuzzTargets = [
            FuzzTarget(label: "\(subject.name) \(subject.kind == .berth ? "berth-bridge" : "bridge")", executable: subject.bridgePlugin,
                       checkCodes: subject.kind == .berth, environment: base, config: subject.bridgeConfig(network),
                       netnsCases: badNetns + [("/proc/self/ns/net", Set([4]))], directories: [subject.scratch], namespaces: [container, target]),
            FuzzTarget(label: "\(subject.name) \(subject.kind == .berth ? "berth-ipam" : "host-local")", executable: subject.ipamPlugin,
                       checkCodes: subject.kind == .berth, environment: base,
                       config: .object(["cniVersion": .string("1.0.0"), "name": .string("fuzz-ipam"), "type": .string("bridge"),
                                        "ipam": .object(["type": .string(subject.kind == .berth ? "berth-ipam" : "host-local"),
                                                         "dataDir": .string(subject.dataDirectory),
                                                         "ranges": .array([.array([.object(["subnet": .string("10.83.0.0/16")])])])])]),
                       netnsCases: [], directories: [subject.scratch], namespaces: []),
        ]
        if subject.kind == .berth {
            var hostEnvironment = base
            hostEnvironment["CNI_NETNS"] = "/proc/self/ns/net"
            fuzzTargets.append(FuzzTarget(label: "Berth berth-host", executable: subject.binDirectory + "/berth-host", checkCodes: true,
                                          environment: hostEnvironment,
                                          config: .object(["cniVersion": .string("1.0.0"), "name": .string("fuzz-host"), "type": .string("berth-host"),
                                                           "stateDir": .string(subject.stateDirectory)]),
                                          netnsCases: badNetns.map { ($0.0, Set([7])) } + [(container.path, Set([7]))],
                                          directories: [subject.scratch], namespaces: []))
            var joinEnvironment = base
            joinEnvironment["CNI_NETNS"] = target.path
            fuzzTargets.append(FuzzTarget(label: "Berth berth-container", executable: subject.binDirectory + "/berth-container", checkCodes: true,
                                          environment: joinEnvironment,
                                          config: .object(["cniVersion": .string("1.0.0"), "name": .string("fuzz-join"), "type": .string("berth-container"),
                                                           "stateDir": .string(subject.stateDirectory), "container": .string("fuzz-target")]),
                                          netnsCases: badNetns + [("/proc/self/ns/net", Set([7])), (container.path, Set([7]))],
                                          directories: [subject.scratch], namespaces: [target]))
        }
        for fuzzTarget in fuzzTargets {
            let report = Fuzzer.run(fuzzTarget, cases: fuzzPerPlugin, generator: &generator)
            say(report.line)
            for sample in report.samples.prefix(subject.kind == .berth ? 12 : 4) { say("    \(sample)") }
            if subject.kind == .berth {
                totals.fuzzCases += report.cases
                totals.crashes += report.crashes
                totals.hangs += report.hangs
                totals.badErrors += report.badErrors
                if report.crashes + report.hangs + report.badErrors + report.changes > 0 { berthFailed = true }
            }
        }
        subject.bridge("DEL", network, id: "fuzz-target", netns: target.path)
    }
}

// MARK: Isolation

if parts.contains("isolation") {
    say("\nIsolation: an attacker on the host's uplink segment routing the container subnets through the host")
    let segment = try Isolation.Segment(scope: scope)
    for subject in subjects {
        let networks = subject.kind == .berth
            ? (Subject.Network(name: "iso-a", bridge: "bia0", subnet: "10.71.0.0/16"), Subject.Network(name: "iso-b", bridge: "bib0", subnet: "10.72.0.0/16"))
            : (Subject.Network(name: "iso-a", bridge: "ria0", subnet: "10.73.0.0/16"), Subject.Network(name: "iso-b", bridge: "rib0", subnet: "10.74.0.0/16"))
        do {
            let checks = try Isolation.run(subject, networks: networks, publishedPort: subject.kind == .berth ? 8081 : 8082,
                                           segment: segment, scope: scope)
            for check in checks {
                say("\(pad(subject.name, 10)) \(pad(check.name, 56)) \(check.observed ? "yes" : "no ") \(check.passed ? "ok" : "FAILED")")
                if subject.kind == .berth && !check.passed { berthFailed = true }
            }
        } catch {
            say("\(pad(subject.name, 10)) setup failed: \(error)")
            if subject.kind == .berth { berthFailed = true }
        }
    }
}

// MARK: Input limits

if parts.contains("limits") {
    say("\nInput limits (ADD for a namespace that does not exist)")
    for subject in subjects {
        let network = Subject.Network(name: "limits", bridge: subject.kind == .berth ? "bl0" : "rl0", subnet: "10.84.0.0/16")
        let (lines, hangs, bad) = InputLimits.run(subject, network: network)
        lines.forEach { say($0) }
        if subject.kind == .berth {
            totals.hangs += hangs
            totals.badErrors += bad
            if hangs + bad > 0 { berthFailed = true }
        }
    }
}

say("\n\(berthFailed ? "Berth FAILED a part (above)" : "Berth passed every part")")
say("RESULT reliability kills=\(totals.kills) leaks=\(totals.leaks) conc=\(totals.conc) fuzz_cases=\(totals.fuzzCases) crashes=\(totals.crashes) hangs=\(totals.hangs) bad_errors=\(totals.badErrors)")
removeTemporaryDirectory(scratch)
exit(berthFailed ? 1 : 0)

func pad(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(1, width - text.count)) }

/// A line on stdout at once (a long run shows each part as it ends).
func say(_ text: String) {
    var bytes = Array((text + "\n").utf8)
    _ = bytes.withUnsafeMutableBytes { write(1, $0.baseAddress, $0.count) }
}
