#if canImport(Glibc)
import Glibc
#endif
import BerthCNI
import BerthIP
import BerthNetlink
import CLinux

/// Which namespace a path is, and what a namespace looks like as a CNI result: what host and
/// container modes report instead of creating anything.
public enum NamespaceView {
    /// The identity of the namespace at `path` (CNI_NETNS). Code 3 when it cannot be opened or is
    /// not a network namespace (a regular file, a directory, another kind of namespace).
    public static func identity(ofNetns path: String) throws(CNIError) -> NetworkNamespace.Identity {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw CNIError(.unknownContainer, "cannot open the network namespace \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        return try identity(ofNetns: fd, path: path)
    }

    /// The identity of the namespace open as `fd` (opened from `path`, which messages name).
    public static func identity(ofNetns fd: Int32, path: String) throws(CNIError) -> NetworkNamespace.Identity {
        guard berth_namespace_type(fd) == berth_CLONE_NEWNET else {
            throw CNIError(.unknownContainer, "\(path) is not a network namespace")
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw CNIError(.unknownContainer, "cannot stat the network namespace \(path): \(String(cString: strerror(errno)))")
        }
        return NetworkNamespace.Identity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    /// The namespace this plugin runs in: the host's, as the runtime sees it.
    public static func hostIdentity() throws(CNIError) -> NetworkNamespace.Identity {
        do {
            return try NetworkNamespace.processIdentity()
        } catch {
            throw CNIError(.ioFailure, "cannot read this process's network namespace: \(error)")
        }
    }

    /// Which routes a result lists.
    public enum Routes: Sendable {
        /// Default routes only (host mode: the host's other routes are not the container's business).
        case defaults
        /// Every route of the main table that goes through a gateway, default ones included (the
        /// routes a plugin installed; the kernel's own on-link routes are left out).
        case viaGateway
    }

    /// The namespace as a CNI result: its interfaces that are up (loopback only when asked),
    /// except ports of a bridge or bond (a host with 1 000 bridge containers has 1 000 veths,
    /// none with an address of its own; their master is listed), each with `sandbox`; their global addresses, each with its interface's default gateway of the
    /// family; and `routes` from the main table. Read over `netlink`, a socket in that namespace.
    public static func result(of netlink: RouteNetlink, sandbox: String, includeLoopback: Bool = false,
                              routes selection: Routes) throws(NetlinkError) -> CNIResult {
        let links = try netlink.links().filter { $0.isUp && $0.master == nil && (includeLoopback || !$0.isLoopback) }
            .sorted { $0.index < $1.index }
        let addresses = try netlink.addresses()
        var routes: [Route] = []
        for family in [IPFamily.v4, .v6] {
            routes += try netlink.routes(family).filter { route in
                switch selection {
                case .defaults: route.isDefault
                case .viaGateway: route.isDefault || route.gateway != nil
                }
            }
        }
        var result = CNIResult()
        for (position, link) in links.enumerated() {
            result.interfaces.append(.init(name: link.name, mac: link.mac?.description, mtu: Int(link.mtu), sandbox: sandbox))
            for address in addresses where address.index == link.index && address.scope == RouteScope.universe.rawValue {
                let gateway = routes.first {
                    $0.isDefault && $0.outputInterface == link.index && $0.gateway?.family == address.prefix.family
                }?.gateway
                result.ips.append(.init(interface: position, address: address.prefix, gateway: gateway))
            }
        }
        result.routes = routes.map { CNIResult.Route(destination: $0.destination, gateway: $0.gateway) }
        return result
    }
}
