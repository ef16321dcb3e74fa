#if canImport(Glibc)
import Glibc
#endif
import CMnl

// Namespace IDs: how one namespace numbers another. A veth whose peer lives elsewhere reports the
// peer's namespace as IFLA_LINK_NETNSID, a number only meaningful in the reporting namespace, so
// matching a host veth to its container takes asking the host what ID the container's namespace
// has (what `ip netns list-id` shows).

extension NetlinkRequest {
    /// `ip netns identify`'s question in reverse: the ID this namespace gives the namespace open
    /// as `fd` (RTM_GETNSID with NETNSA_FD).
    public static func namespaceIDGet(fd: Int32, path: String) -> NetlinkRequest {
        var message = NetlinkMessageBuilder(type: UInt16(RTM_GETNSID), flags: NLM_F_ACK)
        message.putHeader(rtgenmsg.self) { $0.rtgen_family = UInt8(AF_UNSPEC) }
        message.put(UInt16(NETNSA_FD), u32: UInt32(bitPattern: fd))
        return NetlinkRequest("look up the namespace ID of \(path)", message)
    }
}

extension RouteNetlink {
    /// The ID this namespace gives the namespace at `path`; nil when it has none (no link
    /// between the two namespaces made one) or the path cannot be opened.
    public func namespaceID(of path: String) throws(NetlinkError) -> Int32? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        let replies = try perform(.namespaceIDGet(fd: fd, path: path))
        for reply in replies where reply.type == UInt16(RTM_NEWNSID) {
            if let id = reply.attributes(after: rtgenmsg.self)[UInt16(NETNSA_NSID)]?.s32, id >= 0 { return id }
        }
        return nil
    }
}
