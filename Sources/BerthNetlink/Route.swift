#if canImport(Glibc)
import Glibc
#endif
import BerthIP
import CMnl

/// Route scope (rtmsg.rtm_scope).
public enum RouteScope: UInt8, Sendable {
    /// Reached through a gateway, or anywhere: the default.
    case universe = 0
    /// On the attached link, no gateway (`scope link`).
    case link = 253
    /// This host.
    case host = 254
}

/// A route, as Berth installs it and as the kernel reports it.
public struct Route: Sendable, Equatable {
    /// RTA_DST with rtm_dst_len; `0.0.0.0/0` or `::/0` for a default route.
    public var destination: IPPrefix
    /// RTA_GATEWAY
    public var gateway: IPAddress?
    /// RTA_OIF
    public var outputInterface: Int32?
    /// RTA_TABLE / rtm_table; 254 is `main`.
    public var table: UInt32
    /// RTA_PRIORITY: the metric.
    public var priority: UInt32?
    public var scope: RouteScope
    /// RTA_METRICS/RTAX_MTU
    public var mtu: UInt32?
    /// RTA_METRICS/RTAX_ADVMSS
    public var advmss: UInt32?

    public static let mainTable: UInt32 = 254

    public init(destination: IPPrefix, gateway: IPAddress? = nil, outputInterface: Int32? = nil,
                table: UInt32 = Route.mainTable, priority: UInt32? = nil, scope: RouteScope = .universe,
                mtu: UInt32? = nil, advmss: UInt32? = nil) {
        self.destination = destination.network
        self.gateway = gateway
        self.outputInterface = outputInterface
        self.table = table
        self.priority = priority
        self.scope = scope
        self.mtu = mtu
        self.advmss = advmss
    }

    /// A default route of `gateway`'s family (`default via GW`).
    public static func defaultRoute(via gateway: IPAddress, outputInterface: Int32? = nil) -> Route {
        let any = gateway.family == .v4 ? IPPrefix("0.0.0.0/0")! : IPPrefix("::/0")!
        return Route(destination: any, gateway: gateway, outputInterface: outputInterface)
    }

    public var isDefault: Bool { destination.length == 0 }

    init?(_ message: NetlinkMessage) {
        guard message.type == UInt16(RTM_NEWROUTE), let info = message.fixedHeader(rtmsg.self) else { return nil }
        let attributes = message.attributes(after: rtmsg.self)
        let family: IPFamily = Int32(info.rtm_family) == AF_INET ? .v4 : .v6
        let destinationAddress = attributes[UInt16(RTA_DST.rawValue)].flatMap { IPAddress(bytes: Array($0.payload)) }
            ?? (family == .v4 ? IPAddress(v4: 0) : IPAddress(v6High: 0, low: 0))
        guard let destination = IPPrefix(address: destinationAddress, length: Int(info.rtm_dst_len)) else { return nil }
        let metrics = attributes[UInt16(RTA_METRICS.rawValue)]?.nested
        self.init(destination: destination,
                  gateway: attributes[UInt16(RTA_GATEWAY.rawValue)].flatMap { IPAddress(bytes: Array($0.payload)) },
                  outputInterface: attributes[UInt16(RTA_OIF.rawValue)]?.s32,
                  table: attributes[UInt16(RTA_TABLE.rawValue)]?.u32 ?? UInt32(info.rtm_table),
                  priority: attributes[UInt16(RTA_PRIORITY.rawValue)]?.u32,
                  scope: RouteScope(rawValue: info.rtm_scope) ?? .universe,
                  mtu: metrics?[UInt16(RTAX_MTU)]?.u32,
                  advmss: metrics?[UInt16(RTAX_ADVMSS)]?.u32)
    }

    var summary: String {
        var text = isDefault ? "default" : destination.description
        if let gateway { text += " via \(gateway)" }
        if table != Route.mainTable { text += " table \(table)" }
        if let priority { text += " metric \(priority)" }
        return text
    }
}

extension NetlinkRequest {
    private static func routeMessage(type: Int32, flags: Int32, _ route: Route, on link: LinkID?) -> NetlinkMessageBuilder {
        var message = NetlinkMessageBuilder(type: UInt16(type), flags: flags)
        let family = route.destination.address.addressFamily
        message.putHeader(rtmsg.self) {
            $0.rtm_family = UInt8(family)
            $0.rtm_dst_len = UInt8(route.destination.length)
            // Tables above 255 only fit in RTA_TABLE (as iproute2 does it).
            $0.rtm_table = route.table < 256 ? UInt8(route.table) : UInt8(RT_TABLE_UNSPEC.rawValue)
            $0.rtm_protocol = type == Int32(RTM_NEWROUTE) ? UInt8(RTPROT_BOOT) : 0
            $0.rtm_scope = route.scope.rawValue
            $0.rtm_type = type == Int32(RTM_NEWROUTE) ? UInt8(RTN_UNICAST) : 0
        }
        if route.table >= 256 { message.put(UInt16(RTA_TABLE.rawValue), u32: route.table) }
        if route.destination.length > 0 { message.put(UInt16(RTA_DST.rawValue), bytes: route.destination.address.bytes) }
        if let gateway = route.gateway { message.put(UInt16(RTA_GATEWAY.rawValue), bytes: gateway.bytes) }
        if let index = link?.index ?? route.outputInterface { message.put(UInt16(RTA_OIF.rawValue), s32: index) }
        if let priority = route.priority { message.put(UInt16(RTA_PRIORITY.rawValue), u32: priority) }
        if route.mtu != nil || route.advmss != nil {
            message.nest(UInt16(RTA_METRICS.rawValue)) { metrics in
                if let mtu = route.mtu { metrics.put(UInt16(RTAX_MTU), u32: mtu) }
                if let advmss = route.advmss { metrics.put(UInt16(RTAX_ADVMSS), u32: advmss) }
            }
        }
        return message
    }

    /// `ip route add DST [via GW] [dev LINK] [table T] [metric P] [scope link] [mtu M] [advmss A]`
    public static func routeAdd(_ route: Route, dev link: LinkID? = nil) -> NetlinkRequest {
        precondition(link.map { $0.index > 0 } ?? true, "routes name their device by index")
        let message = routeMessage(type: Int32(RTM_NEWROUTE), flags: NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, route, on: link)
        return NetlinkRequest("add route \(route.summary)\(link.map { " dev \($0)" } ?? "")", message)
    }

    /// `ip route del DST [via GW] [dev LINK] [table T] [metric P]`
    public static func routeDelete(_ route: Route, dev link: LinkID? = nil) -> NetlinkRequest {
        precondition(link.map { $0.index > 0 } ?? true, "routes name their device by index")
        let message = routeMessage(type: Int32(RTM_DELROUTE), flags: NLM_F_ACK, route, on: link)
        return NetlinkRequest("delete route \(route.summary)\(link.map { " dev \($0)" } ?? "")", message)
    }

    /// `ip route show table all` for one family.
    public static func routeDump(_ family: IPFamily) -> NetlinkRequest {
        var message = NetlinkMessageBuilder(type: UInt16(RTM_GETROUTE), flags: NLM_F_DUMP)
        message.putHeader(rtmsg.self) { $0.rtm_family = UInt8(family == .v4 ? AF_INET : AF_INET6) }
        return NetlinkRequest("list \(family) routes", isDump: true, message)
    }
}
