#if canImport(Glibc)
import Glibc
#endif
import CMnl

/// A link as requests address it: by index, which the kernel uses, and by name, which people
/// read. Index 0 addresses the link by name (RTM_NEWLINK/DELLINK/GETLINK accept IFLA_IFNAME);
/// addresses and routes need the index.
public struct LinkID: Sendable, Hashable, CustomStringConvertible {
    public let index: Int32
    public let name: String

    public init(index: Int32, name: String) {
        self.index = index
        self.name = name
    }

    public static func named(_ name: String) -> LinkID { LinkID(index: 0, name: name) }

    public var description: String { name }
}

/// Operational state (IFLA_OPERSTATE, RFC 2863), as `ip link` prints it.
public enum OperationalState: UInt8, Sendable {
    case unknown = 0, notPresent, down, lowerLayerDown, testing, dormant, up
}

/// A link as the kernel reports it (RTM_NEWLINK in a dump or a get).
public struct Link: Sendable, Equatable {
    /// ifinfomsg.ifi_index
    public let index: Int32
    /// IFLA_IFNAME
    public let name: String
    /// IFLA_LINKINFO/IFLA_INFO_KIND: "bridge", "veth"…; nil for lo and physical devices.
    public let kind: String?
    /// IFLA_MASTER: the bridge this link is a port of.
    public let master: Int32?
    /// IFLA_ADDRESS
    public let mac: MACAddress?
    /// IFLA_MTU
    public let mtu: UInt32
    /// ifinfomsg.ifi_flags (IFF_UP, IFF_PROMISC, IFF_LOWER_UP…)
    public let flags: UInt32
    /// IFLA_OPERSTATE
    public let operationalState: OperationalState
    /// IFLA_LINK: for a veth, the peer's index (in the peer's namespace).
    public let peerIndex: Int32?
    /// IFLA_LINK_NETNSID: for a veth whose peer is in another namespace, that namespace's id as
    /// seen from this one.
    public let peerNamespaceID: Int32?

    public var id: LinkID { LinkID(index: index, name: name) }
    /// Administratively up (IFF_UP).
    public var isUp: Bool { flags & UInt32(IFF_UP) != 0 }
    public var isPromiscuous: Bool { flags & UInt32(IFF_PROMISC) != 0 }
    /// The loopback device (IFF_LOOPBACK).
    public var isLoopback: Bool { flags & UInt32(IFF_LOOPBACK) != 0 }

    init?(_ message: NetlinkMessage) {
        guard message.type == UInt16(RTM_NEWLINK), let info = message.fixedHeader(ifinfomsg.self) else { return nil }
        let attributes = message.attributes(after: ifinfomsg.self)
        guard let name = attributes[UInt16(IFLA_IFNAME)]?.string else { return nil }
        index = info.ifi_index
        self.name = name
        flags = info.ifi_flags
        kind = attributes[UInt16(IFLA_LINKINFO)]?.nested[UInt16(IFLA_INFO_KIND)]?.string
        master = attributes[UInt16(IFLA_MASTER)]?.s32
        mac = attributes[UInt16(IFLA_ADDRESS)].flatMap { MACAddress(bytes: Array($0.payload)) }
        mtu = attributes[UInt16(IFLA_MTU)]?.u32 ?? 0
        operationalState = attributes[UInt16(IFLA_OPERSTATE)]?.u8.flatMap(OperationalState.init(rawValue:)) ?? .unknown
        let link = attributes[UInt16(IFLA_LINK)]?.s32
        peerIndex = link == index ? nil : link
        peerNamespaceID = attributes[UInt16(IFLA_LINK_NETNSID)]?.s32
    }
}

/// Where a veth's peer is born: a namespace file descriptor (IFLA_NET_NS_FD) or a process's
/// namespace (IFLA_NET_NS_PID). `description` names it in errors.
public struct PeerNamespace: Sendable {
    enum Reference: Sendable {
        case fd(Int32)
        case pid(Int32)
    }

    let reference: Reference
    public let description: String

    public static func fd(_ fd: Int32, path: String) -> PeerNamespace {
        PeerNamespace(reference: .fd(fd), description: path)
    }

    public static func pid(_ pid: Int32) -> PeerNamespace {
        PeerNamespace(reference: .pid(pid), description: "/proc/\(pid)/ns/net")
    }

    func put(into message: inout NetlinkMessageBuilder) {
        switch reference {
        case .fd(let fd): message.put(UInt16(IFLA_NET_NS_FD), s32: fd)
        case .pid(let pid): message.put(UInt16(IFLA_NET_NS_PID), s32: pid)
        }
    }
}

// MARK: - Link requests

extension NetlinkRequest {
    /// Writes ifinfomsg and, for a link addressed by name, IFLA_IFNAME.
    private static func linkHeader(_ message: inout NetlinkMessageBuilder, _ link: LinkID,
                                   family: Int32 = AF_UNSPEC, flags: UInt32 = 0, change: UInt32 = 0) {
        message.putHeader(ifinfomsg.self) {
            $0.ifi_family = UInt8(family)
            $0.ifi_index = link.index
            $0.ifi_flags = flags
            $0.ifi_change = change
        }
        if link.index == 0 { message.put(UInt16(IFLA_IFNAME), string: link.name) }
    }

    /// `ip link add NAME [mtu M] [address MAC] type bridge [mcast_snooping 0|1] [up]`. The MAC is
    /// worth pinning: a bridge without one takes the lowest of its ports' and changes as ports
    /// come and go. nil `multicastSnooping` leaves the kernel's default (on).
    public static func bridgeAdd(name: String, mtu: UInt32? = nil, mac: MACAddress? = nil, up: Bool = true,
                                 multicastSnooping: Bool? = nil) -> NetlinkRequest {
        var message = NetlinkMessageBuilder(type: UInt16(RTM_NEWLINK), flags: NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK)
        let upFlag = up ? UInt32(IFF_UP) : 0
        linkHeader(&message, .named(name), flags: upFlag, change: upFlag)
        if let mtu { message.put(UInt16(IFLA_MTU), u32: mtu) }
        if let mac { message.put(UInt16(IFLA_ADDRESS), bytes: mac.bytes) }
        message.nest(UInt16(IFLA_LINKINFO)) { info in
            info.put(UInt16(IFLA_INFO_KIND), string: "bridge")
            if let multicastSnooping {
                info.nest(UInt16(IFLA_INFO_DATA)) { $0.put(UInt16(IFLA_BR_MCAST_SNOOPING), u8: multicastSnooping ? 1 : 0) }
            }
        }
        return NetlinkRequest("create bridge \(name)", message)
    }

    /// The other end of a veth: born in another namespace, or (nil) next to the first end.
    public struct VethPeer: Sendable {
        public var name: String
        public var namespace: PeerNamespace?
        public var mtu: UInt32?
        public var mac: MACAddress?

        public init(name: String, namespace: PeerNamespace?, mtu: UInt32? = nil, mac: MACAddress? = nil) {
            self.name = name
            self.namespace = namespace
            self.mtu = mtu
            self.mac = mac
        }
    }

    /// `ip link add NAME [mtu M] [master B] [up] type veth peer name P netns NS [mtu M] [address MAC]`
    /// in one message: the peer is created directly inside its namespace (moving a link there
    /// afterwards costs 20–40 ms). The peer cannot be created up (the kernel answers ENOTCONN);
    /// bring it up from inside its namespace. The request asks for an echo of the new link,
    /// which carries the peer's index (IFLA_LINK) on kernels ≥ 6.3.
    public static func vethAdd(name: String, mtu: UInt32? = nil, mac: MACAddress? = nil, master: Int32? = nil,
                               up: Bool = true, peer: VethPeer) -> NetlinkRequest {
        var message = NetlinkMessageBuilder(type: UInt16(RTM_NEWLINK),
                                            flags: NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK | NLM_F_ECHO)
        let upFlag = up ? UInt32(IFF_UP) : 0
        linkHeader(&message, .named(name), flags: upFlag, change: upFlag)
        if let mtu { message.put(UInt16(IFLA_MTU), u32: mtu) }
        if let mac { message.put(UInt16(IFLA_ADDRESS), bytes: mac.bytes) }
        if let master { message.put(UInt16(IFLA_MASTER), s32: master) }
        message.nest(UInt16(IFLA_LINKINFO)) { info in
            info.put(UInt16(IFLA_INFO_KIND), string: "veth")
            info.nest(UInt16(IFLA_INFO_DATA)) { data in
                data.nest(UInt16(VETH_INFO_PEER)) { peerMessage in
                    // VETH_INFO_PEER carries an ifinfomsg of its own, then the peer's attributes.
                    peerMessage.putHeader(ifinfomsg.self) { $0.ifi_family = UInt8(AF_UNSPEC) }
                    peerMessage.put(UInt16(IFLA_IFNAME), string: peer.name)
                    if let namespace = peer.namespace { namespace.put(into: &peerMessage) }
                    if let mtu = peer.mtu { peerMessage.put(UInt16(IFLA_MTU), u32: mtu) }
                    if let mac = peer.mac { peerMessage.put(UInt16(IFLA_ADDRESS), bytes: mac.bytes) }
                }
            }
        }
        let peerWhere = peer.namespace.map { " in \($0.description)" } ?? ""
        return NetlinkRequest("create veth \(name) (peer \(peer.name)\(peerWhere))", message)
    }

    /// `ip link set LINK netns NS [name NEW]`: moves a link into another namespace. Berth never
    /// does this on its paths (20–40 ms against 0.5–1 ms for a peer born there); it exists so the
    /// benchmark can measure what runtimes that move links pay.
    public static func linkSetNamespace(_ link: LinkID, _ namespace: PeerNamespace, newName: String? = nil) -> NetlinkRequest {
        precondition(newName == nil || link.index != 0, "renaming needs the link's index: its name is the lookup key")
        var message = NetlinkMessageBuilder(type: UInt16(RTM_NEWLINK), flags: NLM_F_ACK)
        linkHeader(&message, link)
        namespace.put(into: &message)
        if let newName { message.put(UInt16(IFLA_IFNAME), string: newName) }
        return NetlinkRequest("move \(link) to \(namespace.description)", message)
    }

    /// `ip link set LINK up|down`
    public static func linkSetUp(_ link: LinkID, _ up: Bool = true) -> NetlinkRequest {
        var message = NetlinkMessageBuilder(type: UInt16(RTM_NEWLINK), flags: NLM_F_ACK)
        linkHeader(&message, link, flags: up ? UInt32(IFF_UP) : 0, change: UInt32(IFF_UP))
        return NetlinkRequest("set \(link) \(up ? "up" : "down")", message)
    }

    /// `ip link set LINK promisc on|off`
    public static func linkSetPromiscuous(_ link: LinkID, _ on: Bool) -> NetlinkRequest {
        var message = NetlinkMessageBuilder(type: UInt16(RTM_NEWLINK), flags: NLM_F_ACK)
        linkHeader(&message, link, flags: on ? UInt32(IFF_PROMISC) : 0, change: UInt32(IFF_PROMISC))
        return NetlinkRequest("set \(link) promisc \(on ? "on" : "off")", message)
    }

    /// `ip link set LINK master BRIDGE` (or `nomaster` with nil).
    public static func linkSetMaster(_ link: LinkID, _ master: LinkID?) -> NetlinkRequest {
        var message = NetlinkMessageBuilder(type: UInt16(RTM_NEWLINK), flags: NLM_F_ACK)
        linkHeader(&message, link)
        message.put(UInt16(IFLA_MASTER), s32: master?.index ?? 0)
        return NetlinkRequest(master.map { "attach \(link) to bridge \($0)" } ?? "detach \(link) from its bridge", message)
    }

    /// `ip link set LINK mtu M`
    public static func linkSetMTU(_ link: LinkID, _ mtu: UInt32) -> NetlinkRequest {
        var message = NetlinkMessageBuilder(type: UInt16(RTM_NEWLINK), flags: NLM_F_ACK)
        linkHeader(&message, link)
        message.put(UInt16(IFLA_MTU), u32: mtu)
        return NetlinkRequest("set mtu \(mtu) on \(link)", message)
    }

    /// `ip link set LINK address MAC`
    public static func linkSetMAC(_ link: LinkID, _ mac: MACAddress) -> NetlinkRequest {
        var message = NetlinkMessageBuilder(type: UInt16(RTM_NEWLINK), flags: NLM_F_ACK)
        linkHeader(&message, link)
        message.put(UInt16(IFLA_ADDRESS), bytes: mac.bytes)
        return NetlinkRequest("set address \(mac) on \(link)", message)
    }

    /// `ip link del LINK`. Deleting a veth deletes its peer too, wherever it is.
    public static func linkDelete(_ link: LinkID) -> NetlinkRequest {
        var message = NetlinkMessageBuilder(type: UInt16(RTM_DELLINK), flags: NLM_F_ACK)
        linkHeader(&message, link)
        return NetlinkRequest("delete link \(link)", message)
    }

    /// `ip link show LINK`
    public static func linkGet(_ link: LinkID) -> NetlinkRequest {
        var message = NetlinkMessageBuilder(type: UInt16(RTM_GETLINK), flags: NLM_F_ACK)
        linkHeader(&message, link)
        return NetlinkRequest("look up link \(link)", message)
    }

    /// `ip link show`
    public static func linkDump() -> NetlinkRequest {
        var message = NetlinkMessageBuilder(type: UInt16(RTM_GETLINK), flags: NLM_F_DUMP)
        message.putHeader(ifinfomsg.self) { $0.ifi_family = UInt8(AF_UNSPEC) }
        return NetlinkRequest("list links", isDump: true, message)
    }

    // MARK: Bridge ports and per-interface settings

    /// `bridge link set dev LINK hairpin on|off isolated on|off`: IFLA_PROTINFO of an AF_BRIDGE
    /// RTM_SETLINK. Hairpin lets a frame leave by the port it came in (a container reaching its
    /// own published port through the host); isolated ports cannot talk to each other.
    ///
    /// RTM_SETLINK, not RTM_NEWLINK: only SETLINK has an AF_BRIDGE handler; NEWLINK falls back to
    /// the generic one, which ignores IFLA_PROTINFO and acknowledges anyway. The AF_BRIDGE handler
    /// finds the port by index only.
    public static func bridgePortSet(_ link: LinkID, hairpin: Bool? = nil, isolated: Bool? = nil) -> NetlinkRequest {
        precondition(link.index > 0, "bridge ports are addressed by index")
        var message = NetlinkMessageBuilder(type: UInt16(RTM_SETLINK), flags: NLM_F_ACK)
        linkHeader(&message, link, family: AF_BRIDGE)
        message.nest(UInt16(IFLA_PROTINFO) | UInt16(NLA_F_NESTED)) { port in
            if let hairpin { port.put(UInt16(IFLA_BRPORT_MODE), u8: hairpin ? 1 : 0) }
            if let isolated { port.put(UInt16(IFLA_BRPORT_ISOLATED), u8: isolated ? 1 : 0) }
        }
        let settings = [hairpin.map { "hairpin \($0 ? "on" : "off")" }, isolated.map { "isolated \($0 ? "on" : "off")" }]
        return NetlinkRequest("set bridge port \(link): \(settings.compactMap { $0 }.joined(separator: ", "))", message)
    }

    /// Per-interface IPv4 settings (`net.ipv4.conf.LINK.*`) without /proc: IFLA_AF_SPEC →
    /// AF_INET → IFLA_INET_CONF, keyed by IPV4_DEVCONF_* ids.
    public static func ipv4SettingsSet(_ link: LinkID, _ settings: [(IPv4Setting, UInt32)]) -> NetlinkRequest {
        var message = NetlinkMessageBuilder(type: UInt16(RTM_NEWLINK), flags: NLM_F_ACK)
        linkHeader(&message, link)
        message.nest(UInt16(IFLA_AF_SPEC)) { spec in
            spec.nest(UInt16(AF_INET)) { inet in
                inet.nest(UInt16(IFLA_INET_CONF)) { conf in
                    for (setting, value) in settings { conf.put(setting.rawValue, u32: value) }
                }
            }
        }
        let text = settings.map { "\($0.0)=\($0.1)" }.joined(separator: " ")
        return NetlinkRequest("set net.ipv4.conf.\(link.name) \(text)", message)
    }

    /// `ip link set LINK addrgenmode none|eui64|stable_secret|random`: `.none` stops the kernel
    /// from giving the link an IPv6 link-local address of its own.
    public static func ipv6AddressGenerationSet(_ link: LinkID, _ mode: IPv6AddressGeneration) -> NetlinkRequest {
        var message = NetlinkMessageBuilder(type: UInt16(RTM_NEWLINK), flags: NLM_F_ACK)
        linkHeader(&message, link)
        message.nest(UInt16(IFLA_AF_SPEC)) { spec in
            spec.nest(UInt16(AF_INET6)) { $0.put(UInt16(IFLA_INET6_ADDR_GEN_MODE), u8: mode.rawValue) }
        }
        return NetlinkRequest("set addrgenmode \(mode) on \(link)", message)
    }
}

/// `net.ipv4.conf.<link>.*` settings Berth uses (IPV4_DEVCONF_* ids from linux/ip.h).
public enum IPv4Setting: UInt16, Sendable, CustomStringConvertible {
    case forwarding = 1
    case proxyARP = 3
    case rpFilter = 8
    case arpNotify = 22
    case routeLocalnet = 26

    public var description: String {
        switch self {
        case .forwarding: "forwarding"
        case .proxyARP: "proxy_arp"
        case .rpFilter: "rp_filter"
        case .arpNotify: "arp_notify"
        case .routeLocalnet: "route_localnet"
        }
    }
}

/// IN6_ADDR_GEN_MODE_* from linux/if_link.h.
public enum IPv6AddressGeneration: UInt8, Sendable, CustomStringConvertible {
    case eui64 = 0, none, stablePrivacy, random

    public var description: String {
        switch self {
        case .eui64: "eui64"
        case .none: "none"
        case .stablePrivacy: "stable_secret"
        case .random: "random"
        }
    }
}
