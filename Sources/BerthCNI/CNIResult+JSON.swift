import BerthIP
import BerthJSON

// Rendering and reading results in each version's shape. Omission follows the Go library's
// omitempty rules, except that an empty `dns` is left out in every version (libcni ≥ 1.2) and
// `ips[].interface` is kept when it is 0.

extension CNIResult {
    /// The result as `version` spells it, `cniVersion` first.
    ///
    /// Converting down to 0.1.0/0.2.0 keeps the first address of each family and the routes of
    /// that family; a result without any address cannot be expressed there and is an error.
    public func json(version: CNIVersion) throws(CNIError) -> JSON {
        var object: JSONObject = ["cniVersion": .string(version.rawValue)]
        let shape = version.resultShape
        if shape == .ipPerFamily {
            let ip4 = ips.first { $0.address.family == .v4 }
            let ip6 = ips.first { $0.address.family == .v6 }
            guard ip4 != nil || ip6 != nil else {
                throw CNIError(.incompatibleVersion,
                               "cannot express a result without IP addresses in CNI \(version)",
                               details: "CNI 0.1.0 and 0.2.0 results carry exactly one ip4 and/or ip6 address")
            }
            if let ip4 { object["ip4"] = familyJSON(ip4) }
            if let ip6 { object["ip6"] = familyJSON(ip6) }
        } else {
            if !interfaces.isEmpty { object["interfaces"] = .array(interfaces.map { $0.json(shape: shape) }) }
            if !ips.isEmpty { object["ips"] = .array(ips.map { $0.json(shape: shape) }) }
            if !routes.isEmpty { object["routes"] = .array(routes.map { $0.json(shape: shape) }) }
        }
        if !dns.isEmpty { object["dns"] = dns.json }
        return .object(object)
    }

    /// The 0.2.0 `ip4`/`ip6` object: the address, its gateway and the routes of its family.
    private func familyJSON(_ ip: IPConfig) -> JSON {
        var object: JSONObject = ["ip": .string(ip.address.description)]
        if let gateway = ip.gateway { object["gateway"] = .string(gateway.description) }
        let familyRoutes = routes.filter { $0.destination.family == ip.address.family }
        if !familyRoutes.isEmpty { object["routes"] = .array(familyRoutes.map { $0.json(shape: .ipPerFamily) }) }
        return .object(object)
    }

    /// Reads a result written in `version`'s shape (a prevResult, or a delegated plugin's output).
    /// Fields of newer versions are kept if present; shape errors name the field under `cursor`.
    public init(json cursor: JSONCursor, version: CNIVersion) throws(JSONShapeError) {
        _ = try cursor.object()
        self.init()
        if version.resultShape == .ipPerFamily {
            for (key, expected) in [("ip4", IPFamily.v4), ("ip6", .v6)] {
                guard let family = cursor.member(key) else { continue }
                _ = try family.object()
                let ip = try family.required("ip")
                let address = try ip.prefix()
                guard address.family == expected else { throw ip.invalid("\(address) is not an \(expected) address") }
                ips.append(IPConfig(address: address, gateway: try family.member("gateway")?.address()))
                for route in try family.member("routes")?.array() ?? [] {
                    routes.append(try Route(json: route))
                }
            }
        } else {
            for interface in try cursor.member("interfaces")?.array() ?? [] {
                interfaces.append(try Interface(json: interface))
            }
            for ip in try cursor.member("ips")?.array() ?? [] {
                _ = try ip.object()
                let address = try ip.required("address").prefix()
                if let versionField = ip.member("version"),
                   try versionField.string() != address.family.versionString {
                    throw versionField.invalid("\"\(try versionField.string())\" does not match address \(address)")
                }
                let index = try ip.member("interface")?.int()
                if let index, index < 0 { throw ip.member("interface")!.invalid("must not be negative") }
                ips.append(IPConfig(interface: index, address: address, gateway: try ip.member("gateway")?.address()))
            }
            for route in try cursor.member("routes")?.array() ?? [] {
                routes.append(try Route(json: route))
            }
        }
        if let dns = cursor.member("dns") { self.dns = try DNS(json: dns) }
    }
}

extension CNIResult.Interface {
    func json(shape: CNIVersion.ResultShape) -> JSON {
        var object: JSONObject = ["name": .string(name)]
        if let mac, !mac.isEmpty { object["mac"] = .string(mac) }
        if shape == .ipsWithRouteAttributes, let mtu, mtu != 0 { object["mtu"] = .int(mtu) }
        if let sandbox, !sandbox.isEmpty { object["sandbox"] = .string(sandbox) }
        if shape == .ipsWithRouteAttributes {
            if let socketPath, !socketPath.isEmpty { object["socketPath"] = .string(socketPath) }
            if let pciID, !pciID.isEmpty { object["pciID"] = .string(pciID) }
        }
        return .object(object)
    }

    init(json cursor: JSONCursor) throws(JSONShapeError) {
        _ = try cursor.object()
        self.init(name: try cursor.required("name").string(),
                  mac: try cursor.member("mac")?.string(),
                  mtu: try cursor.member("mtu")?.int(),
                  sandbox: try cursor.member("sandbox")?.string(),
                  socketPath: try cursor.member("socketPath")?.string(),
                  pciID: try cursor.member("pciID")?.string())
    }
}

extension CNIResult.IPConfig {
    func json(shape: CNIVersion.ResultShape) -> JSON {
        var object = JSONObject()
        if shape == .ipsWithVersion { object["version"] = .string(address.family.versionString) }
        if let interface { object["interface"] = .int(interface) }
        object["address"] = .string(address.description)
        if let gateway { object["gateway"] = .string(gateway.description) }
        return .object(object)
    }
}

extension CNIResult.Route {
    func json(shape: CNIVersion.ResultShape) -> JSON {
        var object: JSONObject = ["dst": .string(destination.description)]
        if let gateway { object["gw"] = .string(gateway.description) }
        if shape == .ipsWithRouteAttributes {
            if let mtu, mtu != 0 { object["mtu"] = .int(mtu) }
            if let advmss, advmss != 0 { object["advmss"] = .int(advmss) }
            if let priority, priority != 0 { object["priority"] = .int(priority) }
            if let table { object["table"] = .int(table) }
            if let scope { object["scope"] = .int(scope) }
        }
        return .object(object)
    }

    public init(json cursor: JSONCursor) throws(JSONShapeError) {
        _ = try cursor.object()
        self.init(destination: try cursor.required("dst").prefix(),
                  gateway: try cursor.member("gw")?.address(),
                  mtu: try cursor.member("mtu")?.int(),
                  advmss: try cursor.member("advmss")?.int(),
                  priority: try cursor.member("priority")?.int(),
                  table: try cursor.member("table")?.int(),
                  scope: try cursor.member("scope")?.int())
    }
}

extension CNIResult.DNS {
    var json: JSON {
        var object = JSONObject()
        if !nameservers.isEmpty { object["nameservers"] = .array(nameservers.map(JSON.string)) }
        if let domain, !domain.isEmpty { object["domain"] = .string(domain) }
        if !search.isEmpty { object["search"] = .array(search.map(JSON.string)) }
        if !options.isEmpty { object["options"] = .array(options.map(JSON.string)) }
        return .object(object)
    }

    /// Reads a `dns` object (results and network configs share this shape).
    public init(json cursor: JSONCursor) throws(JSONShapeError) {
        _ = try cursor.object()
        self.init(nameservers: try cursor.member("nameservers")?.strings() ?? [],
                  domain: try cursor.member("domain")?.string(),
                  search: try cursor.member("search")?.strings() ?? [],
                  options: try cursor.member("options")?.strings() ?? [])
    }
}

extension JSONCursor {
    /// The member `key`, or an error naming it when it is absent.
    public func required(_ key: String) throws(JSONShapeError) -> JSONCursor {
        guard let member = member(key) else {
            throw JSONShapeError(path: path.isEmpty ? key : "\(path).\(key)", problem: "is required")
        }
        return member
    }

    /// The field `key` as Go decodes it (`field(_:)`), or an error naming it when it is absent.
    public func requiredField(_ key: String) throws(JSONShapeError) -> JSONCursor {
        guard let member = field(key) else {
            throw JSONShapeError(path: path.isEmpty ? key : "\(path).\(key)", problem: "is required")
        }
        return member
    }

    /// An IP address string ("10.88.0.1", "fd00::1").
    public func address() throws(JSONShapeError) -> IPAddress {
        let text = try string()
        guard let address = IPAddress(text) else { throw invalid("\(text.debugDescription) is not an IP address") }
        return address
    }

    /// An address with prefix length ("10.88.0.5/16").
    public func prefix() throws(JSONShapeError) -> IPPrefix {
        let text = try string()
        guard let prefix = IPPrefix(text) else {
            throw invalid("\(text.debugDescription) is not an address with a prefix length (CIDR)")
        }
        return prefix
    }
}
