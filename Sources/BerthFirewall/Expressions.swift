import BerthIP

/// The bytecode of a rule: nf_tables expressions as `nft --debug=netlink` lists them. Each
/// statement compiles to what nft emits for its text, register for register.
public enum NFTExpression: Sendable, Hashable {
    public enum MetaKey: UInt32, Sendable { case inputName = 6, outputName = 7, nfproto = 15, l4proto = 16 }
    public enum ConntrackKey: UInt32, Sendable { case state = 0, status = 2 }
    public enum PayloadBase: UInt32, Sendable { case network = 1, transport = 2 }
    public enum Comparison: UInt32, Sendable { case equal = 0, notEqual = 1 }

    case meta(MetaKey, register: UInt32)
    case compare(Comparison, register: UInt32, data: [UInt8])
    case payload(PayloadBase, offset: UInt32, length: UInt32, register: UInt32)
    case bitwise(register: UInt32, length: UInt32, mask: [UInt8], xor: [UInt8])
    case conntrack(ConntrackKey, register: UInt32)
    case fib(flags: UInt32, register: UInt32)
    /// A map lookup; `dataRegister` nil for a verdict map (data to the verdict register).
    case lookup(register: UInt32, map: String, dataRegister: UInt32?)
    /// A set lookup: membership only, the rule ends here when the key is not in the set.
    case setLookup(register: UInt32, set: String)
    /// `verdict`: NF_DROP 0, NF_ACCEPT 1, NFT_JUMP -3 (with `chain`), NFT_RETURN -5.
    case immediate(verdict: Int32, chain: String?)
    case dnat(IPFamily, addressRegister: UInt32, portRegister: UInt32)
    case masquerade

    /// NFT_REG_1: the first 16-byte data register.
    static let register1: UInt32 = 1

    /// The register holding the 4-byte slot `slot` of a value loaded at NFT_REG_1: nft names
    /// 16-byte-aligned slots by their 16-byte register (NFT_REG_1…4), others by their 4-byte one
    /// (NFT_REG32_00 = 8…).
    static func register(slot: Int) -> UInt32 {
        slot % 4 == 0 ? UInt32(1 + slot / 4) : UInt32(8 + slot)
    }
}

extension NFTRule {
    /// The rule's expressions, with the `meta nfproto` check nft puts before the first IPv4 or
    /// IPv6 header match of a rule in an inet table.
    public var expressions: [NFTExpression] {
        var expressions: [NFTExpression] = []
        var checkedFamily = false
        for statement in statements {
            if let family = statement.requiredFamily, !checkedFamily {
                expressions += [.meta(.nfproto, register: 1), .compare(.equal, register: 1, data: [family == .v4 ? 2 : 10])]
                checkedFamily = true
            }
            expressions += statement.expressions
        }
        return expressions
    }
}

extension NFTStatement {
    /// The family an L3 header match needs checked first in an inet table.
    var requiredFamily: IPFamily? {
        switch self {
        case .sourceAddress(let prefix): prefix.family
        case .addressInSet(let family, _, _): family
        case .dnatMap(let family, true, _): family
        default: nil
        }
    }

    var expressions: [NFTExpression] {
        let reg1 = NFTExpression.register1
        switch self {
        case .interfaceName(let direction, let comparison, let name):
            var padded = Array(name.utf8.prefix(15))
            padded += [UInt8](repeating: 0, count: 16 - padded.count)
            return [.meta(direction == .input ? .inputName : .outputName, register: reg1),
                    .compare(comparison == .equal ? .equal : .notEqual, register: reg1, data: padded)]

        case .sourceAddress(let prefix):
            let offset: UInt32 = prefix.family == .v4 ? 12 : 8
            let bytes = prefix.network.address.bytes
            if prefix.length % 8 == 0 {
                let length = prefix.length / 8
                return [.payload(.network, offset: offset, length: UInt32(length), register: reg1),
                        .compare(.equal, register: reg1, data: Array(bytes.prefix(length)))]
            }
            // Not byte-aligned: nft loads the whole address and masks the host bits away.
            let length = bytes.count
            let mask = (0..<length).map { index -> UInt8 in
                let bits = min(8, max(0, prefix.length - index * 8))
                return bits == 8 ? 0xFF : UInt8(0xFF << (8 - bits) & 0xFF)
            }
            return [.payload(.network, offset: offset, length: UInt32(length), register: reg1),
                    .bitwise(register: reg1, length: UInt32(length), mask: mask, xor: [UInt8](repeating: 0, count: length)),
                    .compare(.equal, register: reg1, data: Array(bytes.prefix(length)))]

        case .conntrackState(let states):
            let bits = states.reduce(UInt32(0)) { $0 | $1.rawValue }
            return [.conntrack(.state, register: reg1),
                    .bitwise(register: reg1, length: 4, mask: bits.littleEndianBytes, xor: [0, 0, 0, 0]),
                    .compare(.notEqual, register: reg1, data: [0, 0, 0, 0])]

        case .conntrackStatusDNAT:
            // IPS_DST_NAT
            return [.conntrack(.status, register: reg1),
                    .bitwise(register: reg1, length: 4, mask: UInt32(0x20).littleEndianBytes, xor: [0, 0, 0, 0]),
                    .compare(.notEqual, register: reg1, data: [0, 0, 0, 0])]

        case .fibAddressIsLocal(let destination):
            // NFTA_FIB_F_DADDR / _SADDR, result address type; RTN_LOCAL is 2.
            return [.fib(flags: destination ? 2 : 1, register: reg1),
                    .compare(.equal, register: reg1, data: UInt32(2).littleEndianBytes)]

        case .verdict(let verdict):
            switch verdict {
            case .accept: return [.immediate(verdict: 1, chain: nil)]
            case .drop: return [.immediate(verdict: 0, chain: nil)]
            case .return: return [.immediate(verdict: -5, chain: nil)]
            case .jump(let chain): return [.immediate(verdict: -3, chain: chain)]
            }

        case .addressInSet(let family, let source, let set):
            let offset: UInt32 = switch (family, source) {
            case (.v4, true): 12
            case (.v4, false): 16
            case (.v6, true): 8
            case (.v6, false): 24
            }
            return [.payload(.network, offset: offset, length: family == .v4 ? 4 : 16, register: reg1),
                    .setLookup(register: reg1, set: set)]

        case .verdictMap(let direction, let map):
            return [.meta(direction == .input ? .inputName : .outputName, register: reg1),
                    .lookup(register: reg1, map: map, dataRegister: nil)]

        case .dnatMap(let family, let byDestination, let map):
            // Key fields in consecutive 4-byte slots from NFT_REG_1; data likewise.
            let addressSlots = family == .v4 ? 1 : 4
            var expressions: [NFTExpression] = []
            var slot = 0
            if byDestination {
                expressions.append(.payload(.network, offset: family == .v4 ? 16 : 24, length: UInt32(addressSlots * 4),
                                            register: NFTExpression.register(slot: slot)))
                slot += addressSlots
            }
            expressions.append(.meta(.l4proto, register: NFTExpression.register(slot: slot)))
            expressions.append(.payload(.transport, offset: 2, length: 2, register: NFTExpression.register(slot: slot + 1)))
            expressions.append(.lookup(register: reg1, map: map, dataRegister: reg1))
            expressions.append(.dnat(family, addressRegister: reg1, portRegister: NFTExpression.register(slot: addressSlots)))
            return expressions

        case .masquerade:
            return [.masquerade]
        }
    }
}

extension UInt32 {
    var littleEndianBytes: [UInt8] { withUnsafeBytes(of: littleEndian) { Array($0) } }
}
