import BerthCNI
import BerthIP
import BerthJSON
import BerthTestSupport
import Foundation
import Testing

/// Processes a test starts in its namespaces (`sleep`), ended with it.
final class Sleepers: @unchecked Sendable {
    private var processes: [Process] = []

    deinit {
        for process in processes {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// `sleep` in `namespace` (nil: a new namespace of its own, unnamed); its PID.
    func start(in namespace: ScratchNamespace?) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: namespace == nil ? "/usr/bin/unshare" : "/usr/bin/nsenter")
        process.arguments = (namespace.map { ["--net=\($0.path)"] } ?? ["--net"]) + ["sleep", "60"]
        try process.run()
        processes.append(process)
        // Wait until it runs sleep in its namespace (exec after the namespace switch).
        for _ in 0..<2000 where (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/comm", encoding: .utf8)) != "sleep\n" {
            usleep(1000)
        }
        return process.processIdentifier
    }
}

@Suite(needsKernel)
struct InventoryCommandTests {
    let scope = NamespaceScope()
    let sleepers = Sleepers()

    @Test func nsListShowsANamespaceSharedByTwoProcessesOnce() throws {
        let lab = try PluginLab(scope)
        let shared = try lab.container()
        let first = try sleepers.start(in: shared), second = try sleepers.start(in: shared)
        let loner = try sleepers.start(in: nil)
        let inode = Int(try run("stat", "-L", "-c", "%i", shared.path).trimmingCharacters(in: .whitespacesAndNewlines))

        let list = try lab.netctlJSON(["ns", "list"]).arrayValue
        let rows = list.filter { $0["inode"]?.intValue == inode }
        try #require(rows.count == 1, "one row for the shared namespace")
        #expect(rows[0]["names"]?.arrayValue == [.string(shared.name)])
        let pids = Set(rows[0]["processes"]?.arrayValue.compactMap { $0["pid"]?.intValue } ?? [])
        #expect(pids.isSuperset(of: [Int(first), Int(second)]))
        #expect(rows[0]["interfaces"]?.arrayValue.map { $0["name"]?.stringValue } == ["lo"])
        // An unnamed namespace is found through its process.
        #expect(list.contains { row in row["names"]?.arrayValue.isEmpty == true && row["processes"]?.arrayValue.contains { $0["pid"]?.intValue == Int(loner) } == true })
        #expect(list.filter { $0["current"]?.boolValue == true }.count == 1)

        let text = try lab.netctl(["ns", "list"]).stdout
        let lines = text.split(separator: "\n").filter { $0.contains(shared.name) }
        #expect(lines.count == 1 && lines[0].contains("\(first) sleep") && lines[0].contains("\(second) sleep"), "\(text)")
    }

    @Test func psListsEveryModeWithItsJoiners() throws {
        let lab = try PluginLab(scope)
        let web = try lab.container()
        try lab.add("web", web, config: lab.config(extra: ["runtimeConfig": .object(["portMappings": .array([
            .object(["hostPort": .int(8080), "containerPort": .int(80), "protocol": .string("tcp")])])])]))
        let hostConfig = JSON.object(["cniVersion": .string("1.1.0"), "name": .string("hostnet"), "type": .string("berth-host"),
                                      "stateDir": .string(lab.stateDirectory)]).serialized()
        try lab.add("h", lab.host, config: hostConfig, executable: "berth-host")
        let join = JSON.object(["cniVersion": .string("1.1.0"), "name": .string("joined"), "type": .string("berth-container"),
                                "stateDir": .string(lab.stateDirectory), "container": .string("web")]).serialized()
        try lab.add("sidecar", web, config: join, executable: "berth-container")

        let ps = try lab.netctlJSON(["ps"])
        let attachments = ps["attachments"]?.arrayValue ?? []
        #expect(attachments.map { $0["containerID"]?.stringValue } == ["web", "h", "sidecar"])
        #expect(attachments.map { $0["mode"]?.stringValue } == ["bridge", "host", "container"])
        #expect(attachments[0]["addresses"]?.arrayValue == [.string("10.88.0.2/16")])
        #expect(attachments[0]["bridge"]?.stringValue == "berth0" && attachments[0]["hostVeth"]?.stringValue?.hasPrefix("veth") == true)
        #expect(attachments[0]["ports"]?.arrayValue == [.string("8080/tcp on 0.0.0.0 → 10.88.0.2:80")])
        #expect(attachments[0]["joinedBy"]?.arrayValue == [.string("sidecar")])
        #expect(attachments[2]["addresses"]?.arrayValue == [.string("10.88.0.2/16")], "a joiner shows its target's addresses")
        #expect(ps["problems"]?.arrayValue.isEmpty == true, "\(ps)")

        let text = try lab.netctl(["ps"]).stdout
        #expect(text.hasPrefix("NETWORK  CONTAINER  IFNAME  MODE"), "\(text)")
        #expect(text.contains("container:web") && text.hasSuffix("no problems found\n"), "\(text)")
    }

    @Test func psFindsAStrayVethALeaseWithoutARecordAGoneNamespaceAndAnOrphanedJoin() throws {
        let lab = try PluginLab(scope)
        let web = try lab.container(), gone = try lab.container(), cut = try lab.container()
        try lab.add("web", web, config: lab.config())
        try lab.add("gone", gone, config: lab.config())
        let cutVeth = try lab.add("cut", cut, config: lab.config()).interfaces[1].name
        let join = JSON.object(["cniVersion": .string("1.1.0"), "name": .string("joined"), "type": .string("berth-container"),
                                "stateDir": .string(lab.stateDirectory), "container": .string("gone")]).serialized()
        try lab.add("sidecar", gone, config: join, executable: "berth-container")
        // A veth on Berth's bridge nobody recorded, a lease nobody holds, a namespace deleted
        // under its attachment, and the join's target removed behind its back.
        try run("ip", "-n", lab.host.name, "link", "add", "vethstray0", "master", "berth0", "type", "veth", "peer", "name", "stray1")
        try "ghost\r\neth0".write(toFile: lab.dataDirectory + "/berth/10.88.0.99", atomically: true, encoding: .utf8)
        try run("ip", "netns", "del", gone.name)
        try run("ip", "-n", lab.host.name, "link", "del", cutVeth)
        try FileManager.default.removeItem(atPath: lab.stateDirectory + "/berth/gone:eth0.json")

        let problems = try lab.netctlJSON(["ps"])["problems"]?.arrayValue ?? []
        let kinds = problems.map { "\($0["kind"]?.stringValue ?? ""):\($0["subject"]?.stringValue ?? "")" }
        #expect(kinds.contains("stray-veth:vethstray0"), "\(kinds)")
        #expect(kinds.contains("stray-lease:10.88.0.99 on berth"), "\(kinds)")
        #expect(kinds.contains("stray-lease:10.88.0.3 on berth"), "the lease of the record removed by hand: \(kinds)")
        #expect(!kinds.contains { $0.hasPrefix("stray-lease:10.88.0.4") }, "cut still has its record: \(kinds)")
        #expect(kinds.contains("netns-gone:sidecar/eth0 on joined"), "\(kinds)")
        #expect(kinds.contains("link-gone:cut/eth0 on berth"), "\(kinds)")
        #expect(kinds.contains("orphaned-join:sidecar/eth0 on joined"), "\(kinds)")
        #expect(problems.allSatisfy { $0["fix"]?.stringValue?.isEmpty == false })
        let text = try lab.netctl(["ps"]).stdout
        #expect(text.contains("- veth vethstray0 is a port of Berth's bridge berth0 but no record names it\n  fix: "), "\(text)")
        #expect(text.contains("fix: release it: netctl ipam release berth 10.88.0.99"), "\(text)")
    }

    @Test func inspectFromAContainerIDAVethAndANamespacePath() throws {
        let lab = try PluginLab(scope)
        let web = try lab.container()
        let result = try lab.add("web", web, config: lab.config(extra: ["runtimeConfig": .object(["portMappings": .array([
            .object(["hostPort": .int(8080), "containerPort": .int(80), "protocol": .string("tcp")])])])]))
        let veth = result.interfaces[1].name
        var reports: [JSON] = []
        for target in ["web", veth, web.path] {
            let report = try lab.netctlJSON(["inspect", target]).arrayValue
            try #require(report.count == 1, "\(target)")
            reports.append(report[0])
        }
        #expect(reports.allSatisfy { $0 == reports[0] }, "every entry point finds the same attachment")
        let report = reports[0]
        #expect(report["attachment"]?["containerID"]?.stringValue == "web")
        #expect(report["interfaces"]?[0]?["name"]?.stringValue == "eth0")
        #expect(report["interfaces"]?[0]?["addresses"]?.arrayValue.contains(.string("10.88.0.2/16")) == true)
        #expect(report["interfaces"]?[0]?["hostPeer"]?.stringValue == veth)
        #expect(report["hostVeth"]?["name"]?.stringValue == veth && report["hostVeth"]?["matched"]?.boolValue == true)
        #expect(report["bridge"]?["name"]?.stringValue == "berth0")
        #expect(report["routes"]?.arrayValue.contains(.string("0.0.0.0/0 via 10.88.0.1 dev eth0")) == true)
        #expect(report["nftables"]?.arrayValue.contains(.string("element tcp . 8080 comment \"web/eth0\" : 10.88.0.2 . 80 in ports4_any")) == true)

        let text = try lab.netctl(["inspect", "web"]).stdout
        #expect(text.contains("host veth: \(veth) index") && text.contains("linked to eth0 (peer index"), "\(text)")
    }

    @Test func inspectTracesAVethWithoutARecordToItsNamespace() throws {
        let lab = try PluginLab(scope)
        try lab.add("web", try lab.container(), config: lab.config())
        let hidden = try lab.container()
        try run("ip", "-n", lab.host.name, "link", "add", "vethhand0", "master", "berth0", "up", "type", "veth", "peer", "name", "eth0", "netns", hidden.name)
        let report = try #require(try lab.netctlJSON(["inspect", "vethhand0"]).arrayValue.first)
        #expect(report["attachment"] == nil)
        #expect(report["netns"]?.stringValue == hidden.path)
        #expect(report["hostVeth"]?["matched"]?.boolValue == true)
        #expect(report["interfaces"]?[0]?["hostPeer"]?.stringValue == "vethhand0")
        let unknown = try lab.netctl(["inspect", "nothing-here"])
        #expect(unknown.status == 1 && unknown.stderr.hasPrefix("netctl: no attachment, host veth or namespace is called \"nothing-here\""), "\(unknown.stderr)")
    }

    @Test func ipamListsLeasesWithOwnersAndReleasesOne() throws {
        let lab = try PluginLab(scope)
        try lab.add("web", try lab.container(), config: lab.config())
        try "ghost\r\neth0".write(toFile: lab.dataDirectory + "/berth/10.88.0.99", atomically: true, encoding: .utf8)
        let leases = try lab.netctlJSON(["ipam", "ls"], ["berth"]).arrayValue
        #expect(leases.map { $0["address"]?.stringValue } == ["10.88.0.2", "10.88.0.99"])
        #expect(leases.map { $0["containerID"]?.stringValue } == ["web", "ghost"])
        #expect(leases.map { $0["record"]?.boolValue } == [true, false])
        let text = try lab.netctl(["ipam", "ls"]).stdout
        #expect(text.contains("berth    10.88.0.99  ghost      eth0    no"), "\(text)")

        let release = try lab.netctl(["ipam", "release"], ["berth", "10.88.0.99"])
        #expect(release.status == 0 && release.stdout == "released 10.88.0.99 on berth (it was ghost/eth0's)\n", "\(release.stdout)\(release.stderr)")
        #expect(lab.leases() == ["10.88.0.2"])
        try "ghost\r\neth1".write(toFile: lab.dataDirectory + "/berth/10.88.0.98", atomically: true, encoding: .utf8)
        let json = try lab.netctlJSON(["ipam", "release"], ["berth", "10.88.0.98"])
        #expect(json["released"]?.stringValue == "10.88.0.98" && json["containerID"]?.stringValue == "ghost")
        let again = try lab.netctl(["ipam", "release"], ["berth", "10.88.0.99"])
        #expect(again.status == 1 && again.stderr.contains("10.88.0.99 is not leased on berth"), "\(again.stderr)")
    }
}
