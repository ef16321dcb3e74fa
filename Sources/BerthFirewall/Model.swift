import BerthIP

// A value model of the nftables objects Berth owns. Every type renders as `nft list` prints it
// (Text.swift) and as the libnftnl objects `nft` would send for that text (Encoding.swift).

/// Address family of a table (NFPROTO_*).
public enum NFTFamily: UInt32, Sendable {
    case inet = 1
    case ip = 2
    case ip6 = 10

    public var name: String {
        switch self {
        case .inet: "inet"
        case .ip: "ip"
        case .ip6: "ip6"
        }
    }
}

public struct NFTTable: Sendable, Hashable {
    public let family: NFTFamily
    public let name: String

    public init(family: NFTFamily, name: String) {
        self.family = family
        self.name = name
    }

    /// The one table Berth owns.
    public static let berth = NFTTable(family: .inet, name: "berth")
}

/// Netfilter hooks (NF_INET_*).
public enum NFTHook: UInt32, Sendable {
    case prerouting = 0, input, forward, output, postrouting

    public var name: String {
        switch self {
        case .prerouting: "prerouting"
        case .input: "input"
        case .forward: "forward"
        case .output: "output"
        case .postrouting: "postrouting"
        }
    }
}

/// What makes a chain a base chain: attached to a hook.
public struct NFTBaseChain: Sendable, Hashable {
    public enum ChainType: String, Sendable { case filter, nat }
    public enum Policy: UInt32, Sendable {
        case drop = 0, accept = 1
        public var name: String { self == .accept ? "accept" : "drop" }
    }

    public let type: ChainType
    public let hook: NFTHook
    public let priority: Int32
    public let policy: Policy

    public init(type: ChainType, hook: NFTHook, priority: Int32, policy: Policy = .accept) {
        self.type = type
        self.hook = hook
        self.priority = priority
        self.policy = policy
    }
}

public struct NFTChain: Sendable, Hashable {
    public let name: String
    /// nil for a regular chain (reached by jump or verdict map).
    public let base: NFTBaseChain?

    public init(_ name: String, base: NFTBaseChain? = nil) {
        self.name = name
        self.base = base
    }
}

/// A data type of set keys and map data (nft's datatypes, with their ids).
public enum NFTDataType: Sendable, Hashable {
    case ipv4Address, ipv6Address, inetProtocol, inetService, interfaceName

    /// The datatype id nft stores in NFTA_SET_KEY_TYPE (6 bits per concatenated field).
    var id: UInt32 {
        switch self {
        case .ipv4Address: 7
        case .ipv6Address: 8
        case .inetProtocol: 12
        case .inetService: 13
        case .interfaceName: 41
        }
    }

    /// Bytes of the value (before padding to 4 in concatenations).
    var size: Int {
        switch self {
        case .ipv4Address: 4
        case .ipv6Address: 16
        case .inetProtocol: 1
        case .inetService: 2
        case .interfaceName: 16
        }
    }

    var name: String {
        switch self {
        case .ipv4Address: "ipv4_addr"
        case .ipv6Address: "ipv6_addr"
        case .inetProtocol: "inet_proto"
        case .inetService: "inet_service"
        case .interfaceName: "ifname"
        }
    }
}

/// A key or data type: one datatype or a concatenation of several.
public struct NFTConcatenation: Sendable, Hashable {
    public let fields: [NFTDataType]

    public init(_ fields: NFTDataType...) { self.fields = fields }
    public init(fields: [NFTDataType]) { self.fields = fields }

    /// NFTA_SET_KEY_TYPE / DATA_TYPE: the field ids, 6 bits each, first field highest.
    var typeID: UInt32 { fields.reduce(0) { $0 << 6 | $1.id } }

    /// NFTA_SET_KEY_LEN / DATA_LEN: every field padded to 4 bytes (a lone field is not padded).
    var length: Int {
        fields.count == 1 ? fields[0].size : fields.reduce(0) { $0 + ($1.size + 3) / 4 * 4 }
    }

    var text: String { fields.map(\.name).joined(separator: " . ") }
}

/// A named map (Berth uses maps only: verdict maps and NAT maps).
public struct NFTMap: Sendable, Hashable {
    public enum DataType: Sendable, Hashable {
        case verdict
        case values(NFTConcatenation)
    }

    public let name: String
    public let key: NFTConcatenation
    public let data: DataType

    public init(_ name: String, key: NFTConcatenation, data: DataType) {
        self.name = name
        self.key = key
        self.data = data
    }
}

/// A named interval set of one family's addresses (`type ipv4_addr; flags interval`) with its
/// contents: what a network's `noMasquerade` destinations become.
public struct NFTAddressSet: Sendable, Hashable {
    public let name: String
    public let family: IPFamily
    /// Sorted, neither overlapping nor adjacent (the kernel's interval tree refuses overlaps).
    public let ranges: [NFTAddressRange]

    /// The set of `prefixes` (all of `family`), merged into ranges.
    public init(_ name: String, family: IPFamily, prefixes: [IPPrefix] = []) {
        self.init(name, family: family, ranges: NFTAddressRange.merging(prefixes.filter { $0.family == family }))
    }

    public init(_ name: String, family: IPFamily, ranges: [NFTAddressRange]) {
        self.name = name
        self.family = family
        self.ranges = ranges
    }

    var keyType: NFTDataType { family == .v4 ? .ipv4Address : .ipv6Address }
}

/// The addresses from `first` to `last`, both included.
public struct NFTAddressRange: Sendable, Hashable {
    public let first: IPAddress
    public let last: IPAddress

    public init(first: IPAddress, last: IPAddress) {
        self.first = first
        self.last = last
    }

    /// The prefixes as sorted ranges, overlapping and adjacent ones merged.
    public static func merging(_ prefixes: [IPPrefix]) -> [NFTAddressRange] {
        var ranges: [NFTAddressRange] = []
        for prefix in prefixes.sorted(by: { $0.network.address < $1.network.address }) {
            let range = NFTAddressRange(first: prefix.network.address, last: prefix.lastAddress)
            if let previous = ranges.last, previous.last.value == .max || range.first.value <= previous.last.value + 1 {
                ranges[ranges.count - 1] = NFTAddressRange(first: previous.first, last: max(previous.last, range.last))
            } else {
                ranges.append(range)
            }
        }
        return ranges
    }

    /// The range as one prefix, when it is exactly one.
    public var prefix: IPPrefix? {
        let count = last.value - first.value  // addresses - 1
        guard count < UInt128.max, (count + 1) & count == 0 else {
            return count == .max ? IPPrefix(address: first, length: 0) : nil
        }
        let length = first.family.bitWidth - (count + 1).trailingZeroBitCount
        guard let prefix = IPPrefix(address: first, length: length), prefix.isNetwork else { return nil }
        return prefix
    }
}

/// Transport protocols of published ports.
public enum NFTProtocol: UInt8, Sendable, Hashable, CustomStringConvertible {
    case tcp = 6
    case udp = 17
    case sctp = 132

    public init?(name: String) {
        switch name {
        case "tcp": self = .tcp
        case "udp": self = .udp
        case "sctp": self = .sctp
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .tcp: "tcp"
        case .udp: "udp"
        case .sctp: "sctp"
        }
    }
}

/// One field of an element's key or data.
public enum NFTValue: Sendable, Hashable {
    case address(IPAddress)
    case proto(NFTProtocol)
    case port(UInt16)
    case interfaceName(String)
}

/// A map element: key, what it maps to, and the owner comment Berth writes.
public struct NFTElement: Sendable, Hashable {
    public enum Data: Sendable, Hashable {
        case jump(String)
        case values([NFTValue])
    }

    public let key: [NFTValue]
    public let data: Data
    public let comment: String?

    public init(key: [NFTValue], data: Data, comment: String? = nil) {
        self.key = key
        self.data = data
        self.comment = comment
    }
}

/// A rule: a list of statements, in order.
public struct NFTRule: Sendable, Hashable {
    public let statements: [NFTStatement]

    public init(_ statements: NFTStatement...) { self.statements = statements }
    public init(statements: [NFTStatement]) { self.statements = statements }
}

/// The statements Berth's rules are made of, each with one text form and one bytecode form.
public enum NFTStatement: Sendable, Hashable {
    public enum Direction: Sendable, Hashable { case input, output }
    public enum Comparison: Sendable, Hashable { case equal, notEqual }
    public enum ConntrackState: UInt32, Sendable, Hashable {
        case invalid = 1, established = 2, related = 4
        var name: String {
            switch self {
            case .invalid: "invalid"
            case .established: "established"
            case .related: "related"
            }
        }
    }
    public enum Verdict: Sendable, Hashable {
        case accept, drop, `return`
        case jump(String)
    }

    /// `iifname "berth0"`, `oifname != "berth0"`
    case interfaceName(Direction, Comparison, String)
    /// `ip saddr 10.88.0.0/16`, `ip6 saddr fd00::/64`
    case sourceAddress(IPPrefix)
    /// `ct state established,related`
    case conntrackState([ConntrackState])
    /// `ct status dnat`
    case conntrackStatusDNAT
    /// `fib daddr type local` (`destination` false: `fib saddr type local`)
    case fibAddressIsLocal(destination: Bool)
    /// `accept`, `drop`, `jump CHAIN`
    case verdict(Verdict)
    /// `ip daddr @SET`, `ip6 daddr @SET` (`source`: `ip saddr @SET`…)
    case addressInSet(IPFamily, source: Bool, set: String)
    /// `iifname vmap @MAP`
    case verdictMap(Direction, map: String)
    /// `dnat ip to ip daddr . meta l4proto . th dport map @MAP` (without `ip daddr` when
    /// `byDestination` is false); `ip6` for IPv6.
    case dnatMap(IPFamily, byDestination: Bool, map: String)
    /// `masquerade`
    case masquerade
}

/// A whole table as Berth wants it: maps, chains with their rules, and map elements.
public struct NFTRuleset: Sendable, Equatable {
    public var table: NFTTable
    public var maps: [NFTMap]
    /// The networks' address sets, with their contents, listed after the maps.
    public var sets: [NFTAddressSet]
    public var chains: [(chain: NFTChain, rules: [NFTRule])]
    public var elements: [String: [NFTElement]]

    public init(table: NFTTable = .berth, maps: [NFTMap] = [], sets: [NFTAddressSet] = [],
                chains: [(chain: NFTChain, rules: [NFTRule])] = [], elements: [String: [NFTElement]] = [:]) {
        self.table = table
        self.maps = maps
        self.sets = sets
        self.chains = chains
        self.elements = elements
    }

    public static func == (lhs: NFTRuleset, rhs: NFTRuleset) -> Bool {
        lhs.table == rhs.table && lhs.maps == rhs.maps && lhs.sets == rhs.sets && lhs.elements == rhs.elements
            && lhs.chains.map(\.chain) == rhs.chains.map(\.chain) && lhs.chains.map(\.rules) == rhs.chains.map(\.rules)
    }
}
