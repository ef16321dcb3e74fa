import BerthIP
import BerthJSON
import BerthNetlink
import Foundation
import BerthTestSupport
import Testing

@Suite(needsKernel)
struct BridgePortAndSettingsTests {
    let scope = NamespaceScope()

    /// A bridge with one veth port; the peer lives in `container`.
    func bridgeWithPort() throws -> (host: ScratchNamespace, container: ScratchNamespace, netlink: RouteNetlink, port: Link) {
        let host = try scope.make(), container = try scope.make()
        let netlink = try host.netlink()
        try netlink.bridgeAdd(name: "br0")
        let bridge = try #require(try netlink.link(named: "br0"))
        let fd = try container.openDescriptor()
        defer { close(fd) }
        try netlink.vethAdd(name: "vport0", master: bridge.index, peer: .init(name: "eth0", namespace: .fd(fd, path: container.path)))
        return (host, container, netlink, try #require(try netlink.link(named: "vport0")))
    }

    @Test func hairpinAndIsolatedAreSetOnTheBridgePort() throws {
        let (host, _, netlink, port) = try bridgeWithPort()
        func portData() throws -> JSON? { try host.ip("link", "show", "vport0")[0]?["linkinfo"]?["info_slave_data"] }
        #expect(try portData()?["hairpin"]?.boolValue == false)
        #expect(try portData()?["isolated"]?.boolValue == false)

        try netlink.bridgePortSet(port.id, hairpin: true)
        #expect(try portData()?["hairpin"]?.boolValue == true)
        #expect(try portData()?["isolated"]?.boolValue == false)

        try netlink.bridgePortSet(port.id, hairpin: false, isolated: true)
        #expect(try portData()?["hairpin"]?.boolValue == false)
        #expect(try portData()?["isolated"]?.boolValue == true)
    }

    @Test func portFlagsOnALinkThatIsNoBridgePortFail() throws {
        let host = try scope.make()
        let netlink = try host.netlink()
        try netlink.bridgeAdd(name: "lonely0")
        let lonely = try #require(try netlink.link(named: "lonely0"))
        #expect(throws: NetlinkError.self) {
            try netlink.bridgePortSet(lonely.id, hairpin: true)
        }
    }

    @Test func perInterfaceIPv4SettingsWithoutProc() throws {
        let (host, container, netlink, port) = try bridgeWithPort()
        try netlink.ipv4SettingsSet(port.id, [(.rpFilter, 2), (.arpNotify, 1), (.routeLocalnet, 1)])
        #expect(try Sysctl.get("net/ipv4/conf/vport0/rp_filter", in: host.target) == "2")
        #expect(try Sysctl.get("net/ipv4/conf/vport0/arp_notify", in: host.target) == "1")
        #expect(try Sysctl.get("net/ipv4/conf/vport0/route_localnet", in: host.target) == "1")
        // Independent check, from a process in the namespace.
        #expect(try run("ip", "netns", "exec", host.name, "cat", "/proc/sys/net/ipv4/conf/vport0/arp_notify") == "1\n")
        // The container's eth0 keeps its defaults.
        #expect(try run("ip", "netns", "exec", container.name, "cat", "/proc/sys/net/ipv4/conf/eth0/arp_notify") == "0\n")
    }

    @Test func ipv6AddressGenerationCanBeTurnedOff() throws {
        let (_, container, _, _) = try bridgeWithPort()
        let inside = try container.netlink()
        try inside.ipv6AddressGenerationSet(.named("eth0"), .none)
        #expect(try container.ip("link", "show", "eth0")[0]?["inet6_addr_gen_mode"]?.stringValue == "none")
        // Up without a link-local address of its own.
        try inside.linkSetUp(.named("eth0"))
        #expect(try inside.addresses(index: try #require(try inside.link(named: "eth0")).index).isEmpty)
    }

    @Test func globalForwardingIsWrittenInTheRightNamespace() throws {
        let host = try scope.make(), other = try scope.make()
        try Sysctl.set("net/ipv4/ip_forward", "1", in: host.target)
        try Sysctl.set("net/ipv6/conf/all/forwarding", "1", in: host.target)
        #expect(try run("ip", "netns", "exec", host.name, "cat", "/proc/sys/net/ipv4/ip_forward") == "1\n")
        #expect(try run("ip", "netns", "exec", host.name, "cat", "/proc/sys/net/ipv6/conf/all/forwarding") == "1\n")
        #expect(try run("ip", "netns", "exec", other.name, "cat", "/proc/sys/net/ipv4/ip_forward") == "0\n")
    }

    @Test func sysctlErrorsNameTheKey() throws {
        let host = try scope.make()
        do {
            try Sysctl.set("net/ipv4/conf/nope0/arp_notify", "1", in: host.target)
            Issue.record("wrote a missing key")
        } catch {
            #expect("\(error)" == "set net/ipv4/conf/nope0/arp_notify to 1 in \(host.path): No such file or directory")
        }
    }
}
