/// Address arithmetic for allocation: the 128-bit value of an address, neighbours, and the
/// bounds of a prefix.
extension IPAddress {
    /// The address as a number (IPv4 in the low 32 bits).
    public var value: UInt128 { UInt128(high) << 64 | UInt128(low) }

    /// The address of `family` whose number is `value`; nil when it does not fit the family.
    public init?(family: IPFamily, value: UInt128) {
        switch family {
        case .v4:
            guard value <= UInt128(UInt32.max) else { return nil }
            self.init(v4: UInt32(value))
        case .v6:
            self.init(v6High: UInt64(truncatingIfNeeded: value >> 64), low: UInt64(truncatingIfNeeded: value))
        }
    }

    /// The next address, wrapping from the family's last address to its first.
    public var next: IPAddress {
        let maximum: UInt128 = family == .v4 ? UInt128(UInt32.max) : .max
        return IPAddress(family: family, value: value == maximum ? 0 : value + 1)!
    }

    /// The previous address, wrapping from the family's first address to its last.
    public var previous: IPAddress {
        let maximum: UInt128 = family == .v4 ? UInt128(UInt32.max) : .max
        return IPAddress(family: family, value: value == 0 ? maximum : value - 1)!
    }
}

extension IPPrefix {
    /// The highest address of the prefix (all host bits set): the IPv4 broadcast address.
    public var lastAddress: IPAddress {
        let hostBits = family.bitWidth - length
        let hostMask: UInt128 = hostBits == 128 ? .max : (UInt128(1) << UInt128(hostBits)) - 1
        return IPAddress(family: family, value: network.address.value | hostMask)!
    }

    /// How many addresses the prefix spans.
    public var addressCount: UInt128 {
        let hostBits = family.bitWidth - length
        return hostBits == 128 ? .max : UInt128(1) << UInt128(hostBits)
    }

    /// True when the two prefixes share any address.
    public func overlaps(_ other: IPPrefix) -> Bool {
        guard family == other.family else { return false }
        return contains(other.network.address) || other.contains(network.address)
    }
}
