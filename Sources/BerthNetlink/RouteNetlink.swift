#if canImport(Glibc)
import Glibc
#endif
import BerthIP
import CMnl

/// rtnetlink in one network namespace: links, addresses, routes, bridge ports, per-interface
/// settings. Methods are named noun-first after the `ip` commands they match.
///
/// Every error names the operation and, outside the host namespace, the namespace
/// ("add address 10.88.0.5/16 to eth0 in /run/netns/c1: File exists").
public final class RouteNetlink {
    public let transport: any NetlinkTransport
    /// Where the socket acts, for messages; nil for the namespace this process runs in.
    public let namespace: String?

    public init(transport: any NetlinkTransport, namespace: String? = nil) {
        self.transport = transport
        self.namespace = namespace
    }

    /// A socket in this process's namespace.
    public static func current() throws(NetlinkError) -> RouteNetlink {
        RouteNetlink(transport: try NetlinkSocket(.route))
    }

    /// A socket opened inside `namespace` (a dedicated thread enters it, opens the socket and
    /// exits; the socket keeps acting there).
    public static func open(in namespace: NetworkNamespace.Target) throws -> RouteNetlink {
        let socket = try NetworkNamespace.run(in: namespace) { try NetlinkSocket(.route) }
        return RouteNetlink(transport: socket, namespace: namespace.description)
    }

    /// Sends every request in one sendmsg; each is acknowledged, and the first failure is thrown.
    /// The kernel handles the messages in order and keeps going after a failed one.
    @discardableResult
    public func perform(_ requests: [NetlinkRequest]) throws(NetlinkError) -> [NetlinkMessage] {
        do {
            return try transport.perform(requests)
        } catch {
            guard let namespace else { throw error }
            throw NetlinkError("\(error.operation) in \(namespace)", error.errno, kernelMessage: error.kernelMessage)
        }
    }

    @discardableResult
    public func perform(_ requests: NetlinkRequest...) throws(NetlinkError) -> [NetlinkMessage] {
        try perform(requests)
    }

    // MARK: Links

    /// Creates a bridge; nil MTU and MAC leave the kernel's defaults.
    public func bridgeAdd(name: String, mtu: UInt32? = nil, mac: MACAddress? = nil, up: Bool = true,
                          multicastSnooping: Bool? = nil) throws(NetlinkError) {
        try perform(.bridgeAdd(name: name, mtu: mtu, mac: mac, up: up, multicastSnooping: multicastSnooping))
    }

    /// Creates a veth pair whose peer is born in another namespace; returns the host end and,
    /// when the kernel echoes it (≥ 6.3), the peer's index in its namespace.
    @discardableResult
    public func vethAdd(name: String, mtu: UInt32? = nil, mac: MACAddress? = nil, master: Int32? = nil,
                        up: Bool = true, peer: NetlinkRequest.VethPeer) throws(NetlinkError) -> (host: Link?, peerIndex: Int32?) {
        let echoed = try perform(.vethAdd(name: name, mtu: mtu, mac: mac, master: master, up: up, peer: peer))
            .compactMap(Link.init).first { $0.name == name }
        return (echoed, echoed?.peerIndex)
    }

    public func linkSetUp(_ link: LinkID, _ up: Bool = true) throws(NetlinkError) { try perform(.linkSetUp(link, up)) }
    public func linkSetPromiscuous(_ link: LinkID, _ on: Bool) throws(NetlinkError) { try perform(.linkSetPromiscuous(link, on)) }
    public func linkSetMaster(_ link: LinkID, _ master: LinkID?) throws(NetlinkError) { try perform(.linkSetMaster(link, master)) }
    public func linkSetMTU(_ link: LinkID, _ mtu: UInt32) throws(NetlinkError) { try perform(.linkSetMTU(link, mtu)) }
    public func linkSetMAC(_ link: LinkID, _ mac: MACAddress) throws(NetlinkError) { try perform(.linkSetMAC(link, mac)) }
    public func linkDelete(_ link: LinkID) throws(NetlinkError) { try perform(.linkDelete(link)) }

    /// The link, or nil when there is none of that name or index (ENODEV).
    public func link(_ link: LinkID) throws(NetlinkError) -> Link? {
        do {
            return try perform(.linkGet(link)).compactMap(Link.init).first
        } catch where error.errno == .noSuchDevice {
            return nil
        }
    }

    public func link(named name: String) throws(NetlinkError) -> Link? { try link(.named(name)) }

    public func links() throws(NetlinkError) -> [Link] {
        try perform(.linkDump()).compactMap(Link.init)
    }

    // MARK: Addresses

    public func addressAdd(_ prefix: IPPrefix, to link: LinkID, skipDAD: Bool = false) throws(NetlinkError) {
        try perform(.addressAdd(prefix, to: link, skipDAD: skipDAD))
    }

    public func addressDelete(_ prefix: IPPrefix, from link: LinkID) throws(NetlinkError) {
        try perform(.addressDelete(prefix, from: link))
    }

    /// Addresses of every link, or of the link with index `index`.
    public func addresses(index: Int32? = nil) throws(NetlinkError) -> [InterfaceAddress] {
        try perform(.addressDump(index: index)).compactMap(InterfaceAddress.init).filter { index == nil || $0.index == index }
    }

    // MARK: Routes

    public func routeAdd(_ route: Route, dev link: LinkID? = nil) throws(NetlinkError) {
        try perform(.routeAdd(route, dev: link))
    }

    public func routeDelete(_ route: Route, dev link: LinkID? = nil) throws(NetlinkError) {
        try perform(.routeDelete(route, dev: link))
    }

    /// Routes of `family` in `table` (main by default); nil lists every table.
    public func routes(_ family: IPFamily, table: UInt32? = Route.mainTable) throws(NetlinkError) -> [Route] {
        try perform(.routeDump(family)).compactMap(Route.init).filter { table == nil || $0.table == table }
    }

    // MARK: Bridge ports and per-interface settings

    public func bridgePortSet(_ link: LinkID, hairpin: Bool? = nil, isolated: Bool? = nil) throws(NetlinkError) {
        try perform(.bridgePortSet(link, hairpin: hairpin, isolated: isolated))
    }

    public func ipv4SettingsSet(_ link: LinkID, _ settings: [(IPv4Setting, UInt32)]) throws(NetlinkError) {
        try perform(.ipv4SettingsSet(link, settings))
    }

    public func ipv6AddressGenerationSet(_ link: LinkID, _ mode: IPv6AddressGeneration) throws(NetlinkError) {
        try perform(.ipv6AddressGenerationSet(link, mode))
    }
}
