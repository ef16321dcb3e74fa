#if canImport(Glibc)
import Glibc
#endif
import CMnl
import CNftnl

extension NetlinkRequest {
    /// NFT_MSG_GETGEN: the nftables ruleset generation.
    public static func rulesetGenerationGet() -> NetlinkRequest {
        var message = NetlinkMessageBuilder(type: UInt16(NFNL_SUBSYS_NFTABLES) << 8 | UInt16(NFT_MSG_GETGEN.rawValue),
                                            flags: NLM_F_ACK)
        message.putHeader(nfgenmsg.self) {
            $0.nfgen_family = UInt8(AF_UNSPEC)
            $0.version = UInt8(NFNETLINK_V0)
        }
        return NetlinkRequest("query nftables ruleset generation", message)
    }
}

extension NetlinkSocket {
    /// The nftables ruleset generation of this socket's namespace; every committed transaction
    /// increments it. Parsed with libnftnl.
    public func rulesetGeneration() throws(NetlinkError) -> UInt32 {
        guard let reply = try perform([.rulesetGenerationGet()]).first else {
            throw NetlinkError("query nftables ruleset generation", .noData)
        }
        return reply.bytes.withUnsafeBytes { raw in
            let generation = nftnl_gen_alloc()!
            defer { nftnl_gen_free(generation) }
            _ = nftnl_gen_nlmsg_parse(raw.baseAddress!.assumingMemoryBound(to: nlmsghdr.self), generation)
            return nftnl_gen_get_u32(generation, UInt16(NFTNL_GEN_ID))
        }
    }
}
