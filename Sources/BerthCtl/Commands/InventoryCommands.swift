import ArgumentParser
import BerthAttachments
import BerthCNI
import BerthFirewall
import BerthIP
import BerthIPAM
import BerthJSON
import BerthNetlink
import FoundationEssentials

extension Netctl {
    struct Namespaces: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ns",
            abstract: "Network namespaces.",
            subcommands: [List.self],
            defaultSubcommand: List.self)

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "List every network namespace: named ones and those of running processes, each once.",
                discussion: """
                A namespace shared by several processes (a pod, a container and its sidecar) is one \
                row listing them all. Interfaces are read inside each namespace.

                Examples:
                  netctl ns list
                  netctl ns list --json | jq '.[] | select(.names | length > 0)'
                """)
            @OptionGroup var options: LocationOptions

            func run() throws {
                try Output.reporting(json: options.json) {
                    let current = KnownNamespace.current()
                    var rows: [JSON] = []
                    var table = Table("inode", "names", "processes", "interfaces")
                    for namespace in KnownNamespace.all() {
                        let links = (try? RouteNetlink.open(in: .path(namespace.path)))
                        let interfaces = ((try? links?.links()) ?? []).sorted { $0.index < $1.index }
                        let addresses = (try? links?.addresses()) ?? []
                        let isCurrent = namespace.identity == current
                        rows.append(.object([
                            "inode": .int(Int(namespace.identity.inode)), "device": .int(Int(namespace.identity.device)),
                            "current": .bool(isCurrent),
                            "names": .array(namespace.names.map(JSON.string)),
                            "processes": .array(namespace.processes.map { .object(["pid": .int(Int($0.pid)), "command": .string($0.command)]) }),
                            "interfaces": .array(interfaces.map { link in
                                .object(["name": .string(link.name), "kind": link.kind.map(JSON.string) ?? .null, "up": .bool(link.isUp),
                                         "addresses": .array(addresses.filter { $0.index == link.index }.map { .string($0.prefix.description) })])
                            }),
                        ]))
                        let processes = namespace.processes.prefix(4).map { "\($0.pid) \($0.command)" }
                            + (namespace.processes.count > 4 ? ["+\(namespace.processes.count - 4) more"] : [])
                        table.add(String(namespace.identity.inode) + (isCurrent ? " (this)" : ""),
                                  namespace.names.isEmpty ? "-" : namespace.names.joined(separator: ","),
                                  processes.isEmpty ? "-" : processes.joined(separator: ", "),
                                  interfaces.map { $0.name + ($0.isUp ? "" : "(down)") }.joined(separator: " "))
                    }
                    options.json ? Output.print(.array(rows)) : Output.print(table.text)
                }
            }
        }
    }

    struct Ps: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List Berth's attachments and what is wrong with them.",
            discussion: """
            Every attachment record (bridge, host and container modes) with its namespace, \
            addresses, host veth, bridge, published ports and the containers that joined it; then \
            the problems: records whose namespace or host veth is gone, veths on Berth's bridges \
            without a record, leases without a record, joins whose target is gone, damaged records. \
            Each problem says what to do.

            Examples:
              netctl ps
              netctl ps --json | jq '.problems'
            """)
        @OptionGroup var options: LocationOptions

        func run() throws {
            try Output.reporting(json: options.json) {
                let inventory = try Inventory(paths: options.paths)
                let host = try? RouteNetlink.current()
                let problems = inventory.problems(host: host, firewall: try? Firewall.current())
                let records = inventory.records.sorted { ($0.network, $0.containerID, $0.ifname) < ($1.network, $1.containerID, $1.ifname) }
                if options.json {
                    return Output.print(.object(["attachments": .array(records.map { attachmentJSON($0, inventory) }),
                                                 "problems": .array(problems.map(\.json))]))
                }
                var table = Table("network", "container", "ifname", "mode", "netns", "addresses", "host veth", "bridge", "ports", "joined by")
                for record in records {
                    let addresses = addressTexts(record, inventory)
                    table.add(record.network, record.containerID, record.ifname,
                              record.join.map { "container:\($0.containerID)" } ?? record.mode.name, record.netns,
                              addresses.isEmpty ? "-" : addresses.joined(separator: ","),
                              record.bridge?.hostInterface ?? "-", record.bridge?.bridge ?? "-",
                              record.portTexts.isEmpty ? "-" : record.portTexts.joined(separator: ", "),
                              inventory.joiners(of: record).map(\.containerID).joined(separator: ",").nonEmpty ?? "-")
                }
                var text = table.text
                if problems.isEmpty {
                    text += "\nno problems found\n"
                } else {
                    text += "\n\(problems.count) problem(s):\n" + problems.map { "- \($0.message)\n  fix: \($0.fix)" }.joined(separator: "\n") + "\n"
                }
                Output.print(text)
            }
        }

        func addressTexts(_ record: AttachmentRecord, _ inventory: Inventory) -> [String] {
            switch record.mode {
            case .bridge(let details): details.ips.map(\.address.description)
            case .host: ["(host's)"]
            case .container: inventory.target(of: record)?.bridge?.ips.map(\.address.description) ?? (inventory.target(of: record) != nil ? ["(host's)"] : [])
            }
        }

        func attachmentJSON(_ record: AttachmentRecord, _ inventory: Inventory) -> JSON {
            var object: JSONObject = [
                "network": .string(record.network), "containerID": .string(record.containerID), "ifname": .string(record.ifname),
                "mode": .string(record.mode.name), "netns": .string(record.netns),
                "addresses": .array(addressTexts(record, inventory).map(JSON.string)),
                "ports": .array(record.portTexts.map(JSON.string)),
                "joinedBy": .array(inventory.joiners(of: record).map { .string($0.containerID) }),
            ]
            if let namespace = record.namespace { object["netnsInode"] = .int(Int(namespace.inode)) }
            if let details = record.bridge {
                object["hostVeth"] = .string(details.hostInterface)
                object["bridge"] = .string(details.bridge)
            }
            if let join = record.join { object["joins"] = .object(["containerID": .string(join.containerID), "network": .string(join.network)]) }
            return .object(object)
        }
    }

    struct IPAM: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ipam",
            abstract: "Leases of berth-ipam and host-local stores.",
            subcommands: [List.self, Release.self])

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "ls",
                abstract: "List leases with their owners, and whether Berth has a record of the owner.",
                discussion: """
                A network's lease directory is its configuration's ipam.dataDir, else --data-dir. \
                Without a network, every network of the state directory and the configurations.

                Examples:
                  netctl ipam ls
                  netctl ipam ls berth --json
                """)
            @Argument(help: "Only this network.")
            var network: String?
            @OptionGroup var options: LocationOptions

            func run() throws {
                try Output.reporting(json: options.json) {
                    let inventory = try Inventory(paths: options.paths)
                    let networks = network.map { [$0] } ?? Array(Set(inventory.networks + inventory.catalog.map(\.list.name))).sorted()
                    var rows: [JSON] = []
                    var table = Table("network", "address", "container", "ifname", "record")
                    for name in networks {
                        let recorded = Set(inventory.records.filter { $0.network == name }.map(\.attachment))
                        for lease in try inventory.leases(network: name) {
                            let hasRecord = recorded.contains(Attachment(containerID: lease.containerID, ifname: lease.ifname ?? ""))
                            rows.append(.object(["network": .string(name), "address": .string(lease.address.description),
                                                 "containerID": .string(lease.containerID), "ifname": lease.ifname.map(JSON.string) ?? .null,
                                                 "record": .bool(hasRecord), "directory": .string(inventory.leaseDirectory(network: name))]))
                            table.add(name, lease.address.description, lease.containerID, lease.ifname ?? "-", hasRecord ? "yes" : "no")
                        }
                    }
                    options.json ? Output.print(.array(rows)) : Output.print(table.text)
                }
            }
        }

        struct Release: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Release one lease, under the store's lock.",
                discussion: """
                For a lease whose container is gone (netctl ps lists it as a stray lease). The \
                address becomes free for the next ADD.

                Examples:
                  netctl ipam release berth 10.88.0.7
                """)
            @Argument(help: "The network.")
            var network: String
            @Argument(help: "The leased address.")
            var address: String
            @OptionGroup var options: LocationOptions

            func run() throws {
                try Output.reporting(json: options.json) {
                    guard let ip = IPAddress(address) else { throw CtlError("\(address.debugDescription) is not an IP address") }
                    guard CNIEnvironment.isValidIdentifier(network) else { throw CtlError("\(network.debugDescription) is not a network name") }
                    let inventory = try Inventory(paths: options.paths)
                    let directory = inventory.leaseDirectory(network: network)
                    guard FileManager.default.fileExists(atPath: directory + "/" + network) else {
                        throw CtlError("network \(network) has no leases in \(directory)")
                    }
                    let released: Lease
                    do {
                        let store = try DiskLeaseStore(dataDirectory: directory, network: network)
                        released = try store.locked { () throws -> Lease in
                            guard let lease = try store.leases().first(where: { $0.address == ip }) else {
                                throw CtlError("\(ip) is not leased on \(network) (\(directory)/\(network))")
                            }
                            try store.remove(lease, sets: inventory.rangeSetCount(network: network))
                            return lease
                        }
                    } catch let error as CtlError {
                        throw error
                    } catch {
                        throw CtlError("cannot release \(ip) on \(network): \(error)")
                    }
                    if options.json {
                        return Output.print(.object(["released": .string(ip.description), "containerID": .string(released.containerID)]))
                    }
                    Output.print("released \(ip) on \(network) (it was \(released.containerID)/\(released.ifname ?? "?")'s)\n")
                }
            }
        }
    }
}

extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}
