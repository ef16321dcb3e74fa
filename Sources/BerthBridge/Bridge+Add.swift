#if canImport(Glibc)
import Glibc
#endif
import BerthAttachments
import BerthCNI
import BerthFirewall
import BerthIP
import BerthIPAM
import BerthNetlink

/// berth-bridge's operations. ADD here; DEL, CHECK, GC and STATUS beside it.
public enum Bridge {
    /// ADD: addresses and the record reserved under the network's lock; then, without it, the
    /// bridge, the veth born in the container, the container side in one round trip and the
    /// firewall; then, under the lock again, a check that no GC swept the reservation meanwhile.
    /// Any failure after a side effect undoes what was done, newest first.
    ///
    /// The lock covers only what GC must see together (a lease and the record that names it) and
    /// what DEL's "last attachment" decision reads (the records), so parallel ADDs of one network
    /// overlap in the slow part: the kernel work on links. Bridge creation and the firewall
    /// cope with concurrent creators (EEXIST, the ruleset generation).
    public static func add(_ request: CNIRequest) throws -> CNIResult {
        let config = try BridgeConfig(request)
        // The container's namespace before anything is written: a bad CNI_NETNS changes nothing.
        let environment = request.environment
        let netnsFD = open(environment.netns, O_RDONLY | O_CLOEXEC)
        guard netnsFD >= 0 else {
            throw CNIError(.unknownContainer, "cannot open the container's network namespace \(environment.netns): \(String(cString: strerror(errno)))")
        }
        defer { close(netnsFD) }
        let namespace = try NamespaceView.identity(ofNetns: netnsFD, path: environment.netns)
        // The container end would land among the host's own links (and take CNI_IFNAME there).
        guard namespace != (try NamespaceView.hostIdentity()) else {
            throw CNIError(.invalidEnvironment, "invalid environment: CNI_NETNS \(environment.netns) is the host's network namespace",
                           details: "berth-bridge puts the container end in the container's namespace; for host networking use berth-host")
        }
        let records = try RecordStore.open(stateDirectory: config.stateDirectory, network: config.network)
        let addresses = try AddressSource(request, type: config.ipamType)
        let host = try RouteNetlink.current()
        return try UndoStack.undoingOnFailure { undo in
            try add(request, config, records, addresses, host, netnsFD: netnsFD, namespace: namespace, &undo)
        }
    }

    private static func add(_ request: CNIRequest, _ config: BridgeConfig, _ records: RecordStore, _ addresses: AddressSource,
                            _ host: RouteNetlink, netnsFD: Int32, namespace: NetworkNamespace.Identity,
                            _ undo: inout UndoStack) throws -> CNIResult {
        let environment = request.environment

        // The reservation: addresses and the record naming them (and the host veth to come).
        let (ipam, reserved) = try records.locked { () throws -> (CNIResult, AttachmentRecord) in
            _ = try bridgeRecord(records, request.attachment)  // another plugin's attachment of this name: 113
            let ipam = try addresses.add(request)
            undo.push("release addresses") { try addresses.release(request, attachment: request.attachment) }
            guard !ipam.ips.isEmpty else {
                throw CNIError(.invalidConfig, "invalid network configuration: ipam: IPAM plugin \(config.ipamType) returned no address")
            }
            let details = BridgeAttachment(bridge: config.bridge, hostInterface: randomVethName(),
                                           ips: ipam.ips.map { CNIResult.IPConfig(address: $0.address, gateway: $0.gateway) },
                                           defaultGateways: defaultGateways(ipam, config),
                                           ports: config.portMappings(for: ipam.ips.map(\.address.address)),
                                           masquerade: config.ipMasq, icc: config.icc, unmasqueraded: config.noMasquerade)
            let record = AttachmentRecord(containerID: environment.containerID, ifname: environment.ifname, network: config.network,
                                          netns: environment.netns, namespace: namespace, mode: .bridge(details))
            try records.save(record)
            undo.push("remove the attachment record") { try records.remove(record.attachment) }
            return (ipam, record)
        }
        var details = reserved.bridge!
        Trace.step("addresses and record reserved")

        // The bridge, its gateway addresses, forwarding.
        let mtu = try config.mtu ?? defaultRouteMTU(host)
        let bridge = try ensureBridge(host, config, mtu: mtu)
        if config.isGateway { try ensureGateways(host, bridge: bridge, ipam.ips, config) }
        try enableForwarding(for: ipam.ips)
        Trace.step("bridge, gateway and forwarding")

        // The veth, its container end born in the container's namespace.
        let containerMAC = config.mac ?? dockerStyleMAC(for: ipam.ips)
        let (hostEnd, peerIndex) = try createVeth(host, config, named: details.hostInterface, bridge: bridge, mtu: mtu, mac: containerMAC,
                                                  netnsFD: netnsFD, netns: environment.netns, ifname: environment.ifname)
        undo.push("delete \(hostEnd.name)") { try deleteLink(.named(hostEnd.name), in: host) }
        Trace.step("veth created")
        let hairpin = config.hairpinMode ?? !details.ports.isEmpty
        // A bridge port needs no IPv6 of its own. Without a link-local address (addrgenmode
        // none, set before it gets carrier when the container end comes up) it runs no DAD,
        // router solicitation or MLD; with IPv6 off altogether it also leaves no routes in the
        // host's IPv6 table, which the kernel walks whole whenever a link changes state. Both
        // grow with the bridge. The /proc write is best effort (read-only /proc/sys in some
        // runtimes): addrgenmode already keeps the port quiet.
        var hostEndRequests: [NetlinkRequest] = Self.kernelHasIPv6 ? [.ipv6AddressGenerationSet(hostEnd.id, .none)] : []
        if hairpin || !config.icc {
            hostEndRequests.append(.bridgePortSet(hostEnd.id, hairpin: hairpin, isolated: config.icc ? nil : true))
        }
        try host.perform(hostEndRequests)
        if Self.kernelHasIPv6 { try? Sysctl.set("net/ipv6/conf/\(hostEnd.name)/disable_ipv6", "1") }
        Trace.step("host end set up")

        // The container side in one round trip.
        let inside = try RouteNetlink.open(in: .path(environment.netns))
        let eth0: LinkID
        if let peerIndex {
            eth0 = LinkID(index: peerIndex, name: environment.ifname)
        } else {
            // Kernels before 6.3 do not echo the new link: look the peer up.
            guard let link = try inside.link(named: environment.ifname) else {
                throw CNIError(.netlinkFailed, "\(environment.ifname) did not appear in \(environment.netns)")
            }
            eth0 = link.id
        }
        let (requests, routes) = containerSide(eth0, ipam, config, defaultGateways: details.defaultGateways, customMAC: config.mac != nil)
        try inside.perform(requests)
        Trace.step("container side set up")

        // Firewall: the network's objects and this container's ports, one transaction.
        let firewall = try Firewall.current()
        try firewall.apply(network: details.firewallNetwork, publishing: details.ports, owner: reserved.owner)
        if !details.ports.isEmpty {
            let ports = details.ports
            undo.push("withdraw published ports") { try firewall.withdraw(ports, owner: reserved.owner) }
        }

        Trace.step("firewall applied")
        // Commit: the reservation must still be there; a GC that swept it meanwhile released the
        // addresses, so everything made since goes too (the undo) and the runtime tries again.
        details.hostInterface = hostEnd.name
        let record = AttachmentRecord(containerID: reserved.containerID, ifname: reserved.ifname, network: reserved.network,
                                      netns: reserved.netns, namespace: reserved.namespace, mode: .bridge(details))
        try records.locked {
            guard try records.record(of: request.attachment) == reserved else {
                throw CNIError(.tryAgainLater, "\(reserved.owner) on network \(config.network) was removed (GC or DEL) while it was being added",
                               details: "nothing of it is left; ADD it again")
            }
            if record != reserved { try records.save(record) }
        }
        Trace.step("committed")

        return CNIResult(
            interfaces: [
                .init(name: bridge.name, mac: bridge.mac?.description, mtu: Int(bridge.mtu)),
                .init(name: hostEnd.name, mac: hostEnd.mac?.description, mtu: Int(mtu)),
                .init(name: environment.ifname, mac: containerMAC.description, mtu: Int(mtu), sandbox: environment.netns),
            ],
            ips: ipam.ips.map { CNIResult.IPConfig(interface: 2, address: $0.address, gateway: $0.gateway) },
            routes: routes,
            dns: ipam.dns.isEmpty ? (config.dns ?? CNIResult.DNS()) : ipam.dns)
    }

    // MARK: Steps

    /// The MTU of the host's default-route interface (1500 without one).
    static func defaultRouteMTU(_ host: RouteNetlink) throws -> UInt32 {
        for family in [IPFamily.v4, .v6] {
            if let index = try host.routes(family).first(where: \.isDefault)?.outputInterface,
               let link = try host.link(LinkID(index: index, name: "#\(index)")) {
                return link.mtu
            }
        }
        return 1500
    }

    /// The bridge, created if missing (pinned MAC, up, accepting 127.0.0.1 traffic DNAT'd to
    /// its containers). Concurrent creators both succeed; a non-bridge link of the name is an error.
    static func ensureBridge(_ host: RouteNetlink, _ config: BridgeConfig, mtu: UInt32) throws -> Link {
        var existing = try host.link(named: config.bridge)
        if existing == nil {
            do {
                try host.bridgeAdd(name: config.bridge, mtu: mtu, mac: .randomLocal(), up: true,
                                   multicastSnooping: config.multicastSnooping)
                try host.ipv4SettingsSet(.named(config.bridge), [(.routeLocalnet, 1)])
            } catch {
                guard error.isExists else { throw error }  // another ADD created it first
            }
            existing = try host.link(named: config.bridge)
        }
        guard let bridge = existing else {
            throw CNIError(.netlinkFailed, "bridge \(config.bridge) disappeared while it was being set up")
        }
        guard bridge.kind == "bridge" else {
            throw CNIError(.bridgeNameTaken, "\(config.bridge) exists and is not a bridge (it is \(bridge.kind ?? "a device without a kind"))",
                           details: "choose another name with the bridge option")
        }
        if config.promiscMode && !bridge.isPromiscuous { try host.linkSetPromiscuous(bridge.id, true) }
        return bridge
    }

    /// The gateway addresses on the bridge. Another address of the same subnet there is an
    /// error unless `forceAddress`, which replaces it.
    static func ensureGateways(_ host: RouteNetlink, bridge: Link, _ ips: [CNIResult.IPConfig], _ config: BridgeConfig) throws {
        let present = try host.addresses(index: bridge.index)
        for ip in ips {
            guard let gateway = ip.gateway, let wanted = IPPrefix(address: gateway, length: ip.address.length) else { continue }
            if present.contains(where: { $0.prefix == wanted }) { continue }
            for other in present where other.prefix.family == wanted.family && other.prefix.network == wanted.network {
                guard config.forceAddress else {
                    throw CNIError(.invalidConfig, "invalid network configuration: forceAddress: bridge \(config.bridge) has \(other.prefix), not the gateway \(wanted)",
                                   details: "set forceAddress to replace it")
                }
                try host.addressDelete(other.prefix, from: bridge.id)
            }
            do {
                try host.addressAdd(wanted, to: bridge.id, skipDAD: !config.enableDad)
            } catch {
                guard error.isExists else { throw error }
            }
        }
    }

    static func enableForwarding(for ips: [CNIResult.IPConfig]) throws {
        if ips.contains(where: { $0.address.family == .v4 }) { try Sysctl.set("net/ipv4/ip_forward", "1") }
        if ips.contains(where: { $0.address.family == .v6 }) { try Sysctl.set("net/ipv6/conf/all/forwarding", "1") }
    }

    /// Whether the kernel has IPv6 (AF_INET6 settings are refused without it).
    static let kernelHasIPv6 = access("/proc/sys/net/ipv6", F_OK) == 0

    /// Docker's container MAC: 02:42 and the IPv4 address, stable for an address; a random
    /// local address without IPv4.
    static func dockerStyleMAC(for ips: [CNIResult.IPConfig]) -> MACAddress {
        guard let v4 = ips.first(where: { $0.address.family == .v4 })?.address.address else { return .randomLocal() }
        return MACAddress(bytes: [0x02, 0x42] + v4.bytes)!
    }

    /// `veth` + 8 random hex digits: a host veth name no other container has (almost surely).
    static func randomVethName() -> String {
        "veth" + (0..<8).map { _ in String(UInt8.random(in: 0...15), radix: 16) }.joined()
    }

    /// The veth pair: host end `name` (another random one if that is taken), its container end
    /// born as CNI_IFNAME in the container. An existing CNI_IFNAME there is an error and stays
    /// untouched.
    static func createVeth(_ host: RouteNetlink, _ config: BridgeConfig, named first: String, bridge: Link, mtu: UInt32, mac: MACAddress,
                           netnsFD: Int32, netns: String, ifname: String) throws -> (Link, Int32?) {
        var name = first
        for _ in 0..<8 {
            do {
                let created = try host.vethAdd(name: name, mtu: mtu, master: bridge.index, up: true,
                                               peer: .init(name: ifname, namespace: .fd(netnsFD, path: netns), mtu: mtu, mac: mac))
                let hostEnd = try created.host ?? host.link(named: name)
                guard let hostEnd else { throw CNIError(.netlinkFailed, "\(name) did not appear after it was created") }
                return (hostEnd, created.peerIndex)
            } catch {
                guard let error = error as? NetlinkError, error.isExists else { throw error }
                if try host.link(named: name) != nil {  // our random name is taken: another
                    name = randomVethName()
                    continue
                }
                throw CNIError(.interfaceExists, "\(ifname) already exists in \(netns)",
                               details: "an ADD for an interface the container has is refused; the interface is left as it is")
            }
        }
        throw CNIError(.netlinkFailed, "could not find a free veth name after 8 tries")
    }

    /// The default route(s) ADD installs: one per family with an address (IPAM's default route's
    /// gateway, else the address's gateway), none without `isDefaultGateway`.
    static func defaultGateways(_ ipam: CNIResult, _ config: BridgeConfig) -> [IPAddress] {
        guard config.isDefaultGateway else { return [] }
        return [IPFamily.v4, .v6].compactMap { family in
            let fromIPAM = ipam.routes.first { $0.destination.family == family && $0.destination.length == 0 }?.gateway
            return fromIPAM ?? ipam.ips.first { $0.address.family == family }?.gateway
        }
    }

    /// The container side as one batch: arp_notify when wanted (a gratuitous ARP when the link
    /// comes up; by default only for a MAC the runtime chose), addresses (IPv6 without DAD unless
    /// asked), the link and `lo` up, IPAM's routes and the default routes. One default route per
    /// family, even when IPAM also returns one.
    static func containerSide(_ eth0: LinkID, _ ipam: CNIResult, _ config: BridgeConfig, defaultGateways: [IPAddress], customMAC: Bool)
        -> (requests: [NetlinkRequest], routes: [CNIResult.Route]) {
        var requests: [NetlinkRequest] = []
        if ipam.ips.contains(where: { $0.address.family == .v4 }), config.arpNotify ?? customMAC {
            requests.append(.ipv4SettingsSet(eth0, [(.arpNotify, 1)]))
        }
        // No IPv6 link-local address unless asked (set while the link is still down): its DAD,
        // router solicitations and MLD reports are multicast the bridge floods to every port,
        // per-container work that grows with the network. Global addresses are enough for
        // neighbour discovery and the default route.
        if kernelHasIPv6, !config.ipv6LinkLocal {
            requests.append(.ipv6AddressGenerationSet(eth0, .none))
        }
        for ip in ipam.ips { requests.append(.addressAdd(ip.address, to: eth0, skipDAD: !config.enableDad)) }
        requests.append(.linkSetUp(eth0))
        requests.append(.linkSetUp(.named("lo")))

        func gateway(of family: IPFamily) -> IPAddress? { ipam.ips.first { $0.address.family == family }?.gateway }
        var routes: [CNIResult.Route] = []
        for route in ipam.routes {
            if route.destination.length == 0, defaultGateways.contains(where: { $0.family == route.destination.family }) { continue }
            guard let via = route.gateway ?? gateway(of: route.destination.family) else { continue }
            requests.append(.routeAdd(Route(destination: route.destination, gateway: via, priority: route.priority.map(UInt32.init),
                                            mtu: route.mtu.map(UInt32.init), advmss: route.advmss.map(UInt32.init)), dev: eth0))
            routes.append(CNIResult.Route(destination: route.destination, gateway: via))
        }
        for gateway in defaultGateways {
            let route = Route.defaultRoute(via: gateway)
            requests.append(.routeAdd(route, dev: eth0))
            routes.append(CNIResult.Route(destination: route.destination, gateway: gateway))
        }
        return (requests, routes)
    }
}
