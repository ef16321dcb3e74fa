#if canImport(Glibc)
import Glibc
#endif
import BerthJSON
import BerthTestSupport
import Foundation

/// What is run: Berth (berth-bridge with berth-ipam in process) or the reference (Debian's bridge
/// with host-local), each on its own networks, bridges and directories.
struct Subject {
    enum Kind { case berth, reference }

    let kind: Kind
    /// Where the plugins are: Berth's release build, or /usr/lib/cni.
    let binDirectory: String
    /// This subject's directory for leases and records.
    let scratch: String

    var name: String { kind == .berth ? "Berth" : "reference" }
    var bridgePlugin: String { binDirectory + (kind == .berth ? "/berth-bridge" : "/bridge") }
    var ipamPlugin: String { binDirectory + (kind == .berth ? "/berth-ipam" : "/host-local") }
    var cniPath: String { kind == .berth ? "\(binDirectory):/usr/lib/cni" : binDirectory }

    /// A bridge network: name, bridge and subnet; published ports only for Berth (the reference
    /// would need a chained portmap call, which the fault rounds do not model).
    struct Network {
        let name: String
        let bridge: String
        let subnet: String
        var gateway: String { subnet.split(separator: "/")[0].split(separator: ".").prefix(3).joined(separator: ".") + ".1" }
    }

    var stateDirectory: String { scratch + "/state" }
    var dataDirectory: String { scratch + "/leases" }

    func bridgeConfig(_ network: Network, version: String = "1.0.0", ports: [Int] = [], extra: JSONObject = [:]) -> JSON {
        let ranges: JSON = .array([.array([.object(["subnet": .string(network.subnet)])])])
        var object: JSONObject = ["cniVersion": .string(version), "name": .string(network.name), "bridge": .string(network.bridge),
                                  "ipMasq": .bool(true)]
        switch kind {
        case .berth:
            object["type"] = .string("berth-bridge")
            object["stateDir"] = .string(stateDirectory)
            object["ipam"] = .object(["type": .string("berth-ipam"), "dataDir": .string(dataDirectory), "ranges": ranges])
            if !ports.isEmpty {
                object["runtimeConfig"] = .object(["portMappings": .array(ports.map {
                    .object(["hostPort": .int($0), "containerPort": .int(80), "protocol": .string("tcp")])
                })])
            }
        case .reference:
            object["type"] = .string("bridge")
            object["isGateway"] = .bool(true)
            object["isDefaultGateway"] = .bool(true)  // Berth's default; the reference's is false
            object["ipam"] = .object(["type": .string("host-local"), "dataDir": .string(dataDirectory), "ranges": ranges])
        }
        for member in extra { object[member.key] = member.value }
        return .object(object)
    }

    func environment(_ command: String, id: String?, netns: String?, ifname: String? = "eth0") -> [String] {
        var environment = ["CNI_COMMAND=\(command)", "CNI_PATH=\(cniPath)", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
        if let id { environment.append("CNI_CONTAINERID=\(id)") }
        if let netns { environment.append("CNI_NETNS=\(netns)") }
        if let ifname, id != nil { environment.append("CNI_IFNAME=\(ifname)") }
        return environment
    }

    /// One call of the bridge plugin (no fault).
    @discardableResult
    func bridge(_ command: String, _ network: Network, id: String?, netns: String?, config: JSON? = nil) -> RunOutcome {
        ProcessRunner.run(ProcessCall(executable: bridgePlugin, environment: environment(command, id: id, netns: netns),
                                    stdin: Array((config ?? bridgeConfig(network)).serialized().utf8)))
    }
}

/// What a subject leaves on the host: links, files, nftables state and held locks. Two snapshots
/// that differ name a leak (or a change a refused call should not have made).
struct HostSnapshot: Equatable {
    var links: [String]
    var files: [String]
    var ruleset: [String]
    var heldLocks: [String]

    /// The host's links (but not `exceptLinks`), every file under `directories` (with symlink
    /// targets), the nftables ruleset without counters, and the lock files someone holds.
    static func take(directories: [String]) -> HostSnapshot {
        let links = ((try? JSON.parse(run("ip", "-j", "link", "show")))?.arrayValue ?? []).compactMap { $0["ifname"]?.stringValue }.sorted()
        var files: [String] = [], locks: [String] = []
        for directory in directories {
            guard let enumerator = FileManager.default.enumerator(atPath: directory) else { continue }
            while let relative = enumerator.nextObject() as? String {
                let path = directory + "/" + relative
                if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path) {
                    files.append("\(path) -> \(target)")
                } else {
                    files.append(path)
                }
                if relative.hasSuffix("lock") && isLockHeld(path) { locks.append(path) }
            }
        }
        let ruleset = ((try? run("nft", "list", "ruleset")) ?? "").split(separator: "\n").map {
            String($0).replacingOccurrences(of: #"counter packets \d+ bytes \d+"#, with: "counter", options: .regularExpression)
        }
        return HostSnapshot(links: links, files: files.sorted(), ruleset: ruleset, heldLocks: locks.sorted())
    }

    /// Whether another process holds `path` locked (flock or fcntl).
    static func isLockHeld(_ path: String) -> Bool {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 { return true }
        flock(fd, LOCK_UN)
        return false
    }

    /// What `self` has that `baseline` does not, and the reverse, in words.
    func differences(from baseline: HostSnapshot) -> [String] {
        var lines: [String] = []
        func compare(_ what: String, _ now: [String], _ before: [String]) {
            let added = Set(now).subtracting(before), removed = Set(before).subtracting(now)
            if !added.isEmpty { lines.append("\(what) left: \(added.sorted().prefix(5).joined(separator: ", "))") }
            if !removed.isEmpty { lines.append("\(what) gone: \(removed.sorted().prefix(5).joined(separator: ", "))") }
        }
        compare("link", links, baseline.links)
        compare("file", files, baseline.files)
        compare("nftables line", ruleset, baseline.ruleset)
        compare("held lock", heldLocks, baseline.heldLocks)
        return lines
    }
}
