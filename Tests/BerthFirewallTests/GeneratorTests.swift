import BerthFirewall
import BerthIP
import Testing

let berth0 = FirewallNetwork(bridge: "berth0", subnets: [IPPrefix("10.88.0.0/16")!, IPPrefix("fd00:88::/64")!])
let samplePorts: [(mapping: PortMapping, owner: String?)] = [
    (PortMapping(proto: .tcp, hostPort: 8080, containerIP: IPAddress("10.88.0.5")!, containerPort: 80), "c0ffee/eth0"),
    (PortMapping(hostIP: IPAddress("10.0.2.15")!, proto: .udp, hostPort: 53, containerIP: IPAddress("10.88.0.5")!, containerPort: 5353), "c0ffee/eth0"),
    (PortMapping(proto: .tcp, hostPort: 8080, containerIP: IPAddress("fd00:88::5")!, containerPort: 80), "c0ffee/eth0"),
]

/// The table for one dual-stack network with three published ports, as `nft list` prints it.
let sampleText = """
    table inet berth {
    \tmap fwd_in {
    \t\ttype ifname : verdict
    \t\telements = { "berth0" : jump in_berth0 }
    \t}

    \tmap fwd_out {
    \t\ttype ifname : verdict
    \t\telements = { "berth0" : jump out_berth0 }
    \t}

    \tmap post_out {
    \t\ttype ifname : verdict
    \t\telements = { "berth0" : jump post_out_berth0 }
    \t}

    \tmap post_in {
    \t\ttype ifname : verdict
    \t\telements = { "berth0" : jump post_in_berth0 }
    \t}

    \tmap ports4 {
    \t\ttype ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service
    \t\telements = { 10.0.2.15 . udp . 53 comment "c0ffee/eth0" : 10.88.0.5 . 5353 }
    \t}

    \tmap ports4_any {
    \t\ttype inet_proto . inet_service : ipv4_addr . inet_service
    \t\telements = { tcp . 8080 comment "c0ffee/eth0" : 10.88.0.5 . 80 }
    \t}

    \tmap ports6 {
    \t\ttype ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service
    \t}

    \tmap ports6_any {
    \t\ttype inet_proto . inet_service : ipv6_addr . inet_service
    \t\telements = { tcp . 8080 comment "c0ffee/eth0" : fd00:88::5 . 80 }
    \t}

    \tchain forward {
    \t\ttype filter hook forward priority filter; policy accept;
    \t\tct state invalid drop
    \t\tct state established,related accept
    \t\toifname vmap @fwd_in
    \t\tiifname vmap @fwd_out
    \t}

    \tchain hostports {
    \t\tdnat ip to ip daddr . meta l4proto . th dport map @ports4
    \t\tdnat ip to meta l4proto . th dport map @ports4_any
    \t\tdnat ip6 to ip6 daddr . meta l4proto . th dport map @ports6
    \t\tdnat ip6 to meta l4proto . th dport map @ports6_any
    \t}

    \tchain prerouting {
    \t\ttype nat hook prerouting priority dstnat; policy accept;
    \t\tfib daddr type local jump hostports
    \t}

    \tchain output {
    \t\ttype nat hook output priority -100; policy accept;
    \t\tfib daddr type local jump hostports
    \t}

    \tchain postrouting {
    \t\ttype nat hook postrouting priority srcnat; policy accept;
    \t\tiifname vmap @post_out
    \t\toifname vmap @post_in
    \t}

    \tchain in_berth0 {
    \t\tiifname "berth0" accept
    \t\tct status dnat accept
    \t\tdrop
    \t}

    \tchain out_berth0 {
    \t\taccept
    \t}

    \tchain post_out_berth0 {
    \t\toifname != "berth0" ip saddr 10.88.0.0/16 masquerade
    \t\toifname != "berth0" ip6 saddr fd00:88::/64 masquerade
    \t}

    \tchain post_in_berth0 {
    \t\tct status dnat ip saddr 10.88.0.0/16 masquerade
    \t\tct status dnat ip6 saddr fd00:88::/64 masquerade
    \t\tct status dnat fib saddr type local masquerade
    \t}
    }

    """

@Suite struct GeneratorTests {
    @Test func oneNetworkWithPublishedPortsRendersAsNftListsIt() {
        let ruleset = FirewallLayout.ruleset(networks: [berth0], ports: samplePorts)
        #expect(ruleset.text == sampleText)
    }

    @Test func iccOffDropsTrafficFromTheBridgeItselfAndNoMasqueradeLeavesNoLeavingElement() {
        let isolated = FirewallNetwork(bridge: "berth1", subnets: [IPPrefix("10.89.0.0/16")!], masquerade: false,
                                       interContainerCommunication: false)
        let chains = FirewallLayout.chains(of: isolated)
        #expect(chains[0].rules.map(\.text) == ["iifname \"berth1\" drop", "ct status dnat accept", "drop"])
        let maps = FirewallLayout.elements(of: isolated).map(\.map.name)
        #expect(maps == ["fwd_in", "fwd_out", "post_in"])
    }

    @Test func portMappingsGoToTheirMap() {
        let any4 = FirewallLayout.element(of: samplePorts[0].mapping, owner: "a")
        #expect(any4.map.name == "ports4_any")
        #expect(any4.element.text == #"tcp . 8080 comment "a" : 10.88.0.5 . 80"#)
        let host4 = FirewallLayout.element(of: samplePorts[1].mapping, owner: nil)
        #expect(host4.map.name == "ports4")
        #expect(host4.element.text == "10.0.2.15 . udp . 53 : 10.88.0.5 . 5353")
        #expect(FirewallLayout.element(of: samplePorts[2].mapping, owner: nil).map.name == "ports6_any")
        #expect(samplePorts[1].mapping.hostSide == "53/udp on 10.0.2.15")
        #expect(samplePorts[0].mapping.hostSide == "8080/tcp on 0.0.0.0")
    }

    @Test func nonByteAlignedPrefixesAreMasked() {
        let rule = NFTRule(.sourceAddress(IPPrefix("10.89.16.0/20")!))
        #expect(rule.text == "ip saddr 10.89.16.0/20")
        #expect(rule.expressions == [
            .meta(.nfproto, register: 1), .compare(.equal, register: 1, data: [2]),
            .payload(.network, offset: 12, length: 4, register: 1),
            .bitwise(register: 1, length: 4, mask: [0xff, 0xff, 0xf0, 0x00], xor: [0, 0, 0, 0]),
            .compare(.equal, register: 1, data: [10, 89, 16, 0]),
        ])
    }
}

/// A cluster node's network: pod and service ranges never masqueraded, in both families.
let clusterNode = FirewallNetwork(bridge: "cni0", subnets: [IPPrefix("10.244.1.0/24")!, IPPrefix("fd00:244:1::/64")!],
                                  unmasqueraded: [IPPrefix("10.244.0.0/16")!, IPPrefix("10.96.0.0/12")!, IPPrefix("10.97.0.0/16")!,
                                                  IPPrefix("192.0.2.8/30")!, IPPrefix("192.0.2.12/31")!, IPPrefix("fd00:244::/48")!])

@Suite struct NoMasqueradeTests {
    @Test func theDestinationsAreOneSetPerFamilyLookedUpBeforeMasquerading() {
        #expect(clusterNode.addressSets.map(\.name) == ["nomasq4_cni0", "nomasq6_cni0"])
        // Sorted; 10.97.0.0/16 lies inside 10.96.0.0/12 and the two /30s are adjacent: merged.
        #expect(clusterNode.addressSets[0].ranges.map(\.text) == ["10.96.0.0/12", "10.244.0.0/16", "192.0.2.8-192.0.2.13"])
        #expect(clusterNode.addressSets[1].ranges.map(\.text) == ["fd00:244::/48"])
        let inbound = FirewallLayout.chains(of: clusterNode)[0]
        #expect(inbound.rules.map(\.text) == [
            #"iifname "cni0" accept"#, "ct status dnat accept",
            "ip saddr @nomasq4_cni0 accept", "ip6 saddr @nomasq6_cni0 accept", "drop",
        ], "the rest of the cluster reaches the pods")
        let leaving = FirewallLayout.chains(of: clusterNode)[2]
        #expect(leaving.chain.name == "post_out_cni0")
        #expect(leaving.rules.map(\.text) == [
            "ip daddr @nomasq4_cni0 return",
            "ip6 daddr @nomasq6_cni0 return",
            #"oifname != "cni0" ip saddr 10.244.1.0/24 masquerade"#,
            #"oifname != "cni0" ip6 saddr fd00:244:1::/64 masquerade"#,
        ])
        let text = FirewallLayout.ruleset(networks: [clusterNode]).text
        #expect(text.contains("""
            \tset nomasq4_cni0 {
            \t\ttype ipv4_addr
            \t\tflags interval
            \t\telements = { 10.96.0.0/12, 10.244.0.0/16,
            \t\t\t     192.0.2.8-192.0.2.13 }
            \t}
            """), "\(text)")
    }

    @Test func withoutDestinationsThereIsNoSetAndWithoutMasqueradeNoLeavingRules() {
        #expect(berth0.addressSets.isEmpty)
        #expect(FirewallLayout.chains(of: berth0).allSatisfy { $0.rules.allSatisfy { !$0.text.contains("@nomasq") } })
        // Not masquerading, the set still lets those sources in; nothing jumps to post_out_b.
        let unmasqueraded = FirewallNetwork(bridge: "b", subnets: [IPPrefix("10.1.0.0/16")!], masquerade: false,
                                            unmasqueraded: [IPPrefix("10.0.0.0/8")!])
        #expect(unmasqueraded.addressSets.map(\.name) == ["nomasq4_b"])
        #expect(FirewallLayout.chains(of: unmasqueraded)[0].rules.map(\.text).contains("ip saddr @nomasq4_b accept"))
        #expect(!FirewallLayout.elements(of: unmasqueraded).contains { $0.map.name == "post_out" })
    }

    @Test func rangesReadBackAsPrefixesWhereTheyAreOne() {
        func range(_ first: String, _ last: String) -> NFTAddressRange { NFTAddressRange(first: IPAddress(first)!, last: IPAddress(last)!) }
        #expect(range("10.0.0.0", "10.255.255.255").prefix == IPPrefix("10.0.0.0/8"))
        #expect(range("10.0.0.1", "10.0.0.1").text == "10.0.0.1")
        #expect(range("10.0.0.1", "10.0.0.2").prefix == nil)
        #expect(range("10.0.0.2", "10.0.0.5").text == "10.0.0.2-10.0.0.5")
        #expect(range("0.0.0.0", "255.255.255.255").text == "0.0.0.0/0")
        #expect(range("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff").text == "::/0")
        #expect(NFTAddressRange.merging([IPPrefix("0.0.0.0/0")!, IPPrefix("10.0.0.0/8")!]).map(\.text) == ["0.0.0.0/0"])
    }
}
