#if canImport(Glibc)
import Glibc
#endif
import BerthJSON
import BerthTestSupport
import Foundation

/// SIGKILL at a random moment of an ADD or a DEL; then an unfaulted DEL must leave the host as it
/// was, and the next ADD must succeed (and its container reach the gateway).
struct KillReport {
    var target: String
    var rounds = 0
    var killsDelivered = 0
    var leaks = 0
    var blocked = 0
    var failures: [String] = []

    var line: String {
        "\(pad(target, 34)) rounds \(pad(String(rounds), 5)) kills landed \(pad(String(killsDelivered), 5)) leaks \(pad(String(leaks), 4))"
            + " blocked \(pad(String(blocked), 3)) failures \(failures.count)"
    }
}

/// One kind of call to kill, and what "undone" and "working again" mean for it.
struct KillTarget {
    var label: String
    /// The call to kill, for container `id` in namespace `netns`; `command` is ADD or DEL.
    var call: (_ command: String, _ id: String, _ netns: String) -> ProcessCall
    /// Whether the retried ADD's container works (the gateway answers); nil: nothing to check.
    var works: ((_ netns: ScratchNamespace) -> Bool)?
    /// The netns the plugin is given: the container's own, or a fixed one (host mode, a join).
    var netnsFor: (ScratchNamespace) -> String = { $0.path }
}

enum KillRounds {
    /// `rounds` rounds alternating a killed ADD and a killed DEL, each followed by a DEL, a
    /// snapshot compared with `baseline`, and a fresh ADD + DEL.
    static func run(_ target: KillTarget, rounds: Int, directories: [String], scope: NamespaceScope,
                    generator: inout SeededGenerator) -> KillReport {
        var report = KillReport(target: target.label)
        // How long a call takes here: the kill lands uniformly within 1.2× that. The probe also
        // makes what a network keeps once used (its directories, lock files, bridge), so the
        // baseline after it holds exactly what every round must return to.
        var typical: [String: Double] = [:]
        if let probe = try? scope.make(loopbackUp: true) {
            let netns = target.netnsFor(probe)
            typical["ADD"] = ProcessRunner.run(target.call("ADD", "probe", netns)).milliseconds
            typical["DEL"] = ProcessRunner.run(target.call("DEL", "probe", netns)).milliseconds
        }
        // A leak is counted once: the round after it compares with the host as the leak left it.
        var baseline = HostSnapshot.take(directories: directories)
        func noteLeaks(_ when: String) {
            let snapshot = HostSnapshot.take(directories: directories)
            let differences = snapshot.differences(from: baseline)
            guard !differences.isEmpty else { return }
            report.leaks += 1
            report.failures.append("\(when): \(differences.joined(separator: "; "))")
            baseline = snapshot
        }
        for round in 0..<rounds {
            let command = round % 2 == 0 ? "ADD" : "DEL"
            let id = "kill\(round)"
            guard let container = try? scope.make(loopbackUp: true) else {
                report.failures.append("round \(round): no namespace")
                continue
            }
            let netns = target.netnsFor(container)
            report.rounds += 1
            if command == "DEL" {
                let added = ProcessRunner.run(target.call("ADD", id, netns))
                if !added.succeeded { report.failures.append("round \(round): ADD before the killed DEL: \(added.text.prefix(200))") }
            }
            let span = max(typical[command] ?? 5, 1) * 1.2
            let delay = Int(Double.random(in: 0...span, using: &generator) * 1000)
            let killed = ProcessRunner.run(target.call(command, id, netns), killAfterMicroseconds: delay)
            if killed.killedOnPurpose { report.killsDelivered += 1 }
            if killed.hung { report.failures.append("round \(round): \(command) hung") }

            let deleted = ProcessRunner.run(target.call("DEL", id, netns))
            if !deleted.succeeded { report.failures.append("round \(round): DEL after the kill: \(deleted.termination) \(deleted.text.prefix(200))") }
            noteLeaks("round \(round) (\(command) killed after \(delay) µs)")

            // The network must still work: a lock the killed call held is gone with it.
            let again = ProcessRunner.run(target.call("ADD", id + "b", netns))
            if again.hung {
                report.blocked += 1
            } else if !again.succeeded {
                report.failures.append("round \(round): the next ADD failed: \(again.text.prefix(200))")
            } else if let works = target.works, !works(container) {
                report.failures.append("round \(round): the next ADD's container does not reach its gateway")
            }
            let cleaned = ProcessRunner.run(target.call("DEL", id + "b", netns))
            if !cleaned.succeeded { report.failures.append("round \(round): DEL of the next ADD: \(cleaned.text.prefix(200))") }
            noteLeaks("round \(round): after the next ADD and DEL")
        }
        return report
    }
}
