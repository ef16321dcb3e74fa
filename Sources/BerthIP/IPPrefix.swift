/// An address with a prefix length, written `10.88.0.5/16`. The address may have host bits set
/// (a container's address on its subnet, as CNI results carry it); `network` clears them.
public struct IPPrefix: Sendable, Hashable, CustomStringConvertible {
    public let address: IPAddress
    public let length: Int

    /// nil when `length` exceeds the family's width or is negative.
    public init?(address: IPAddress, length: Int) {
        guard (0...address.family.bitWidth).contains(length) else { return nil }
        self.address = address
        self.length = length
    }

    /// Parses `address/length` (decimal length, no leading zeros beyond a lone "0").
    public init?(_ text: some StringProtocol) {
        guard let slash = text.lastIndex(of: "/"),
              let address = IPAddress(text[..<slash])
        else { return nil }
        let lengthText = text[text.index(after: slash)...]
        guard (1...3).contains(lengthText.count),
              lengthText.allSatisfy({ $0.isASCII && $0.isNumber }),
              lengthText.count == 1 || lengthText.first != "0",
              let length = Int(lengthText)
        else { return nil }
        self.init(address: address, length: length)
    }

    public var family: IPFamily { address.family }

    /// The mask as a 128-bit pair, aligned like `IPAddress` storage.
    private var mask: (high: UInt64, low: UInt64) {
        if family == .v4 {
            return (0, length == 0 ? 0 : (UInt64(0xFFFF_FFFF) << UInt64(32 - length)) & 0xFFFF_FFFF)
        }
        let high: UInt64 = length >= 64 ? .max : (length == 0 ? 0 : .max << UInt64(64 - length))
        let low: UInt64 = length <= 64 ? 0 : (length == 128 ? .max : .max << UInt64(128 - length))
        return (high, low)
    }

    /// The prefix with host bits cleared (`10.88.0.5/16` → `10.88.0.0/16`).
    public var network: IPPrefix {
        let mask = self.mask
        let masked = family == .v4
            ? IPAddress(v4: UInt32(truncatingIfNeeded: address.low & mask.low))
            : IPAddress(v6High: address.high & mask.high, low: address.low & mask.low)
        return IPPrefix(address: masked, length: length)!
    }

    /// True when the address has no host bits set.
    public var isNetwork: Bool { network.address == address }

    /// True when `other` is of the same family and inside this prefix.
    public func contains(_ other: IPAddress) -> Bool {
        guard other.family == family else { return false }
        let mask = self.mask
        return other.high & mask.high == address.high & mask.high
            && other.low & mask.low == address.low & mask.low
    }

    public var description: String { "\(address)/\(length)" }
}
