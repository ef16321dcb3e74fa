#if canImport(Glibc)
import Glibc
#endif
import BerthNetlink
import CMnl
import CNftnl

// What Berth wants in its table next to what the kernel has (netctl rules), and making the
// kernel match in one transaction (netctl rules --repair).

/// The table as the kernel has it: chains, maps and rules, and every map's elements.
public struct FirewallSnapshot: Sendable {
    public var state: FirewallState
    public var elements: [String: [NFTElement]]
}

/// One way the kernel's table differs from what Berth wants.
public enum FirewallDifference: Sendable, Hashable, CustomStringConvertible {
    case missingTable
    case missingMap(String)
    case missingChain(String)
    /// The chain exists with other rules than Berth's.
    case alteredChain(String)
    /// A chain of no network Berth knows (a network whose last attachment is gone).
    case extraChain(String)
    case missingSet(String)
    /// The address set exists with other addresses than the network's configuration has.
    case alteredSet(String)
    /// An address set of no network Berth knows, or that its network no longer has.
    case extraSet(String)
    case missingElement(map: String, NFTElement)
    /// An element nothing wants: a port nobody publishes any more, a network's verdict without
    /// the network, or an element whose target or owner differs.
    case extraElement(map: String, NFTElement)

    /// `+` missing, `-` extra, `~` altered, as a diff reads.
    public var description: String {
        switch self {
        case .missingTable: "+ table inet berth"
        case .missingMap(let name): "+ map \(name)"
        case .missingChain(let name): "+ chain \(name)"
        case .alteredChain(let name): "~ chain \(name) (its rules differ)"
        case .extraChain(let name): "- chain \(name)"
        case .missingSet(let name): "+ set \(name)"
        case .alteredSet(let name): "~ set \(name) (its addresses differ)"
        case .extraSet(let name): "- set \(name)"
        case .missingElement(let map, let element): "+ element \(element.text) in \(map)"
        case .extraElement(let map, let element): "- element \(element.text) in \(map)"
        }
    }
}

extension Firewall {
    public func snapshot() throws(FirewallError) -> FirewallSnapshot {
        var snapshot = FirewallSnapshot(state: try state(), elements: [:])
        for map in FirewallLayout.maps where snapshot.state.maps.contains(map.name) {
            snapshot.elements[map.name] = try elements(of: map)
        }
        return snapshot
    }

    /// How the kernel's table differs from `wanted`. With `only`, differences outside those
    /// networks' chains and elements (another network's, a port of another owner) are left out.
    public static func differences(wanted: NFTRuleset, kernel: FirewallSnapshot, scope: FirewallScope? = nil) -> [FirewallDifference] {
        guard kernel.state.tableExists else {
            return wanted.chains.isEmpty ? [] : [.missingTable]
        }
        var differences: [FirewallDifference] = []
        for map in wanted.maps where !kernel.state.maps.contains(map.name) { differences.append(.missingMap(map.name)) }
        for set in wanted.sets where scope?.covers(set: set.name) ?? true {
            if !kernel.state.maps.contains(set.name) {
                differences.append(.missingSet(set.name))
            } else if kernel.state.addressSets[set.name] != set.ranges {
                differences.append(.alteredSet(set.name))
            }
        }
        let wantedSets = Set(wanted.sets.map(\.name))
        for name in kernel.state.addressSets.keys.sorted() where !wantedSets.contains(name) && (scope?.covers(set: name) ?? true) {
            differences.append(.extraSet(name))
        }
        let wantedChains = Set(wanted.chains.map(\.chain.name))
        for (chain, rules) in wanted.chains where scope?.covers(chain: chain.name) ?? true {
            if !kernel.state.chains.contains(chain.name) {
                differences.append(.missingChain(chain.name))
            } else if kernel.state.rules[chain.name, default: []] != rules.map({ $0.bytecodeLines(chain: chain.name) }) {
                differences.append(.alteredChain(chain.name))
            }
        }
        for name in kernel.state.chains.sorted() where !wantedChains.contains(name) && (scope?.covers(chain: name) ?? true) {
            differences.append(.extraChain(name))
        }
        for map in FirewallLayout.maps {
            let want = (wanted.elements[map.name] ?? []).filter { scope?.covers(element: $0) ?? true }
            let have = (kernel.elements[map.name] ?? []).filter { scope?.covers(element: $0) ?? true }
            let wantSet = Set(want), haveSet = Set(have)
            differences += have.filter { !wantSet.contains($0) }.map { .extraElement(map: map.name, $0) }
            differences += want.filter { !haveSet.contains($0) }.map { .missingElement(map: map.name, $0) }
        }
        return differences
    }

    /// Makes the table match `wanted` for `networks` in one transaction: extra elements and
    /// chains go first (a chain cannot go while a verdict still jumps to it), then whatever is
    /// missing or altered is (re)made. With nothing wanted and no scope, the table goes. The
    /// table is re-read on every attempt, so a concurrent change restarts the repair.
    public func repair(toward wanted: NFTRuleset, networks: [FirewallNetwork], scope: FirewallScope? = nil) throws {
        try transact { _ in
            let kernel = try snapshot()
            var batch = FirewallBatch(table: table)
            if wanted.chains.isEmpty && scope == nil {
                if kernel.state.tableExists { batch.deleteTable(destroy: false) }
                return batch
            }
            let differences = Self.differences(wanted: wanted, kernel: kernel, scope: scope)
            for case .extraElement(let name, let element) in differences {
                if let map = FirewallLayout.maps.first(where: { $0.name == name }) { batch.deleteElements([element], from: map, destroy: false) }
            }
            for case .extraChain(let name) in differences {
                batch.flushChain(name)
                batch.deleteChain(name, destroy: false)
            }
            batch.repair(kernel.state, networks: networks)
            // After the rules that used them were replaced or went with their chains.
            // (`repair` already removes the sets these networks no longer have.)
            let networkSets = Set(networks.flatMap(\.setNames))
            for case .extraSet(let name) in differences where !networkSets.contains(name) { batch.deleteSet(name, destroy: false) }
            for map in FirewallLayout.maps {
                let missing = differences.compactMap { difference -> NFTElement? in
                    guard case .missingElement(let name, let element) = difference, name == map.name else { return nil }
                    return element
                }
                batch.addElements(missing, to: map, exclusive: false)
            }
            return batch
        }
    }
}

/// The part of the table that concerns some networks: their chains, the verdicts for their
/// bridges and the ports their attachments own.
public struct FirewallScope: Sendable {
    public var bridges: Set<String>
    public var owners: Set<String>

    public init(bridges: Set<String>, owners: Set<String>) {
        self.bridges = bridges
        self.owners = owners
    }

    func covers(chain name: String) -> Bool {
        if FirewallLayout.staticChains.contains(where: { $0.chain.name == name }) { return true }
        return bridges.contains { FirewallNetwork(bridge: $0, subnets: []).chainNames.contains(name) }
    }

    func covers(set name: String) -> Bool {
        bridges.contains { FirewallNetwork(bridge: $0, subnets: []).setNames.contains(name) }
    }

    func covers(element: NFTElement) -> Bool {
        if case .interfaceName(let bridge)? = element.key.first { return bridges.contains(bridge) }
        return element.comment.map(owners.contains) ?? false
    }
}

// MARK: - Every table's base chains

/// A base chain of any table (not only Berth's): what `netctl doctor` looks at for policies
/// that would drop Berth's traffic before or after Berth's own chains accept it.
public struct ForeignBaseChain: Sendable, Hashable {
    /// `ip`, `ip6`, `inet`, `bridge`, `arp`, `netdev` or the number.
    public let family: String
    public let table: String
    public let chain: String
    public let hook: NFTHook?
    public let priority: Int32
    public let policyDrops: Bool
}

extension Firewall {
    /// Every chain of every table in this namespace, base chains with their hook and policy.
    public func allChains() throws(FirewallError) -> [(family: String, table: String, chain: String, base: ForeignBaseChain?)] {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let length = buffer.withUnsafeMutableBytes { raw -> Int in
            let header = nftnl_nlmsg_build_hdr(raw.baseAddress!.assumingMemoryBound(to: CChar.self), UInt16(NFT_MSG_GETCHAIN.rawValue),
                                               0 /* NFPROTO_UNSPEC: every family */, UInt16(NLM_F_DUMP), 0)!
            return Int(header.pointee.nlmsg_len)
        }
        let replies: [NetlinkMessage]
        do {
            replies = try socket.perform([NetlinkRequest(operation: "list every chain", bytes: Array(buffer[0..<length]), isDump: true)])
        } catch {
            throw FirewallError(error.operation, errno: error.errno, detail: error.kernelMessage)
        }
        var chains: [(family: String, table: String, chain: String, base: ForeignBaseChain?)] = []
        for reply in replies {
            reply.bytes.withUnsafeBytes { raw in
                let object = nftnl_chain_alloc()!
                defer { nftnl_chain_free(object) }
                guard nftnl_chain_nlmsg_parse(raw.baseAddress!.assumingMemoryBound(to: nlmsghdr.self), object) >= 0,
                      let table = nftnl_chain_get_str(object, UInt16(NFTNL_CHAIN_TABLE.rawValue)),
                      let name = nftnl_chain_get_str(object, UInt16(NFTNL_CHAIN_NAME.rawValue))
                else { return }
                let familyNumber = nftnl_chain_get_u32(object, UInt16(NFTNL_CHAIN_FAMILY.rawValue))
                let family = switch familyNumber {
                case 1: "inet"
                case 2: "ip"
                case 3: "arp"
                case 5: "netdev"
                case 7: "bridge"
                case 10: "ip6"
                default: String(familyNumber)
                }
                var base: ForeignBaseChain?
                if nftnl_chain_is_set(object, UInt16(NFTNL_CHAIN_HOOKNUM.rawValue)) {
                    let hook = nftnl_chain_get_u32(object, UInt16(NFTNL_CHAIN_HOOKNUM.rawValue))
                    let policy = nftnl_chain_is_set(object, UInt16(NFTNL_CHAIN_POLICY.rawValue))
                        ? nftnl_chain_get_u32(object, UInt16(NFTNL_CHAIN_POLICY.rawValue)) : NFTBaseChain.Policy.accept.rawValue
                    base = ForeignBaseChain(family: family, table: String(cString: table), chain: String(cString: name),
                                            hook: NFTHook(rawValue: hook),
                                            priority: Int32(bitPattern: nftnl_chain_get_u32(object, UInt16(NFTNL_CHAIN_PRIO.rawValue))),
                                            policyDrops: policy == NFTBaseChain.Policy.drop.rawValue)
                }
                chains.append((family, String(cString: table), String(cString: name), base))
            }
        }
        return chains
    }
}
