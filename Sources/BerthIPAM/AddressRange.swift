import BerthIP

/// One allocation range inside a subnet, as host-local understands it: `rangeStart`…`rangeEnd`
/// (inclusive) of `subnet`, with a gateway that is never handed out.
public struct AddressRange: Sendable, Equatable, CustomStringConvertible {
    /// The subnet, host bits clear.
    public let subnet: IPPrefix
    public let start: IPAddress
    public let end: IPAddress
    public let gateway: IPAddress

    /// A validated range. Defaults follow host-local: the gateway and the start are the first
    /// host address; the end is the last address, less the broadcast address for IPv4.
    public init(subnet: IPPrefix, start: IPAddress? = nil, end: IPAddress? = nil,
                gateway: IPAddress? = nil) throws(RangeProblem) {
        guard subnet.isNetwork else { throw .hostBitsSet(network: subnet.network) }
        // Nothing to allocate from a /31 or /32 (or an IPv6 /127 or /128).
        guard subnet.length <= subnet.family.bitWidth - 2 else { throw .tooSmall }
        let firstHost = subnet.address.next
        let lastHost = subnet.family == .v4 ? subnet.lastAddress.previous : subnet.lastAddress
        for (field, address) in [("rangeStart", start), ("rangeEnd", end), ("gateway", gateway)] {
            guard let address else { continue }
            guard subnet.contains(address) else { throw .outside(field: field, address: address) }
        }
        self.subnet = subnet
        self.start = start ?? firstHost
        self.end = end ?? lastHost
        self.gateway = gateway ?? firstHost
        guard self.start <= self.end else { throw .startAfterEnd }
    }

    /// Why a range is invalid; the config reader names the field.
    public enum RangeProblem: Error, Equatable {
        case hostBitsSet(network: IPPrefix)
        case tooSmall
        case outside(field: String, address: IPAddress)
        case startAfterEnd
    }

    public var family: IPFamily { subnet.family }

    /// True when `address` lies between start and end (inclusive).
    public func contains(_ address: IPAddress) -> Bool {
        address.family == family && start <= address && address <= end
    }

    /// True when the two ranges share an address.
    public func overlaps(_ other: AddressRange) -> Bool {
        family == other.family && start <= other.end && other.start <= end
    }

    /// How many addresses can be handed out (the gateway excluded).
    public var capacity: UInt128 {
        let span = end.value - start.value + 1
        return contains(gateway) ? span - 1 : span
    }

    /// `start-end`, as host-local names ranges in its errors.
    public var description: String { "\(start)-\(end)" }
}

/// A list of ranges of one family; an attachment gets one address per set.
public struct RangeSet: Sendable, Equatable, CustomStringConvertible {
    public let ranges: [AddressRange]

    public init(_ ranges: [AddressRange]) {
        precondition(!ranges.isEmpty, "a range set has at least one range")
        self.ranges = ranges
    }

    public var family: IPFamily { ranges[0].family }

    /// The range holding `address`, if any.
    public func range(containing address: IPAddress) -> AddressRange? {
        ranges.first { $0.contains(address) }
    }

    public func overlaps(_ other: RangeSet) -> Bool {
        ranges.contains { range in other.ranges.contains { range.overlaps($0) } }
    }

    public var capacity: UInt128 {
        ranges.reduce(0) { total, range in
            let (sum, overflow) = total.addingReportingOverflow(range.capacity)
            return overflow ? .max : sum
        }
    }

    public var description: String { ranges.map(\.description).joined(separator: ",") }
}
