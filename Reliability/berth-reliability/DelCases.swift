#if canImport(Glibc)
import Glibc
#endif
import BerthJSON
import BerthTestSupport

/// DEL where runtimes are sloppy: after the namespace is gone, twice, and for an ID never added.
/// Each must exit 0 and leave the host as before.
enum DelCases {
    static func run(_ subject: Subject, network: Subject.Network, scope: NamespaceScope) -> [String: (passed: Bool, detail: String)] {
        let directories = [subject.scratch]
        var outcomes: [String: (Bool, String)] = [:]
        func verdict(_ name: String, _ calls: [RunOutcome], _ baseline: HostSnapshot) {
            let failed = calls.first { !$0.succeeded || !$0.stdout.isEmpty && $0.stdout != Array("\n".utf8) }
            let differences = HostSnapshot.take(directories: directories).differences(from: baseline)
            let detail = failed.map { "DEL: \($0.termination) \($0.text.prefix(160))" } ?? differences.joined(separator: "; ")
            outcomes[name] = (failed == nil && differences.isEmpty, detail)
        }

        // The namespace deleted before DEL (the kernel removes the pair with it).
        if let gone = try? ScratchNamespace(loopbackUp: true) {
            let path = gone.path
            let baseline = HostSnapshot.take(directories: directories)
            _ = subject.bridge("ADD", network, id: "del-gone", netns: path)
            _ = try? BerthTestSupport.run("ip", "netns", "del", gone.name)
            verdict("DEL after the netns is gone", [subject.bridge("DEL", network, id: "del-gone", netns: path)], baseline)
        }
        if let container = try? scope.make(loopbackUp: true) {
            let baseline = HostSnapshot.take(directories: directories)
            _ = subject.bridge("ADD", network, id: "del-twice", netns: container.path)
            let first = subject.bridge("DEL", network, id: "del-twice", netns: container.path)
            let second = subject.bridge("DEL", network, id: "del-twice", netns: container.path)
            verdict("DEL twice", [first, second], baseline)

            let before = HostSnapshot.take(directories: directories)
            verdict("DEL of an ID never added", [subject.bridge("DEL", network, id: "never-added", netns: container.path)], before)
        }
        return outcomes
    }
}
