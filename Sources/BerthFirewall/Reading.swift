#if canImport(Glibc)
import Glibc
#endif
import BerthIP
import BerthNetlink
import CMnl
import CNftnl

// The read side: what is in Berth's table, decoded back into the model, for CHECK, GC and
// netctl. Dumps go through the same socket as the transactions.

extension Firewall {
    /// The names of the table's chains, in the kernel's order; empty when there is no table.
    public func chainNames() throws(FirewallError) -> [String] {
        let request = Self.message(type: NFT_MSG_GETCHAIN.rawValue, family: table.family, flags: NLM_F_DUMP) { _ in }
        let replies = try dump(request, operation: "list chains of \(table.family.name) \(table.name)")
        var names: [String] = []
        for reply in replies {
            reply.bytes.withUnsafeBytes { raw in
                let chain = nftnl_chain_alloc()!
                defer { nftnl_chain_free(chain) }
                guard nftnl_chain_nlmsg_parse(raw.baseAddress!.assumingMemoryBound(to: nlmsghdr.self), chain) >= 0,
                      let tableName = nftnl_chain_get_str(chain, UInt16(NFTNL_CHAIN_TABLE.rawValue)),
                      String(cString: tableName) == table.name,
                      let name = nftnl_chain_get_str(chain, UInt16(NFTNL_CHAIN_NAME.rawValue))
                else { return }
                names.append(String(cString: name))
            }
        }
        return names
    }

    /// Every element of `map`, with its owner comment; empty when the map does not exist.
    public func elements(of map: NFTMap) throws(FirewallError) -> [NFTElement] {
        let request = elementRequest(map.name, keys: [], concatenated: false, type: NFT_MSG_GETSETELEM.rawValue, flags: NLM_F_DUMP)
        do {
            return try dump(request, operation: "list elements of \(map.name)").flatMap { decodeElements($0, map) }
        } catch let error where error.errno == .noSuchFileOrDirectory {
            return []
        }
    }

    /// The element of `map` with `key`, or nil.
    public func element(_ key: [NFTValue], in map: NFTMap) throws(FirewallError) -> NFTElement? {
        let request = elementRequest(map.name, keys: [key], concatenated: map.key.fields.count > 1,
                                     type: NFT_MSG_GETSETELEM.rawValue, flags: NLM_F_ACK)
        do {
            let replies = try socket.perform([NetlinkRequest(operation: "look up element in \(map.name)", bytes: request, isDump: false)])
            return replies.flatMap { decodeElements($0, map) }.first
        } catch where error.errno == .noSuchFileOrDirectory {
            return nil
        } catch {
            throw FirewallError(error.operation, errno: error.errno, detail: error.kernelMessage)
        }
    }

    /// Every published port in the table's port maps, with its owner comment; empty without a
    /// table. The inverse of `FirewallLayout.element(of:owner:)`.
    public func publishedPorts() throws(FirewallError) -> [(mapping: PortMapping, owner: String?)] {
        var ports: [(mapping: PortMapping, owner: String?)] = []
        for map in [FirewallLayout.ports4, FirewallLayout.ports4Any, FirewallLayout.ports6, FirewallLayout.ports6Any] {
            for element in try elements(of: map) {
                var key = element.key[...]
                var hostIP: IPAddress?
                if case .address(let address)? = key.first {
                    hostIP = address
                    key = key.dropFirst()
                }
                guard key.count == 2, case .proto(let proto) = key[key.startIndex], case .port(let hostPort) = key[key.startIndex + 1],
                      case .values(let data) = element.data, data.count == 2,
                      case .address(let containerIP) = data[0], case .port(let containerPort) = data[1]
                else { continue }
                ports.append((PortMapping(hostIP: hostIP, proto: proto, hostPort: hostPort, containerIP: containerIP,
                                          containerPort: containerPort), element.comment))
            }
        }
        return ports
    }

    /// What the table lacks compared with `expected`: missing chains and elements, in words
    /// ("chain in_berth0", "element tcp . 8080 … in ports4_any"); empty when all is there.
    public func missing(from expected: NFTRuleset) throws(FirewallError) -> [String] {
        let chains = Set(try chainNames())
        var problems = expected.chains.map(\.chain.name).filter { !chains.contains($0) }.map { "chain \($0)" }
        for map in expected.maps {
            guard let wanted = expected.elements[map.name], !wanted.isEmpty else { continue }
            let present = Set(try elements(of: map))
            problems += wanted.filter { !present.contains($0) }.map { "element \($0.text) in \(map.name)" }
        }
        return problems
    }

    // MARK: Messages

    private func dump(_ bytes: [UInt8], operation: String) throws(FirewallError) -> [NetlinkMessage] {
        do {
            return try socket.perform([NetlinkRequest(operation: operation, bytes: bytes, isDump: true)])
        } catch {
            throw FirewallError(error.operation, errno: error.errno, detail: error.kernelMessage)
        }
    }

    static func message(type: UInt32, family: NFTFamily, flags: Int32,
                        _ payload: (UnsafeMutablePointer<nlmsghdr>) -> Void) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let length = buffer.withUnsafeMutableBytes { raw -> Int in
            let header = nftnl_nlmsg_build_hdr(raw.baseAddress!.assumingMemoryBound(to: CChar.self), UInt16(type),
                                               UInt16(family.rawValue), UInt16(flags), 0)!
            payload(header)
            return Int(header.pointee.nlmsg_len)
        }
        return Array(buffer[0..<length])
    }

    /// A GETSETELEM request for the set or map `name`: every element (no keys, a dump) or those
    /// with `keys` (encoded as a concatenation when `concatenated`).
    private func elementRequest(_ name: String, keys: [[NFTValue]], concatenated: Bool, type: UInt32, flags: Int32) -> [UInt8] {
        Self.message(type: type, family: table.family, flags: flags) { header in
            let set = table.setObject(named: name)
            defer { nftnl_set_free(set) }
            for key in keys {
                let element = nftnl_set_elem_alloc()!
                let bytes = key.encoded(concatenated: concatenated)
                _ = bytes.withUnsafeBytes { nftnl_set_elem_set(element, UInt16(NFTNL_SET_ELEM_KEY), $0.baseAddress, UInt32($0.count)) }
                nftnl_set_elem_add(set, element)
            }
            if keys.isEmpty {
                nftnl_set_nlmsg_build_payload(header, set)
            } else {
                nftnl_set_elems_nlmsg_build_payload(header, set)
            }
        }
    }

    private func decodeElements(_ message: NetlinkMessage, _ map: NFTMap) -> [NFTElement] {
        message.bytes.withUnsafeBytes { raw in
            let set = nftnl_set_alloc()!
            defer { nftnl_set_free(set) }
            guard nftnl_set_elems_nlmsg_parse(raw.baseAddress!.assumingMemoryBound(to: nlmsghdr.self), set) >= 0,
                  let iterator = nftnl_set_elems_iter_create(set)
            else { return [] }
            defer { nftnl_set_elems_iter_destroy(iterator) }
            var elements: [NFTElement] = []
            while let element = nftnl_set_elems_iter_next(iterator) {
                func bytes(_ attribute: Int) -> [UInt8]? {
                    var length: UInt32 = 0
                    guard nftnl_set_elem_is_set(element, UInt16(attribute)),
                          let pointer = nftnl_set_elem_get(element, UInt16(attribute), &length) else { return nil }
                    return Array(UnsafeRawBufferPointer(start: pointer, count: Int(length)))
                }
                guard let keyBytes = bytes(Int(NFTNL_SET_ELEM_KEY)),
                      let key = [NFTValue].decoded(keyBytes, fields: map.key.fields) else { continue }
                let data: NFTElement.Data
                switch map.data {
                case .verdict:
                    guard let chain = nftnl_set_elem_get_str(element, UInt16(NFTNL_SET_ELEM_CHAIN)) else { continue }
                    data = .jump(String(cString: chain))
                case .values(let fields):
                    guard let dataBytes = bytes(Int(NFTNL_SET_ELEM_DATA)),
                          let values = [NFTValue].decoded(dataBytes, fields: fields.fields) else { continue }
                    data = .values(values)
                }
                elements.append(NFTElement(key: key, data: data, comment: bytes(Int(NFTNL_SET_ELEM_USERDATA)).flatMap(Self.comment)))
            }
            return elements
        }
    }

    /// NFTNL_UDATA_SET_ELEM_COMMENT from element userdata (type, length, NUL-terminated text).
    static func comment(_ userdata: [UInt8]) -> String? {
        var offset = 0
        while offset + 2 <= userdata.count {
            let type = userdata[offset], length = Int(userdata[offset + 1])
            guard offset + 2 + length <= userdata.count else { return nil }
            if type == 0 {
                return String(decoding: userdata[(offset + 2)..<(offset + 2 + length)].prefix { $0 != 0 }, as: UTF8.self)
            }
            offset += 2 + length
        }
        return nil
    }
}

extension Array where Element == NFTValue {
    /// The inverse of `encoded`: fields of `fields` types from key or data bytes.
    static func decoded(_ bytes: [UInt8], fields: [NFTDataType]) -> [NFTValue]? {
        var values: [NFTValue] = []
        var offset = 0
        for field in fields {
            guard offset + field.size <= bytes.count else { return nil }
            let slice = [UInt8](bytes[offset..<(offset + field.size)])
            switch field {
            case .ipv4Address, .ipv6Address:
                guard let address = IPAddress(bytes: slice) else { return nil }
                values.append(.address(address))
            case .inetProtocol:
                guard let proto = NFTProtocol(rawValue: slice[0]) else { return nil }
                values.append(.proto(proto))
            case .inetService:
                values.append(.port(UInt16(slice[0]) << 8 | UInt16(slice[1])))
            case .interfaceName:
                values.append(.interfaceName(String(decoding: slice.prefix { $0 != 0 }, as: UTF8.self)))
            }
            offset += fields.count > 1 ? (field.size + 3) / 4 * 4 : field.size
        }
        return values
    }
}

/// What the kernel's table holds, enough to decide what to repair: chain and map names, and
/// each chain's rules as bytecode text (libnftnl's rendering, comparable with `bytecodeText`).
public struct FirewallState: Sendable {
    public var chains: Set<String> = []
    /// Maps and sets, by name.
    public var maps: Set<String> = []
    public var rules: [String: [[String]]] = [:]
    /// The contents of the address (interval) sets.
    public var addressSets: [String: [NFTAddressRange]] = [:]

    public var tableExists: Bool { !chains.isEmpty || !maps.isEmpty }
}

extension Firewall {
    /// Chains, maps, rules and address sets of the table: small dumps whose size does not depend
    /// on how many containers or ports there are (one more per network with an address set).
    public func state() throws(FirewallError) -> FirewallState {
        var state = FirewallState()
        var addressSets: [(name: String, family: IPFamily)] = []
        state.chains = Set(try chainNames())
        let sets = Self.message(type: NFT_MSG_GETSET.rawValue, family: table.family, flags: NLM_F_DUMP) { header in
            let set = nftnl_set_alloc()!
            defer { nftnl_set_free(set) }
            nftnl_set_set_str(set, UInt16(NFTNL_SET_TABLE.rawValue), table.name)
            nftnl_set_nlmsg_build_payload(header, set)
        }
        for reply in try dumpIgnoringMissingTable(sets, operation: "list maps of \(table.name)") {
            reply.bytes.withUnsafeBytes { raw in
                let set = nftnl_set_alloc()!
                defer { nftnl_set_free(set) }
                guard nftnl_set_nlmsg_parse(raw.baseAddress!.assumingMemoryBound(to: nlmsghdr.self), set) >= 0,
                      let name = nftnl_set_get_str(set, UInt16(NFTNL_SET_NAME.rawValue)),
                      let tableName = nftnl_set_get_str(set, UInt16(NFTNL_SET_TABLE.rawValue)),
                      String(cString: tableName) == table.name
                else { return }
                state.maps.insert(String(cString: name))
                let flags = nftnl_set_get_u32(set, UInt16(NFTNL_SET_FLAGS.rawValue))
                let keyType = nftnl_set_get_u32(set, UInt16(NFTNL_SET_KEY_TYPE.rawValue))
                if flags & NFT_SET_INTERVAL.rawValue != 0, flags & NFT_SET_MAP.rawValue == 0,
                   keyType == NFTDataType.ipv4Address.id || keyType == NFTDataType.ipv6Address.id {
                    addressSets.append((String(cString: name), keyType == NFTDataType.ipv4Address.id ? .v4 : .v6))
                }
            }
        }
        for (name, family) in addressSets { state.addressSets[name] = try ranges(ofSet: name, family: family) }
        let rules = Self.message(type: NFT_MSG_GETRULE.rawValue, family: table.family, flags: NLM_F_DUMP) { header in
            let rule = nftnl_rule_alloc()!
            defer { nftnl_rule_free(rule) }
            nftnl_rule_set_str(rule, UInt16(NFTNL_RULE_TABLE.rawValue), table.name)
            nftnl_rule_nlmsg_build_payload(header, rule)
        }
        for reply in try dumpIgnoringMissingTable(rules, operation: "list rules of \(table.name)") {
            reply.bytes.withUnsafeBytes { raw in
                let rule = nftnl_rule_alloc()!
                defer { nftnl_rule_free(rule) }
                guard nftnl_rule_nlmsg_parse(raw.baseAddress!.assumingMemoryBound(to: nlmsghdr.self), rule) >= 0,
                      let tableName = nftnl_rule_get_str(rule, UInt16(NFTNL_RULE_TABLE.rawValue)),
                      String(cString: tableName) == table.name,
                      let chain = nftnl_rule_get_str(rule, UInt16(NFTNL_RULE_CHAIN.rawValue))
                else { return }
                state.rules[String(cString: chain), default: []].append(NFTRule.bytecodeLines(of: rule))
            }
        }
        return state
    }

    /// The ranges of an interval set: each interval-start element up to the next interval-end
    /// element (the address before it), or to the family's last address without one.
    public func ranges(ofSet name: String, family: IPFamily) throws(FirewallError) -> [NFTAddressRange] {
        let request = elementRequest(name, keys: [], concatenated: false, type: NFT_MSG_GETSETELEM.rawValue, flags: NLM_F_DUMP)
        var boundaries: [(address: IPAddress, end: Bool)] = []
        for reply in try dumpIgnoringMissingTable(request, operation: "list elements of \(name)") {
            reply.bytes.withUnsafeBytes { raw in
                let set = nftnl_set_alloc()!
                defer { nftnl_set_free(set) }
                guard nftnl_set_elems_nlmsg_parse(raw.baseAddress!.assumingMemoryBound(to: nlmsghdr.self), set) >= 0,
                      let iterator = nftnl_set_elems_iter_create(set)
                else { return }
                defer { nftnl_set_elems_iter_destroy(iterator) }
                while let element = nftnl_set_elems_iter_next(iterator) {
                    var length: UInt32 = 0
                    guard let pointer = nftnl_set_elem_get(element, UInt16(NFTNL_SET_ELEM_KEY), &length),
                          let address = IPAddress(bytes: UnsafeRawBufferPointer(start: pointer, count: Int(length))),
                          address.family == family
                    else { continue }
                    let flags = nftnl_set_elem_is_set(element, UInt16(NFTNL_SET_ELEM_FLAGS))
                        ? nftnl_set_elem_get_u32(element, UInt16(NFTNL_SET_ELEM_FLAGS)) : 0
                    boundaries.append((address, flags & NFT_SET_ELEM_INTERVAL_END.rawValue != 0))
                }
            }
        }
        boundaries.sort { ($0.address, $0.end ? 0 : 1) < ($1.address, $1.end ? 0 : 1) }
        let lastAddress = IPAddress(family: family, value: family == .v4 ? UInt128(UInt32.max) : .max)!
        return boundaries.enumerated().filter { !$0.element.end }.map { index, start in
            let end = boundaries[(index + 1)...].first(where: \.end)
            return NFTAddressRange(first: start.address, last: end?.address.previous ?? lastAddress)
        }
    }

    private func dumpIgnoringMissingTable(_ bytes: [UInt8], operation: String) throws(FirewallError) -> [NetlinkMessage] {
        do {
            return try socket.perform([NetlinkRequest(operation: operation, bytes: bytes, isDump: true)])
        } catch where error.errno == .noSuchFileOrDirectory {
            return []
        } catch {
            throw FirewallError(error.operation, errno: error.errno, detail: error.kernelMessage)
        }
    }
}
