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
    /// CHECK: everything the record lists is in place — the host veth on the bridge and up,
    /// the container interface with its addresses and default routes, the lease, the network's
    /// chains and the port elements. The error names everything missing.
    public static func check(_ request: CNIRequest) throws {
        let config = try BridgeConfig(request)
        let records = try RecordStore.open(stateDirectory: config.stateDirectory, network: config.network)
        guard let found = try bridgeRecord(records, request.attachment) else {
            throw CNIError(.unknownContainer, "\(request.environment.containerID)/\(request.environment.ifname) is not attached to network \(config.network)")
        }
        let details = found.details
        var missing: [String] = []
        let host = try RouteNetlink.current()
        let bridge = try host.link(named: details.bridge)
        if bridge == nil { missing.append("bridge \(details.bridge)") }
        if let veth = try host.link(named: details.hostInterface) {
            if let bridge, veth.master != bridge.index { missing.append("\(details.hostInterface) as a port of \(details.bridge)") }
            if !veth.isUp { missing.append("\(details.hostInterface) up") }
        } else {
            missing.append("host interface \(details.hostInterface)")
        }

        let inside = try RouteNetlink.open(in: .path(request.environment.netns))
        if let link = try inside.link(named: request.environment.ifname) {
            let present = Set(try inside.addresses(index: link.index).map(\.prefix))
            missing += details.ips.filter { !present.contains($0.address) }.map { "address \($0.address) on \(request.environment.ifname)" }
            for gateway in details.defaultGateways {
                let routes = try inside.routes(gateway.family)
                if !routes.contains(where: { $0.isDefault && $0.gateway == gateway && $0.outputInterface == link.index }) {
                    missing.append("default route via \(gateway) in the container")
                }
            }
        } else {
            missing.append("\(request.environment.ifname) in \(request.environment.netns)")
        }

        do {
            try AddressSource(request, type: config.ipamType).check(request)
        } catch {
            missing.append("the lease (\(error.msg))")
        }

        let firewall = try Firewall.current()
        let chains = Set(try firewall.chainNames())
        missing += FirewallLayout.chains(of: details.firewallNetwork).map(\.chain.name).filter { !chains.contains($0) }.map { "chain \($0)" }
        for set in details.firewallNetwork.addressSets where try firewall.ranges(ofSet: set.name, family: set.family) != set.ranges {
            missing.append("set \(set.name) with \(set.ranges.map(\.text).joined(separator: ", "))")
        }
        for port in details.ports {
            let (map, element) = FirewallLayout.element(of: port, owner: found.record.owner)
            if try firewall.element(element.key, in: map) != element { missing.append("published port \(port)") }
        }
        guard missing.isEmpty else {
            throw CNIError(.checkFailed, "\(found.record.owner) on network \(config.network) is missing: " + missing.joined(separator: ", "))
        }
    }

    /// GC: every attachment of the network not in `cni.dev/valid-attachments` is torn down from
    /// its record — link, lease, port elements, record — and GC is passed on to the IPAM (which
    /// also drops leases without a record). All of it under the network's lock, which an ADD holds
    /// from allocation to record: otherwise an ADD finishing between the record sweep and the IPAM
    /// sweep would keep its record and link but lose its lease.
    public static func gc(_ request: CNIRequest) throws {
        let config = try BridgeConfig(request)
        let records = try RecordStore.open(stateDirectory: config.stateDirectory, network: config.network)
        let addresses = try AddressSource(request, type: config.ipamType)
        let valid = Set(request.config.validAttachments ?? [])
        let host = try RouteNetlink.current()
        let failures: FailureList = try records.locked {
            var failures = records.sweep(mode: .bridge, keeping: valid) { record in
                guard let details = record.bridge else { return }
                try deleteLink(.named(details.hostInterface), in: host)
                try addresses.release(request, attachment: record.attachment)
                try teardownShared(record: BridgeRecord(record: record, details: details), owner: record.owner,
                                   config: config, records: records)
            }
            failures.step {
                switch addresses {
                case .inProcess(let manager): try manager.collectGarbage(keeping: Array(valid))
                case .delegated(let delegate): try delegate.run(.gc, request)
                }
            }
            return failures
        }
        try failures.throwIfAny()
    }

    /// STATUS: whether an ADD can succeed now — nftables usable, the bridge present or
    /// creatable, the IPAM with a free address. Code 50 otherwise.
    public static func status(_ request: CNIRequest) throws {
        let config = try BridgeConfig(request)
        do { _ = try Firewall.current().generation() } catch { throw PluginStatus.unavailable("nftables is not usable", error) }
        do {
            if let link = try RouteNetlink.current().link(named: config.bridge), link.kind != "bridge" {
                throw CNIError(.bridgeNameTaken, "\(config.bridge) exists and is not a bridge")
            }
        } catch {
            throw PluginStatus.unavailable("bridge \(config.bridge)", error)
        }
        try PluginStatus.requireStateDirectory(config.stateDirectory, network: config.network)
        do {
            switch try AddressSource(request, type: config.ipamType) {
            case .inProcess(let manager): try manager.status()
            case .delegated(let delegate): try delegate.run(.status, request)
            }
        } catch {
            if error.code == .pluginNotAvailable || error.code == .pluginNotAvailableExistingAffected { throw error }
            throw PluginStatus.unavailable("IPAM", error)
        }
    }
}

extension CNIPlugin {
    /// berth-bridge: Docker's default network mode.
    public static let bridge = CNIPlugin(
        about: "berth-bridge: Docker-style bridge networking (bridge, veth, NAT, published ports)",
        add: { request in
            do { return try Bridge.add(request) } catch { throw cniError(error) }
        },
        del: { request in
            do { try Bridge.del(request) } catch { throw cniError(error) }
        },
        check: { request in
            do { try Bridge.check(request) } catch { throw cniError(error) }
        },
        gc: { request in
            do { try Bridge.gc(request) } catch { throw cniError(error) }
        },
        status: { request in
            do { try Bridge.status(request) } catch { throw cniError(error) }
        })
}
