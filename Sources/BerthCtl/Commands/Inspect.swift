import ArgumentParser
import BerthAttachments
import BerthCNI
import BerthFirewall
import BerthIP
import BerthJSON
import BerthNetlink
import FoundationEssentials

extension Netctl {
    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Everything about one container: its interface, host veth and bridge, addresses, routes, ports and firewall entries.",
            discussion: """
            The argument is a container ID, a host veth name, or a network namespace path. The host \
            veth and the container's interface are matched the way the kernel links them: the \
            veth's peer index and the namespace ID (link-netnsid) the host gives the container's \
            namespace, so a veth without a record is still traced to its container.

            Examples:
              netctl inspect web-1
              netctl inspect veth3f9a01bc
              netctl inspect /run/netns/web-1 --json
            """)
        @Argument(help: "A container ID, a host veth, or a namespace path.")
        var target: String
        @OptionGroup var options: LocationOptions

        func run() throws {
            try Output.reporting(json: options.json) {
                let inventory = try Inventory(paths: options.paths)
                let host = try RouteNetlink.current()
                let hostLinks = try host.links()
                let views = try resolve(inventory, host: host, hostLinks: hostLinks)
                let firewall = try? Firewall.current()
                let reports = views.map { Report(view: $0, host: host, hostLinks: hostLinks, firewall: firewall, inventory: inventory) }
                options.json ? Output.print(.array(reports.map(\.json))) : Output.print(reports.map(\.text).joined(separator: "\n"))
            }
        }

        /// The attachments and namespaces the argument names.
        func resolve(_ inventory: Inventory, host: RouteNetlink, hostLinks: [Link]) throws(CtlError) -> [View] {
            if target.hasPrefix("/") {
                guard let identity = try? NetworkNamespace.identity(ofPath: target) else { throw CtlError("\(target) does not exist") }
                let records = inventory.records.filter { $0.namespaceIdentity == identity }
                return records.isEmpty ? [View(record: nil, netns: target)] : records.map { View(record: $0, netns: $0.netns) }
            }
            let byContainer = inventory.records.filter { $0.containerID == target }
            if !byContainer.isEmpty { return byContainer.map { View(record: $0, netns: $0.netns) } }
            if let record = inventory.records.first(where: { $0.bridge?.hostInterface == target }) {
                return [View(record: record, netns: record.netns)]
            }
            if let veth = hostLinks.first(where: { $0.name == target }) {
                guard let nsid = veth.peerNamespaceID, let namespace = KnownNamespace.all().first(where: { (try? host.namespaceID(of: $0.path)) == nsid }) else {
                    throw CtlError("\(target) is a host link without a record, and its peer's namespace is not one this host names")
                }
                return [View(record: nil, netns: namespace.path, hostVeth: target)]
            }
            throw CtlError("no attachment, host veth or namespace is called \(target.debugDescription) (records in \(options.paths.stateDirectory))")
        }
    }

    /// What to inspect: a record and its namespace, or a namespace (and a host veth) the kernel names.
    struct View {
        var record: AttachmentRecord?
        var netns: String
        var hostVeth: String?
    }

    /// One attachment as the kernel has it.
    struct Report {
        var lines: [String] = []
        var json: JSON = .null

        init(view: View, host: RouteNetlink, hostLinks: [Link], firewall: Firewall?, inventory: Inventory) {
            var object = JSONObject()
            let record = view.record
            if let record {
                lines.append("\(record.owner) on \(record.network) (\(record.mode.name)), netns \(record.netns)"
                             + (record.namespace.map { " (\($0))" } ?? ""))
                object["attachment"] = .object(["network": .string(record.network), "containerID": .string(record.containerID),
                                                "ifname": .string(record.ifname), "mode": .string(record.mode.name)])
                if let join = record.join { lines.append("joins \(join.containerID) (its \(join.ifname) on \(join.network))") }
                let joiners = inventory.joiners(of: record).map(\.containerID)
                if !joiners.isEmpty { lines.append("joined by \(joiners.joined(separator: ", "))") }
            } else {
                lines.append("namespace \(view.netns) (no Berth record)")
            }
            object["netns"] = .string(view.netns)

            // The container side, read inside its namespace.
            let inside = view.netns.isEmpty ? nil : try? RouteNetlink.open(in: .path(view.netns))
            let nsid = view.netns.isEmpty ? nil : (try? host.namespaceID(of: view.netns)) ?? nil
            let insideLinks = (try? inside?.links()) ?? []
            let insideAddresses = (try? inside?.addresses()) ?? []
            var hostVethName = view.hostVeth ?? record?.bridge?.hostInterface
            var interfaces: [JSON] = []
            let ifname = record?.ifname
            for link in insideLinks where !link.isLoopback && (ifname == nil || link.name == ifname || record?.mode.name != "bridge") {
                let addresses = insideAddresses.filter { $0.index == link.index }.map(\.prefix.description)
                lines.append("container interface: \(link.name) index \(link.index) mac \(link.mac?.description ?? "-") \(link.isUp ? "up" : "down"), addresses \(addresses.joined(separator: " "))")
                var entry: JSONObject = ["name": .string(link.name), "index": .int(Int(link.index)), "up": .bool(link.isUp),
                                         "addresses": .array(addresses.map(JSON.string))]
                if let mac = link.mac { entry["mac"] = .string(mac.description) }
                // Its peer on the host: the host link whose peer index is this link, in this namespace.
                if link.kind == "veth", let nsid, let peer = hostLinks.first(where: { $0.peerIndex == link.index && $0.peerNamespaceID == nsid }) {
                    entry["hostPeer"] = .string(peer.name)
                    if hostVethName == nil { hostVethName = peer.name }
                }
                interfaces.append(.object(entry))
            }
            if view.netns.isEmpty || inside == nil { lines.append("container interface: the namespace \(view.netns) is gone") }
            object["interfaces"] = .array(interfaces)

            // The host veth and its bridge, and whether the kernel links them to the container.
            if let name = hostVethName {
                if let veth = hostLinks.first(where: { $0.name == name }) {
                    let bridge = veth.master.flatMap { master in hostLinks.first { $0.index == master } }
                    let peer = insideLinks.first { $0.index == veth.peerIndex }
                    let matched = nsid != nil && veth.peerNamespaceID == nsid && peer != nil
                    lines.append("host veth: \(veth.name) index \(veth.index) mac \(veth.mac?.description ?? "-") \(veth.isUp ? "up" : "down"), bridge \(bridge?.name ?? "none")")
                    lines.append(matched
                        ? "  linked to \(peer!.name) (peer index \(veth.peerIndex!)) in link-netnsid \(nsid!) = \(view.netns)"
                        : "  its peer is index \(veth.peerIndex.map(String.init) ?? "?") in link-netnsid \(veth.peerNamespaceID.map(String.init) ?? "?"), not an interface of \(view.netns) (nsid \(nsid.map(String.init) ?? "none"))")
                    var entry: JSONObject = ["name": .string(veth.name), "index": .int(Int(veth.index)), "up": .bool(veth.isUp), "matched": .bool(matched)]
                    if let peerIndex = veth.peerIndex { entry["peerIndex"] = .int(Int(peerIndex)) }
                    if let peerNamespaceID = veth.peerNamespaceID { entry["linkNetnsid"] = .int(Int(peerNamespaceID)) }
                    if let bridge {
                        let addresses = ((try? host.addresses(index: bridge.index)) ?? []).map(\.prefix.description)
                        lines.append("bridge: \(bridge.name) index \(bridge.index) mac \(bridge.mac?.description ?? "-"), addresses \(addresses.joined(separator: " "))")
                        object["bridge"] = .object(["name": .string(bridge.name), "index": .int(Int(bridge.index)), "addresses": .array(addresses.map(JSON.string))])
                    }
                    object["hostVeth"] = .object(entry)
                } else {
                    lines.append("host veth: \(name) is gone")
                    object["hostVeth"] = .object(["name": .string(name), "gone": .bool(true)])
                }
            }

            // Routes in the container.
            var routes: [String] = []
            for family in [IPFamily.v4, .v6] {
                for route in (try? inside?.routes(family)) ?? [] where route.gateway != nil || family == .v4 {
                    let device = insideLinks.first { $0.index == route.outputInterface }?.name ?? "?"
                    routes.append("\(route.destination)" + (route.gateway.map { " via \($0)" } ?? "") + " dev \(device)")
                }
            }
            if !routes.isEmpty { lines.append("routes: " + routes.joined(separator: "; ")) }
            object["routes"] = .array(routes.map(JSON.string))

            // Published ports and the firewall entries that concern the attachment.
            if let record, !record.portTexts.isEmpty { lines.append("published ports: " + record.portTexts.joined(separator: ", ")) }
            object["ports"] = .array((record?.portTexts ?? []).map(JSON.string))
            var entries: [String] = []
            if let firewall, let record {
                let bridge = record.bridge?.bridge
                for map in FirewallLayout.maps {
                    for element in (try? firewall.elements(of: map)) ?? [] {
                        let concerns = element.comment == record.owner
                            || (bridge != nil && element.key.first == .interfaceName(bridge!))
                        if concerns { entries.append("element \(element.text) in \(map.name)") }
                    }
                }
                if let bridge {
                    let chains = Set((try? firewall.chainNames()) ?? [])
                    let network = FirewallNetwork(bridge: bridge, subnets: [])
                    entries += network.chainNames.filter(chains.contains).map { "chain \($0)" }
                }
            }
            if !entries.isEmpty { lines.append("nftables (inet berth):\n" + entries.map { "  " + $0 }.joined(separator: "\n")) }
            object["nftables"] = .array(entries.map(JSON.string))
            json = .object(object)
        }

        var text: String { lines.joined(separator: "\n") + "\n" }
    }
}
