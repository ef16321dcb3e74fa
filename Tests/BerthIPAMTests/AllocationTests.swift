import BerthCNI
import BerthIP
import BerthIPAM
import Testing

/// The order host-local tries addresses in (allocator.go, RangeIter.Next), as vectors.
@Suite struct RoundRobinTests {
    /// The first `count` candidates of a set made of the single range `range`.
    func order(_ range: String, after last: String? = nil, count: Int = 1000) throws -> [String] {
        let set = try ipamConfig(#"{"type":"berth-ipam","ranges":[[\#(range)]]}"#).rangeSets[0]
        return RoundRobin(set, after: last.flatMap { IPAddress($0) }).prefix(count).map(\.address.description)
    }

    @Test func freshStartSkipsTheGatewayAndEndsBeforeTheBroadcast() throws {
        #expect(try order(#"{"subnet":"10.0.0.0/29"}"#) == ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"])
    }

    @Test func resumesAfterTheLastReservedAndWrapsAround() throws {
        #expect(try order(#"{"subnet":"10.0.0.0/29"}"#, after: "10.0.0.4") == ["10.0.0.5", "10.0.0.6", "10.0.0.2", "10.0.0.3", "10.0.0.4"])
        // Starting at the end wraps to the first non-gateway address.
        #expect(try order(#"{"subnet":"10.0.0.0/29"}"#, after: "10.0.0.6") == ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"])
    }

    @Test func gatewayInsideTheRangeIsSkippedWherever() throws {
        #expect(try order(#"{"subnet":"10.0.0.0/29","gateway":"10.0.0.4"}"#) == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.5", "10.0.0.6"])
        #expect(try order(#"{"subnet":"10.0.0.0/29","gateway":"10.0.0.4"}"#, after: "10.0.0.3") == ["10.0.0.5", "10.0.0.6", "10.0.0.1", "10.0.0.2", "10.0.0.3"])
    }

    @Test func explicitStartAndEnd() throws {
        #expect(try order(#"{"subnet":"10.0.0.0/24","rangeStart":"10.0.0.10","rangeEnd":"10.0.0.12"}"#) == ["10.0.0.10", "10.0.0.11", "10.0.0.12"])
        // A last reserved address outside the set (the config changed) restarts at the beginning.
        #expect(try order(#"{"subnet":"10.0.0.0/24","rangeStart":"10.0.0.10","rangeEnd":"10.0.0.12"}"#, after: "10.0.0.200") == ["10.0.0.10", "10.0.0.11", "10.0.0.12"])
    }

    @Test func movesAcrossTheRangesOfASet() throws {
        let set = #"[{"subnet":"10.0.0.0/30"},{"subnet":"10.1.0.0/24","rangeStart":"10.1.0.7","rangeEnd":"10.1.0.8"}]"#
        let ipam = #"{"type":"berth-ipam","ranges":[\#(set)]}"#
        let config = try IPAMConfig(config: NetworkConfig(parsing: Array(#"{"cniVersion":"1.0.0","name":"n","type":"t","ipam":\#(ipam)}"#.utf8)))
        let fresh = RoundRobin(config.rangeSets[0], after: nil).map(\.address.description)
        #expect(fresh == ["10.0.0.2", "10.1.0.7", "10.1.0.8"])
        let resumed = RoundRobin(config.rangeSets[0], after: IPAddress("10.1.0.7")).map(\.address.description)
        #expect(resumed == ["10.1.0.8", "10.0.0.2", "10.1.0.7"])
        let fromEnd = RoundRobin(config.rangeSets[0], after: IPAddress("10.1.0.8")).map(\.address.description)
        #expect(fromEnd == ["10.0.0.2", "10.1.0.7", "10.1.0.8"])
    }

    @Test func ipv6LastAddressOfASubnetIsOffered() throws {
        #expect(try order(#"{"subnet":"fd00::/126"}"#) == ["fd00::2", "fd00::3"])
        #expect(try order(#"{"subnet":"fd00::/64"}"#, after: "fd00::ffff:ffff:ffff:fffe", count: 3)
            == ["fd00::ffff:ffff:ffff:ffff", "fd00::2", "fd00::3"])
    }
}

@Suite struct AddressManagerTests {
    let store = MemoryLeaseStore()

    func manager(_ ipam: String = #"{"type":"berth-ipam","ranges":[[{"subnet":"10.0.0.0/29"}],[{"subnet":"fd00::/125"}]]}"#,
                 extra: String = "") throws -> AddressManager {
        AddressManager(config: try ipamConfig(ipam, extra: extra), store: store)
    }

    @Test func oneAddressPerSetWithGatewayAndSubnetLength() throws {
        let result = try manager().add(attachment("a"))
        #expect(result.ips == [
            .init(address: IPPrefix("10.0.0.2/29")!, gateway: IPAddress("10.0.0.1")!),
            .init(address: IPPrefix("fd00::2/125")!, gateway: IPAddress("fd00::1")!),
        ])
        #expect(result.ips.allSatisfy { $0.interface == nil })
    }

    @Test func successiveAddsRoundRobinAndReuseOnlyAfterWrapping() throws {
        let manager = try manager(#"{"type":"berth-ipam","subnet":"10.0.0.0/29"}"#)
        var handed: [String] = []
        for id in ["a", "b", "c"] { handed.append(try manager.allocate(for: attachment(id))[0].address.address.description) }
        try manager.release(attachment("a"))
        for id in ["d", "e", "f"] { handed.append(try manager.allocate(for: attachment(id))[0].address.address.description) }
        // .2 was freed after .4, but round robin continues to .5 and .6 and only then wraps to .2.
        #expect(handed == ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.2"])
    }

    @Test func aFullSetIsAnErrorNamingItsRange() throws {
        let manager = try manager(#"{"type":"berth-ipam","subnet":"10.0.0.0/30"}"#)
        _ = try manager.allocate(for: attachment("a"))
        do {
            _ = try manager.allocate(for: attachment("b"))
            Issue.record("allocated from a full set")
        } catch {
            #expect(error.code == .addressesExhausted)
            #expect(error.msg == "no free address in range set 0 (10.0.0.1-10.0.0.2) of network testnet")
        }
    }

    @Test func anAttachmentHoldsAtMostOneAddressPerSet() throws {
        let manager = try manager()
        _ = try manager.allocate(for: attachment("a"))
        do {
            _ = try manager.allocate(for: attachment("a"))
            Issue.record("second ADD succeeded")
        } catch {
            #expect(error.code == .addressAlreadyAllocated)
        }
        // Another interface of the same container is another attachment.
        #expect(try manager.allocate(for: attachment("a", "net1")).count == 2)
        #expect(store.leasesByAddress.count == 4)
    }

    @Test func aFailureInALaterSetReleasesTheEarlierAddresses() throws {
        let manager = try manager(#"{"type":"berth-ipam","ranges":[[{"subnet":"10.0.0.0/29"}],[{"subnet":"10.1.0.0/30"}]]}"#)
        _ = try manager.allocate(for: attachment("a"))  // takes the only address of set 1
        #expect(throws: CNIError.self) { try manager.allocate(for: attachment("b")) }
        #expect(store.leasesByAddress.values.map(\.0).allSatisfy { $0 == attachment("a") })
        // A store failure in set 1 rolls back too.
        store.failReserve = { _, set in set == 1 }
        do {
            _ = try manager.allocate(for: attachment("c"))
            Issue.record("allocated through a failing store")
        } catch {
            #expect(error.code == .leaseStoreFailed)
            #expect(error.msg == "lease store of network testnet: disk full")
        }
        #expect(store.leasesByAddress.values.map(\.0).allSatisfy { $0 == attachment("a") })
    }

    @Test func requestedAddressIsHonouredOrRefusedClearly() throws {
        let manager = try manager(#"{"type":"berth-ipam","subnet":"10.0.0.0/29"}"#, extra: #""runtimeConfig":{"ips":["10.0.0.5"]}"#)
        #expect(try manager.allocate(for: attachment("a"))[0].address == IPPrefix("10.0.0.5/29"))
        do {
            _ = try manager.allocate(for: attachment("b"))
            Issue.record("handed out a taken address")
        } catch {
            #expect(error.code == .addressUnavailable)
            #expect(error.msg == "requested address 10.0.0.5 is already leased to a/eth0 in network testnet")
        }
        // Round robin is not disturbed by the requested address beyond recording it.
        let other = try self.manager(#"{"type":"berth-ipam","subnet":"10.0.0.0/29"}"#)
        #expect(try other.allocate(for: attachment("c"))[0].address == IPPrefix("10.0.0.6/29"))
    }

    @Test func releaseIsIdempotentAndCheckSeesIt() throws {
        let manager = try manager()
        _ = try manager.allocate(for: attachment("a"))
        try manager.check(attachment("a"))
        try manager.release(attachment("a"))
        try manager.release(attachment("a"))
        #expect(store.leasesByAddress.isEmpty)
        do {
            try manager.check(attachment("a"))
            Issue.record("CHECK passed without a lease")
        } catch {
            #expect(error.code == .leaseMissing)
            #expect(error.msg == "a/eth0 holds no address in range set 0 (10.0.0.1-10.0.0.6) of network testnet")
        }
    }

    @Test func checkNamesTheSetWhoseLeaseIsGone() throws {
        let manager = try manager()
        _ = try manager.allocate(for: attachment("a"))
        store.leasesByAddress = store.leasesByAddress.filter { $0.value.1 == 0 }
        #expect(throws: CNIError(.leaseMissing, "a/eth0 holds no address in range set 1 (fd00::1-fd00::7) of network testnet")) {
            try manager.check(attachment("a"))
        }
    }

    @Test func gcReleasesEveryAttachmentNotListed() throws {
        let manager = try manager()
        for id in ["keep", "drop1", "drop2"] { _ = try manager.allocate(for: attachment(id)) }
        _ = try manager.allocate(for: attachment("keep", "net1"))
        let removed = try manager.collectGarbage(keeping: [attachment("keep"), attachment("keep", "net1")])
        #expect(Set(removed.map(\.containerID)) == ["drop1", "drop2"])
        #expect(Set(store.leasesByAddress.values.map(\.0)) == [attachment("keep"), attachment("keep", "net1")])
    }

    @Test func statusFailsWith50WhenASetIsFull() throws {
        let manager = try manager(#"{"type":"berth-ipam","ranges":[[{"subnet":"10.0.0.0/29"}],[{"subnet":"10.1.0.0/30"}]]}"#)
        try manager.status()
        _ = try manager.allocate(for: attachment("a"))
        do {
            try manager.status()
            Issue.record("STATUS passed with a full set")
        } catch {
            #expect(error.code == .pluginNotAvailable)
            #expect(error.msg == "range set 1 (10.1.0.1-10.1.0.2) of network testnet has no free address")
        }
    }
}
