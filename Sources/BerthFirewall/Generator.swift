import BerthIP

/// A Docker-style network as the firewall sees it.
public struct FirewallNetwork: Sendable, Hashable {
    /// The bridge; also names the network's chains (`in_<bridge>`…).
    public let bridge: String
    public let subnets: [IPPrefix]
    /// Masquerade traffic from the subnets that leaves through another interface.
    public let masquerade: Bool
    /// Inter-container communication on the bridge (false: dropped, for hosts with br_netfilter;
    /// the bridge-port isolated flag enforces it at L2).
    public let interContainerCommunication: Bool
    /// Destinations never masqueraded (a cluster's pod and service ranges): one set lookup per
    /// family before the masquerade rules. Traffic from them may reach the network's containers
    /// directly (a pod on another node answers with its own address, and starts connections).
    public let unmasqueraded: [IPPrefix]

    public init(bridge: String, subnets: [IPPrefix], masquerade: Bool = true, interContainerCommunication: Bool = true,
                unmasqueraded: [IPPrefix] = []) {
        self.bridge = bridge
        self.subnets = subnets.map(\.network)
        self.masquerade = masquerade
        self.interContainerCommunication = interContainerCommunication
        self.unmasqueraded = unmasqueraded.map(\.network)
    }

    /// The sets of `unmasqueraded`, one per family it has.
    public var addressSets: [NFTAddressSet] {
        [IPFamily.v4, .v6].compactMap { family in
            unmasqueraded.contains { $0.family == family } ? NFTAddressSet(setName(family), family: family, prefixes: unmasqueraded) : nil
        }
    }

    /// `nomasq4_<bridge>`, `nomasq6_<bridge>`
    public func setName(_ family: IPFamily) -> String { "nomasq\(family.versionString)_\(bridge)" }
    /// Both families' set names, whether the network has them or not.
    public var setNames: [String] { [setName(.v4), setName(.v6)] }

    public var inboundChain: String { "in_\(bridge)" }
    public var outboundChain: String { "out_\(bridge)" }
    public var leavingChain: String { "post_out_\(bridge)" }
    public var arrivingChain: String { "post_in_\(bridge)" }
    /// The network's four chains, by name.
    public var chainNames: [String] { [inboundChain, outboundChain, leavingChain, arrivingChain] }
}

/// A published port: host IP (nil: any) and port to container IP and port.
public struct PortMapping: Sendable, Hashable, CustomStringConvertible {
    public let hostIP: IPAddress?
    public let proto: NFTProtocol
    public let hostPort: UInt16
    public let containerIP: IPAddress
    public let containerPort: UInt16

    public init(hostIP: IPAddress? = nil, proto: NFTProtocol, hostPort: UInt16, containerIP: IPAddress, containerPort: UInt16) {
        self.hostIP = hostIP
        self.proto = proto
        self.hostPort = hostPort
        self.containerIP = containerIP
        self.containerPort = containerPort
    }

    public var family: IPFamily { containerIP.family }

    /// "8080/tcp on 0.0.0.0"
    public var hostSide: String {
        "\(hostPort)/\(proto) on \(hostIP.map(\.description) ?? (family == .v4 ? "0.0.0.0" : "::"))"
    }

    public var description: String { "\(hostSide) → \(containerIP):\(containerPort)" }
}

/// The objects of NFTABLES.md: static rules, with everything per network and per container in
/// verdict-map and NAT-map elements, so that a container's firewall work is O(1).
public enum FirewallLayout {
    public static let forwardInbound = NFTMap("fwd_in", key: NFTConcatenation(.interfaceName), data: .verdict)
    public static let forwardOutbound = NFTMap("fwd_out", key: NFTConcatenation(.interfaceName), data: .verdict)
    public static let leaving = NFTMap("post_out", key: NFTConcatenation(.interfaceName), data: .verdict)
    public static let arriving = NFTMap("post_in", key: NFTConcatenation(.interfaceName), data: .verdict)
    public static let ports4 = NFTMap("ports4", key: NFTConcatenation(.ipv4Address, .inetProtocol, .inetService),
                                      data: .values(NFTConcatenation(.ipv4Address, .inetService)))
    public static let ports4Any = NFTMap("ports4_any", key: NFTConcatenation(.inetProtocol, .inetService),
                                         data: .values(NFTConcatenation(.ipv4Address, .inetService)))
    public static let ports6 = NFTMap("ports6", key: NFTConcatenation(.ipv6Address, .inetProtocol, .inetService),
                                      data: .values(NFTConcatenation(.ipv6Address, .inetService)))
    public static let ports6Any = NFTMap("ports6_any", key: NFTConcatenation(.inetProtocol, .inetService),
                                         data: .values(NFTConcatenation(.ipv6Address, .inetService)))

    public static let maps = [forwardInbound, forwardOutbound, leaving, arriving, ports4, ports4Any, ports6, ports6Any]

    /// The base chains and `hostports`, the same for every host.
    public static let staticChains: [(chain: NFTChain, rules: [NFTRule])] = [
        (NFTChain("forward", base: NFTBaseChain(type: .filter, hook: .forward, priority: 0)), [
            NFTRule(.conntrackState([.invalid]), .verdict(.drop)),
            NFTRule(.conntrackState([.established, .related]), .verdict(.accept)),
            NFTRule(.verdictMap(.output, map: forwardInbound.name)),
            NFTRule(.verdictMap(.input, map: forwardOutbound.name)),
        ]),
        (NFTChain("hostports"), [
            NFTRule(.dnatMap(.v4, byDestination: true, map: ports4.name)),
            NFTRule(.dnatMap(.v4, byDestination: false, map: ports4Any.name)),
            NFTRule(.dnatMap(.v6, byDestination: true, map: ports6.name)),
            NFTRule(.dnatMap(.v6, byDestination: false, map: ports6Any.name)),
        ]),
        (NFTChain("prerouting", base: NFTBaseChain(type: .nat, hook: .prerouting, priority: -100)), [
            NFTRule(.fibAddressIsLocal(destination: true), .verdict(.jump("hostports"))),
        ]),
        (NFTChain("output", base: NFTBaseChain(type: .nat, hook: .output, priority: -100)), [
            NFTRule(.fibAddressIsLocal(destination: true), .verdict(.jump("hostports"))),
        ]),
        (NFTChain("postrouting", base: NFTBaseChain(type: .nat, hook: .postrouting, priority: 100)), [
            NFTRule(.verdictMap(.input, map: leaving.name)),
            NFTRule(.verdictMap(.output, map: arriving.name)),
        ]),
    ]

    /// A network's four chains.
    public static func chains(of network: FirewallNetwork) -> [(chain: NFTChain, rules: [NFTRule])] {
        let bridge = network.bridge
        return [
            // Traffic into the bridge: from the bridge itself (ICC), to published ports, from the
            // destinations never masqueraded (the rest of a cluster), nothing else.
            (NFTChain(network.inboundChain), [
                NFTRule(.interfaceName(.input, .equal, bridge), .verdict(network.interContainerCommunication ? .accept : .drop)),
                NFTRule(.conntrackStatusDNAT, .verdict(.accept)),
            ] + network.addressSets.map {
                NFTRule(.addressInSet($0.family, source: true, set: $0.name), .verdict(.accept))
            } + [
                NFTRule(.verdict(.drop)),
            ]),
            // Traffic out of the bridge to anywhere else.
            (NFTChain(network.outboundChain), [NFTRule(.verdict(.accept))]),
            // Leaving the host: masquerade the network's addresses, except towards the
            // destinations never masqueraded.
            (NFTChain(network.leavingChain), network.addressSets.map {
                NFTRule(.addressInSet($0.family, source: false, set: $0.name), .verdict(.return))
            } + network.subnets.map {
                NFTRule(.interfaceName(.output, .notEqual, bridge), .sourceAddress($0), .masquerade)
            }),
            // Arriving on the bridge after DNAT: from a container (hairpin) or from the host itself
            // (including 127.0.0.1), so replies come back through the host.
            (NFTChain(network.arrivingChain), network.subnets.map {
                NFTRule(.conntrackStatusDNAT, .sourceAddress($0), .masquerade)
            } + [NFTRule(.conntrackStatusDNAT, .fibAddressIsLocal(destination: false), .masquerade)]),
        ]
    }

    /// A network's verdict-map elements; `post_out` only when it masquerades.
    public static func elements(of network: FirewallNetwork) -> [(map: NFTMap, element: NFTElement)] {
        let key: [NFTValue] = [.interfaceName(network.bridge)]
        var elements: [(map: NFTMap, element: NFTElement)] = [
            (forwardInbound, NFTElement(key: key, data: .jump(network.inboundChain))),
            (forwardOutbound, NFTElement(key: key, data: .jump(network.outboundChain))),
            (arriving, NFTElement(key: key, data: .jump(network.arrivingChain))),
        ]
        if network.masquerade {
            elements.insert((leaving, NFTElement(key: key, data: .jump(network.leavingChain))), at: 2)
        }
        return elements
    }

    /// The NAT-map element of a published port, owned by `owner` (written as its comment).
    public static func element(of mapping: PortMapping, owner: String?) -> (map: NFTMap, element: NFTElement) {
        let map: NFTMap
        var key: [NFTValue] = [.proto(mapping.proto), .port(mapping.hostPort)]
        switch (mapping.family, mapping.hostIP) {
        case (.v4, nil): map = ports4Any
        case (.v6, nil): map = ports6Any
        case (.v4, let hostIP?):
            map = ports4
            key.insert(.address(hostIP), at: 0)
        case (.v6, let hostIP?):
            map = ports6
            key.insert(.address(hostIP), at: 0)
        }
        return (map, NFTElement(key: key, data: .values([.address(mapping.containerIP), .port(mapping.containerPort)]),
                                comment: owner))
    }

    /// The whole table for `networks` and their published ports, in the order a fresh table
    /// lists it (maps, static chains, then each network's chains in the order given).
    public static func ruleset(networks: [FirewallNetwork], ports: [(mapping: PortMapping, owner: String?)] = []) -> NFTRuleset {
        var ruleset = NFTRuleset(maps: maps, chains: staticChains)
        for network in networks {
            ruleset.sets += network.addressSets
            ruleset.chains += chains(of: network)
            for (map, element) in elements(of: network) { ruleset.elements[map.name, default: []].append(element) }
        }
        for (mapping, owner) in ports {
            let (map, element) = element(of: mapping, owner: owner)
            ruleset.elements[map.name, default: []].append(element)
        }
        return ruleset
    }
}
