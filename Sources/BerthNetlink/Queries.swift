#if canImport(Glibc)
import Glibc
#endif
import CMnl
import CNftnl

/// A link as a dump reports it: enough to find a link by name.
public struct LinkSummary: Sendable, Equatable {
    public init(index: Int32, name: String) {
        self.index = index
        self.name = name
    }

    /// ifinfomsg.ifi_index
    public let index: Int32
    /// IFLA_IFNAME
    public let name: String
}

extension NetlinkSocket {
    /// RTM_GETLINK dump: every link of this socket's namespace (`ip link show`).
    public func linkSummaries() throws(NetlinkError) -> [LinkSummary] {
        let messages = try dump(operation: "dump links") { sequence in
            Self.buildMessage { header in
                header.pointee.nlmsg_type = UInt16(RTM_GETLINK)
                header.pointee.nlmsg_flags = UInt16(NLM_F_REQUEST | NLM_F_DUMP)
                header.pointee.nlmsg_seq = sequence
                let info = mnl_nlmsg_put_extra_header(header, MemoryLayout<ifinfomsg>.size)!
                info.assumingMemoryBound(to: ifinfomsg.self).pointee.ifi_family = UInt8(AF_UNSPEC)
            }
        }
        return messages.compactMap { message in
            message.withUnsafeBytes { raw -> LinkSummary? in
                let header = raw.baseAddress!.assumingMemoryBound(to: nlmsghdr.self)
                guard header.pointee.nlmsg_type == UInt16(RTM_NEWLINK) else { return nil }
                let info = mnl_nlmsg_get_payload(header)!.assumingMemoryBound(to: ifinfomsg.self).pointee
                var name: String?
                withUnsafeMutablePointer(to: &name) { namePointer in
                    _ = mnl_attr_parse(header, UInt32(MemoryLayout<ifinfomsg>.size), { attribute, context in
                        if mnl_attr_get_type(attribute) == UInt16(IFLA_IFNAME) {
                            context!.assumingMemoryBound(to: String?.self).pointee = String(cString: mnl_attr_get_str(attribute))
                        }
                        return MNL_CB_OK
                    }, namePointer)
                }
                return name.map { LinkSummary(index: info.ifi_index, name: $0) }
            }
        }
    }

    /// NFT_MSG_GETGEN: the nftables ruleset generation of this socket's namespace. Every
    /// committed transaction increments it.
    public func rulesetGeneration() throws(NetlinkError) -> UInt32 {
        let sequence = nextSequence()
        let request = Self.buildMessage { header in
            let built = nftnl_nlmsg_build_hdr(UnsafeMutableRawPointer(header).assumingMemoryBound(to: CChar.self),
                                              UInt16(NFT_MSG_GETGEN.rawValue), UInt16(AF_UNSPEC), UInt16(NLM_F_ACK), sequence)!
            _ = built
        }
        let reply = try transact(request, sequences: sequence...sequence, operation: "query nftables generation")
        guard let message = reply.messages.first else {
            throw NetlinkError("query nftables generation", .noData)
        }
        return message.withUnsafeBytes { raw in
            let generation = nftnl_gen_alloc()!
            defer { nftnl_gen_free(generation) }
            _ = nftnl_gen_nlmsg_parse(raw.baseAddress!.assumingMemoryBound(to: nlmsghdr.self), generation)
            return nftnl_gen_get_u32(generation, UInt16(NFTNL_GEN_ID))
        }
    }

    /// One message built in place by `fill`, returned as exactly its `nlmsg_len` bytes.
    static func buildMessage(capacity: Int = 4096, _ fill: (UnsafeMutablePointer<nlmsghdr>) -> Void) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: capacity)
        let length = buffer.withUnsafeMutableBytes { raw in
            let header = mnl_nlmsg_put_header(raw.baseAddress)!
            fill(header)
            return Int(header.pointee.nlmsg_len)
        }
        return Array(buffer[0..<length])
    }
}
