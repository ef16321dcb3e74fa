#if canImport(Glibc)
import Glibc
#endif
import CMnl

/// Builds one netlink message with libmnl's put functions, in a heap buffer whose address never
/// moves while nests are open. The sequence number is left 0: it is assigned when the message is
/// sent (`NetlinkRequest`), so the same bytes can be compared with golden hex.
struct NetlinkMessageBuilder: ~Copyable {
    static let capacity = 4096

    private let buffer: UnsafeMutableRawPointer
    private let header: UnsafeMutablePointer<nlmsghdr>

    init(type: UInt16, flags: Int32) {
        buffer = .allocate(byteCount: Self.capacity, alignment: 8)
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: Self.capacity)
        header = mnl_nlmsg_put_header(buffer)!
        header.pointee.nlmsg_type = type
        header.pointee.nlmsg_flags = UInt16(NLM_F_REQUEST | flags)
    }

    deinit { buffer.deallocate() }

    /// The fixed header that follows nlmsghdr (ifinfomsg, ifaddrmsg, rtmsg…), zeroed, for `fill`.
    mutating func putHeader<T>(_ type: T.Type, _ fill: (inout T) -> Void) {
        let extra = mnl_nlmsg_put_extra_header(header, MemoryLayout<T>.size)!
        fill(&extra.assumingMemoryBound(to: T.self).pointee)
    }

    mutating func put(_ type: UInt16, string: String) {
        string.withCString { mnl_attr_put_strz(header, type, $0) }
    }

    mutating func put(_ type: UInt16, u8 value: UInt8) { mnl_attr_put_u8(header, type, value) }
    mutating func put(_ type: UInt16, u16 value: UInt16) { mnl_attr_put_u16(header, type, value) }
    mutating func put(_ type: UInt16, u32 value: UInt32) { mnl_attr_put_u32(header, type, value) }
    mutating func put(_ type: UInt16, s32 value: Int32) { mnl_attr_put_u32(header, type, UInt32(bitPattern: value)) }

    mutating func put(_ type: UInt16, bytes: [UInt8]) {
        bytes.withUnsafeBytes { mnl_attr_put(header, type, $0.count, $0.baseAddress) }
    }

    /// A nested attribute whose members `body` puts.
    mutating func nest(_ type: UInt16, _ body: (inout NetlinkMessageBuilder) -> Void) {
        let start = mnl_attr_nest_start(header, type)!
        body(&self)
        mnl_attr_nest_end(header, start)
    }

    /// The message, exactly `nlmsg_len` bytes.
    var bytes: [UInt8] {
        Array(UnsafeRawBufferPointer(start: buffer, count: Int(header.pointee.nlmsg_len)))
    }
}

/// One request message and what it does, in words, for errors ("create veth vethab12cd34
/// (peer eth0 in /run/netns/c1)"). Requests are values: built once, sent alone or several in one
/// sendmsg, compared byte for byte in tests.
public struct NetlinkRequest: Sendable, Equatable {
    public let operation: String
    /// The message with sequence number 0 and port id 0.
    public let bytes: [UInt8]
    /// True for dumps (answered by NLMSG_DONE), false for requests answered by an ACK.
    public let isDump: Bool

    /// A request from a message built elsewhere (libnftnl), sequence number 0.
    public init(operation: String, bytes: [UInt8], isDump: Bool) {
        self.operation = operation
        self.bytes = bytes
        self.isDump = isDump
    }

    init(_ operation: String, isDump: Bool = false, _ builder: borrowing NetlinkMessageBuilder) {
        self.operation = operation
        self.bytes = builder.bytes
        self.isDump = isDump
    }

    /// The bytes with `sequence` written into nlmsghdr.nlmsg_seq (little-endian host order).
    public func bytes(sequence: UInt32) -> [UInt8] {
        var bytes = self.bytes
        withUnsafeBytes(of: sequence.littleEndian) { bytes.replaceSubrange(8..<12, with: $0) }
        return bytes
    }
}

/// A received message: header fields and the bytes after the fixed header, for attribute walks.
public struct NetlinkMessage: Sendable {
    public let bytes: [UInt8]

    public var type: UInt16 { bytes.withUnsafeBytes { $0.load(fromByteOffset: 4, as: UInt16.self) } }
    public var flags: UInt16 { bytes.withUnsafeBytes { $0.load(fromByteOffset: 6, as: UInt16.self) } }

    /// The fixed header after nlmsghdr (ifinfomsg…), or nil when the message is too short.
    func fixedHeader<T>(_ type: T.Type) -> T? {
        let offset = MemoryLayout<nlmsghdr>.size
        guard bytes.count >= offset + MemoryLayout<T>.size else { return nil }
        return bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
    }

    /// The top-level attributes after a fixed header of type `T`.
    func attributes<T>(after type: T.Type) -> NetlinkAttributes {
        let offset = MemoryLayout<nlmsghdr>.size + (MemoryLayout<T>.size + 3) & ~3
        guard bytes.count >= offset else { return NetlinkAttributes(bytes: []) }
        return NetlinkAttributes(bytes: Array(bytes[offset...]))
    }
}

/// A sequence of netlink attributes (TLVs, 4-byte aligned), read with bounds checks. Later
/// occurrences of a type replace earlier ones in `subscript`, as the kernel's parser does.
struct NetlinkAttributes {
    let bytes: [UInt8]

    struct Attribute {
        /// Type without the NLA_F_NESTED / NLA_F_NET_BYTEORDER bits.
        let type: UInt16
        let payload: ArraySlice<UInt8>

        var string: String {
            String(decoding: payload.prefix { $0 != 0 }, as: UTF8.self)
        }
        var u8: UInt8? { payload.count >= 1 ? payload.first : nil }
        var u16: UInt16? { load(UInt16.self) }
        var u32: UInt32? { load(UInt32.self) }
        var s32: Int32? { u32.map { Int32(bitPattern: $0) } }
        var nested: NetlinkAttributes { NetlinkAttributes(bytes: Array(payload)) }

        private func load<T: FixedWidthInteger>(_: T.Type) -> T? {
            guard payload.count >= MemoryLayout<T>.size else { return nil }
            return payload.withUnsafeBytes { $0.loadUnaligned(as: T.self) }
        }
    }

    var all: [Attribute] {
        var result: [Attribute] = []
        var offset = 0
        while bytes.count - offset >= 4 {
            let length = Int(UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8)
            let type = (UInt16(bytes[offset + 2]) | UInt16(bytes[offset + 3]) << 8) & 0x3FFF
            guard length >= 4, offset + length <= bytes.count else { break }
            result.append(Attribute(type: type, payload: bytes[(offset + 4)..<(offset + length)]))
            offset += (length + 3) & ~3
        }
        return result
    }

    subscript(type: UInt16) -> Attribute? { all.last { $0.type == type } }
}
