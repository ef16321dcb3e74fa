import BerthCNI
import BerthIP
import BerthJSON
import BerthNetlink
import BerthTestSupport
import Foundation
import Testing

/// CNI-CONFORMANCE items 30–34 and the data plane, with the real binary.
@Suite(needsKernel)
struct BridgeTests {
    let scope = NamespaceScope()

    @Test func twoContainersPingEachOtherAndTheGatewayAndTheResultMatchesTheKernel() throws {
        let lab = try Lab(scope)
        let first = try lab.container(), second = try lab.container()
        let config = lab.config()
        let result = try lab.add("first", first, config: config)
        try lab.add("second", second, config: config)

        // interfaces = bridge, host veth, container interface with its sandbox.
        #expect(result.interfaces.count == 3)
        #expect(result.interfaces[0].name == "berth0" && result.interfaces[0].sandbox == nil)
        #expect(result.interfaces[1].name.hasPrefix("veth") && result.interfaces[1].name.count == 12)
        #expect(result.interfaces[2].name == "eth0" && result.interfaces[2].sandbox == first.path)
        #expect(result.ips == [.init(interface: 2, address: IPPrefix("10.88.0.2/16")!, gateway: IPAddress("10.88.0.1")!)])
        #expect(result.routes.contains { $0.destination == IPPrefix("0.0.0.0/0") && $0.gateway == IPAddress("10.88.0.1") })

        // MACs equal the kernel's; the host veth is a port of the bridge and up.
        let bridge = try #require(try lab.host.ip("link", "show", "berth0")[0])
        #expect(bridge["address"]?.stringValue == result.interfaces[0].mac)
        let veth = try #require(try lab.host.ip("link", "show", result.interfaces[1].name)[0])
        #expect(veth["address"]?.stringValue == result.interfaces[1].mac)
        #expect(veth["master"]?.stringValue == "berth0")
        #expect(veth["flags"]?.arrayValue.contains(.string("UP")) == true)
        let eth0 = try #require(try first.ip("addr", "show", "eth0")[0])
        #expect(eth0["address"]?.stringValue == result.interfaces[2].mac)
        #expect(eth0["address"]?.stringValue == "02:42:0a:58:00:02")  // Docker-style, from the IPv4 address
        #expect(eth0["flags"]?.arrayValue.contains(.string("UP")) == true)
        #expect(eth0["addr_info"]?.arrayValue.contains { $0["local"]?.stringValue == "10.88.0.2" } == true)
        #expect(try first.ip("link", "show", "lo")[0]?["flags"]?.arrayValue.contains(.string("UP")) == true)

        // The gateway is on the bridge, forwarding is on, the default route points at it.
        #expect(try lab.host.ip("addr", "show", "berth0")[0]?["addr_info"]?.arrayValue.contains { $0["local"]?.stringValue == "10.88.0.1" } == true)
        #expect(try lab.host.exec("cat", "/proc/sys/net/ipv4/ip_forward") == "1\n")
        #expect(try first.ip("route", "show", "default")[0]?["gateway"]?.stringValue == "10.88.0.1")
        // Quiet by default (flat cost as the bridge grows): no gratuitous ARP for a MAC derived
        // from the address, no IPv6 link-local address in the container or on the host port, no
        // multicast snooping on the bridge.
        #expect(try first.exec("cat", "/proc/sys/net/ipv4/conf/eth0/arp_notify") == "0\n")
        #expect(try first.ip("-6", "addr", "show", "eth0").arrayValue.allSatisfy { $0["addr_info"]?.arrayValue.isEmpty ?? true })
        #expect(try lab.host.exec("cat", "/proc/sys/net/ipv6/conf/\(result.interfaces[1].name)/disable_ipv6") == "1\n")
        #expect(try lab.host.ip("link", "show", "berth0")[0]?["linkinfo"]?["info_data"]?["mcast_snooping"]?.intValue == 0)

        #expect(lab.pings(from: first, "10.88.0.3"))
        #expect(lab.pings(from: second, "10.88.0.2"))
        #expect(lab.pings(from: first, "10.88.0.1"))
    }

    @Test func masqueradeHidesContainersBehindTheHostAndIpMasqFalseDoesNot() throws {
        for masquerade in [true, false] {
            let lab = try Lab(scope)
            let container = try lab.container()
            try lab.add("c", container, config: lab.config(extra: ["ipMasq": .bool(masquerade)]))
            try lab.countArrivals(from: [Lab.hostUplink, "10.88.0.0/16"])

            let reached = lab.pings(from: container, Lab.outsideAddress)
            let counts = try lab.arrivals()
            if masquerade {
                #expect(reached)
                #expect(counts == [1, 0], "the outside sees the host's uplink address")
            } else {
                #expect(counts.count == 2 && counts[0] == 0 && counts[1] > 0, "the outside sees the container's address: \(counts)")
            }
        }
    }

    @Test func publishedPortsAnswerFromEverywhereAndNothingElseGetsIn() throws {
        let lab = try Lab(scope)
        let web = try lab.container(), sibling = try lab.container()
        let mappings: JSON = .array([.object(["hostPort": .int(8080), "containerPort": .int(80), "protocol": .string("tcp")])])
        try lab.add("web", web, config: lab.config(extra: ["runtimeConfig": .object(["portMappings": mappings])]))
        try lab.add("sibling", sibling, config: lab.config())
        try lab.listen(in: web, port: 80)
        try lab.listen(in: web, port: 81)

        #expect(lab.connects(from: lab.outside, to: Lab.hostUplink, port: 8080), "from outside")
        #expect(lab.connects(from: lab.host, to: Lab.hostUplink, port: 8080), "from the host")
        #expect(lab.connects(from: lab.host, to: "127.0.0.1", port: 8080), "from the host's 127.0.0.1")
        #expect(lab.connects(from: sibling, to: Lab.hostUplink, port: 8080), "from a sibling (hairpin)")
        #expect(lab.connects(from: web, to: Lab.hostUplink, port: 8080), "from the publishing container itself (hairpin)")

        try run("ip", "-n", lab.outside.name, "route", "add", "10.88.0.0/16", "via", Lab.hostUplink)
        #expect(!lab.connects(from: lab.outside, to: "10.88.0.2", port: 81, timeout: 1), "unpublished port from outside")
        #expect(!lab.connects(from: lab.outside, to: Lab.hostUplink, port: 8081, timeout: 1))
    }

    @Test func twoBerthNetworksCannotReachEachOther() throws {
        let lab = try Lab(scope)
        let first = try lab.container(), second = try lab.container()
        try lab.add("a", first, config: lab.config(name: "net-a", bridge: "berth-a", subnets: ["10.88.0.0/16"]))
        try lab.add("b", second, config: lab.config(name: "net-b", bridge: "berth-b", subnets: ["10.89.0.0/16"]))
        #expect(!lab.pings(from: first, "10.89.0.2"))
        #expect(!lab.pings(from: second, "10.88.0.2"))
        #expect(lab.pings(from: first, Lab.outsideAddress) && lab.pings(from: second, Lab.outsideAddress))
    }

    @Test func iccFalseIsolatesContainersOnOneBridge() throws {
        let lab = try Lab(scope)
        let first = try lab.container(), second = try lab.container()
        let config = lab.config(extra: ["icc": .bool(false)])
        let result = try lab.add("a", first, config: config)
        try lab.add("b", second, config: config)
        #expect(!lab.pings(from: first, "10.88.0.3"))
        #expect(!lab.pings(from: second, "10.88.0.2"))
        #expect(lab.pings(from: first, "10.88.0.1"))
        let port = try lab.host.ip("link", "show", result.interfaces[1].name)[0]?["linkinfo"]?["info_slave_data"]
        #expect(port?["isolated"]?.boolValue == true)
    }

    @Test func optionsAreVisibleInTheKernel() throws {
        let lab = try Lab(scope)
        let container = try lab.container()
        let config = lab.config(subnets: ["10.88.0.0/16", "fd00:88::/64"], extra: [
            "mtu": .int(1400), "promiscMode": .bool(true), "hairpinMode": .bool(true),
            "runtimeConfig": .object(["mac": .string("02:00:00:aa:bb:cc")]),
        ])
        let result = try lab.add("c", container, config: config)
        #expect(result.ips.map(\.address.description) == ["10.88.0.2/16", "fd00:88::2/64"])
        let eth0 = try #require(try container.ip("addr", "show", "eth0")[0])
        #expect(eth0["mtu"]?.intValue == 1400)
        #expect(eth0["address"]?.stringValue == "02:00:00:aa:bb:cc")
        let v6 = eth0["addr_info"]?.arrayValue.first { $0["local"]?.stringValue == "fd00:88::2" }
        #expect(v6?["nodad"]?.boolValue == true, "IPv6 without DAD by default")
        #expect(try container.ip("-6", "route", "show", "default")[0]?["gateway"]?.stringValue == "fd00:88::1")
        let bridge = try #require(try lab.host.ip("link", "show", "berth0")[0])
        #expect(bridge["flags"]?.arrayValue.contains(.string("PROMISC")) == true)
        let port = try lab.host.ip("link", "show", result.interfaces[1].name)[0]
        #expect(port?["mtu"]?.intValue == 1400)
        #expect(port?["linkinfo"]?["info_slave_data"]?["hairpin"]?.boolValue == true)
        #expect(lab.pings(from: container, "fd00:88::1"))
        // A MAC of the runtime's choosing is announced (a reused address may have had another).
        #expect(try container.exec("cat", "/proc/sys/net/ipv4/conf/eth0/arp_notify") == "1\n")
        #expect(eth0["addr_info"]?.arrayValue.contains { $0["scope"]?.stringValue == "link" } == false, "no link-local address by default")
    }

    @Test func quietDefaultsCanBeTurnedBackOn() throws {
        let lab = try Lab(scope)
        let first = try lab.container(), second = try lab.container()
        let config = lab.config(subnets: ["10.88.0.0/16", "fd00:88::/64"], extra: [
            "arpNotify": .bool(true), "ipv6LinkLocal": .bool(true), "multicastSnooping": .bool(true),
        ])
        try lab.add("first", first, config: config)
        try lab.add("second", second, config: config)
        #expect(try first.exec("cat", "/proc/sys/net/ipv4/conf/eth0/arp_notify") == "1\n")
        let scopes = try first.ip("-6", "addr", "show", "eth0")[0]?["addr_info"]?.arrayValue.compactMap { $0["scope"]?.stringValue }
        #expect(scopes?.contains("link") == true, "\(String(describing: scopes))")
        #expect(try lab.host.ip("link", "show", "berth0")[0]?["linkinfo"]?["info_data"]?["mcast_snooping"]?.intValue == 1)
        #expect(lab.pings(from: first, "fd00:88::3") && lab.pings(from: second, "10.88.0.2"))
    }

    @Test func containersReachEachOtherOverIPv6WithoutLinkLocalAddresses() throws {
        let lab = try Lab(scope)
        let first = try lab.container(), second = try lab.container()
        let config = lab.config(subnets: ["10.88.0.0/16", "fd00:88::/64"])
        try lab.add("first", first, config: config)
        try lab.add("second", second, config: config)
        #expect(lab.pings(from: first, "fd00:88::3"), "neighbour discovery from global addresses")
        #expect(lab.pings(from: second, "fd00:88::2"))
        #expect(lab.pings(from: first, "fd00:88::1"))
    }

    /// Defaults that come from elsewhere: the MTU of the host's default-route link, DNS from the
    /// config, and a default route from IPAM merged with `isDefaultGateway` into one.
    @Test func mtuDnsAndRoutesFromTheHostAndIPAM() throws {
        let lab = try Lab(scope)
        try run("ip", "-n", lab.host.name, "link", "set", "up0", "mtu", "1450")
        let container = try lab.container()
        let ipam: JSON = .object(["type": .string("berth-ipam"), "dataDir": .string(lab.dataDirectory),
                                  "ranges": .array([.array([.object(["subnet": .string("10.88.0.0/16")])])]),
                                  "routes": .array([.object(["dst": .string("0.0.0.0/0")]), .object(["dst": .string("198.51.100.0/24")])])])
        let result = try lab.add("c", container, config: lab.config(extra: [
            "dns": .object(["nameservers": .array([.string("192.0.2.53")]), "search": .array([.string("example.test")])]),
        ], ipam: ipam))
        #expect(result.dns == CNIResult.DNS(nameservers: ["192.0.2.53"], search: ["example.test"]))
        #expect(try container.ip("link", "show", "eth0")[0]?["mtu"]?.intValue == 1450)
        #expect(try lab.host.ip("link", "show", "berth0")[0]?["mtu"]?.intValue == 1450)
        let routes = try container.ip("-4", "route", "show").arrayValue
        let summary = routes.map { "\($0["dst"]?.stringValue ?? "") via \($0["gateway"]?.stringValue ?? "-")" }.sorted()
        #expect(summary == ["10.88.0.0/16 via -", "198.51.100.0/24 via 10.88.0.1", "default via 10.88.0.1"])
        #expect(result.routes.filter { $0.destination.length == 0 }.count == 1)
    }

    /// `isGateway: false` leaves the bridge without an address; `isDefaultGateway: false` leaves
    /// the container without a default route. The subnet stays reachable on the bridge.
    @Test func withoutGatewayAndDefaultRoute() throws {
        let lab = try Lab(scope)
        let first = try lab.container(), second = try lab.container()
        let config = lab.config(extra: ["isGateway": .bool(false), "isDefaultGateway": .bool(false)])
        let result = try lab.add("a", first, config: config)
        try lab.add("b", second, config: config)
        let bridgeAddresses = try lab.host.ip("addr", "show", "berth0")[0]?["addr_info"]?.arrayValue
        #expect(bridgeAddresses?.contains { $0["family"]?.stringValue == "inet" } == false)
        #expect(try first.ip("route", "show", "default").arrayValue.isEmpty)
        #expect(result.routes.isEmpty)
        #expect(lab.pings(from: first, "10.88.0.3"))
        #expect(!lab.pings(from: first, Lab.outsideAddress))
    }

    @Test func macComesFromRuntimeConfigThenArgsThenCNIArgs() throws {
        let lab = try Lab(scope)
        let all = try lab.container(), argsAndEnv = try lab.container(), envOnly = try lab.container()
        try lab.add("a", all, config: lab.config(extra: [
            "runtimeConfig": .object(["mac": .string("02:00:00:00:00:01")]),
            "args": .object(["cni": .object(["mac": .string("02:00:00:00:00:02")])]),
        ]), environment: ["CNI_ARGS=MAC=02:00:00:00:00:03"])
        try lab.add("b", argsAndEnv, config: lab.config(extra: ["args": .object(["cni": .object(["mac": .string("02:00:00:00:00:02")])])]),
                    environment: ["CNI_ARGS=MAC=02:00:00:00:00:03"])
        try lab.add("c", envOnly, config: lab.config(), environment: ["CNI_ARGS=IgnoreUnknown=1;MAC=02:00:00:00:00:03"])
        #expect(try all.ip("link", "show", "eth0")[0]?["address"]?.stringValue == "02:00:00:00:00:01")
        #expect(try argsAndEnv.ip("link", "show", "eth0")[0]?["address"]?.stringValue == "02:00:00:00:00:02")
        #expect(try envOnly.ip("link", "show", "eth0")[0]?["address"]?.stringValue == "02:00:00:00:00:03")
    }

    @Test func enableDadAndForceAddress() throws {
        let lab = try Lab(scope)
        let container = try lab.container()
        try run("ip", "-n", lab.host.name, "link", "add", "berth0", "type", "bridge")
        try run("ip", "-n", lab.host.name, "addr", "add", "10.88.0.254/16", "dev", "berth0")
        let refused = try lab.failure(try lab.plugin("ADD", id: "c", container: container, config: lab.config()))
        #expect(refused.code == .invalidConfig)
        #expect(refused.msg.contains("forceAddress"))
        #expect(lab.leases().isEmpty, "the refused ADD released its lease")

        try lab.add("c", container, config: lab.config(subnets: ["10.88.0.0/16", "fd00:88::/64"],
                                                        extra: ["forceAddress": .bool(true), "enableDad": .bool(true)]))
        let addresses = try lab.host.ip("-4", "addr", "show", "berth0")[0]?["addr_info"]?.arrayValue.compactMap { $0["local"]?.stringValue }
        #expect(addresses == ["10.88.0.1"])
        let v6 = try container.ip("-6", "addr", "show", "eth0")[0]?["addr_info"]?.arrayValue.first { $0["local"]?.stringValue == "fd00:88::2" }
        #expect(v6?["nodad"] == nil, "DAD on when asked")
    }

    @Test func anExistingLinkThatIsNotABridgeIsRefused() throws {
        let lab = try Lab(scope)
        try run("ip", "-n", lab.host.name, "link", "add", "berth0", "type", "veth", "peer", "name", "other0")
        let error = try lab.failure(try lab.plugin("ADD", id: "c", container: try lab.container(), config: lab.config()))
        #expect(error.code.rawValue == 116)
        #expect(error.msg == "berth0 exists and is not a bridge (it is veth)")
        #expect(lab.leases().isEmpty)
    }

    @Test func invalidOptionsAreCode7NamingTheKey() throws {
        let lab = try Lab(scope)
        for (key, value, problem) in [("mtu", JSON.int(10), "mtu: 10 is not an MTU between 68 and 65535"),
                                      ("icc", .string("yes"), "icc: expected a boolean, found a string"),
                                      ("bridge", .string("a/b"), #"bridge: "a/b" is not a valid interface name (1–15 bytes, no '/', ':' or whitespace)"#),
                                      ("noMasquerade", .array([.string("10.244.0.1/16")]),
                                       "noMasquerade[0]: 10.244.0.1/16 has host bits set (the network is 10.244.0.0/16)"),
                                      ("noMasquerade", .array([.string("10.96.0.0/12"), .string("cluster")]),
                                       #"noMasquerade[1]: "cluster" is not an address with a prefix length (CIDR)"#),
                                      ("noMasquerade", .string("10.244.0.0/16"), "noMasquerade: expected an array, found a string")] {
            let error = try lab.failure(try lab.plugin("ADD", id: "c", container: try lab.container(), config: lab.config(extra: [key: value])))
            #expect(error.code == .invalidConfig)
            #expect(error.msg == "invalid network configuration: " + problem)
        }
        let ports: JSON = .array([.object(["hostPort": .int(0), "containerPort": .int(80)])])
        let error = try lab.failure(try lab.plugin("ADD", id: "c", container: try lab.container(),
                                                   config: lab.config(extra: ["runtimeConfig": .object(["portMappings": ports])])))
        #expect(error.msg == "invalid network configuration: runtimeConfig.portMappings[0].hostPort: 0 is not a port number")
        #expect(lab.leases().isEmpty && lab.records().isEmpty)
        #expect(try lab.table().isEmpty && lab.hostVeths().isEmpty)
    }

    /// noMasquerade: the network's set holds the destinations (merged), the record remembers
    /// them, CHECK finds them, and the last DEL takes them away with the table.
    @Test func noMasqueradeDestinationsBecomeTheNetworksSet() throws {
        let lab = try Lab(scope)
        let container = try lab.container()
        let config = lab.config(extra: ["noMasquerade": .array([.string("10.244.0.0/16"), .string("10.96.0.0/12"), .string("10.244.3.0/24")])])
        try lab.add("pod", container, config: config)
        let set = try lab.host.nft("list", "set", "inet", "berth", "nomasq4_berth0")
        #expect(set.contains("elements = { 10.96.0.0/12, 10.244.0.0/16 }"), "\(set)")
        #expect(lab.table().contains("ip daddr @nomasq4_berth0 return"))
        #expect(try String(contentsOfFile: "\(lab.stateDirectory)/berth/pod:eth0.json", encoding: .utf8).contains("10.244.3.0/24"))
        #expect(try lab.plugin("CHECK", id: "pod", container: container, config: config).status == 0)
        try lab.host.nft("delete", "element", "inet", "berth", "nomasq4_berth0", "{ 10.96.0.0/12 }")
        let check = try lab.failure(try lab.plugin("CHECK", id: "pod", container: container, config: config))
        #expect(check.msg.hasSuffix("is missing: set nomasq4_berth0 with 10.96.0.0/12, 10.244.0.0/16"), "\(check.msg)")
        #expect(try lab.plugin("DEL", id: "pod", container: container, config: config).status == 0)
        #expect(lab.table().isEmpty && lab.records().isEmpty)
    }
}
