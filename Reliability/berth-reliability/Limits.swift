#if canImport(Glibc)
import Glibc
#endif
import BerthJSON
import BerthTestSupport

/// Input a plugin must refuse without growing without bound or waiting forever: a config over
/// 1 MiB, a stdin that never ends (silent, or streaming 64 MiB).
enum InputLimits {
    struct Case {
        var name: String
        var stdin: [UInt8]
        var closeStdin: Bool
        /// The code Berth must answer with.
        var berthCode: Int
    }

    static func cases(_ subject: Subject, _ network: Subject.Network) -> [Case] {
        guard case .object(var object) = subject.bridgeConfig(network) else { return [] }
        object["padding"] = .string(String(repeating: "x", count: 3 << 19))
        let large = Array(JSON.object(object).serialized().utf8)
        let stream = Array(subject.bridgeConfig(network).serialized().utf8) + [UInt8](repeating: 0x20, count: 64 << 20)
        return [
            Case(name: "config of 1.5 MiB", stdin: large, closeStdin: true, berthCode: 100),
            Case(name: "stdin open, nothing sent", stdin: [], closeStdin: false, berthCode: 5),
            Case(name: "stdin open, 64 MiB sent", stdin: stream, closeStdin: false, berthCode: 100),
        ]
    }

    /// Each case through the bridge plugin as an ADD for a namespace that does not exist (so a
    /// plugin that reads the whole input changes nothing either): what it answered, how long it
    /// took, its peak memory. `bad` counts Berth answers that are not the expected CNI error.
    static func run(_ subject: Subject, network: Subject.Network) -> (lines: [String], hangs: Int, bad: Int) {
        var lines: [String] = [], hangs = 0, bad = 0
        for item in cases(subject, network) {
            let outcome = ProcessRunner.run(ProcessCall(executable: subject.bridgePlugin,
                                                      environment: subject.environment("ADD", id: "limits", netns: "/run/netns/never-made"),
                                                      stdin: item.stdin, closeStdin: item.closeStdin), capSeconds: 10)
            let error = CNIErrorShape(outcome.stdout)
            var answer: String
            if outcome.hung {
                answer = "hung, killed after 10 s"
                hangs += 1
            } else if let error {
                answer = "code \(error.code) in \(Int(outcome.milliseconds)) ms (\(error.msg.prefix(70)))"
            } else {
                answer = "\(outcome.termination), not a CNI error: \(outcome.text.prefix(70).debugDescription)"
            }
            answer += ", peak \(outcome.peakKilobytes / 1024) MiB"
            if subject.kind == .berth && (outcome.hung || error?.code != item.berthCode || error?.hasVersion != true
                                          || outcome.termination != .exited(1)) { bad += 1 }
            lines.append("\(pad(subject.name, 10)) \(pad(item.name, 26)) \(answer)")
        }
        return (lines, hangs, bad)
    }
}

/// A CNI error object exactly as the spec shapes it: an object with a string `cniVersion`, an
/// integer `code`, a string `msg` and optionally a string `details`, and nothing after it.
/// `hasVersion` false: everything but `cniVersion` (the reference leaves it out when it fails
/// before reading the config's version).
struct CNIErrorShape {
    let code: Int
    let msg: String
    let hasVersion: Bool

    init?(_ stdout: [UInt8]) {
        guard let json = try? JSON.parse(stdout), case .object(let object) = json,
              let code = object["code"]?.intValue, let msg = object["msg"]?.stringValue,
              object.keys.allSatisfy({ ["cniVersion", "code", "msg", "details"].contains($0) })
        else { return nil }
        if let details = object["details"], details.stringValue == nil { return nil }
        if let version = object["cniVersion"], version.stringValue == nil { return nil }
        self.code = code
        self.msg = msg
        hasVersion = object["cniVersion"] != nil
    }
}
