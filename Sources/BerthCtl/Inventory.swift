#if canImport(Glibc)
import Glibc
#endif
import BerthAttachments
import BerthCNI
import BerthFirewall
import BerthIP
import BerthIPAM
import BerthJSON
import BerthNetlink
import FoundationEssentials

/// What Berth has on this host: its attachment records, and what the kernel, the lease stores
/// and the firewall say about them.
struct Inventory {
    let paths: CtlPaths
    let records: [AttachmentRecord]
    /// Record files that cannot be read or parsed.
    let damaged: [(path: String, problem: String)]
    let catalog: [NetworkCatalog.Entry]
    /// Networks with a directory in the state directory (with or without records).
    let networks: [String]

    init(paths: CtlPaths) throws(CtlError) {
        self.paths = paths
        let state = StateDirectory(paths.stateDirectory)
        do {
            (records, damaged) = try state.scan()
            networks = try state.networks()
        } catch {
            throw CtlError("cannot read the state directory \(paths.stateDirectory): \(error)")
        }
        catalog = NetworkCatalog(directory: paths.confDirectory).entries().entries
    }

    /// Joins of `record`'s container made in its namespace.
    func joiners(of record: AttachmentRecord) -> [AttachmentRecord] {
        guard record.join == nil else { return [] }
        return records.filter { $0.join?.containerID == record.containerID && ($0.namespace == nil || $0.namespace == record.namespaceIdentity) }
    }

    /// The attachment a join joined, while it exists.
    func target(of join: AttachmentRecord) -> AttachmentRecord? {
        guard let target = join.join else { return nil }
        return records.first { $0.join == nil && $0.containerID == target.containerID && $0.namespaceIdentity == join.namespace }
    }

    /// Where a network's leases live: its configuration's `ipam.dataDir`, else `--data-dir`.
    func leaseDirectory(network: String) -> String {
        if let entry = catalog.first(where: { $0.list.name == network }),
           case .object(let ipam)? = entry.list.plugins.first?["ipam"], case .string(let directory)? = ipam["dataDir"] {
            return directory
        }
        return paths.dataDirectory
    }

    /// How many range sets a network's IPAM has (its index has an entry per set); 1 without a
    /// configuration to tell.
    func rangeSetCount(network: String) -> Int {
        guard let entry = catalog.first(where: { $0.list.name == network }),
              case .object(let ipam)? = entry.list.plugins.first?["ipam"] else { return 1 }
        var count = 0
        if case .array(let ranges)? = ipam["ranges"] { count += ranges.count }
        if ipam["subnet"] != nil { count += 1 }
        return max(count, 1)
    }

    /// The leases of `network`; empty when it has no lease directory (nothing is created).
    func leases(network: String) throws(CtlError) -> [Lease] {
        let directory = leaseDirectory(network: network)
        guard FileManager.default.fileExists(atPath: directory + "/" + network) else { return [] }
        do {
            let store = try DiskLeaseStore(dataDirectory: directory, network: network)
            return try store.locked { try store.leases() }.sorted { $0.address < $1.address }
        } catch {
            throw CtlError("cannot read the leases of \(network) in \(directory): \(error)")
        }
    }

    /// The bridges Berth's networks use: those of bridge records and those the firewall has
    /// verdicts for.
    func bridges(firewall: Firewall?) -> Set<String> {
        var bridges = Set(records.compactMap { $0.bridge?.bridge })
        for element in (try? firewall?.elements(of: FirewallLayout.forwardInbound)) ?? [] {
            if case .interfaceName(let name)? = element.key.first { bridges.insert(name) }
        }
        return bridges
    }

    // MARK: Problems

    /// Leftovers and inconsistencies, each with what to do about it.
    func problems(host: RouteNetlink?, firewall: Firewall?) -> [Problem] {
        var problems = damaged.map {
            Problem(kind: "damaged-record", subject: $0.path, message: "record \($0.path) cannot be read: \($0.problem)",
                    fix: "look at what it held, then remove the file: DEL and GC cannot use it")
        }
        let links = (try? host?.links()) ?? []
        for record in records {
            let name = "\(record.owner) on \(record.network)"
            if !record.netns.isEmpty {
                let current = try? NetworkNamespace.identity(ofPath: record.netns)
                if current == nil || (record.namespace != nil && current != record.namespace) {
                    problems.append(Problem(kind: "netns-gone", subject: name,
                                            message: "the network namespace \(record.netns) of \(name) is gone" + (current == nil ? "" : " (the path now names another one)"),
                                            fix: "DEL the attachment (netctl del \(record.network) \(record.netns) --id \(record.containerID) --ifname \(record.ifname)), or GC the network"))
                }
            }
            if let details = record.bridge, host != nil, !links.contains(where: { $0.name == details.hostInterface }) {
                problems.append(Problem(kind: "link-gone", subject: name,
                                        message: "the host veth \(details.hostInterface) of \(name) is gone",
                                        fix: "DEL the attachment so its lease and ports are released, or GC the network"))
            }
            if record.join != nil, (try? StateDirectory(paths.stateDirectory).isOrphaned(record)) == true {
                problems.append(Problem(kind: "orphaned-join", subject: name,
                                        message: "\(name) joined container \(record.join!.containerID), which is no longer attached",
                                        fix: "DEL the joiner, or GC \(record.network) (netctl gc \(record.network))"))
            }
        }
        if host != nil {
            let bridgeIndices = Dictionary(links.filter { bridges(firewall: firewall).contains($0.name) }.map { ($0.index, $0.name) }, uniquingKeysWith: { a, _ in a })
            let recorded = Set(records.compactMap { $0.bridge?.hostInterface })
            for link in links where link.kind == "veth" && !recorded.contains(link.name) {
                guard let master = link.master, let bridge = bridgeIndices[master] else { continue }
                problems.append(Problem(kind: "stray-veth", subject: link.name,
                                        message: "veth \(link.name) is a port of Berth's bridge \(bridge) but no record names it",
                                        fix: "if no container uses it (netctl inspect \(link.name)), delete it: ip link del \(link.name)"))
            }
        }
        for network in networks {
            let attached = Set(records.filter { $0.network == network }.map(\.attachment))
            for lease in (try? leases(network: network)) ?? [] {
                let owner = Attachment(containerID: lease.containerID, ifname: lease.ifname ?? "")
                guard !attached.contains(owner) else { continue }
                problems.append(Problem(kind: "stray-lease", subject: "\(lease.address) on \(network)",
                                        message: "\(lease.address) is leased to \(lease.containerID)/\(lease.ifname ?? "?") on \(network), which has no record",
                                        fix: "release it: netctl ipam release \(network) \(lease.address)"))
            }
        }
        return problems
    }
}

/// Something wrong, and what to do about it.
struct Problem: Sendable {
    var kind: String
    var subject: String
    var message: String
    var fix: String

    var json: JSON {
        .object(["kind": .string(kind), "subject": .string(subject), "message": .string(message), "fix": .string(fix)])
    }
}

extension AttachmentRecord {
    /// `8080/tcp → 10.88.0.2:80` for bridge ports, `8080/tcp` for host ports.
    var portTexts: [String] {
        switch mode {
        case .bridge(let details): details.ports.map { "\($0.hostSide) → \($0.containerIP):\($0.containerPort)" }
        case .host(let details): details.ports.map(\.description)
        case .container: []
        }
    }
}
