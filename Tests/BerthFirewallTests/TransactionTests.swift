import BerthFirewall
import BerthIP
import BerthNetlink
import BerthTestSupport
import Foundation
import Testing

/// `nft list` output with the elements of each map in sorted order: the kernel lists hash-set
/// elements in its own order.
func normalized(_ listing: String) -> String {
    var lines = listing.components(separatedBy: "\n")
    var index = 0
    while index < lines.count {
        guard lines[index].hasPrefix("\t\telements = { ") else { index += 1; continue }
        var end = index
        while !lines[end].hasSuffix(" }") { end += 1 }
        let joined = lines[index...end].joined(separator: "\n")
        let body = joined.dropFirst("\t\telements = { ".count).dropLast(2)
        let items = body.components(separatedBy: ",\n\t\t\t     ").sorted()
        lines.replaceSubrange(index...end, with: ["\t\telements = { " + items.joined(separator: ",\n\t\t\t     ") + " }"])
        index += 1
    }
    return lines.joined(separator: "\n")
}

@Suite(needsKernel)
struct TransactionTests {
    let scope = NamespaceScope()

    func firewall(_ namespace: ScratchNamespace, destroy: Bool = Firewall.kernelHasDestroy) throws -> Firewall {
        let socket = try NetworkNamespace.run(in: namespace.target) { try NetlinkSocket(.netfilter) }
        return Firewall(socket: socket, supportsDestroy: destroy)
    }

    @Test func appliedTableListsExactlyAsRendered() throws {
        let namespace = try scope.make()
        let firewall = try self.firewall(namespace)
        try firewall.apply(network: berth0, publishing: samplePorts.map(\.mapping), owner: "c0ffee/eth0")
        #expect(normalized(try namespace.nft("list", "table", "inet", "berth")) == normalized(sampleText))
    }

    /// A network's noMasquerade sets: listed as rendered, their contents read back, replaced
    /// when the destinations change, removed with the network.
    @Test func addressSetsListAsRenderedAndFollowTheNetwork() throws {
        for destroy in [true, false] {
            let namespace = try scope.make()
            let firewall = try self.firewall(namespace, destroy: destroy)
            try firewall.apply(network: berth0)
            try firewall.apply(network: clusterNode)
            let wanted = FirewallLayout.ruleset(networks: [berth0, clusterNode])
            let listing = try namespace.nft("list", "table", "inet", "berth")
            #expect(normalized(listing) == normalized(wanted.text), "\(listing)")
            let state = try firewall.state()
            #expect(state.addressSets["nomasq4_cni0"] == clusterNode.addressSets[0].ranges)
            #expect(state.addressSets["nomasq6_cni0"] == clusterNode.addressSets[1].ranges)
            #expect(Firewall.differences(wanted: wanted, kernel: try firewall.snapshot()).isEmpty)

            // Other destinations, IPv4 only: the set's contents are replaced, the IPv6 set goes.
            let changed = FirewallNetwork(bridge: "cni0", subnets: clusterNode.subnets, unmasqueraded: [IPPrefix("10.32.0.0/12")!])
            try firewall.apply(network: changed)
            #expect(try firewall.ranges(ofSet: "nomasq4_cni0", family: .v4).map(\.text) == ["10.32.0.0/12"])
            #expect(try firewall.state().addressSets["nomasq6_cni0"] == nil)
            #expect(try !namespace.nft("list", "table", "inet", "berth").contains("nomasq6"))

            // An address set edited by hand is reported and repaired.
            try namespace.nft("add", "element", "inet", "berth", "nomasq4_cni0", "{ 172.16.0.0/12 }")
            let wantedNow = FirewallLayout.ruleset(networks: [berth0, changed])
            #expect(Firewall.differences(wanted: wantedNow, kernel: try firewall.snapshot()).map(\.description)
                    == ["~ set nomasq4_cni0 (its addresses differ)"])
            try firewall.repair(toward: wantedNow, networks: [berth0, changed])
            #expect(Firewall.differences(wanted: wantedNow, kernel: try firewall.snapshot()).isEmpty)

            try firewall.remove(changed, lastNetwork: false)
            #expect(try !namespace.nft("list", "table", "inet", "berth").contains("nomasq"), "destroy \(destroy)")
            #expect(normalized(try namespace.nft("list", "table", "inet", "berth")) == normalized(FirewallLayout.ruleset(networks: [berth0]).text))
        }
    }

    @Test func bytecodeEqualsWhatNftEmitsForTheSameText() throws {
        let namespace = try scope.make()
        let directory = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(directory) }
        let ruleset = FirewallLayout.ruleset(
            networks: [berth0, FirewallNetwork(bridge: "berth1", subnets: [IPPrefix("10.89.16.0/20")!, IPPrefix("fd00:89::/56")!],
                                               masquerade: false, interContainerCommunication: false),
                       FirewallNetwork(bridge: "berth2", subnets: [IPPrefix("10.90.0.0/9")!, IPPrefix("fd00:90::/60")!]),
                       clusterNode],
            ports: samplePorts)
        try ruleset.text.write(toFile: directory + "/ruleset.nft", atomically: true, encoding: .utf8)
        // nft -c checks without committing; --debug=netlink prints each rule's expressions.
        let debug = try namespace.nft("-c", "--debug=netlink", "-f", directory + "/ruleset.nft")
        var nftRules: [(chain: String, lines: [String])] = []
        for line in debug.components(separatedBy: "\n") {
            if line.hasPrefix("inet berth ") {
                nftRules.append((String(line.dropFirst("inet berth ".count)), []))
            } else if line.hasPrefix("  [ "), !nftRules.isEmpty {
                nftRules[nftRules.count - 1].lines.append(line)
            }
        }
        var ours: [(chain: String, lines: [String])] = []
        for (chain, rules) in ruleset.chains {
            for rule in rules {
                let lines = rule.bytecodeText(chain: chain.name).components(separatedBy: "\n").filter { $0.hasPrefix("  [ ") }
                ours.append((chain.name, lines))
            }
        }
        #expect(ours.count == nftRules.count)
        for (mine, theirs) in zip(ours, nftRules) {
            #expect(mine.chain == theirs.chain)
            #expect(mine.lines == theirs.lines, "\(mine.chain)")
        }
    }

    @Test func everyTransactionIsOneGeneration() throws {
        let namespace = try scope.make()
        let firewall = try self.firewall(namespace)
        let start = try firewall.generation()
        try firewall.apply(network: berth0)
        #expect(try firewall.generation() == start + 1)
        try firewall.apply(network: berth0, publishing: [samplePorts[0].mapping], owner: "a/eth0")
        #expect(try firewall.generation() == start + 2)
        try firewall.withdraw([samplePorts[0].mapping], owner: "a/eth0")
        #expect(try firewall.generation() == start + 3)
    }

    @Test func nftMonitorSeesOneNewGenerationPerTransaction() throws {
        let namespace = try scope.make()
        let firewall = try self.firewall(namespace)
        let monitor = try NftMonitor(namespace)
        defer { monitor.stop() }
        try monitor.waitUntilReady()
        let before = monitor.generations.count
        try firewall.apply(network: berth0)
        try firewall.apply(network: berth0, publishing: [samplePorts[0].mapping], owner: "a/eth0")
        try firewall.withdraw([samplePorts[0].mapping], owner: "a/eth0")
        try monitor.waitForGenerations(before + 3)
        #expect(monitor.generations.count - before == 3)
        let numbers = monitor.generations.suffix(3)
        #expect(numbers == [numbers.first!, numbers.first! + 1, numbers.first! + 2])
    }

    @Test func aFailingMessageLeavesTheRulesetUnchanged() throws {
        let namespace = try scope.make()
        let firewall = try self.firewall(namespace)
        try firewall.apply(network: berth0)
        let before = try namespace.nft("list", "ruleset")
        let generation = try firewall.generation()

        var batch = FirewallBatch()
        batch.ensure(FirewallNetwork(bridge: "berth7", subnets: [IPPrefix("10.77.0.0/16")!]))
        batch.publish([samplePorts[0].mapping], owner: "x/eth0")
        batch.addElements([NFTElement(key: [.interfaceName("x")], data: .jump("nowhere"))],
                          to: NFTMap("missing", key: NFTConcatenation(.interfaceName), data: .verdict), exclusive: false)
        do {
            try firewall.commit(batch)
            Issue.record("a batch with a bad message committed")
        } catch {
            #expect(error.operation == #"add element "x" : jump nowhere to missing"#)
            #expect(error.errno == .noSuchFileOrDirectory)
        }
        #expect(try namespace.nft("list", "ruleset") == before)
        #expect(try firewall.generation() == generation)
    }

    @Test func aSecondClaimOfAPublishedPortFailsNamingTheOwner() throws {
        let namespace = try scope.make()
        let firewall = try self.firewall(namespace)
        try firewall.apply(network: berth0, publishing: [samplePorts[0].mapping], owner: "first/eth0")
        let before = try namespace.nft("list", "ruleset")
        let sameHostPort = PortMapping(proto: .tcp, hostPort: 8080, containerIP: IPAddress("10.88.0.9")!, containerPort: 8000)
        do {
            try firewall.apply(network: berth0, publishing: [sameHostPort], owner: "second/eth0")
            Issue.record("published a port twice")
        } catch let error as FirewallError {
            #expect(error.description == "8080/tcp on 0.0.0.0 is already published by first/eth0")
            #expect(error.conflictingOwner == "first/eth0")
        }
        #expect(try namespace.nft("list", "ruleset") == before)
        // The same owner publishing again is idempotent.
        try firewall.apply(network: berth0, publishing: [samplePorts[0].mapping], owner: "first/eth0")
    }

    @Test func removingTheLastNetworkLeavesNoBerthObjects() throws {
        for destroy in [true, false] {
            let namespace = try scope.make()
            let firewall = try self.firewall(namespace, destroy: destroy)
            let second = FirewallNetwork(bridge: "berth1", subnets: [IPPrefix("10.89.0.0/16")!])
            try firewall.apply(network: berth0, publishing: [samplePorts[0].mapping], owner: "a/eth0")
            try firewall.apply(network: second)

            try firewall.remove(second, lastNetwork: false)
            #expect(try firewall.chainNames().filter { $0.hasSuffix("berth1") }.isEmpty, "destroy \(destroy)")
            #expect(try firewall.elements(of: FirewallLayout.forwardInbound).map(\.text) == [#""berth0" : jump in_berth0"#])
            try firewall.remove(second, lastNetwork: false)  // already gone: fine

            try firewall.remove(berth0, lastNetwork: true)
            #expect(try namespace.nft("list", "ruleset").isEmpty, "destroy \(destroy)")
            try firewall.remove(berth0, lastNetwork: true)
            #expect(try namespace.nft("list", "ruleset").isEmpty)
        }
    }

    @Test func withdrawingPortsIsIdempotentWithAndWithoutDestroy() throws {
        for destroy in [true, false] {
            let namespace = try scope.make()
            let firewall = try self.firewall(namespace, destroy: destroy)
            try firewall.apply(network: berth0, publishing: samplePorts.map(\.mapping), owner: "a/eth0")
            try firewall.withdraw([samplePorts[0].mapping, samplePorts[1].mapping], owner: "a/eth0")
            try firewall.withdraw([samplePorts[0].mapping], owner: "a/eth0")
            #expect(try firewall.elements(of: FirewallLayout.ports4Any).isEmpty)
            #expect(try firewall.elements(of: FirewallLayout.ports4).isEmpty)
            #expect(try firewall.elements(of: FirewallLayout.ports6Any).count == 1)
        }
    }

    @Test func anApplyRepairsTheTableAfterFlushRuleset() throws {
        let namespace = try scope.make()
        let firewall = try self.firewall(namespace)
        try firewall.apply(network: berth0)
        let whole = try namespace.nft("list", "table", "inet", "berth")
        try namespace.nft("flush", "ruleset")
        #expect(try firewall.chainNames().isEmpty)
        try firewall.apply(network: berth0)
        #expect(try namespace.nft("list", "table", "inet", "berth") == whole)
        // Deleting one rule by hand: the next apply puts it back, once.
        try namespace.nft("flush", "chain", "inet", "berth", "in_berth0")
        try firewall.apply(network: berth0)
        #expect(try namespace.nft("list", "table", "inet", "berth") == whole)
    }

    /// Twenty thousand elements in one transaction: split over messages, one sendmsg, no
    /// EMSGSIZE or ENOBUFS.
    @Test func aLargeBatchCommitsAtOnce() throws {
        let namespace = try scope.make()
        let firewall = try self.firewall(namespace)
        try firewall.apply(network: berth0)
        let ports = (0..<20_000).map {
            PortMapping(proto: .tcp, hostPort: UInt16(10_000 + $0), containerIP: IPAddress(v4: 0x0A58_0000 + UInt32($0 % 60_000) + 2),
                        containerPort: 80)
        }
        let generation = try firewall.generation()
        var batch = FirewallBatch()
        batch.publish(ports, owner: "bulk")
        #expect(batch.messages.count > 1)
        try firewall.commit(batch)
        #expect(try firewall.generation() == generation + 1)
        #expect(try firewall.elements(of: FirewallLayout.ports4Any).count == 20_000)
        try firewall.withdraw(ports, owner: "bulk")
        #expect(try firewall.elements(of: FirewallLayout.ports4Any).isEmpty)
    }

    /// A second ADD on an intact table rewrites no rule: rule handles stay the same.
    @Test func anIntactTableIsLeftAsItIs() throws {
        let namespace = try scope.make()
        let firewall = try self.firewall(namespace)
        try firewall.apply(network: berth0)
        let before = try namespace.nft("-a", "list", "table", "inet", "berth")
        try firewall.apply(network: berth0, publishing: [samplePorts[0].mapping], owner: "a/eth0")
        try firewall.withdraw([samplePorts[0].mapping], owner: "a/eth0")
        #expect(try namespace.nft("-a", "list", "table", "inet", "berth") == before)
    }

    @Test func theReadSideDecodesElementsAndFindsWhatIsMissing() throws {
        let namespace = try scope.make()
        let firewall = try self.firewall(namespace)
        try firewall.apply(network: berth0, publishing: samplePorts.map(\.mapping), owner: "c0ffee/eth0")
        let expected = FirewallLayout.ruleset(networks: [berth0], ports: samplePorts)
        #expect(try firewall.missing(from: expected).isEmpty)
        #expect(Set(try firewall.elements(of: FirewallLayout.ports4)) == Set(expected.elements["ports4"]!))
        #expect(try firewall.element([.proto(.tcp), .port(8080)], in: FirewallLayout.ports4Any)?.comment == "c0ffee/eth0")
        #expect(try firewall.element([.proto(.udp), .port(8080)], in: FirewallLayout.ports4Any) == nil)

        try namespace.nft("delete", "element", "inet", "berth", "ports4_any", "{ tcp . 8080 }")
        try namespace.nft("delete", "element", "inet", "berth", "fwd_out", #"{ "berth0" }"#)
        try namespace.nft("delete", "chain", "inet", "berth", "out_berth0")
        #expect(try firewall.missing(from: expected).sorted() == [
            "chain out_berth0",
            #"element "berth0" : jump out_berth0 in fwd_out"#,
            #"element tcp . 8080 comment "c0ffee/eth0" : 10.88.0.5 . 80 in ports4_any"#,
        ])
    }

    @Test func aConcurrentCommitMakesTheTransactionRetry() throws {
        let namespace = try scope.make()
        let firewall = try self.firewall(namespace)
        try firewall.apply(network: berth0)
        let stale = try firewall.generation()
        try namespace.nft("add", "table", "ip", "someone-else")
        var batch = FirewallBatch()
        batch.publish([samplePorts[0].mapping], owner: "a/eth0")
        do {
            try firewall.commit(batch, generation: stale)
            Issue.record("committed against a stale generation")
        } catch {
            #expect(error.isConcurrentChange)
        }
        #expect(try firewall.elements(of: FirewallLayout.ports4Any).isEmpty)

        var attempts = 0
        try firewall.transact { _ in
            attempts += 1
            if attempts == 1 { try namespace.nft("add", "table", "ip", "someone-else-again") }
            return batch
        }
        #expect(attempts == 2)
        #expect(try firewall.elements(of: FirewallLayout.ports4Any).count == 1)
    }
}
