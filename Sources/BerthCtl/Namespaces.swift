#if canImport(Glibc)
import Glibc
#endif
import BerthAttachments
import BerthNetlink
import FoundationEssentials

/// The network namespaces of this machine as far as this process can see them: named ones
/// (`/run/netns/*`) and those of running processes (`/proc/<pid>/ns/net`), each once, however
/// many names and processes share it.
struct KnownNamespace: Sendable {
    let identity: NetworkNamespace.Identity
    var names: [String] = []
    var processes: [(pid: Int32, command: String)] = []

    /// A path that opens it: a name, else a process's namespace file.
    var path: String { names.first.map { "/run/netns/\($0)" } ?? processes.first.map { "/proc/\($0.pid)/ns/net" } ?? "" }

    static let namedDirectory = "/run/netns"

    static func all() -> [KnownNamespace] {
        var byIdentity: [NetworkNamespace.Identity: KnownNamespace] = [:]
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: namedDirectory)) ?? []).sorted()
        for name in names {
            guard let identity = try? NetworkNamespace.identity(ofPath: "\(namedDirectory)/\(name)"),
                  isNetworkNamespace("\(namedDirectory)/\(name)") else { continue }
            byIdentity[identity, default: KnownNamespace(identity: identity)].names.append(name)
        }
        for pid in processIDs() {
            guard let identity = try? NetworkNamespace.identity(ofPath: "/proc/\(pid)/ns/net") else { continue }
            byIdentity[identity, default: KnownNamespace(identity: identity)].processes.append((pid, command(of: pid)))
        }
        return byIdentity.values.sorted { $0.identity.inode < $1.identity.inode }
    }

    /// The namespace this process runs in.
    static func current() -> NetworkNamespace.Identity? { try? NetworkNamespace.processIdentity() }

    /// Whether `path` is a network namespace file (a bind mount of one), not a stray file.
    static func isNetworkNamespace(_ path: String) -> Bool {
        (try? NamespaceView.identity(ofNetns: path)) != nil
    }

    static func processIDs() -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }.sorted()
    }

    static func command(of pid: Int32) -> String {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/comm") else { return "?" }
        return String(String(decoding: data, as: UTF8.self).prefix { $0 != "\n" })
    }
}
