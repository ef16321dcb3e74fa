import ArgumentParser
import BerthAttachments
import BerthFirewall
import BerthIP
import BerthJSON
import BerthNetlink
import FoundationEssentials

/// One thing `netctl doctor` looked at.
struct Finding: Sendable {
    enum Status: String, Sendable { case ok, warning, problem }

    var check: String
    var status: Status
    var message: String
    var fix = ""

    var json: JSON {
        var object: JSONObject = ["check": .string(check), "status": .string(status.rawValue), "message": .string(message)]
        if !fix.isEmpty { object["fix"] = .string(fix) }
        return .object(object)
    }

    var text: String {
        let label = switch status {
        case .ok: "[ok]     "
        case .warning: "[warning]"
        case .problem: "[problem]"
        }
        return "\(label) \(check): \(message)" + (fix.isEmpty ? "" : "\n          fix: \(fix)")
    }
}

extension Netctl {
    struct Doctor: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check this host for what Berth needs and for what would break its containers' traffic.",
            discussion: """
            Kernel features (nf_tables, bridge, veth, set-element destroy, tried in a throwaway \
            namespace), IP forwarding, br_netfilter, other firewall configuration that drops \
            forwarded traffic (a forward chain whose policy is drop, Docker's chains, legacy \
            iptables), and leaked objects (what netctl ps reports). Each finding says what to do. \
            The exit status is 1 when there is a problem.

            Examples:
              netctl doctor
              netctl doctor --json | jq '.[] | select(.status != "ok")'
            """)
        @OptionGroup var options: LocationOptions

        func run() throws {
            var findings: [Finding] = []
            try Output.reporting(json: options.json) {
                let inventory = try Inventory(paths: options.paths)
                let firewall = try? Firewall.current()
                findings = Self.kernelFeatures(firewall) + Self.forwarding(inventory) + Self.bridgeNetfilter()
                    + Self.foreignFirewall(firewall, bridges: inventory.bridges(firewall: firewall).sorted())
                let problems = inventory.problems(host: try? RouteNetlink.current(), firewall: firewall)
                findings += problems.isEmpty ? [Finding(check: "leaked objects", status: .ok, message: "none: records, links, leases and joins agree")]
                    : problems.map { Finding(check: "leaked objects", status: .problem, message: $0.message, fix: $0.fix) }
                options.json ? Output.print(.array(findings.map(\.json))) : Output.print(findings.map(\.text).joined(separator: "\n") + "\n")
            }
            if findings.contains(where: { $0.status == .problem }) { throw ExitCode(1) }
        }

        static func kernelFeatures(_ firewall: Firewall?) -> [Finding] {
            var findings: [Finding] = []
            if let firewall, let generation = try? firewall.generation() {
                findings.append(Finding(check: "nf_tables", status: .ok, message: "nftables answers over netlink (ruleset generation \(generation))"))
            } else {
                findings.append(Finding(check: "nf_tables", status: .problem, message: "nftables does not answer over netlink: berth-bridge cannot set up NAT, ports or isolation",
                                        fix: "load it (modprobe nf_tables) or use a kernel with CONFIG_NF_TABLES"))
            }
            // Links are tried in a namespace of their own, gone when its socket closes.
            do {
                let netlink = RouteNetlink(transport: try NetworkNamespace.run(in: .new) { try NetlinkSocket(.route) })
                do {
                    try netlink.bridgeAdd(name: "doctor0")
                    findings.append(Finding(check: "bridge", status: .ok, message: "bridges can be created"))
                } catch {
                    findings.append(Finding(check: "bridge", status: .problem, message: "a bridge cannot be created: \(error)", fix: "modprobe bridge"))
                }
                do {
                    try netlink.vethAdd(name: "doctor1", up: false, peer: .init(name: "doctor2", namespace: nil))
                    findings.append(Finding(check: "veth", status: .ok, message: "veth pairs can be created"))
                } catch {
                    findings.append(Finding(check: "veth", status: .problem, message: "a veth pair cannot be created: \(error)", fix: "modprobe veth"))
                }
            } catch {
                findings.append(Finding(check: "bridge, veth", status: .warning, message: "could not make a scratch namespace to try them in: \(error)",
                                        fix: "run netctl doctor as root"))
            }
            findings.append(Firewall.kernelHasDestroy
                ? Finding(check: "set-element destroy", status: .ok, message: "the kernel deletes missing elements without error (Linux ≥ 6.3)")
                : Finding(check: "set-element destroy", status: .warning, message: "the kernel predates DESTROY (Linux < 6.3): removals create each object first so deleting it cannot fail, a little slower",
                          fix: "nothing needed; a kernel ≥ 6.3 makes DEL cheaper"))
            return findings
        }

        static func forwarding(_ inventory: Inventory) -> [Finding] {
            var findings: [Finding] = []
            for (family, key, label) in [(IPFamily.v4, "net/ipv4/ip_forward", "ip_forward"), (.v6, "net/ipv6/conf/all/forwarding", "IPv6 forwarding")] {
                guard let value = try? Sysctl.get(key) else { continue }
                let users = Set(inventory.records.filter { $0.bridge?.ips.contains { $0.address.family == family } == true }.map(\.network)).sorted()
                if value == "1" {
                    findings.append(Finding(check: label, status: .ok, message: "on"))
                } else if !users.isEmpty {
                    findings.append(Finding(check: label, status: .problem,
                                            message: "off while networks \(users.joined(separator: ", ")) have containers: they cannot reach anything beyond the host",
                                            fix: "berth-bridge turns it on at ADD; something turned it off again: sysctl -w \(key.replacing("/", with: "."))=1, and find what resets it"))
                } else {
                    findings.append(Finding(check: label, status: .ok,
                                            message: "off, and no container has an address of this family; berth-bridge turns it on when one does"))
                }
            }
            return findings
        }

        static func bridgeNetfilter() -> [Finding] {
            guard let value = try? Sysctl.get("net/bridge/bridge-nf-call-iptables") else {
                return [Finding(check: "br_netfilter", status: .ok, message: "not loaded: traffic between containers of one bridge stays at layer 2, as Berth expects")]
            }
            guard value == "1" else {
                return [Finding(check: "br_netfilter", status: .ok, message: "loaded, with bridge-nf-call-iptables off")]
            }
            return [Finding(check: "br_netfilter", status: .warning,
                            message: "loaded with bridge-nf-call-iptables on: traffic between containers of one bridge also passes every IP forward chain, so a drop there cuts containers off from each other",
                            fix: "if containers of one network cannot reach each other, accept bridge-internal traffic in the dropping chain, or sysctl -w net.bridge.bridge-nf-call-iptables=0")]
        }

        static func foreignFirewall(_ firewall: Firewall?, bridges: [String]) -> [Finding] {
            guard let firewall, let chains = try? firewall.allChains() else { return [] }
            var findings: [Finding] = []
            let names = bridges.isEmpty ? ["berth0"] : bridges
            for case let base? in chains.map(\.base) where base.hook == .forward && base.policyDrops && !(base.family == "inet" && base.table == "berth") {
                findings.append(Finding(check: "forward policy", status: .problem,
                                        message: "chain \(base.chain) of table \(base.family) \(base.table) drops forwarded packets by default: Berth's containers cannot reach out or be reached, although Berth's own chain accepts them (every base chain on a hook must accept)",
                                        fix: names.map { "nft insert rule \(base.family) \(base.table) \(base.chain) iifname \"\($0)\" accept; nft insert rule \(base.family) \(base.table) \(base.chain) oifname \"\($0)\" ct state established,related accept" }.joined(separator: "; ")
                                            + " (with iptables: iptables -I \(base.chain) -i \(names[0]) -j ACCEPT)"))
            }
            let docker = Set(chains.filter { $0.chain.hasPrefix("DOCKER") || $0.table.lowercased().contains("docker") }.map { "\($0.family) \($0.table) \($0.chain)" })
            if !docker.isEmpty {
                findings.append(Finding(check: "Docker", status: .warning,
                                        message: "Docker's firewall is active (\(docker.sorted().prefix(3).joined(separator: ", "))): Docker sets the FORWARD policy to drop, which cuts Berth's containers off",
                                        fix: "let Berth's bridges through in DOCKER-USER: iptables -I DOCKER-USER -i \(names[0]) -j ACCEPT; iptables -I DOCKER-USER -o \(names[0]) -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"))
            }
            if let data = FileManager.default.contents(atPath: "/proc/net/ip_tables_names"), !data.isEmpty {
                let tables = String(decoding: data, as: UTF8.self).split(separator: "\n").joined(separator: ", ")
                findings.append(Finding(check: "legacy iptables", status: .warning,
                                        message: "legacy (x_tables) iptables tables are loaded (\(tables)): their chains are invisible to nftables, so a DROP policy there cannot be checked here",
                                        fix: "iptables-legacy -S FORWARD: a -P FORWARD DROP there needs an ACCEPT for \(names.joined(separator: ", "))"))
            }
            if findings.isEmpty {
                findings.append(Finding(check: "other firewalls", status: .ok, message: "no forward chain outside inet berth drops by default"))
            }
            return findings
        }
    }
}
