import BerthIP

// The nft text of the model, in the form `nft list table inet berth` prints (tabs, a blank line
// between objects, one map element per line). Used by netctl, logs and golden tests.

extension NFTRuleset {
    public var text: String {
        var blocks: [String] = []
        for map in maps {
            var lines = ["\tmap \(map.name) {", "\t\ttype \(map.typeText)"]
            if let elements = elements[map.name], !elements.isEmpty {
                let rendered = elements.map(\.text)
                lines.append("\t\telements = { " + rendered.joined(separator: ",\n\t\t\t     ") + " }")
            }
            lines.append("\t}")
            blocks.append(lines.joined(separator: "\n"))
        }
        for set in sets {
            var lines = ["\tset \(set.name) {", "\t\ttype \(set.keyType.name)", "\t\tflags interval"]
            if !set.ranges.isEmpty {
                // nft puts two IPv4 elements on a line, one IPv6 element.
                let perLine = set.family == .v4 ? 2 : 1
                let texts = set.ranges.map(\.text)
                let rows = stride(from: 0, to: texts.count, by: perLine).map {
                    texts[$0..<min(texts.count, $0 + perLine)].joined(separator: ", ")
                }
                lines.append("\t\telements = { " + rows.joined(separator: ",\n\t\t\t     ") + " }")
            }
            lines.append("\t}")
            blocks.append(lines.joined(separator: "\n"))
        }
        for (chain, rules) in chains {
            var lines = ["\tchain \(chain.name) {"]
            if let base = chain.base { lines.append("\t\t\(base.text)") }
            lines += rules.map { "\t\t\($0.text)" }
            lines.append("\t}")
            blocks.append(lines.joined(separator: "\n"))
        }
        return "table \(table.family.name) \(table.name) {\n" + blocks.joined(separator: "\n\n") + "\n}\n"
    }
}

extension NFTMap {
    var typeText: String {
        switch data {
        case .verdict: "\(key.text) : verdict"
        case .values(let data): "\(key.text) : \(data.text)"
        }
    }
}

extension NFTAddressRange {
    /// `10.244.0.0/16`, or `10.0.0.1-10.0.0.9` when the range is no prefix.
    public var text: String {
        if let prefix { return prefix.length == prefix.family.bitWidth ? prefix.address.description : prefix.description }
        return "\(first)-\(last)"
    }
}

extension NFTBaseChain {
    /// `type filter hook forward priority filter; policy accept;`
    var text: String {
        "type \(type.rawValue) hook \(hook.name) priority \(priorityText); policy \(policy.name);"
    }

    /// nft names the standard priorities where the hook allows the name.
    private var priorityText: String {
        switch (type, hook, priority) {
        case (.filter, _, 0): "filter"
        case (.nat, .prerouting, -100): "dstnat"
        case (.nat, .postrouting, 100): "srcnat"
        default: String(priority)
        }
    }
}

extension NFTValue {
    var text: String {
        switch self {
        case .address(let address): address.description
        case .proto(let proto): proto.description
        case .port(let port): String(port)
        case .interfaceName(let name): "\"\(name)\""
        }
    }
}

extension NFTElement {
    /// `tcp . 8080 comment "c0ffee/eth0" : 10.88.0.5 . 80`, `"berth0" : jump in_berth0`
    public var text: String {
        var text = key.map(\.text).joined(separator: " . ")
        if let comment { text += " comment \"\(comment)\"" }
        switch data {
        case .jump(let chain): text += " : jump \(chain)"
        case .values(let values): text += " : " + values.map(\.text).joined(separator: " . ")
        }
        return text
    }
}

extension NFTRule {
    public var text: String { statements.map(\.text).joined(separator: " ") }
}

extension NFTStatement {
    public var text: String {
        switch self {
        case .interfaceName(let direction, let comparison, let name):
            return "\(direction.keyword) \(comparison == .notEqual ? "!= " : "")\"\(name)\""
        case .sourceAddress(let prefix):
            let family = prefix.family == .v4 ? "ip" : "ip6"
            let value = prefix.length == prefix.family.bitWidth ? prefix.address.description : prefix.description
            return "\(family) saddr \(value)"
        case .conntrackState(let states):
            return "ct state " + states.sorted { $0.rawValue < $1.rawValue }.map(\.name).joined(separator: ",")
        case .conntrackStatusDNAT:
            return "ct status dnat"
        case .fibAddressIsLocal(let destination):
            return "fib \(destination ? "daddr" : "saddr") type local"
        case .verdict(let verdict):
            switch verdict {
            case .accept: return "accept"
            case .drop: return "drop"
            case .return: return "return"
            case .jump(let chain): return "jump \(chain)"
            }
        case .addressInSet(let family, let source, let set):
            return "\(family == .v4 ? "ip" : "ip6") \(source ? "saddr" : "daddr") @\(set)"
        case .verdictMap(let direction, let map):
            return "\(direction.keyword) vmap @\(map)"
        case .dnatMap(let family, let byDestination, let map):
            let name = family == .v4 ? "ip" : "ip6"
            return "dnat \(name) to \(byDestination ? "\(name) daddr . " : "")meta l4proto . th dport map @\(map)"
        case .masquerade:
            return "masquerade"
        }
    }
}

extension NFTStatement.Direction {
    var keyword: String { self == .input ? "iifname" : "oifname" }
}
