#if canImport(Glibc)
import Glibc
#endif
import BerthAttachments
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
        let records = try RecordStore.open(stateDirectory: config.stateDirectory, network: config.network)
        let addresses = try AddressSource(request, type: config.ipamType)
        let record = try bridgeRecord(records, request.attachment)
        var failures = FailureList()
        Trace.step("record read")
        let owner = "\(request.environment.containerID)/\(request.environment.ifname)"
        // Published ports first, on a socket kept open until the end. Removing elements leaves
        // the kernel a clean-up that waits for an RCU grace period, and closing an nftables socket
        // waits for any such clean-up still pending (nft_rcv_nl_event): withdrawn before the veth,
        // the clean-up runs while the kernel unregisters the veth, and nobody waits for it twice.
        // Without a record the ADD never completed (its undo withdrew any ports): nothing to withdraw.
        var firewall: Firewall?
        if let ports = record?.details.ports, !ports.isEmpty {
            failures.step {
                let opened = try Firewall.current()
                firewall = opened
                try records.locked { try opened.withdraw(ports, owner: owner) }
            }
            Trace.step("ports withdrawn")
        }
        // The veth: deleting the host end removes the container end wherever it is. Slow (the
        // kernel unregisters synchronously), so it happens outside the network's lock.
        failures.step {
            if let record {
                try deleteLink(.named(record.details.hostInterface), in: try RouteNetlink.current())
            } else if !request.environment.netns.isEmpty, access(request.environment.netns, F_OK) == 0 {
                try deleteLink(.named(request.environment.ifname), in: try RouteNetlink.open(in: .path(request.environment.netns)))
            }
        }
        Trace.step("veth deleted")
        failures.step { try addresses.release(request, attachment: request.attachment) }
        Trace.step("addresses released")
        failures.step {
            try records.locked {
                try teardownShared(record: record, owner: owner, config: config, records: records,
                                   firewall: firewall, portsWithdrawn: firewall != nil)
            }
        }
        Trace.step("record and shared objects")
        try failures.throwIfAny()
    }

    /// A berth-bridge record and its bridge part.
    struct BridgeRecord {
        let record: AttachmentRecord
        let details: BridgeAttachment
    }

    /// The attachment's record; a record another mode wrote under this network's name is code 113.
    static func bridgeRecord(_ records: RecordStore, _ attachment: Attachment) throws(CNIError) -> BridgeRecord? {
        guard let record = try records.record(of: attachment, mode: .bridge), let details = record.bridge else { return nil }
        return BridgeRecord(record: record, details: details)
    }

    static func deleteLink(_ link: LinkID, in netlink: RouteNetlink) throws {
        do {
            try netlink.linkDelete(link)
        } catch {
            guard error.isNotFound else { throw error }
        }
    }

    /// Under the network's lock: the attachment's port elements (unless already withdrawn, on
    /// `firewall`) and record; then, if it was the
    /// network's last attachment, the network's firewall objects (the whole table after the last
    /// network) and, with `removeBridgeWhenEmpty`, the bridge.
    static func teardownShared(record: BridgeRecord?, owner: String, config: BridgeConfig, records: RecordStore,
                               firewall open: Firewall? = nil, portsWithdrawn: Bool = false) throws {
        let firewall = try open ?? Firewall.current()
        if !portsWithdrawn, let ports = record?.details.ports, !ports.isEmpty { try firewall.withdraw(ports, owner: owner) }
        if let record { try records.remove(record.record.attachment) }
        guard try records.count() == 0 else { return }
        let network = record?.details.firewallNetwork
            ?? FirewallNetwork(bridge: config.bridge, subnets: [], masquerade: config.ipMasq, interContainerCommunication: config.icc,
                               unmasqueraded: config.noMasquerade)
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

extension BridgeAttachment {
    /// The network as the firewall knows it, rebuilt from the record.
    var firewallNetwork: FirewallNetwork {
        FirewallNetwork(bridge: bridge, subnets: ips.map(\.address.network), masquerade: masquerade,
                        interContainerCommunication: icc, unmasqueraded: unmasqueraded)
    }
}
