import BerthCNI
import BerthFirewall
import BerthIP
import BerthJSON

/// A host port a container asks for (`runtimeConfig.portMappings`, the `portMappings`
/// capability): `{"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": "…"}`, the
/// names matched as Go matches them (go-cni sends `HostPort`, `HostIP`…).
public struct PortRequest: Sendable, Hashable, CustomStringConvertible {
    /// nil: every address (an empty `hostIP`, `0.0.0.0` or `::`).
    public var hostIP: IPAddress?
    public var proto: NFTProtocol
    public var hostPort: UInt16
    public var containerPort: UInt16

    public init(hostIP: IPAddress? = nil, proto: NFTProtocol, hostPort: UInt16, containerPort: UInt16) {
        self.hostIP = hostIP
        self.proto = proto
        self.hostPort = hostPort
        self.containerPort = containerPort
    }

    /// `8080/tcp`, or `8080/tcp on 127.0.0.1` with a host IP.
    public var description: String {
        "\(hostPort)/\(proto)" + (hostIP.map { " on \($0)" } ?? "")
    }

    /// `runtimeConfig.portMappings` of a config; empty without one.
    public static func requested(in root: JSONCursor) throws(JSONShapeError) -> [PortRequest] {
        guard let mappings = root.member("runtimeConfig")?.member("portMappings") else { return [] }
        return try mappings.array().map { entry throws(JSONShapeError) in try PortRequest(json: entry) }
    }

    /// One `portMappings` entry; also how records store it.
    public init(json cursor: JSONCursor) throws(JSONShapeError) {
        _ = try cursor.object()
        func port(_ key: String) throws(JSONShapeError) -> UInt16 {
            let field = try cursor.requiredField(key)
            let value = try field.int()
            guard (1...65535).contains(value) else { throw field.invalid("\(value) is not a port number") }
            return UInt16(value)
        }
        proto = .tcp
        if let field = cursor.field("protocol") {
            let name = try field.string().lowercased()
            guard let parsed = NFTProtocol(name: name) else { throw field.invalid("\(name.debugDescription) is not tcp, udp or sctp") }
            proto = parsed
        }
        hostIP = nil
        if let field = cursor.field("hostIP"), try !field.string().isEmpty {
            let address = try field.address()
            // 0.0.0.0 and :: mean any address.
            if address.value != 0 { hostIP = address }
        }
        hostPort = try port("hostPort")
        containerPort = try port("containerPort")
    }

    public var json: JSON {
        var object: JSONObject = ["hostPort": .int(Int(hostPort)), "containerPort": .int(Int(containerPort)),
                                  "protocol": .string(proto.description)]
        if let hostIP { object["hostIP"] = .string(hostIP.description) }
        return .object(object)
    }
}
