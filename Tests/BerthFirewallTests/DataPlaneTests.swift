import BerthFirewall
import BerthIP
import BerthJSON
import BerthNetlink
import BerthTestSupport
import Foundation
import Testing

/// A "host" with an uplink to an "outside" namespace, Docker-style bridges, and containers on
/// them. Links are made with `ip` here (berth-bridge will make them later); the firewall is
/// Berth's, applied in the host namespace.
final class Topology: UplinkLab, @unchecked Sendable {
    override init(_ scope: NamespaceScope) throws {
        try super.init(scope)
        try Sysctl.set("net/ipv4/ip_forward", "1", in: host.target)
    }

    func firewall() throws -> Firewall { try Firewall.open(in: host.target) }

    /// A bridge with the gateway address, up, accepting 127.0.0.1 traffic DNAT'd onto it.
    func addBridge(_ name: String, gateway: String) throws {
        try run("ip", "-n", host.name, "link", "add", name, "type", "bridge")
        try run("ip", "-n", host.name, "addr", "add", gateway, "dev", name)
        try run("ip", "-n", host.name, "link", "set", name, "up")
        let netlink = try host.netlink()
        try netlink.ipv4SettingsSet(.named(name), [(.routeLocalnet, 1)])
    }

    /// A container on `bridge` with `address`, default route via `gateway`, its port hairpinned.
    @discardableResult
    func addContainer(bridge: String, address: String, gateway: String) throws -> ScratchNamespace {
        let container = try scope.make(loopbackUp: true)
        let port = uniqueName("v")
        try run("ip", "-n", host.name, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", container.name)
        try run("ip", "-n", host.name, "link", "set", port, "master", bridge, "up")
        try run("ip", "-n", container.name, "addr", "add", address, "dev", "eth0")
        try run("ip", "-n", container.name, "link", "set", "eth0", "up")
        try run("ip", "-n", container.name, "route", "add", "default", "via", gateway)
        let netlink = try host.netlink()
        try netlink.bridgePortSet(try #require(try netlink.link(named: port)).id, hairpin: true)
        return container
    }
}

@Suite(needsKernel)
struct DataPlaneTests {
    let scope = NamespaceScope()
    let network = FirewallNetwork(bridge: "berth0", subnets: [IPPrefix("10.88.0.0/16")!])

    @Test func theOutsideSeesTheHostsAddressThroughMasquerade() throws {
        let topology = try Topology(scope)
        try topology.addBridge("berth0", gateway: "10.88.0.1/16")
        let container = try topology.addContainer(bridge: "berth0", address: "10.88.0.5/16", gateway: "10.88.0.1")
        try topology.firewall().apply(network: network)
        try topology.countArrivals(from: ["\(Topology.hostUplink)", "10.88.0.0/16"])

        #expect(topology.pings(from: container, Topology.outsideAddress))
        let counts = try topology.arrivals()
        #expect(counts[0] > 0 && counts[1] == 0, "from host address / from container subnet: \(counts)")
    }

    @Test func withoutMasqueradeTheOutsideSeesTheContainersAddress() throws {
        let topology = try Topology(scope)
        try topology.addBridge("berth0", gateway: "10.88.0.1/16")
        let container = try topology.addContainer(bridge: "berth0", address: "10.88.0.5/16", gateway: "10.88.0.1")
        try topology.firewall().apply(network: FirewallNetwork(bridge: "berth0", subnets: [IPPrefix("10.88.0.0/16")!], masquerade: false))
        try topology.countArrivals(from: ["\(Topology.hostUplink)", "10.88.0.0/16"])

        _ = topology.pings(from: container, Topology.outsideAddress)  // no way back without a route: only arrival counts
        let counts = try topology.arrivals()
        #expect(counts[0] == 0 && counts[1] > 0, "from host address / from container subnet: \(counts)")
    }

    /// noMasquerade: towards those destinations the container's own address arrives (and the
    /// reply finds its way back by the route to the container subnet); anywhere else the host's.
    @Test func noMasqueradeDestinationsSeeTheContainersAddress() throws {
        let topology = try Topology(scope)
        try topology.addBridge("berth0", gateway: "10.88.0.1/16")
        let container = try topology.addContainer(bridge: "berth0", address: "10.88.0.5/16", gateway: "10.88.0.1")
        try run("ip", "-n", topology.outside.name, "addr", "add", "198.51.100.1/32", "dev", "out0")
        try run("ip", "-n", topology.outside.name, "route", "add", "10.88.0.0/16", "via", Topology.hostUplink)
        try topology.firewall().apply(network: FirewallNetwork(bridge: "berth0", subnets: [IPPrefix("10.88.0.0/16")!],
                                                               unmasqueraded: [IPPrefix("192.0.2.0/24")!, IPPrefix("10.244.0.0/16")!]))
        try topology.countArrivals(from: ["\(Topology.hostUplink)", "10.88.0.0/16"])

        #expect(topology.pings(from: container, Topology.outsideAddress))
        #expect(try topology.arrivals() == [0, 1], "192.0.2.2 is in noMasquerade: from the container's address")
        #expect(topology.pings(from: container, "198.51.100.1"))
        #expect(try topology.arrivals() == [1, 1], "198.51.100.1 is not: from the host's")
    }

    @Test func aPublishedPortAnswersFromEverywhereAndAnUnpublishedOneFromNowhereOutside() throws {
        let topology = try Topology(scope)
        try topology.addBridge("berth0", gateway: "10.88.0.1/16")
        let web = try topology.addContainer(bridge: "berth0", address: "10.88.0.5/16", gateway: "10.88.0.1")
        let sibling = try topology.addContainer(bridge: "berth0", address: "10.88.0.6/16", gateway: "10.88.0.1")
        try topology.firewall().apply(network: network, publishing: [
            PortMapping(proto: .tcp, hostPort: 8080, containerIP: IPAddress("10.88.0.5")!, containerPort: 80),
        ], owner: "web/eth0")
        try topology.listen(in: web, port: 80)
        try topology.listen(in: web, port: 81)

        #expect(topology.connects(from: topology.outside, to: Topology.hostUplink, port: 8080), "from outside")
        #expect(topology.connects(from: topology.host, to: Topology.hostUplink, port: 8080), "from the host")
        #expect(topology.connects(from: topology.host, to: "127.0.0.1", port: 8080), "from the host's 127.0.0.1")
        #expect(topology.connects(from: sibling, to: Topology.hostUplink, port: 8080), "from a sibling (hairpin)")
        #expect(topology.connects(from: web, to: Topology.hostUplink, port: 8080), "from itself (hairpin)")

        // The outside reaching container addresses directly gets nothing, published or not.
        try run("ip", "-n", topology.outside.name, "route", "add", "10.88.0.0/16", "via", Topology.hostUplink)
        #expect(!topology.connects(from: topology.outside, to: "10.88.0.5", port: 81, timeout: 1), "unpublished port from outside")
        #expect(!topology.connects(from: topology.outside, to: "10.88.0.5", port: 80, timeout: 1), "container address from outside")
        #expect(!topology.connects(from: topology.outside, to: Topology.hostUplink, port: 8081, timeout: 1))
        // The host itself still reaches its containers.
        #expect(topology.connects(from: topology.host, to: "10.88.0.5", port: 81))
    }

    @Test func twoNetworksCannotReachEachOther() throws {
        let topology = try Topology(scope)
        try topology.addBridge("berth0", gateway: "10.88.0.1/16")
        try topology.addBridge("berth1", gateway: "10.89.0.1/16")
        let first = try topology.addContainer(bridge: "berth0", address: "10.88.0.5/16", gateway: "10.88.0.1")
        let second = try topology.addContainer(bridge: "berth1", address: "10.89.0.5/16", gateway: "10.89.0.1")
        let firewall = try topology.firewall()
        try firewall.apply(network: network)
        try firewall.apply(network: FirewallNetwork(bridge: "berth1", subnets: [IPPrefix("10.89.0.0/16")!]))

        #expect(!topology.pings(from: first, "10.89.0.5"))
        #expect(!topology.pings(from: second, "10.88.0.5"))
        #expect(topology.pings(from: first, Topology.outsideAddress))
        #expect(topology.pings(from: second, Topology.outsideAddress))
        #expect(topology.pings(from: first, "10.88.0.1"))
    }
}
