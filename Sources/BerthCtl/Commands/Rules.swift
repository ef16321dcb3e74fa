import ArgumentParser
import BerthAttachments
import BerthFirewall
import BerthIP
import BerthJSON
import FoundationEssentials

extension Inventory {
    /// What the records want in the firewall: each bridge network (its subnets gathered from its
    /// records) and every published port with its owner; with `network`, that network only.
    func wantedFirewall(network: String? = nil) -> (networks: [FirewallNetwork], ruleset: NFTRuleset, scope: FirewallScope?) {
        var order: [String] = []
        var grouped: [String: [BridgeAttachment]] = [:]
        var ports: [(mapping: PortMapping, owner: String?)] = []
        for record in records.sorted(by: { ($0.network, $0.containerID) < ($1.network, $1.containerID) }) {
            guard let details = record.bridge, network == nil || record.network == network else { continue }
            if grouped[details.bridge] == nil { order.append(details.bridge) }
            grouped[details.bridge, default: []].append(details)
            ports += details.ports.map { ($0, record.owner) }
        }
        let networks = order.map { bridge -> FirewallNetwork in
            let members = grouped[bridge]!
            var subnets: [IPPrefix] = []
            for subnet in members.flatMap({ $0.ips.map(\.address.network) }) where !subnets.contains(subnet) { subnets.append(subnet) }
            return FirewallNetwork(bridge: bridge, subnets: subnets, masquerade: members[0].masquerade,
                                   interContainerCommunication: members[0].icc, unmasqueraded: members[0].unmasqueraded)
        }
        let scope = network.map { name in
            FirewallScope(bridges: Set(order), owners: Set(records.filter { $0.network == name }.map(\.owner)))
        }
        // No bridge network with attachments: Berth wants no table at all (its last DEL removes it).
        let ruleset = networks.isEmpty ? NFTRuleset() : FirewallLayout.ruleset(networks: networks, ports: ports)
        return (networks, ruleset, scope)
    }
}

extension Netctl {
    struct Rules: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compare the nftables objects Berth wants with what the kernel has; --repair makes them match.",
            discussion: """
            What Berth wants comes from its attachment records: the table inet berth, its maps and \
            static chains, each bridge network's chains and verdicts, and every published port. \
            Missing objects are marked +, objects nothing wants -, chains whose rules were edited ~. \
            --repair applies the difference in one transaction; other tables are never touched.

            Examples:
              netctl rules
              netctl rules --network berth
              netctl rules --repair
            """)
        @Option(help: "Only the objects of this network.")
        var network: String?
        @Flag(help: "Make the kernel's table match what Berth wants.")
        var repair = false
        @OptionGroup var options: LocationOptions

        func run() throws {
            try Output.reporting(json: options.json) {
                let inventory = try Inventory(paths: options.paths)
                if let network, !inventory.records.contains(where: { $0.network == network && $0.bridge != nil }) {
                    throw CtlError("network \(network) has no berth-bridge attachments in \(options.paths.stateDirectory): nothing of it belongs in nftables")
                }
                let wanted = inventory.wantedFirewall(network: network)
                let firewall: Firewall
                do { firewall = try Firewall.current() } catch { throw CtlError("nftables is not usable: \(error)") }
                func snapshot() throws(CtlError) -> FirewallSnapshot {
                    do { return try firewall.snapshot() } catch { throw CtlError("cannot read the table inet berth: \(error)") }
                }
                var differences = Firewall.differences(wanted: wanted.ruleset, kernel: try snapshot(), scope: wanted.scope)
                let found = differences
                if repair && !differences.isEmpty {
                    do {
                        try firewall.repair(toward: wanted.ruleset, networks: wanted.networks, scope: wanted.scope)
                    } catch {
                        throw CtlError("repair failed, nothing was changed: \(error)")
                    }
                    differences = Firewall.differences(wanted: wanted.ruleset, kernel: try snapshot(), scope: wanted.scope)
                }
                if options.json {
                    var object: JSONObject = ["wanted": .string(wanted.ruleset.text), "differences": .array(found.map { .string($0.description) })]
                    if repair { object["remaining"] = .array(differences.map { .string($0.description) }) }
                    return Output.print(.object(object))
                }
                var text = "Berth wants (from \(inventory.records.count) record(s)\(network.map { ", network \($0)" } ?? "")):\n"
                text += wanted.networks.isEmpty && network == nil ? "  no table: no bridge network has attachments\n" : wanted.ruleset.text
                text += "\nkernel compared with that: "
                text += found.isEmpty ? "identical\n" : "\(found.count) difference(s)\n" + found.map { "  \($0)" }.joined(separator: "\n") + "\n"
                if repair && !found.isEmpty {
                    text += differences.isEmpty ? "repaired: the kernel now has exactly what Berth wants\n"
                        : "after repair, still different:\n" + differences.map { "  \($0)" }.joined(separator: "\n") + "\n"
                } else if !found.isEmpty {
                    text += "run netctl rules --repair\(network.map { " --network \($0)" } ?? "") to apply the difference\n"
                }
                Output.print(text)
            }
        }
    }
}
