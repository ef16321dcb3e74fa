#if canImport(Glibc)
import Glibc
#endif
import BerthIP
import CMnl

/// An address on a link, as the kernel reports it (RTM_NEWADDR).
public struct InterfaceAddress: Sendable, Equatable {
    /// ifaddrmsg.ifa_index
    public let index: Int32
    /// IFA_LOCAL (IFA_ADDRESS for IPv6) with ifa_prefixlen.
    public let prefix: IPPrefix
    /// IFA_BROADCAST (IPv4)
    public let broadcast: IPAddress?
    /// IFA_FLAGS, or ifa_flags on kernels without it (IFA_F_NODAD, IFA_F_PERMANENT…).
    public let flags: UInt32
    /// ifaddrmsg.ifa_scope (RT_SCOPE_UNIVERSE 0, RT_SCOPE_LINK 253, RT_SCOPE_HOST 254).
    public let scope: UInt8

    /// DAD was skipped (IFA_F_NODAD).
    public var skipsDAD: Bool { flags & UInt32(IFA_F_NODAD) != 0 }

    init?(_ message: NetlinkMessage) {
        guard message.type == UInt16(RTM_NEWADDR), let info = message.fixedHeader(ifaddrmsg.self) else { return nil }
        let attributes = message.attributes(after: ifaddrmsg.self)
        let local = attributes[UInt16(IFA_LOCAL)] ?? attributes[UInt16(IFA_ADDRESS)]
        guard let local, let address = IPAddress(bytes: Array(local.payload)),
              let prefix = IPPrefix(address: address, length: Int(info.ifa_prefixlen))
        else { return nil }
        index = Int32(bitPattern: info.ifa_index)
        self.prefix = prefix
        broadcast = attributes[UInt16(IFA_BROADCAST)].flatMap { IPAddress(bytes: Array($0.payload)) }
        flags = attributes[UInt16(IFA_FLAGS)]?.u32 ?? UInt32(info.ifa_flags)
        scope = info.ifa_scope
    }
}

extension IPAddress {
    var addressFamily: Int32 { family == .v4 ? AF_INET : AF_INET6 }
}

extension IPPrefix {
    /// The IPv4 broadcast address of the prefix (all host bits set); nil for IPv6 and for /31
    /// and /32, which have none.
    public var broadcast: IPAddress? {
        guard family == .v4, length <= 30 else { return nil }
        let hostMask = UInt32.max >> UInt32(length)
        return IPAddress(v4: UInt32(truncatingIfNeeded: address.low) | hostMask)
    }
}

extension NetlinkRequest {
    private static func addressMessage(type: Int32, flags: Int32, _ prefix: IPPrefix, on link: LinkID,
                                       addressFlags: UInt32) -> NetlinkMessageBuilder {
        precondition(link.index > 0, "addresses are set by link index")
        var message = NetlinkMessageBuilder(type: UInt16(type), flags: flags)
        message.putHeader(ifaddrmsg.self) {
            $0.ifa_family = UInt8(prefix.address.addressFamily)
            $0.ifa_prefixlen = UInt8(prefix.length)
            $0.ifa_flags = UInt8(truncatingIfNeeded: addressFlags)
            $0.ifa_scope = UInt8(RT_SCOPE_UNIVERSE.rawValue)
            $0.ifa_index = UInt32(bitPattern: link.index)
        }
        message.put(UInt16(IFA_LOCAL), bytes: prefix.address.bytes)
        message.put(UInt16(IFA_ADDRESS), bytes: prefix.address.bytes)
        return message
    }

    /// `ip addr add PREFIX [broadcast +] dev LINK [nodad]`. IPv4 gets the prefix's broadcast
    /// address; `skipDAD` (IFA_F_NODAD, IPv6) makes the address usable at once instead of after
    /// the seconds duplicate address detection takes.
    public static func addressAdd(_ prefix: IPPrefix, to link: LinkID, skipDAD: Bool = false) -> NetlinkRequest {
        let flags: UInt32 = skipDAD && prefix.family == .v6 ? UInt32(IFA_F_NODAD) : 0
        var message = addressMessage(type: Int32(RTM_NEWADDR), flags: NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK,
                                     prefix, on: link, addressFlags: flags)
        if let broadcast = prefix.broadcast { message.put(UInt16(IFA_BROADCAST), bytes: broadcast.bytes) }
        if flags != 0 { message.put(UInt16(IFA_FLAGS), u32: flags) }
        return NetlinkRequest("add address \(prefix) to \(link)", message)
    }

    /// `ip addr del PREFIX dev LINK`
    public static func addressDelete(_ prefix: IPPrefix, from link: LinkID) -> NetlinkRequest {
        let message = addressMessage(type: Int32(RTM_DELADDR), flags: NLM_F_ACK, prefix, on: link, addressFlags: 0)
        return NetlinkRequest("delete address \(prefix) from \(link)", message)
    }

    /// `ip addr show [dev LINK]`. With an index, a socket with strict checking
    /// (NETLINK_GET_STRICT_CHK) gets that link's addresses only; otherwise the kernel walks
    /// every link of the namespace, a dump that grows with the number of containers.
    public static func addressDump(index: Int32? = nil) -> NetlinkRequest {
        var message = NetlinkMessageBuilder(type: UInt16(RTM_GETADDR), flags: NLM_F_DUMP)
        message.putHeader(ifaddrmsg.self) {
            $0.ifa_family = UInt8(AF_UNSPEC)
            $0.ifa_index = UInt32(bitPattern: index ?? 0)
        }
        return NetlinkRequest(index.map { "list addresses of link #\($0)" } ?? "list addresses", isDump: true, message)
    }
}
