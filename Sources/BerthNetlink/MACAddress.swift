/// An Ethernet (EUI-48) address, written `02:42:0a:58:00:05`.
public struct MACAddress: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]

    /// nil unless exactly 6 bytes.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 6 else { return nil }
        self.bytes = bytes
    }

    /// Parses six hex pairs separated by ':' (or '-'), either case.
    public init?(_ text: String) {
        let parts = text.split(omittingEmptySubsequences: false) { $0 == ":" || $0 == "-" }
        guard parts.count == 6 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard part.count == 2, let byte = UInt8(part, radix: 16) else { return nil }
            bytes.append(byte)
        }
        self.bytes = bytes
    }

    /// A random locally administered unicast address (first octet xxxxxx10), as the kernel's
    /// eth_random_addr makes, for callers that must pin an address of their choosing.
    public static func randomLocal<G: RandomNumberGenerator>(using generator: inout G) -> MACAddress {
        var bytes = (0..<6).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes[0] = (bytes[0] & 0xFE) | 0x02
        return MACAddress(bytes: bytes)!
    }

    public static func randomLocal() -> MACAddress {
        var generator = SystemRandomNumberGenerator()
        return randomLocal(using: &generator)
    }

    public var description: String {
        bytes.map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined(separator: ":")
    }
}
