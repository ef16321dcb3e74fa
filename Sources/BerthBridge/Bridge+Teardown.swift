#if canImport(Glibc)
import Glibc
#endif
import BerthCNI
import BerthFirewall
import BerthIP
import BerthIPAM
import BerthNetlink

extension Bridge {
    /// DEL: from the attachment record, so it works without the container's namespace, without
    /// prevResult and without runtimeConfig. Idempotent. Steps run in a fixed order and keep
    /// going after a failure; the first failure is reported with the rest in `details`.
    public static func del(_ request: CNIRequest) throws {
        let config = try BridgeConfig(request)
        let records = try RecordStore(stateDirectory: config.stateDirectory, network: config.network)
        let addresses = try AddressSource(request, type: config.ipamType)
        let record = try loadRecord(records, request.attachment)
        // Without a record the ADD never completed (its undo withdrew any ports): nothing to withdraw.
        let ports = record?.ports ?? []
        var failures: [CNIError] = []
        func step(_ body: () throws -> Void) {
            do { try body() } catch { failures.append(cniError(error)) }
        }
        // The veth: deleting the host end removes the container end wherever it is. Slow (the
        // kernel unregisters synchronously), so it happens outside the network's lock.
        step {
            if let record {
                try deleteLink(.named(record.hostInterface), in: try RouteNetlink.current())
            } else if !request.environment.netns.isEmpty, access(request.environment.netns, F_OK) == 0 {
                try deleteLink(.named(request.environment.ifname), in: try RouteNetlink.open(in: .path(request.environment.netns)))
            }
        }
        step { try addresses.release(request, attachment: request.attachment) }
        step {
            try records.locked {
                try teardownShared(record: record, ports: ports, owner: "\(request.environment.containerID)/\(request.environment.ifname)",
                                   config: config, records: records)
            }
        }
        if let first = failures.first {
            throw CNIError(first.code, first.msg, details: failures.dropFirst().map(\.description).joined(separator: "; "))
        }
    }

    static func loadRecord(_ records: RecordStore, _ attachment: Attachment) throws -> AttachmentRecord? {
        do {
            return try records.load(attachment)
        } catch {
            throw CNIError(.stateRecordFailed, "attachment record of \(attachment.containerID)/\(attachment.ifname): \(error)")
        }
    }

    static func deleteLink(_ link: LinkID, in netlink: RouteNetlink) throws {
        do {
            try netlink.linkDelete(link)
        } catch {
            guard error.isNotFound else { throw error }
        }
    }

    /// Under the network's lock: the attachment's port elements and record; then, if it was the
    /// network's last attachment, the network's firewall objects (the whole table after the last
    /// network) and, with `removeBridgeWhenEmpty`, the bridge.
    static func teardownShared(record: AttachmentRecord?, ports: [PortMapping], owner: String,
                               config: BridgeConfig, records: RecordStore) throws {
        let firewall = try Firewall.current()
        if !ports.isEmpty { try firewall.withdraw(ports, owner: owner) }
        if let record { try records.remove(record.attachment) }
        guard try records.count() == 0 else { return }
        let network = record?.firewallNetwork
            ?? FirewallNetwork(bridge: config.bridge, subnets: [], masquerade: config.ipMasq, interContainerCommunication: config.icc)
        let others = try firewall.elements(of: FirewallLayout.forwardInbound)
            .filter { $0.key != [.interfaceName(network.bridge)] }
        if try !firewall.chainNames().isEmpty {
            try firewall.remove(network, lastNetwork: others.isEmpty)
        }
        if config.removeBridgeWhenEmpty {
            let host = try RouteNetlink.current()
            if let bridge = try host.link(named: config.bridge), bridge.kind == "bridge",
               try !host.links().contains(where: { $0.master == bridge.index }) {
                try deleteLink(bridge.id, in: host)
            }
        }
    }
}
