import BerthIP
import BerthJSON
import BerthNetlink
import Foundation
import BerthTestSupport
import Testing

/// A namespace with a bridge `br0`, up, to hang addresses and routes on.
func namespaceWithBridge(_ scope: NamespaceScope) throws -> (ScratchNamespace, RouteNetlink, Link) {
    let namespace = try scope.make(loopbackUp: true)
    let netlink = try namespace.netlink()
    try netlink.bridgeAdd(name: "br0", up: true)
    return (namespace, netlink, try #require(try netlink.link(named: "br0")))
}

@Suite(needsKernel)
struct AddressTests {
    let scope = NamespaceScope()

    @Test func ipv4AddressGetsItsBroadcast() throws {
        let (namespace, netlink, bridge) = try namespaceWithBridge(scope)
        try netlink.addressAdd(IPPrefix("10.88.0.1/16")!, to: bridge.id)

        let info = try #require(try namespace.ip("addr", "show", "br0")[0]?["addr_info"]?.arrayValue.first)
        #expect(info["local"]?.stringValue == "10.88.0.1")
        #expect(info["prefixlen"]?.intValue == 16)
        #expect(info["broadcast"]?.stringValue == "10.88.255.255")

        let listed = try netlink.addresses(index: bridge.index).filter { $0.prefix.family == .v4 }
        #expect(listed.map(\.prefix) == [IPPrefix("10.88.0.1/16")!])
        #expect(listed.first?.broadcast == IPAddress("10.88.255.255"))
    }

    @Test func ipv4PointToPointPrefixesHaveNoBroadcast() throws {
        let (namespace, netlink, bridge) = try namespaceWithBridge(scope)
        try netlink.addressAdd(IPPrefix("10.9.0.1/31")!, to: bridge.id)
        let info = try #require(try namespace.ip("addr", "show", "br0")[0]?["addr_info"]?.arrayValue.first)
        #expect(info["broadcast"] == nil)
    }

    @Test func ipv6AddressCanSkipDAD() throws {
        let (namespace, netlink, bridge) = try namespaceWithBridge(scope)
        try netlink.addressAdd(IPPrefix("fd00:88::1/64")!, to: bridge.id, skipDAD: true)
        try netlink.addressAdd(IPPrefix("fd00:99::1/64")!, to: bridge.id, skipDAD: false)

        let infos = try namespace.ip("-6", "addr", "show", "br0")[0]?["addr_info"]?.arrayValue ?? []
        let nodad = infos.first { $0["local"]?.stringValue == "fd00:88::1" }
        let dad = infos.first { $0["local"]?.stringValue == "fd00:99::1" }
        #expect(nodad?["nodad"]?.boolValue == true)
        #expect(dad?["nodad"] == nil)
        let listed = try netlink.addresses(index: bridge.index)
        #expect(listed.first { $0.prefix == IPPrefix("fd00:88::1/64") }?.skipsDAD == true)
    }

    @Test func deleteRemovesTheAddressAndASecondDeleteIsNotFound() throws {
        let (namespace, netlink, bridge) = try namespaceWithBridge(scope)
        let prefix = IPPrefix("10.77.0.1/24")!
        try netlink.addressAdd(prefix, to: bridge.id)
        try netlink.addressDelete(prefix, from: bridge.id)
        #expect(try namespace.ip("-4", "addr", "show", "br0")[0]?["addr_info"]?.arrayValue.isEmpty ?? true)
        do {
            try netlink.addressDelete(prefix, from: bridge.id)
            Issue.record("deleted twice")
        } catch {
            #expect(error.isNotFound)
        }
    }

    @Test func duplicateAddressIsEEXISTAndMissingLinkENODEV() throws {
        let (_, netlink, bridge) = try namespaceWithBridge(scope)
        try netlink.addressAdd(IPPrefix("10.66.0.1/24")!, to: bridge.id)
        do {
            try netlink.addressAdd(IPPrefix("10.66.0.1/24")!, to: bridge.id)
            Issue.record("added twice")
        } catch {
            #expect(error.isExists)
            #expect(error.operation.hasPrefix("add address 10.66.0.1/24 to br0 in "))
        }
        do {
            try netlink.addressAdd(IPPrefix("10.66.0.2/24")!, to: LinkID(index: 4242, name: "ghost0"))
            Issue.record("added to a missing link")
        } catch {
            #expect(error.errno == .noSuchDevice)
        }
    }
}

@Suite(needsKernel)
struct RouteTests {
    let scope = NamespaceScope()

    @Test func defaultRouteViaGateway() throws {
        let (namespace, netlink, bridge) = try namespaceWithBridge(scope)
        try netlink.addressAdd(IPPrefix("10.88.0.5/16")!, to: bridge.id)
        try netlink.routeAdd(.defaultRoute(via: IPAddress("10.88.0.1")!), dev: bridge.id)

        let shown = try namespace.ip("route", "show", "default")
        #expect(shown[0]?["gateway"]?.stringValue == "10.88.0.1")
        #expect(shown[0]?["dev"]?.stringValue == "br0")
        let listed = try netlink.routes(.v4).filter(\.isDefault)
        #expect(listed.map(\.gateway) == [IPAddress("10.88.0.1")])
        #expect(listed.first?.outputInterface == bridge.index)
    }

    @Test func linkScopeRouteTableMetricMTUAndAdvmss() throws {
        let (namespace, netlink, bridge) = try namespaceWithBridge(scope)
        let route = Route(destination: IPPrefix("192.168.50.0/24")!, table: 1000, priority: 77, scope: .link,
                          mtu: 1400, advmss: 1360)
        try netlink.routeAdd(route, dev: bridge.id)

        let shown = try #require(try namespace.ip("route", "show", "table", "1000")[0])
        #expect(shown["dst"]?.stringValue == "192.168.50.0/24")
        #expect(shown["scope"]?.stringValue == "link")
        #expect(shown["metric"]?.intValue == 77)
        let metrics = shown["metrics"]?.arrayValue ?? []
        #expect(metrics.contains { $0["mtu"]?.intValue == 1400 })
        #expect(metrics.contains { $0["advmss"]?.intValue == 1360 })

        let listed = try #require(try netlink.routes(.v4, table: 1000).first)
        #expect(listed == Route(destination: IPPrefix("192.168.50.0/24")!, outputInterface: bridge.index, table: 1000,
                                priority: 77, scope: .link, mtu: 1400, advmss: 1360))

        try netlink.routeDelete(route, dev: bridge.id)
        #expect(try netlink.routes(.v4, table: 1000).isEmpty)
        do {
            try netlink.routeDelete(route, dev: bridge.id)
            Issue.record("deleted a missing route")
        } catch {
            #expect(error.isNotFound)
        }
    }

    @Test func ipv6DefaultRoute() throws {
        let (namespace, netlink, bridge) = try namespaceWithBridge(scope)
        try netlink.addressAdd(IPPrefix("fd00:88::5/64")!, to: bridge.id, skipDAD: true)
        try netlink.routeAdd(.defaultRoute(via: IPAddress("fd00:88::1")!), dev: bridge.id)
        #expect(try namespace.ip("-6", "route", "show", "default")[0]?["gateway"]?.stringValue == "fd00:88::1")
        #expect(try netlink.routes(.v6).contains { $0.isDefault && $0.gateway == IPAddress("fd00:88::1") })
    }

    @Test func unreachableGatewayIsAnErrorNamingTheRoute() throws {
        let (_, netlink, bridge) = try namespaceWithBridge(scope)
        do {
            try netlink.routeAdd(.defaultRoute(via: IPAddress("10.99.0.1")!), dev: bridge.id)
            Issue.record("added a route via an unreachable gateway")
        } catch {
            #expect(error.operation.hasPrefix("add route default via 10.99.0.1 dev br0 in "))
            #expect(error.errno == .networkUnreachable)
        }
    }
}
