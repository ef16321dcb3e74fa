#if canImport(Glibc)
import Glibc
#endif
import BerthJSON
import BerthTestSupport
import Foundation

/// Seeded mutations of a valid ADD (environment and config) against one plugin. Every case is
/// built to be invalid: the plugin must end (10 s cap) without a signal, print exactly one
/// well-formed CNI error with one of the expected codes, and change nothing on disk or in the
/// kernel (checked every 100 cases).
struct FuzzTarget {
    var label: String
    var executable: String
    /// Berth's plugins are held to the expected codes; the reference only to the shape.
    var checkCodes: Bool
    var environment: [String: String]
    var config: JSON
    /// Paths of CNI_NETNS values and which codes they must give, beyond the generic cases.
    var netnsCases: [(path: String, codes: Set<Int>)]
    /// Directories whose files count as state.
    var directories: [String]
    /// Namespaces whose links count as state besides the host's.
    var namespaces: [ScratchNamespace]
}

struct FuzzReport {
    var target: String
    var cases = 0
    var crashes = 0
    var hangs = 0
    var malformed = 0
    /// Well formed but for a missing `cniVersion`.
    var withoutVersion = 0
    var wrongCodes = 0
    var unexpectedSuccesses = 0
    var changes = 0
    var samples: [String] = []

    var badErrors: Int { malformed + withoutVersion + wrongCodes + unexpectedSuccesses }
    var line: String {
        "\(pad(target, 22)) cases \(pad(String(cases), 6)) crashes \(pad(String(crashes), 3)) hangs \(pad(String(hangs), 3))"
            + " malformed \(pad(String(malformed), 4)) no cniVersion \(pad(String(withoutVersion), 4)) wrong code \(pad(String(wrongCodes), 4)) accepted \(pad(String(unexpectedSuccesses), 4))"
            + " state changed \(changes)"
    }
}

enum Fuzzer {
    struct Case {
        var what: String
        var environment: [String: String]
        var stdin: [UInt8]
        var codes: Set<Int>
    }

    static func run(_ target: FuzzTarget, cases count: Int, generator: inout SeededGenerator) -> FuzzReport {
        var report = FuzzReport(target: target.label)
        // A valid ADD and DEL first: what a used network keeps (directories, locks) is in the baseline.
        _ = ProcessRunner.run(baseCall(target, command: "ADD"))
        _ = ProcessRunner.run(baseCall(target, command: "DEL"))
        var baseline = state(target)
        for index in 0..<count {
            let item = makeCase(target, &generator)
            let outcome = ProcessRunner.run(ProcessCall(executable: target.executable,
                                                      environment: item.environment.map { "\($0.key)=\($0.value)" }.sorted(),
                                                      stdin: item.stdin), capSeconds: 10)
            report.cases += 1
            func sample(_ text: String) { if report.samples.count < 12 { report.samples.append("\(item.what): \(text)") } }
            if outcome.hung {
                report.hangs += 1
                sample("hung")
            } else if case .signaled(let signal) = outcome.termination {
                report.crashes += 1
                sample("killed by signal \(signal)")
            } else if outcome.termination == .exited(0) {
                report.unexpectedSuccesses += 1
                sample("accepted: \(outcome.text.prefix(120))")
                // Undone at once, so the cases after it meet the same state.
                _ = ProcessRunner.run(baseCall(target, command: "DEL"))
            } else if let error = CNIErrorShape(outcome.stdout) {
                if !error.hasVersion {
                    report.withoutVersion += 1
                    if target.checkCodes { sample("no cniVersion: \(outcome.text.prefix(120))") }
                }
                if target.checkCodes && !item.codes.contains(error.code) {
                    report.wrongCodes += 1
                    sample("code \(error.code), expected \(item.codes.sorted()): \(error.msg.prefix(140))")
                }
            } else {
                report.malformed += 1
                sample("\(outcome.termination), stdout: \(outcome.text.prefix(120).debugDescription)")
            }
            if index % 100 == 99 || index == count - 1 {
                let now = state(target)
                if now != baseline {
                    report.changes += 1
                    sample("state changed by case \(index) or before: \(now.differences(from: baseline).joined(separator: "; ").prefix(300))")
                    baseline = now
                }
            }
        }
        return report
    }

    static func baseCall(_ target: FuzzTarget, command: String) -> ProcessCall {
        var environment = target.environment
        environment["CNI_COMMAND"] = command
        return ProcessCall(executable: target.executable, environment: environment.map { "\($0.key)=\($0.value)" }.sorted(),
                          stdin: Array(target.config.serialized().utf8))
    }

    static func state(_ target: FuzzTarget) -> HostSnapshot {
        var snapshot = HostSnapshot.take(directories: target.directories)
        for namespace in target.namespaces {
            snapshot.links += ((try? namespace.ip("link", "show"))?.arrayValue ?? []).compactMap {
                $0["ifname"]?.stringValue.map { "\(namespace.name)/\($0)" }
            }
        }
        return snapshot
    }

    // MARK: Cases

    static func makeCase(_ target: FuzzTarget, _ g: inout SeededGenerator) -> Case {
        var environment = target.environment
        let config = target.config
        func serialized(_ json: JSON) -> [UInt8] { Array(json.serialized().utf8) }
        func pick<T>(_ items: [T]) -> T { items[Int.random(in: 0..<items.count, using: &g)] }

        switch Int.random(in: 0..<16, using: &g) {
        case 0:
            let spelling = pick(["add", "Add", "ADD ", " ADD", "ADDD", "AD", "del", "DELETE", "check", "VERSIONS", "gc", "Status",
                                 "ADD\n", "ÄDD", "ADD\u{7}", "1", "ADD;DEL", String(repeating: "A", count: 5000)])
            environment["CNI_COMMAND"] = spelling
            return Case(what: "CNI_COMMAND \(spelling.prefix(20).debugDescription)", environment: environment, stdin: serialized(config), codes: [4])
        case 1:
            let name = pick(["", String(repeating: "e", count: 16), String(repeating: "x", count: 300), "eth/0", "..", ".", "eth 0",
                             "eth:0", "../../etc", "eth0\t", "/"])
            environment["CNI_IFNAME"] = name
            return Case(what: "CNI_IFNAME \(name.prefix(20).debugDescription)", environment: environment, stdin: serialized(config), codes: [4])
        case 2:
            let id = pick(["", "a/b", "..", ".", "../../x", "a b", " a", "-a", "_a", "a\tb", String(repeating: "c", count: 1024) + "/",
                           "é", "a;b", "a*"])
            environment["CNI_CONTAINERID"] = id
            return Case(what: "CNI_CONTAINERID \(id.prefix(20).debugDescription)", environment: environment, stdin: serialized(config), codes: [4])
        case 3:
            let variable = pick(["CNI_NETNS", "CNI_PATH", "CNI_CONTAINERID", "CNI_IFNAME"])
            environment[variable] = nil
            return Case(what: "\(variable) missing", environment: environment, stdin: serialized(config), codes: [4])
        case 4:
            if let (path, codes) = target.netnsCases.isEmpty ? nil : pick(target.netnsCases) {
                environment["CNI_NETNS"] = path
                return Case(what: "CNI_NETNS \(path)", environment: environment, stdin: serialized(config), codes: codes)
            }
            fallthrough
        case 5:
            let bytes = serialized(config)
            let cut = Int.random(in: 0..<bytes.count, using: &g)
            return Case(what: "truncated at \(cut)", environment: environment, stdin: Array(bytes[..<cut]), codes: [6])
        case 6, 7:
            let paths = memberPaths(config)
            let path = pick(paths)
            let original = value(at: path, in: config)!
            let replacement = pick(otherKinds(than: original, &g))
            let codes: Set<Int> = path == ["cniVersion"] ? [1, 7] : [7]
            return Case(what: "\(describe(path)) = \(replacement.serialized().prefix(30))", environment: environment,
                        stdin: serialized(replacing(path, in: config, with: replacement)), codes: codes)
        case 8:
            let number = pick(["1e400", "-1", "-1e400", "99999999999999999999999999", "-99999999999999999999", "1.5", "0", "-0", "1e-400"])
            let path = pick(memberPaths(config).filter { $0 != ["cniVersion"] })
            let text = String(decoding: serialized(replacing(path, in: config, with: .string("\u{1}NUMBER\u{1}"))), as: UTF8.self)
                .replacingOccurrences(of: "\"\\u0001NUMBER\\u0001\"", with: number)
            return Case(what: "\(describe(path)) = \(number)", environment: environment, stdin: Array(text.utf8), codes: [7])
        case 9:
            let depth = pick([1000, 10_000])  // beyond any reasonable parser limit (Berth's: 512)
            let nested = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
            let text = String(decoding: serialized(config).dropLast(), as: UTF8.self) + ",\"deep\":\(nested)}"
            return Case(what: "\(depth)-deep nesting", environment: environment, stdin: Array(text.utf8), codes: [6])
        case 10:
            let text = String(decoding: serialized(config).dropLast(), as: UTF8.self) + ",\"big\":\"" + String(repeating: "b", count: 5 << 20) + "\"}"
            return Case(what: "a 5 MB string", environment: environment, stdin: Array(text.utf8), codes: [100])
        case 11:
            // Invalid UTF-8, or NUL bytes, inside the network name or raw between tokens.
            var bytes = serialized(replacing(["name"], in: config, with: .string("\u{1}MARK\u{1}")))
            let mark = Array("\\u0001MARK\\u0001".utf8)
            let junk: [UInt8] = pick([[0xFF, 0xFE], [0xC3], [0xED, 0xA0, 0x80], [0x00], [0x61, 0x00, 0x62], [0xF8, 0x88, 0x80, 0x80, 0x80]])
            if let range = find(mark, in: bytes) { bytes.replaceSubrange(range, with: junk) }
            let raw = Bool.random(using: &g)
            if raw { bytes = serialized(config); bytes.insert(contentsOf: junk, at: Int.random(in: 1..<bytes.count, using: &g)) }
            return Case(what: "bytes \(junk) \(raw ? "between tokens" : "in the name")", environment: environment, stdin: bytes,
                        codes: raw ? [6] : [6, 7])
        case 12:
            // A duplicate key: the last one wins (as in Go's encoding/json), and it is wrong.
            let key = pick(topLevelKeys(config))
            let original = value(at: [key], in: config)!
            let bad = pick(otherKinds(than: original, &g))
            let text = String(decoding: serialized(config).dropLast(), as: UTF8.self) + ",\(JSON.string(key).serialized()):\(bad.serialized())}"
            return Case(what: "duplicate \(key) = \(bad.serialized().prefix(20))", environment: environment, stdin: Array(text.utf8),
                        codes: key == "cniVersion" ? [1, 7] : [7])
        case 13:
            let version = pick(["1.0", "v1.0.0", "1.0.0 ", " 1.0.0", "01.0.0", "1.0.0.0", "2.0.0", "0.0.1", "", "latest", "1.0.0-rc1",
                                "1.1", "1", "0.4", "1.1.1", "٠.٤.٠", "1.0.0\u{0}"])
            return Case(what: "cniVersion \(version.debugDescription)", environment: environment,
                        stdin: serialized(replacing(["cniVersion"], in: config, with: .string(version))), codes: [1])
        case 14:
            let garbage = pick([JSON.string("garbage"), .number(JSONNumber(5)), .array([.string("x")]), .bool(false),
                                .object(["cniVersion": .string("1.0.0"), "ips": .string("x")]),
                                .object(["cniVersion": .string("1.0.0"), "interfaces": .object([:])]),
                                .object(["cniVersion": .string("1.0.0"), "ips": .array([.object(["address": .string("not-an-ip")])])])])
            return Case(what: "prevResult \(garbage.serialized().prefix(40))", environment: environment,
                        stdin: serialized(replacing(["prevResult"], in: config, with: garbage)), codes: [1, 7])
        default:
            let name = pick(["../x", "..", ".", "a/b", "/etc", "x/../../y", "-x", "a b", "", String(repeating: "n", count: 300) + "/"])
            return Case(what: "network name \(name.prefix(20).debugDescription)", environment: environment,
                        stdin: serialized(replacing(["name"], in: config, with: .string(name))), codes: [7])
        }
    }

    typealias Path = [String]

    /// Every member path of the config (objects by key, arrays by index as a decimal string).
    static func memberPaths(_ json: JSON, prefix: Path = []) -> [Path] {
        switch json {
        case .object(let object):
            return object.flatMap { [prefix + [$0.key]] + memberPaths($0.value, prefix: prefix + [$0.key]) }
        case .array(let elements):
            return elements.indices.flatMap { [prefix + [String($0)]] + memberPaths(elements[$0], prefix: prefix + [String($0)]) }
        default:
            return []
        }
    }

    static func topLevelKeys(_ json: JSON) -> [String] {
        if case .object(let object) = json { return object.keys }
        return []
    }

    static func describe(_ path: Path) -> String {
        path.map { Int($0) != nil ? "[\($0)]" : ".\($0)" }.joined().dropFirst().description
    }

    static func value(at path: Path, in json: JSON) -> JSON? {
        guard let first = path.first else { return json }
        switch json {
        case .object(let object): return object[first].flatMap { value(at: Array(path.dropFirst()), in: $0) }
        case .array(let elements):
            guard let index = Int(first), elements.indices.contains(index) else { return nil }
            return value(at: Array(path.dropFirst()), in: elements[index])
        default: return nil
        }
    }

    static func replacing(_ path: Path, in json: JSON, with replacement: JSON) -> JSON {
        guard let first = path.first else { return replacement }
        switch json {
        case .object(var object):
            object[first] = replacing(Array(path.dropFirst()), in: object[first] ?? .null, with: replacement)
            return .object(object)
        case .array(var elements):
            guard let index = Int(first), elements.indices.contains(index) else { return json }
            elements[index] = replacing(Array(path.dropFirst()), in: elements[index], with: replacement)
            return .array(elements)
        default:
            return json
        }
    }

    /// Values of every JSON kind except `value`'s, and except null: a null member is an absent
    /// one (as in Go's encoding/json, which the reference plugins use), so it is not invalid.
    static func otherKinds(than value: JSON, _ g: inout SeededGenerator) -> [JSON] {
        let all: [JSON] = [.string("x"), .number(JSONNumber(Int.random(in: -5...70000, using: &g))), .bool(true),
                           .array([.number(JSONNumber(1))]), .object(["a": .string("b")])]
        return all.filter { kind($0) != kind(value) }
    }

    static func kind(_ value: JSON) -> Int {
        switch value {
        case .string: 0
        case .number: 1
        case .bool: 2
        case .null: 3
        case .array: 4
        case .object: 5
        }
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Range<Int>? {
        guard needle.count <= haystack.count else { return nil }
        for start in 0...(haystack.count - needle.count) where haystack[start..<(start + needle.count)].elementsEqual(needle) {
            return start..<(start + needle.count)
        }
        return nil
    }
}
