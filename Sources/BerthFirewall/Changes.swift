// The changes Berth makes, as additions to a batch. Each is idempotent where the model allows:
// creations without NLM_F_EXCL, rule lists replaced (flush, then append) rather than extended,
// removals with DESTROY messages, or where the kernel predates them, by creating the object
// first so that deleting it cannot fail.

import BerthIP

extension FirewallBatch {
    /// The table, every map and the static chains with their rules. Repairs whatever
    /// `nft flush ruleset` or a hand edit removed; harmless when all is in place.
    public mutating func ensureTable() {
        addTable()
        for map in FirewallLayout.maps { addMap(map) }
        for (chain, rules) in FirewallLayout.staticChains { replaceChain(chain, rules: rules) }
    }

    /// A network's chains and verdict-map elements (after `ensureTable`).
    public mutating func ensure(_ network: FirewallNetwork) {
        for set in network.addressSets {
            addSet(set)
            replaceElements(of: set)
        }
        for (chain, rules) in FirewallLayout.chains(of: network) { replaceChain(chain, rules: rules) }
        for (map, element) in FirewallLayout.elements(of: network) { addElements([element], to: map, exclusive: false) }
    }

    /// Publishes ports for `owner`. Exclusive: a host port that exists makes the whole batch
    /// fail (EEXIST); otherwise an identical element is left as it is.
    public mutating func publish(_ ports: [PortMapping], owner: String, exclusive: Bool = true) {
        for (map, elements) in Self.group(ports.map { FirewallLayout.element(of: $0, owner: owner) }) {
            addElements(elements, to: map, exclusive: exclusive)
        }
    }

    /// Withdraws published ports; ports already gone are fine. Without DESTROY, the elements
    /// are first (re)created, so that deleting them cannot fail.
    public mutating func unpublish(_ ports: [PortMapping], owner: String, destroy: Bool) {
        guard !ports.isEmpty else { return }
        let grouped = Self.group(ports.map { FirewallLayout.element(of: $0, owner: owner) })
        if !destroy {
            ensureTable()
            for (map, elements) in grouped { addElements(elements, to: map, exclusive: false) }
        }
        for (map, elements) in grouped { deleteElements(elements, from: map, destroy: destroy) }
    }

    /// Removes a network's verdict-map elements and chains; parts already gone are fine.
    /// Without DESTROY, everything is first (re)created, so that deleting it cannot fail.
    public mutating func remove(_ network: FirewallNetwork, destroy: Bool) {
        let chains = FirewallLayout.chains(of: network).map(\.chain)
        let elements = FirewallLayout.elements(of: FirewallNetwork(bridge: network.bridge, subnets: network.subnets,
                                                                   masquerade: true))
        if !destroy {
            ensureTable()
            for chain in chains { addChain(chain) }
            for (map, element) in elements { addElements([element], to: map, exclusive: false) }
        }
        for (map, element) in elements { deleteElements([element], from: map, destroy: destroy) }
        for chain in chains {
            flushChain(chain.name, destroy: destroy)
            deleteChain(chain.name, destroy: destroy)
        }
        // Its address sets, whichever the configuration has now (the rules using them are gone).
        for family in [IPFamily.v4, .v6] {
            if !destroy { addSet(NFTAddressSet(network.setName(family), family: family)) }
            deleteSet(network.setName(family), destroy: destroy)
        }
    }

    /// Removes the whole table: no Berth object is left.
    public mutating func removeTable(destroy: Bool) {
        if !destroy { addTable() }
        deleteTable(destroy: destroy)
    }

    /// What is missing or different in `state` for the table and `networks`: the table, maps,
    /// chains, and the rules of chains whose rules differ (replaced whole). Nothing when all is
    /// in place, so a container ADD does not rewrite rules, which would make the kernel walk
    /// every element of the maps those rules use.
    public mutating func repair(_ state: FirewallState, networks: [FirewallNetwork]) {
        guard state.tableExists else {
            ensureTable()
            for network in networks { ensure(network) }
            return
        }
        for map in FirewallLayout.maps where !state.maps.contains(map.name) { addMap(map) }
        // Address sets before the rules that look them up.
        for set in networks.flatMap(\.addressSets) where state.addressSets[set.name] != set.ranges {
            if !state.maps.contains(set.name) { addSet(set) }
            replaceElements(of: set)
        }
        let chains = FirewallLayout.staticChains + networks.flatMap { FirewallLayout.chains(of: $0) }
        for (chain, rules) in chains {
            if !state.chains.contains(chain.name) {
                addChain(chain)
                for rule in rules { addRule(rule, to: chain.name) }
            } else if state.rules[chain.name, default: []] != rules.map({ $0.bytecodeLines(chain: chain.name) }) {
                replaceChain(chain, rules: rules)
            }
        }
        for network in networks {
            for (map, element) in FirewallLayout.elements(of: network) { addElements([element], to: map, exclusive: false) }
            // A set the configuration no longer has, after the rules that used it were replaced.
            let wanted = Set(network.addressSets.map(\.name))
            for name in network.setNames where state.maps.contains(name) && !wanted.contains(name) { deleteSet(name, destroy: false) }
        }
    }

    /// Creates the chain if needed and replaces its rules.
    mutating func replaceChain(_ chain: NFTChain, rules: [NFTRule]) {
        addChain(chain)
        flushChain(chain.name)
        for rule in rules { addRule(rule, to: chain.name) }
    }

    private static func group(_ pairs: [(map: NFTMap, element: NFTElement)]) -> [(NFTMap, [NFTElement])] {
        var order: [NFTMap] = []
        var grouped: [NFTMap: [NFTElement]] = [:]
        for (map, element) in pairs {
            if grouped[map] == nil { order.append(map) }
            grouped[map, default: []].append(element)
        }
        return order.map { ($0, grouped[$0]!) }
    }
}
