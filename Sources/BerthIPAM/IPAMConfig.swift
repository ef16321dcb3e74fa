import BerthCNI
import BerthIP
import BerthJSON

/// berth-ipam's configuration: a superset of host-local's `ipam` section, read from the request
/// (config, runtimeConfig, args, CNI_ARGS) and validated as a whole. Every problem is code 7 and
/// names the field.
public struct IPAMConfig: Sendable {
    /// The network name: the lease directory under `dataDirectory`.
    public let network: String
    /// Range sets in host-local's order: `runtimeConfig.ipRanges`, the legacy top-level range,
    /// then `ipam.ranges`. The position is the set's id (`last_reserved_ip.<id>`).
    public let rangeSets: [RangeSet]
    /// `ipam.routes`, returned with every ADD.
    public let routes: [CNIResult.Route]
    /// `ipam.dataDir`, default /var/lib/cni/networks.
    public let dataDirectory: String
    /// `ipam.resolvConf`: a file read on ADD for the result's `dns`.
    public let resolvConf: String?
    /// Requested addresses, each inside a distinct range set (from CNI_ARGS `IP=`,
    /// `args.cni.ips`, `runtimeConfig.ips`, in that order), by set index.
    public let requested: [Int: IPAddress]

    public static let defaultDataDirectory = "/var/lib/cni/networks"

    public init(_ request: CNIRequest) throws(CNIError) {
        try self.init(config: request.config, cniArgs: request.environment.args)
    }

    public init(config: NetworkConfig, cniArgs: CNIArgs = CNIArgs()) throws(CNIError) {
        let root = JSONCursor(.object(config.raw))
        do throws(JSONShapeError) {
            guard let ipam = root.member("ipam") else { throw JSONShapeError(path: "ipam", problem: "is required") }
            _ = try ipam.object()
            network = config.name

            var sets: [(path: String, set: RangeSet)] = []
            if let runtime = root.member("runtimeConfig")?.member("ipRanges") {
                sets += try Self.rangeSets(runtime)
            }
            if let legacySubnet = ipam.member("subnet") {
                sets.append((path: "ipam", set: RangeSet([try Self.range(ipam, subnet: legacySubnet)])))
            }
            if let ranges = ipam.member("ranges") {
                sets += try Self.rangeSets(ranges)
            }
            guard !sets.isEmpty else {
                throw JSONShapeError(path: "ipam.ranges", problem: "at least one range is required (or ipam.subnet)")
            }
            for (index, first) in sets.enumerated() {
                for second in sets[(index + 1)...] where first.set.overlaps(second.set) {
                    throw JSONShapeError(path: second.path, problem: "overlaps \(first.path) (\(first.set))")
                }
            }
            if config.cniVersion.resultShape == .ipPerFamily {
                for family in [IPFamily.v4, .v6] where sets.filter({ $0.set.family == family }).count > 1 {
                    throw JSONShapeError(path: "ipam.ranges",
                                         problem: "CNI \(config.cniVersion) results carry one \(family) address; more than one \(family) range set needs cniVersion 0.3.0 or later")
                }
            }
            rangeSets = sets.map(\.set)

            routes = try ipam.member("routes")?.array().map { route throws(JSONShapeError) in try CNIResult.Route(json: route) } ?? []
            dataDirectory = try Self.dataDirectory(ipam.member("dataDir"))
            resolvConf = try ipam.member("resolvConf")?.string()
            requested = try Self.requestedAddresses(root: root, cniArgs: cniArgs, sets: rangeSets)
        } catch {
            throw CNIError(config: error)
        }
    }

    /// A list of range sets (`ipam.ranges`, `runtimeConfig.ipRanges`). A range object where a
    /// set belongs is a set of that one range: containerd's go-cni passes the `ipRanges`
    /// capability as a flat list (`[{"Subnet": "10.244.1.0/24", "RangeStart": "", …}]`), one
    /// range per pod CIDR.
    private static func rangeSets(_ cursor: JSONCursor) throws(JSONShapeError) -> [(path: String, set: RangeSet)] {
        var sets: [(path: String, set: RangeSet)] = []
        for setCursor in try cursor.array() {
            let rangeCursors: [JSONCursor]
            if case .object = setCursor.value { rangeCursors = [setCursor] } else { rangeCursors = try setCursor.array() }
            guard !rangeCursors.isEmpty else { throw setCursor.invalid("must list at least one range") }
            var ranges: [AddressRange] = []
            for rangeCursor in rangeCursors {
                let range = try Self.range(rangeCursor, subnet: try rangeCursor.requiredField("subnet"))
                if let first = ranges.first, first.family != range.family {
                    throw rangeCursor.invalid("\(range.family) range in a set of \(first.family) ranges (one family per set)")
                }
                if let other = ranges.first(where: { $0.overlaps(range) }) {
                    throw rangeCursor.invalid("\(range) overlaps \(other) in the same set")
                }
                ranges.append(range)
            }
            sets.append((path: setCursor.path, set: RangeSet(ranges)))
        }
        return sets
    }

    /// `{subnet, rangeStart?, rangeEnd?, gateway?}` (also the legacy top-level form). As in
    /// host-local (Go's decoder): names match ignoring case, and an empty address is no address.
    private static func range(_ cursor: JSONCursor, subnet subnetCursor: JSONCursor) throws(JSONShapeError) -> AddressRange {
        _ = try cursor.object()
        let subnet = try subnetCursor.prefix()
        var addresses: [String: IPAddress] = [:]
        for field in ["rangeStart", "rangeEnd", "gateway"] {
            guard let member = cursor.field(field), member.value != .string("") else { continue }
            let address = try member.address()
            guard address.family == subnet.family else {
                throw member.invalid("\(address) is not an \(subnet.family) address like subnet \(subnet)")
            }
            addresses[field] = address
        }
        do {
            return try AddressRange(subnet: subnet, start: addresses["rangeStart"], end: addresses["rangeEnd"],
                                    gateway: addresses["gateway"])
        } catch {
            switch error {
            case .hostBitsSet(let network):
                throw subnetCursor.invalid("\(subnet) has host bits set; the network is \(network)")
            case .tooSmall:
                throw subnetCursor.invalid("\(subnet) is too small to allocate from (a /\(subnet.length) has no host addresses besides the gateway)")
            case .outside(let field, let address):
                throw cursor.field(field)!.invalid("\(address) is not in subnet \(subnet)")
            case .startAfterEnd:
                throw cursor.invalid("rangeStart \(addresses["rangeStart"].map(\.description) ?? "") is after rangeEnd \(addresses["rangeEnd"].map(\.description) ?? "")")
            }
        }
    }

    /// `dataDir`: absolute, without `..` components or NUL, so leases can only land under it.
    private static func dataDirectory(_ cursor: JSONCursor?) throws(JSONShapeError) -> String {
        guard let cursor else { return defaultDataDirectory }
        let path = try cursor.string()
        guard path.hasPrefix("/"), !path.unicodeScalars.contains("\u{0}"),
              !path.split(separator: "/").contains("..")
        else { throw cursor.invalid("\(path.debugDescription) must be an absolute path without '..'") }
        return path
    }

    /// Requested addresses, each inside some range set, not a gateway, at most one per set.
    private static func requestedAddresses(root: JSONCursor, cniArgs: CNIArgs,
                                           sets: [RangeSet]) throws(JSONShapeError) -> [Int: IPAddress] {
        var candidates: [(source: String, text: String)] = []
        if let ip = cniArgs["IP"] { candidates.append(("CNI_ARGS IP", ip)) }
        for (index, cursor) in (try root.member("args")?.member("cni")?.member("ips")?.array() ?? []).enumerated() {
            candidates.append(("args.cni.ips[\(index)]", try cursor.string()))
        }
        for (index, cursor) in (try root.member("runtimeConfig")?.member("ips")?.array() ?? []).enumerated() {
            candidates.append(("runtimeConfig.ips[\(index)]", try cursor.string()))
        }
        var requested: [Int: IPAddress] = [:]
        for (source, text) in candidates {
            // "10.88.0.9" or "10.88.0.9/16": the prefix length, if any, is the subnet's anyway.
            let addressText = text.split(separator: "/", maxSplits: 1).first.map(String.init) ?? text
            guard let address = IPAddress(addressText), text == addressText || IPPrefix(text) != nil else {
                throw JSONShapeError(path: source, problem: "\(text.debugDescription) is not an IP address")
            }
            guard let setIndex = sets.firstIndex(where: { $0.range(containing: address) != nil }) else {
                throw JSONShapeError(path: source, problem: "requested address \(address) is not in any range set")
            }
            if sets[setIndex].range(containing: address)!.gateway == address {
                throw JSONShapeError(path: source, problem: "requested address \(address) is the gateway of its range")
            }
            if let earlier = requested[setIndex] {
                if earlier == address { continue }  // the same address from two sources
                throw JSONShapeError(path: source,
                                     problem: "requested address \(address) is in the same range set as \(earlier); one address per set")
            }
            requested[setIndex] = address
        }
        return requested
    }
}
