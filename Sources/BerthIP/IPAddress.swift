/// The address family of an IP address.
public enum IPFamily: Sendable, Hashable, CustomStringConvertible {
    case v4
    case v6

    /// Address width in bits.
    public var bitWidth: Int { self == .v4 ? 32 : 128 }

    /// "4" or "6", as CNI 0.3.x/0.4.0 results spell `ips[].version`.
    public var versionString: String { self == .v4 ? "4" : "6" }

    public var description: String { self == .v4 ? "IPv4" : "IPv6" }
}

/// An IPv4 or IPv6 address. IPv4 addresses are never represented as IPv4-mapped IPv6, so
/// `::ffff:10.0.0.1` is an IPv6 address distinct from `10.0.0.1`.
public struct IPAddress: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The address as a 128-bit number split in two halves; an IPv4 address lives in `low`.
    public let family: IPFamily
    public let high: UInt64
    public let low: UInt64

    public init(v4 value: UInt32) {
        family = .v4
        high = 0
        low = UInt64(value)
    }

    public init(v6High high: UInt64, low: UInt64) {
        family = .v6
        self.high = high
        self.low = low
    }

    /// An address from 4 or 16 network-order bytes.
    public init?(bytes: some Collection<UInt8>) {
        switch bytes.count {
        case 4:
            self.init(v4: bytes.reduce(0) { $0 << 8 | UInt32($1) })
        case 16:
            let high = bytes.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let low = bytes.dropFirst(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            self.init(v6High: high, low: low)
        default:
            return nil
        }
    }

    /// Parses dotted-quad IPv4 (no leading zeros, as Go ≥ 1.17) or IPv6 text (RFC 4291 §2.2,
    /// including `::` and an embedded dotted quad). Zones (`%eth0`) are not addresses here.
    public init?(_ text: some StringProtocol) {
        let utf8 = Array(text.utf8)
        if utf8.contains(UInt8(ascii: ":")) {
            guard let (high, low) = IPAddress.parseV6(utf8) else { return nil }
            self.init(v6High: high, low: low)
        } else {
            guard let value = IPAddress.parseV4(utf8[...]) else { return nil }
            self.init(v4: value)
        }
    }

    /// The address in network byte order: 4 bytes for IPv4, 16 for IPv6.
    public var bytes: [UInt8] {
        switch family {
        case .v4:
            return (0..<4).map { UInt8(truncatingIfNeeded: low >> (24 - 8 * $0)) }
        case .v6:
            return (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * $0)) }
                + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * $0)) }
        }
    }

    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        if lhs.family != rhs.family { return lhs.family == .v4 }
        return (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }

    /// Dotted quad for IPv4; RFC 5952 canonical text for IPv6 (lowercase, the longest run of two
    /// or more zero groups compressed, the first such run on a tie).
    public var description: String {
        switch family {
        case .v4:
            return bytes.map { String($0) }.joined(separator: ".")
        case .v6:
            let groups = (0..<4).map { UInt16(truncatingIfNeeded: high >> (48 - 16 * $0)) }
                + (0..<4).map { UInt16(truncatingIfNeeded: low >> (48 - 16 * $0)) }
            if high == 0, low >> 32 == 0xFFFF {
                return "::ffff:" + IPAddress(v4: UInt32(truncatingIfNeeded: low)).description
            }
            var bestStart = -1, bestLength = 0, runStart = -1
            for index in 0...8 {
                if index < 8, groups[index] == 0 {
                    if runStart < 0 { runStart = index }
                } else if runStart >= 0 {
                    if index - runStart > bestLength {
                        bestStart = runStart
                        bestLength = index - runStart
                    }
                    runStart = -1
                }
            }
            func hex(_ range: Range<Int>) -> String {
                range.map { String(groups[$0], radix: 16) }.joined(separator: ":")
            }
            guard bestLength >= 2 else { return hex(0..<8) }
            return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
        }
    }

    private static func parseV4(_ utf8: ArraySlice<UInt8>) -> UInt32? {
        let parts = utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard (1...3).contains(part.count),
                  part.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                  part.count == 1 || part.first != UInt8(ascii: "0")
            else { return nil }
            let octet = part.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
            guard octet <= 255 else { return nil }
            value = value << 8 | UInt32(octet)
        }
        return value
    }

    private static func parseV6(_ utf8: [UInt8]) -> (UInt64, UInt64)? {
        var groups: [UInt16] = []
        var compressionAt: Int?
        var index = 0
        if utf8.starts(with: [UInt8(ascii: ":"), UInt8(ascii: ":")]) {
            compressionAt = 0
            index = 2
        } else if utf8.first == UInt8(ascii: ":") {
            return nil
        }
        while index < utf8.count {
            // The last 32 bits may be written as a dotted quad ("::ffff:10.0.0.1").
            let rest = utf8[index...]
            if !rest.contains(UInt8(ascii: ":")), rest.contains(UInt8(ascii: ".")) {
                guard let v4 = parseV4(rest) else { return nil }
                groups.append(UInt16(v4 >> 16))
                groups.append(UInt16(v4 & 0xFFFF))
                break
            }
            var group: UInt32 = 0
            var digits = 0
            while index < utf8.count, let digit = hexValue(utf8[index]) {
                group = group << 4 | UInt32(digit)
                digits += 1
                index += 1
                if digits > 4 { return nil }
            }
            guard digits > 0 else { return nil }
            groups.append(UInt16(group))
            if index == utf8.count { break }
            guard utf8[index] == UInt8(ascii: ":") else { return nil }
            index += 1
            if index < utf8.count, utf8[index] == UInt8(ascii: ":") {
                guard compressionAt == nil else { return nil }
                compressionAt = groups.count
                index += 1
            } else if index == utf8.count {
                return nil  // trailing single colon
            }
        }
        if let compressionAt {
            guard groups.count <= 7 else { return nil }
            groups.insert(contentsOf: repeatElement(0, count: 8 - groups.count), at: compressionAt)
        }
        guard groups.count == 8 else { return nil }
        let high = groups[0..<4].reduce(UInt64(0)) { $0 << 16 | UInt64($1) }
        let low = groups[4..<8].reduce(UInt64(0)) { $0 << 16 | UInt64($1) }
        return (high, low)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
