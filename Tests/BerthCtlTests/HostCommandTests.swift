import BerthCNI
import BerthJSON
import BerthTestSupport
import Foundation
import Testing

/// netctl rules, doctor and run against the lab's host namespace.
@Suite(needsKernel)
struct HostCommandTests {
    let scope = NamespaceScope()

    func labWithAPublishedPort() throws -> PluginLab {
        let lab = try PluginLab(scope)
        try lab.add("web", try lab.container(), config: lab.config(extra: ["runtimeConfig": .object(["portMappings": .array([
            .object(["hostPort": .int(8080), "containerPort": .int(80), "protocol": .string("tcp")])])])]))
        return lab
    }

    @Test func rulesShowTheDifferenceAfterHandEditsAndRepairRemovesIt() throws {
        let lab = try labWithAPublishedPort()
        let clean = try lab.netctlJSON(["rules"])
        #expect(clean["differences"]?.arrayValue.isEmpty == true, "\(clean)")
        #expect(clean["wanted"]?.stringValue?.contains("chain in_berth0 {") == true)

        try lab.host.nft("delete", "element", "inet", "berth", "ports4_any", "{ tcp . 8080 }")
        try lab.host.nft("add", "element", "inet", "berth", "ports4_any", "{ tcp . 9999 : 10.88.0.50 . 80 }")
        try lab.host.nft("flush", "chain", "inet", "berth", "in_berth0")
        let text = try lab.netctl(["rules"]).stdout
        #expect(text.contains("kernel compared with that: 3 difference(s)"), "\(text)")
        #expect(text.contains("  + element tcp . 8080 comment \"web/eth0\" : 10.88.0.2 . 80 in ports4_any"), "\(text)")
        #expect(text.contains("  - element tcp . 9999 : 10.88.0.50 . 80 in ports4_any"), "\(text)")
        #expect(text.contains("  ~ chain in_berth0 (its rules differ)"), "\(text)")
        #expect(text.contains("run netctl rules --repair"), "\(text)")

        let repaired = try lab.netctlJSON(["rules"], ["--repair"])
        #expect(repaired["differences"]?.arrayValue.count == 3 && repaired["remaining"]?.arrayValue.isEmpty == true, "\(repaired)")
        let table = lab.table()
        #expect(table.contains("tcp . 8080 comment \"web/eth0\" : 10.88.0.2 . 80") && !table.contains("9999"), "\(table)")
        #expect(table.contains("ct status dnat accept"), "in_berth0 has its rules again")
        #expect(try lab.netctlJSON(["rules"])["differences"]?.arrayValue.isEmpty == true)
    }

    @Test func rulesForOneNetworkLeaveTheOthersAlone() throws {
        let lab = try labWithAPublishedPort()
        try lab.add("db", try lab.container(), config: lab.config(name: "other", bridge: "berth1", subnets: ["10.89.0.0/16"]))
        try lab.host.nft("flush", "chain", "inet", "berth", "in_berth1")
        try lab.host.nft("delete", "element", "inet", "berth", "ports4_any", "{ tcp . 8080 }")
        let berth = try lab.netctlJSON(["rules"], ["--network", "berth", "--repair"])
        #expect(berth["differences"]?.arrayValue.map(\.stringValue) == ["+ element tcp . 8080 comment \"web/eth0\" : 10.88.0.2 . 80 in ports4_any"], "\(berth)")
        #expect(try lab.netctlJSON(["rules"], ["--network", "other"])["differences"]?.arrayValue.map(\.stringValue) == ["~ chain in_berth1 (its rules differ)"])
        let unknown = try lab.netctl(["rules"], ["--network", "nope"])
        #expect(unknown.status == 1 && unknown.stderr.contains("network nope has no berth-bridge attachments"), "\(unknown.stderr)")
    }

    /// A network's noMasquerade set, from its records: reported when edited, repaired.
    @Test func rulesKnowTheNoMasqueradeSet() throws {
        let lab = try PluginLab(scope)
        try lab.add("pod", try lab.container(), config: lab.config(extra: ["noMasquerade": .array([.string("10.244.0.0/16")])]))
        let clean = try lab.netctlJSON(["rules"])
        #expect(clean["differences"]?.arrayValue.isEmpty == true, "\(clean)")
        #expect(clean["wanted"]?.stringValue?.contains("set nomasq4_berth0 {") == true)
        try lab.host.nft("flush", "set", "inet", "berth", "nomasq4_berth0")
        let repaired = try lab.netctlJSON(["rules"], ["--repair"])
        #expect(repaired["differences"]?.arrayValue.map(\.stringValue) == ["~ set nomasq4_berth0 (its addresses differ)"], "\(repaired)")
        #expect(try lab.host.nft("list", "set", "inet", "berth", "nomasq4_berth0").contains("10.244.0.0/16"))
        #expect(try lab.netctlJSON(["rules"])["differences"]?.arrayValue.isEmpty == true)
    }

    @Test func rulesWithoutAttachmentsWantNoTable() throws {
        let lab = try PluginLab(scope)
        #expect(try lab.netctlJSON(["rules"])["differences"]?.arrayValue.isEmpty == true)
        try lab.host.nft("add", "table", "inet", "berth")
        try lab.host.nft("add", "chain", "inet", "berth", "in_gone0")
        let leftover = try lab.netctlJSON(["rules"], ["--repair"])
        #expect(leftover["differences"]?.arrayValue.map(\.stringValue) == ["- chain in_gone0"], "\(leftover)")
        #expect(lab.table().isEmpty, "the leftover table went")
    }

    @Test func doctorFindsAMissingIPForwardAndAForwardDropPolicy() throws {
        let lab = try labWithAPublishedPort()
        let healthy = try lab.netctlJSON(["doctor"]).arrayValue
        let status = Dictionary(healthy.map { ($0["check"]?.stringValue ?? "", $0["status"]?.stringValue ?? "") }, uniquingKeysWith: { $1 })
        #expect(status["nf_tables"] == "ok" && status["bridge"] == "ok" && status["veth"] == "ok" && status["ip_forward"] == "ok", "\(healthy)")
        #expect(status["leaked objects"] == "ok" && status["other firewalls"] == "ok", "\(healthy)")

        // What a host firewall or Docker leaves behind: iptables (the nf_tables backend, Debian's
        // default) with a FORWARD policy of DROP and Docker's user chain.
        try lab.host.exec("sysctl", "-qw", "net.ipv4.ip_forward=0")
        try lab.host.exec("iptables", "-P", "FORWARD", "DROP")
        try lab.host.exec("iptables", "-N", "DOCKER-USER")
        let sick = try lab.netctl(["doctor"], ["--json"])
        #expect(sick.status == 1, "a problem makes the exit status 1")
        let findings = try JSON.parse(sick.stdout).arrayValue
        let forwarding = findings.first { $0["check"]?.stringValue == "ip_forward" }
        #expect(forwarding?["status"]?.stringValue == "problem")
        #expect(forwarding?["message"]?.stringValue?.contains("networks berth have containers") == true, "\(String(describing: forwarding))")
        #expect(forwarding?["fix"]?.stringValue?.contains("sysctl -w net.ipv4.ip_forward=1") == true)
        let policy = findings.first { $0["check"]?.stringValue == "forward policy" }
        #expect(policy?["status"]?.stringValue == "problem")
        #expect(policy?["message"]?.stringValue?.hasPrefix("chain FORWARD of table ip filter drops forwarded packets by default") == true, "\(String(describing: policy))")
        #expect(policy?["fix"]?.stringValue?.contains("iifname \"berth0\" accept") == true)
        let docker = findings.first { $0["check"]?.stringValue == "Docker" }
        #expect(docker?["status"]?.stringValue == "warning" && docker?["fix"]?.stringValue?.contains("DOCKER-USER -i berth0") == true, "\(String(describing: docker))")

        let text = try lab.netctl(["doctor"]).stdout
        #expect(text.contains("[problem] ip_forward: off while networks berth have containers"), "\(text)")
        #expect(text.contains("          fix: "), "\(text)")
    }

    @Test func runReturnsTheCommandsStatusAndLeavesNothing() throws {
        let lab = try PluginLab(scope)
        try lab.writeConflist()
        let namespacesBefore = try FileManager.default.contentsOfDirectory(atPath: "/run/netns").filter { $0.hasPrefix("netctl-run-") }

        let outcome = try lab.netctl(["run"], ["--network", "berth", "--", "sh", "-c", "ip -br addr show eth0 && ping -c 1 -W 1 10.88.0.1 >/dev/null; exit 7"])
        #expect(outcome.status == 7, "\(outcome.stdout)\(outcome.stderr)")
        #expect(outcome.stdout.contains("10.88.0.2/16"), "the command ran inside the attached namespace: \(outcome.stdout)")
        #expect(outcome.stderr.contains("on berth: 10.88.0.2/16 in /run/netns/netctl-run-"), "\(outcome.stderr)")
        let pinged = try lab.netctl(["run"], ["--network", "berth", "--", "ping", "-c", "1", "-W", "1", "10.88.0.1"])
        #expect(pinged.status == 0, "\(pinged.stderr)")
        #expect(try lab.netctl(["run"], ["--network", "berth", "--", "sh", "-c", "kill -TERM $$"]).status == 128 + SIGTERM)
        let missing = try lab.netctl(["run"], ["--network", "berth", "--", "/nonexistent/command"])
        #expect(missing.status == 127 && missing.stderr.contains("cannot run /nonexistent/command"), "\(missing.stderr)")

        #expect(lab.records().isEmpty && lab.leases().isEmpty)
        #expect(try lab.hostVeths().isEmpty)
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: lab.cacheDirectory + "/results")) ?? []).isEmpty)
        let namespacesAfter = try FileManager.default.contentsOfDirectory(atPath: "/run/netns").filter { $0.hasPrefix("netctl-run-") }
        #expect(Set(namespacesAfter).isSubset(of: Set(namespacesBefore)), "every throwaway namespace is gone")
        let noCommand = try lab.netctl(["run"], ["--network", "berth"])
        #expect(noCommand.status != 0 && noCommand.stderr.contains("give the command to run after --"), "\(noCommand.stderr)")
    }
}
