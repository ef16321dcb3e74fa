#if canImport(Glibc)
import Glibc
#endif
import BerthIP
import CMnl
import CNftnl

/// nf_tables message types the Debian 12 uapi headers predate (kernel ≥ 6.3): like DEL*, but
/// succeed when the object is already gone.
enum NFTDestroyMessage: UInt16 {
    case table = 26, chain = 27, rule = 28, set = 29, setElement = 30
}

/// One nf_tables change as a batch of libnftnl-built messages, each with the words that name it
/// in errors. Sequence numbers are assigned when the batch is sent.
public struct FirewallBatch: Sendable {
    public struct Message: Sendable {
        public let operation: String
        /// The whole netlink message, sequence number 0.
        public let bytes: [UInt8]
    }

    public private(set) var messages: [Message] = []
    /// Elements per message: a netlink message must fit the 64 KiB of one attribute length.
    static let elementsPerMessage = 256
    public let table: NFTTable
    private var setIDs: [String: UInt32] = [:]

    public init(table: NFTTable = .berth) { self.table = table }

    public var isEmpty: Bool { messages.isEmpty }

    /// Builds one message in a buffer large enough for `payloadHint` bytes of attributes.
    private mutating func append(_ operation: String, type: UInt32, flags: Int32, payloadHint: Int = 0,
                                 _ payload: (UnsafeMutablePointer<nlmsghdr>) -> Void) {
        let capacity = 4096 + payloadHint
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 8)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: capacity)
        let header = nftnl_nlmsg_build_hdr(buffer.assumingMemoryBound(to: CChar.self), UInt16(type),
                                           UInt16(table.family.rawValue), UInt16(flags), 0)!
        payload(header)
        precondition(Int(header.pointee.nlmsg_len) <= capacity, "nftables message overflowed its buffer")
        messages.append(Message(operation: operation,
                                bytes: Array(UnsafeRawBufferPointer(start: buffer, count: Int(header.pointee.nlmsg_len)))))
    }

    // MARK: Table

    /// Creates the table, or leaves it as it is when it exists.
    public mutating func addTable() {
        let object = tableObject()
        defer { nftnl_table_free(object) }
        nftnl_table_set_u32(object, UInt16(NFTNL_TABLE_FLAGS.rawValue), 0)
        append("create table \(table.family.name) \(table.name)", type: NFT_MSG_NEWTABLE.rawValue, flags: NLM_F_CREATE) {
            nftnl_table_nlmsg_build_payload($0, object)
        }
    }

    /// Deletes the table and everything in it; `destroy` also succeeds when it is gone.
    public mutating func deleteTable(destroy: Bool) {
        let object = tableObject()
        defer { nftnl_table_free(object) }
        let type = destroy ? UInt32(NFTDestroyMessage.table.rawValue) : NFT_MSG_DELTABLE.rawValue
        append("delete table \(table.family.name) \(table.name)", type: type, flags: 0) {
            nftnl_table_nlmsg_build_payload($0, object)
        }
    }

    private func tableObject() -> OpaquePointer {
        let object = nftnl_table_alloc()!
        nftnl_table_set_u32(object, UInt16(NFTNL_TABLE_FAMILY.rawValue), table.family.rawValue)
        nftnl_table_set_str(object, UInt16(NFTNL_TABLE_NAME.rawValue), table.name)
        return object
    }

    // MARK: Chains and rules

    private func chainObject(_ name: String) -> OpaquePointer {
        let object = nftnl_chain_alloc()!
        nftnl_chain_set_u32(object, UInt16(NFTNL_CHAIN_FAMILY.rawValue), table.family.rawValue)
        nftnl_chain_set_str(object, UInt16(NFTNL_CHAIN_TABLE.rawValue), table.name)
        nftnl_chain_set_str(object, UInt16(NFTNL_CHAIN_NAME.rawValue), name)
        return object
    }

    /// Creates the chain, or leaves an identical one as it is.
    public mutating func addChain(_ chain: NFTChain) {
        let object = chainObject(chain.name)
        defer { nftnl_chain_free(object) }
        if let base = chain.base {
            nftnl_chain_set_str(object, UInt16(NFTNL_CHAIN_TYPE.rawValue), base.type.rawValue)
            nftnl_chain_set_u32(object, UInt16(NFTNL_CHAIN_HOOKNUM.rawValue), base.hook.rawValue)
            nftnl_chain_set_s32(object, UInt16(NFTNL_CHAIN_PRIO.rawValue), base.priority)
            nftnl_chain_set_u32(object, UInt16(NFTNL_CHAIN_POLICY.rawValue), base.policy.rawValue)
        }
        append("create chain \(chain.name)", type: NFT_MSG_NEWCHAIN.rawValue, flags: NLM_F_CREATE) {
            nftnl_chain_nlmsg_build_payload($0, object)
        }
    }

    /// Removes every rule of the chain (`nft flush chain`); `destroy` also succeeds when the
    /// chain is gone.
    public mutating func flushChain(_ name: String, destroy: Bool = false) {
        let table = self.table
        let type = destroy ? UInt32(NFTDestroyMessage.rule.rawValue) : NFT_MSG_DELRULE.rawValue
        append("flush chain \(name)", type: type, flags: 0) { header in
            let object = nftnl_rule_alloc()!
            defer { nftnl_rule_free(object) }
            nftnl_rule_set_u32(object, UInt16(NFTNL_RULE_FAMILY.rawValue), table.family.rawValue)
            nftnl_rule_set_str(object, UInt16(NFTNL_RULE_TABLE.rawValue), table.name)
            nftnl_rule_set_str(object, UInt16(NFTNL_RULE_CHAIN.rawValue), name)
            nftnl_rule_nlmsg_build_payload(header, object)
        }
    }

    /// Deletes an empty, unreferenced chain; `destroy` also succeeds when it is gone.
    public mutating func deleteChain(_ name: String, destroy: Bool) {
        let object = chainObject(name)
        defer { nftnl_chain_free(object) }
        let type = destroy ? UInt32(NFTDestroyMessage.chain.rawValue) : NFT_MSG_DELCHAIN.rawValue
        append("delete chain \(name)", type: type, flags: 0) { nftnl_chain_nlmsg_build_payload($0, object) }
    }

    /// Appends a rule to a chain.
    public mutating func addRule(_ rule: NFTRule, to chain: String) {
        let object = ruleObject(rule, chain: chain)
        defer { nftnl_rule_free(object) }
        append("add rule to \(chain): \(rule.text)", type: NFT_MSG_NEWRULE.rawValue, flags: NLM_F_CREATE | NLM_F_APPEND) {
            nftnl_rule_nlmsg_build_payload($0, object)
        }
    }

    /// The libnftnl rule object of `rule` (the caller frees it).
    func ruleObject(_ rule: NFTRule, chain: String) -> OpaquePointer {
        let object = nftnl_rule_alloc()!
        nftnl_rule_set_u32(object, UInt16(NFTNL_RULE_FAMILY.rawValue), table.family.rawValue)
        nftnl_rule_set_str(object, UInt16(NFTNL_RULE_TABLE.rawValue), table.name)
        nftnl_rule_set_str(object, UInt16(NFTNL_RULE_CHAIN.rawValue), chain)
        for expression in rule.expressions { nftnl_rule_add_expr(object, expression.libnftnlObject(setIDs: setIDs)) }
        return object
    }

    // MARK: Maps and elements

    /// Creates the map, or leaves an identical one as it is.
    public mutating func addMap(_ map: NFTMap) {
        let id = UInt32(setIDs.count + 1)
        setIDs[map.name] = id
        let object = table.setObject(named: map.name)
        defer { nftnl_set_free(object) }
        nftnl_set_set_u32(object, UInt16(NFTNL_SET_FLAGS.rawValue), NFT_SET_MAP.rawValue)
        nftnl_set_set_u32(object, UInt16(NFTNL_SET_KEY_TYPE.rawValue), map.key.typeID)
        nftnl_set_set_u32(object, UInt16(NFTNL_SET_KEY_LEN.rawValue), UInt32(map.key.length))
        switch map.data {
        case .verdict:
            nftnl_set_set_u32(object, UInt16(NFTNL_SET_DATA_TYPE.rawValue), NFT_DATA_VERDICT.rawValue)
            nftnl_set_set_u32(object, UInt16(NFTNL_SET_DATA_LEN.rawValue), 0)
        case .values(let data):
            nftnl_set_set_u32(object, UInt16(NFTNL_SET_DATA_TYPE.rawValue), data.typeID)
            nftnl_set_set_u32(object, UInt16(NFTNL_SET_DATA_LEN.rawValue), UInt32(data.length))
        }
        nftnl_set_set_u32(object, UInt16(NFTNL_SET_ID.rawValue), id)
        let userdata = map.userdata
        _ = userdata.withUnsafeBytes { nftnl_set_set_data(object, UInt16(NFTNL_SET_USERDATA.rawValue), $0.baseAddress, UInt32($0.count)) }
        append("create map \(map.name)", type: NFT_MSG_NEWSET.rawValue, flags: NLM_F_CREATE) {
            nftnl_set_nlmsg_build_payload($0, object)
        }
    }

    /// Creates the address set (empty), or leaves one of that name as it is.
    public mutating func addSet(_ set: NFTAddressSet) {
        let id = UInt32(setIDs.count + 1)
        setIDs[set.name] = id
        let object = table.setObject(named: set.name)
        defer { nftnl_set_free(object) }
        nftnl_set_set_u32(object, UInt16(NFTNL_SET_FLAGS.rawValue), NFT_SET_INTERVAL.rawValue)
        nftnl_set_set_u32(object, UInt16(NFTNL_SET_KEY_TYPE.rawValue), set.keyType.id)
        nftnl_set_set_u32(object, UInt16(NFTNL_SET_KEY_LEN.rawValue), UInt32(set.keyType.size))
        nftnl_set_set_u32(object, UInt16(NFTNL_SET_ID.rawValue), id)
        append("create set \(set.name)", type: NFT_MSG_NEWSET.rawValue, flags: NLM_F_CREATE) {
            nftnl_set_nlmsg_build_payload($0, object)
        }
    }

    /// Replaces the address set's elements with its ranges (the set must exist by then).
    /// Each range is an interval-start element and, unless it ends at the family's last
    /// address, an interval-end element at the address after it; like nft, an interval-end at
    /// the first address when no range starts there (the gap below the first range).
    public mutating func replaceElements(of set: NFTAddressSet) {
        let table = self.table
        let id = setIDs[set.name]
        func container() -> OpaquePointer {
            let object = table.setObject(named: set.name)
            if let id { nftnl_set_set_u32(object, UInt16(NFTNL_SET_ID.rawValue), id) }
            return object
        }
        // A DELSETELEM without elements flushes the set.
        let flush = container()
        defer { nftnl_set_free(flush) }
        append("flush set \(set.name)", type: NFT_MSG_DELSETELEM.rawValue, flags: 0) {
            nftnl_set_elems_nlmsg_build_payload($0, flush)
        }
        guard !set.ranges.isEmpty else { return }
        let elements = container()
        defer { nftnl_set_free(elements) }
        func add(_ address: IPAddress, end: Bool) {
            let object = nftnl_set_elem_alloc()!
            let key = address.bytes
            _ = key.withUnsafeBytes { nftnl_set_elem_set(object, UInt16(NFTNL_SET_ELEM_KEY), $0.baseAddress, UInt32($0.count)) }
            if end { nftnl_set_elem_set_u32(object, UInt16(NFTNL_SET_ELEM_FLAGS), NFT_SET_ELEM_INTERVAL_END.rawValue) }
            nftnl_set_elem_add(elements, object)
        }
        if set.ranges[0].first.value != 0 { add(IPAddress(family: set.family, value: 0)!, end: true) }
        for range in set.ranges {
            add(range.first, end: false)
            if range.last.next.value != 0 { add(range.last.next, end: true) }
        }
        append("add \(set.ranges.map(\.text).joined(separator: ", ")) to \(set.name)", type: NFT_MSG_NEWSETELEM.rawValue,
               flags: NLM_F_CREATE, payloadHint: set.ranges.count * 128) {
            nftnl_set_elems_nlmsg_build_payload($0, elements)
        }
    }

    /// Deletes a set no rule refers to any more; `destroy` also succeeds when it is gone.
    public mutating func deleteSet(_ name: String, destroy: Bool) {
        let object = table.setObject(named: name)
        defer { nftnl_set_free(object) }
        let type = destroy ? UInt32(NFTDestroyMessage.set.rawValue) : NFT_MSG_DELSET.rawValue
        append("delete set \(name)", type: type, flags: 0) { nftnl_set_nlmsg_build_payload($0, object) }
    }

    /// Adds elements in one message. `exclusive`: a key that exists is an error (EEXIST) rather
    /// than left as it is.
    public mutating func addElements(_ elements: [NFTElement], to map: NFTMap, exclusive: Bool) {
        guard !elements.isEmpty else { return }  // an empty element list is EINVAL
        guard elements.count <= Self.elementsPerMessage else {
            for start in stride(from: 0, to: elements.count, by: Self.elementsPerMessage) {
                addElements(Array(elements[start..<min(elements.count, start + Self.elementsPerMessage)]), to: map, exclusive: exclusive)
            }
            return
        }
        let what = elements.count == 1 ? "element \(elements[0].text)" : "\(elements.count) elements"
        appendElements("add \(what) to \(map.name)", type: NFT_MSG_NEWSETELEM.rawValue,
                       flags: NLM_F_CREATE | (exclusive ? NLM_F_EXCL : 0), elements, map, withData: true)
    }

    /// Removes elements by key in one message; `destroy` also succeeds for keys already gone.
    public mutating func deleteElements(_ elements: [NFTElement], from map: NFTMap, destroy: Bool) {
        guard !elements.isEmpty else { return }
        guard elements.count <= Self.elementsPerMessage else {
            for start in stride(from: 0, to: elements.count, by: Self.elementsPerMessage) {
                deleteElements(Array(elements[start..<min(elements.count, start + Self.elementsPerMessage)]), from: map, destroy: destroy)
            }
            return
        }
        let what = elements.count == 1 ? "element \(elements[0].text)" : "\(elements.count) elements"
        appendElements("remove \(what) from \(map.name)",
                       type: destroy ? UInt32(NFTDestroyMessage.setElement.rawValue) : NFT_MSG_DELSETELEM.rawValue,
                       flags: 0, elements, map, withData: false)
    }

    private mutating func appendElements(_ operation: String, type: UInt32, flags: Int32, _ elements: [NFTElement],
                                         _ map: NFTMap, withData: Bool) {
        let container = table.setObject(named: map.name)
        defer { nftnl_set_free(container) }
        if let id = setIDs[map.name] { nftnl_set_set_u32(container, UInt16(NFTNL_SET_ID.rawValue), id) }
        for element in elements {
            let object = nftnl_set_elem_alloc()!
            let key = element.key.encoded(concatenated: map.key.fields.count > 1)
            _ = key.withUnsafeBytes { nftnl_set_elem_set(object, UInt16(NFTNL_SET_ELEM_KEY), $0.baseAddress, UInt32($0.count)) }
            if withData {
                switch element.data {
                case .jump(let chain):
                    nftnl_set_elem_set_u32(object, UInt16(NFTNL_SET_ELEM_VERDICT), UInt32(bitPattern: NFT_JUMP.rawValue))
                    nftnl_set_elem_set_str(object, UInt16(NFTNL_SET_ELEM_CHAIN), chain)
                case .values(let values):
                    let data = values.encoded(concatenated: values.count > 1)
                    _ = data.withUnsafeBytes { nftnl_set_elem_set(object, UInt16(NFTNL_SET_ELEM_DATA), $0.baseAddress, UInt32($0.count)) }
                }
                if let comment = element.comment {
                    // NFTNL_UDATA_SET_ELEM_COMMENT: type 0, length, NUL-terminated text.
                    let text = Array(comment.utf8.prefix(127)) + [0]
                    let userdata = [0, UInt8(text.count)] + text
                    _ = userdata.withUnsafeBytes {
                        nftnl_set_elem_set(object, UInt16(NFTNL_SET_ELEM_USERDATA), $0.baseAddress, UInt32($0.count))
                    }
                }
            }
            nftnl_set_elem_add(container, object)
        }
        append(operation, type: type, flags: flags, payloadHint: elements.count * 256) {
            nftnl_set_elems_nlmsg_build_payload($0, container)
        }
    }
}

extension NFTTable {
    /// A libnftnl set (or map) object naming `name` in this table, for creating, deleting or
    /// listing it and its elements (the caller frees it).
    func setObject(named name: String) -> OpaquePointer {
        let object = nftnl_set_alloc()!
        nftnl_set_set_u32(object, UInt16(NFTNL_SET_FAMILY.rawValue), family.rawValue)
        nftnl_set_set_str(object, UInt16(NFTNL_SET_TABLE.rawValue), self.name)
        nftnl_set_set_str(object, UInt16(NFTNL_SET_NAME.rawValue), name)
        return object
    }
}

extension NFTMap {
    /// The NFTA_SET_USERDATA nft 1.0.6 writes for these map types, so `nft list` prints keys
    /// and data as it does for maps nft made (an ifname key in host byte order; without it nft
    /// prints the names as "").
    var userdata: [UInt8] {
        switch data {
        case .verdict:
            // KEYBYTEORDER host, DATABYTEORDER unspecified, DATA_INTERVAL 0
            return [0x00, 0x04, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00,
                    0x06, 0x04, 0x00, 0x00, 0x00, 0x00]
        case .values:
            // KEYBYTEORDER and DATABYTEORDER unspecified (concatenations), KEY_TYPEOF and
            // DATA_TYPEOF as nft records them for `type` concatenations, DATA_INTERVAL 0.
            return [0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00,
                    0x03, 0x08, 0x00, 0x04, 0x0d, 0x00, 0x00, 0x00, 0x01, 0x00,
                    0x04, 0x08, 0x00, 0x04, 0x0d, 0x00, 0x00, 0x00, 0x01, 0x00,
                    0x06, 0x04, 0x00, 0x00, 0x00, 0x00]
        }
    }
}

extension Array where Element == NFTValue {
    /// Key or data bytes: each field in network order (names NUL-padded to IFNAMSIZ), padded to
    /// 4 bytes when concatenated.
    func encoded(concatenated: Bool) -> [UInt8] {
        var bytes: [UInt8] = []
        for value in self {
            var field: [UInt8]
            switch value {
            case .address(let address): field = address.bytes
            case .proto(let proto): field = [proto.rawValue]
            case .port(let port): field = [UInt8(port >> 8), UInt8(port & 0xFF)]
            case .interfaceName(let name):
                field = [UInt8](name.utf8.prefix(15))
                field += [UInt8](repeating: 0, count: 16 - field.count)
            }
            if concatenated { field += [UInt8](repeating: 0, count: (4 - field.count % 4) % 4) }
            bytes += field
        }
        return bytes
    }
}

extension NFTExpression {
    /// The libnftnl expression (owned by the rule it is added to).
    func libnftnlObject(setIDs: [String: UInt32]) -> OpaquePointer {
        func make(_ name: String) -> OpaquePointer { nftnl_expr_alloc(name)! }
        func setData(_ object: OpaquePointer, _ attribute: Int, _ bytes: [UInt8]) {
            _ = bytes.withUnsafeBytes { nftnl_expr_set(object, UInt16(attribute), $0.baseAddress, UInt32($0.count)) }
        }
        switch self {
        case .meta(let key, let register):
            let object = make("meta")
            nftnl_expr_set_u32(object, UInt16(NFTNL_EXPR_META_KEY), key.rawValue)
            nftnl_expr_set_u32(object, UInt16(NFTNL_EXPR_META_DREG), register)
            return object
        case .compare(let comparison, let register, let data):
            let object = make("cmp")
            nftnl_expr_set_u32(object, UInt16(NFTNL_EXPR_CMP_SREG), register)
            nftnl_expr_set_u32(object, UInt16(NFTNL_EXPR_CMP_OP), comparison.rawValue)
            setData(object, Int(NFTNL_EXPR_CMP_DATA), data)
            return object
        case .payload(let base, let offset, let length, let register):
            let object = make("payload")
            nftnl_expr_set_u32(object, UInt16(NFTNL_EXPR_PAYLOAD_DREG), register)
            nftnl_expr_set_u32(object, UInt16(NFTNL_EXPR_PAYLOAD_BASE), base.rawValue)
            nftnl_expr_set_u32(object, UInt16(NFTNL_EXPR_PAYLOAD_OFFSET), offset)
            nftnl_expr_set_u32(object, UInt16(NFTNL_EXPR_PAYLOAD_LEN), length)
            return object
        case .bitwise(let register, let length, let mask, let xor):
            let object = make("bitwise")
            nftnl_expr_set_u32(object, UInt16(NFTNL_EXPR_BITWISE_SREG), register)
            nftnl_expr_set_u32(object, UInt16(NFTNL_EXPR_BITWISE_DREG), register)
            nftnl_expr_set_u32(object, UInt16(NFTNL_EXPR_BITWISE_LEN), length)
            setData(object, Int(NFTNL_EXPR_BITWISE_MASK), mask)
            setData(object, Int(NFTNL_EXPR_BITWISE_XOR), xor)
            return object
        case .conntrack(let key, let register):
            let object = make("ct")
            nftnl_expr_set_u32(object, UInt16(NFTNL_EXPR_CT_KEY), key.rawValue)
            nftnl_expr_set_u32(object, UInt16(NFTNL_EXPR_CT_DREG), register)
            return object
        case .fib(let flags, let register):
            let object = make("fib")
            nftnl_expr_set_u32(object, UInt16(NFTNL_EXPR_FIB_FLAGS), flags)
            nftnl_expr_set_u32(object, UInt16(NFTNL_EXPR_FIB_RESULT), NFT_FIB_RESULT_ADDRTYPE.rawValue)
            nftnl_expr_set_u32(object, UInt16(NFTNL_EXPR_FIB_DREG), register)
            return object
        case .lookup(let register, let map, let dataRegister):
            let object = make("lookup")
            nftnl_expr_set_u32(object, UInt16(NFTNL_EXPR_LOOKUP_SREG), register)
            // Verdict maps write the verdict register; data maps write data registers.
            nftnl_expr_set_u32(object, UInt16(NFTNL_EXPR_LOOKUP_DREG), dataRegister ?? 0)
            nftnl_expr_set_str(object, UInt16(NFTNL_EXPR_LOOKUP_SET), map)
            if let id = setIDs[map] { nftnl_expr_set_u32(object, UInt16(NFTNL_EXPR_LOOKUP_SET_ID), id) }
            return object
        case .setLookup(let register, let set):
            let object = make("lookup")
            nftnl_expr_set_u32(object, UInt16(NFTNL_EXPR_LOOKUP_SREG), register)
            nftnl_expr_set_str(object, UInt16(NFTNL_EXPR_LOOKUP_SET), set)
            if let id = setIDs[set] { nftnl_expr_set_u32(object, UInt16(NFTNL_EXPR_LOOKUP_SET_ID), id) }
            return object
        case .immediate(let verdict, let chain):
            let object = make("immediate")
            nftnl_expr_set_u32(object, UInt16(NFTNL_EXPR_IMM_DREG), 0)
            nftnl_expr_set_u32(object, UInt16(NFTNL_EXPR_IMM_VERDICT), UInt32(bitPattern: verdict))
            if let chain { nftnl_expr_set_str(object, UInt16(NFTNL_EXPR_IMM_CHAIN), chain) }
            return object
        case .dnat(let family, let addressRegister, let portRegister):
            let object = make("nat")
            nftnl_expr_set_u32(object, UInt16(NFTNL_EXPR_NAT_TYPE), NFT_NAT_DNAT.rawValue)
            nftnl_expr_set_u32(object, UInt16(NFTNL_EXPR_NAT_FAMILY), family == .v4 ? 2 : 10)
            nftnl_expr_set_u32(object, UInt16(NFTNL_EXPR_NAT_REG_ADDR_MIN), addressRegister)
            nftnl_expr_set_u32(object, UInt16(NFTNL_EXPR_NAT_REG_PROTO_MIN), portRegister)
            return object
        case .masquerade:
            return make("masq")
        }
    }
}

extension NFTRule {
    /// The rule's bytecode as libnftnl prints it (the lines of `nft --debug=netlink`).
    public func bytecodeText(chain: String, table: NFTTable = .berth) -> String {
        let batch = FirewallBatch(table: table)
        let object = batch.ruleObject(self, chain: chain)
        defer { nftnl_rule_free(object) }
        return Self.text(of: object)
    }

    /// Just the expression lines ("  [ meta load iifname => reg 1 ]"), for comparisons.
    public func bytecodeLines(chain: String) -> [String] {
        bytecodeText(chain: chain).split(separator: "\n").map(String.init).filter { $0.hasPrefix("  [ ") }
    }

    /// The expression lines of a rule the kernel dumped, without what the kernel fills in on its
    /// own (lookup flags 0; nat `addr_max`/`proto_max` equal to the minimums and the flags they
    /// imply), so they compare equal to the lines of the rule as sent.
    static func bytecodeLines(of rule: OpaquePointer) -> [String] {
        text(of: rule).split(separator: "\n").map(String.init).filter { $0.hasPrefix("  [ ") }.map { line in
            var line = line
            if line.hasPrefix("  [ lookup "), line.hasSuffix(" 0x0 ]") { line = String(line.dropLast(" 0x0 ]".count)) + " ]" }
            if line.hasPrefix("  [ nat ") {
                var tokens = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
                while let index = tokens.firstIndex(where: { $0 == "addr_max" || $0 == "proto_max" }),
                      index + 2 < tokens.count, tokens[index + 1] == "reg" {
                    tokens.removeSubrange(index...(index + 2))
                }
                line = tokens.joined(separator: " ")
                if line.hasSuffix(" flags 0x3 ]") { line = String(line.dropLast(" flags 0x3 ]".count)) + " ]" }
            }
            return line
        }
    }

    private static func text(of rule: OpaquePointer) -> String {
        var buffer = [CChar](repeating: 0, count: 8192)
        _ = nftnl_rule_snprintf(&buffer, buffer.count, rule, UInt32(NFTNL_OUTPUT_DEFAULT.rawValue), 0)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
