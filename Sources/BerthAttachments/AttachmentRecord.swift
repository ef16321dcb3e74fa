import BerthCNI
import BerthFirewall
import BerthIP
import BerthJSON
import BerthNetlink

/// Everything DEL, CHECK, GC (and netctl) must know about an attachment, written at ADD: they
/// never depend on the container's namespace still existing or on the runtime repeating
/// `runtimeConfig`. One record per (network, container ID, ifname), whatever the mode.
public struct AttachmentRecord: Sendable, Equatable {
    public var containerID: String
    public var ifname: String
    public var network: String
    /// CNI_NETNS at ADD.
    public var netns: String
    /// The identity of that namespace at ADD; nil in records written before Berth kept it.
    /// A path can be reused for another namespace, the identity cannot.
    public var namespace: NetworkNamespace.Identity?
    public var mode: Mode

    /// What the attachment is, by the plugin that made it.
    public enum Mode: Sendable, Equatable {
        /// berth-bridge: a veth on a bridge, addresses, published ports.
        case bridge(BridgeAttachment)
        /// berth-host: the host's own namespace; nothing was created.
        case host(HostAttachment)
        /// berth-container: another container's namespace; nothing was created.
        case container(ContainerJoin)

        public var kind: Kind {
            switch self {
            case .bridge: .bridge
            case .host: .host
            case .container: .container
            }
        }

        /// `bridge`, `host` or `container`, as the record and netctl spell it.
        public var name: String { kind.rawValue }
    }

    /// Which plugin made an attachment, without its details.
    public enum Kind: String, Sendable {
        case bridge, host, container

        /// The plugin: `berth-bridge`, `berth-host`, `berth-container`.
        public var plugin: String { "berth-" + rawValue }
    }

    public init(containerID: String, ifname: String, network: String, netns: String,
                namespace: NetworkNamespace.Identity?, mode: Mode) {
        self.containerID = containerID
        self.ifname = ifname
        self.network = network
        self.netns = netns
        self.namespace = namespace
        self.mode = mode
    }

    public var attachment: Attachment { Attachment(containerID: containerID, ifname: ifname) }
    /// How firewall elements and messages name the attachment: `<containerID>/<ifname>`.
    public var owner: String { "\(containerID)/\(ifname)" }

    public var bridge: BridgeAttachment? { if case .bridge(let details) = mode { details } else { nil } }
    public var host: HostAttachment? { if case .host(let details) = mode { details } else { nil } }
    public var join: ContainerJoin? { if case .container(let details) = mode { details } else { nil } }
}

/// berth-bridge's part of a record.
public struct BridgeAttachment: Sendable, Equatable {
    public var bridge: String
    /// The host end of the veth.
    public var hostInterface: String
    public var ips: [CNIResult.IPConfig]
    /// Default routes installed in the container (gateways).
    public var defaultGateways: [IPAddress]
    public var ports: [PortMapping]
    public var masquerade: Bool
    public var icc: Bool
    /// The network's `noMasquerade` destinations.
    public var unmasqueraded: [IPPrefix]

    public init(bridge: String, hostInterface: String, ips: [CNIResult.IPConfig], defaultGateways: [IPAddress],
                ports: [PortMapping], masquerade: Bool, icc: Bool, unmasqueraded: [IPPrefix] = []) {
        self.bridge = bridge
        self.hostInterface = hostInterface
        self.ips = ips
        self.defaultGateways = defaultGateways
        self.ports = ports
        self.masquerade = masquerade
        self.icc = icc
        self.unmasqueraded = unmasqueraded
    }
}

/// berth-host's part of a record.
public struct HostAttachment: Sendable, Equatable {
    /// The host ports the container asked for (`portMappings`), free when it was attached.
    public var ports: [PortRequest]

    public init(ports: [PortRequest]) { self.ports = ports }
}

/// berth-container's part of a record: the container whose namespace was joined.
public struct ContainerJoin: Sendable, Equatable {
    /// The target's attachment found at ADD (a berth-bridge or berth-host record).
    public var containerID: String
    public var network: String
    public var ifname: String

    public init(containerID: String, network: String, ifname: String) {
        self.containerID = containerID
        self.network = network
        self.ifname = ifname
    }
}

// MARK: - On disk

extension AttachmentRecord {
    /// The record as stored. Bridge records keep the fields they had before records had a mode,
    /// so either version of berth-bridge reads the other's.
    public var json: JSON {
        var object: JSONObject = [
            "version": .int(1), "mode": .string(mode.name),
            "containerID": .string(containerID), "ifname": .string(ifname), "network": .string(network),
            "netns": .string(netns),
        ]
        if let namespace {
            object["namespace"] = .object(["device": .int(Int(truncatingIfNeeded: namespace.device)),
                                           "inode": .int(Int(truncatingIfNeeded: namespace.inode))])
        }
        switch mode {
        case .bridge(let details):
            object["bridge"] = .string(details.bridge)
            object["hostInterface"] = .string(details.hostInterface)
            object["ips"] = .array(details.ips.map { ip in
                var entry: JSONObject = ["address": .string(ip.address.description)]
                if let gateway = ip.gateway { entry["gateway"] = .string(gateway.description) }
                return .object(entry)
            })
            object["defaultGateways"] = .array(details.defaultGateways.map { .string($0.description) })
            object["ports"] = .array(details.ports.map { port in
                var entry: JSONObject = ["protocol": .string(port.proto.description), "hostPort": .int(Int(port.hostPort)),
                                         "containerIP": .string(port.containerIP.description), "containerPort": .int(Int(port.containerPort))]
                if let hostIP = port.hostIP { entry["hostIP"] = .string(hostIP.description) }
                return .object(entry)
            })
            object["masquerade"] = .bool(details.masquerade)
            object["icc"] = .bool(details.icc)
            if !details.unmasqueraded.isEmpty { object["noMasquerade"] = .array(details.unmasqueraded.map { .string($0.description) }) }
        case .host(let details):
            object["ports"] = .array(details.ports.map(\.json))
        case .container(let target):
            object["target"] = .object(["containerID": .string(target.containerID), "network": .string(target.network),
                                        "ifname": .string(target.ifname)])
        }
        return .object(object)
    }

    public init(json cursor: JSONCursor) throws(JSONShapeError) {
        containerID = try cursor.required("containerID").string()
        ifname = try cursor.required("ifname").string()
        network = try cursor.required("network").string()
        netns = try cursor.member("netns")?.string() ?? ""
        namespace = try cursor.member("namespace").map { field throws(JSONShapeError) in
            NetworkNamespace.Identity(device: UInt64(truncatingIfNeeded: try field.required("device").int()),
                                      inode: UInt64(truncatingIfNeeded: try field.required("inode").int()))
        }
        let modeField = cursor.member("mode")
        switch try modeField?.string() ?? "bridge" {  // records from before modes are bridge records
        case "bridge": mode = .bridge(try Self.bridgeDetails(cursor))
        case "host":
            var ports: [PortRequest] = []
            for entry in try cursor.member("ports")?.array() ?? [] { ports.append(try PortRequest(json: entry)) }
            mode = .host(HostAttachment(ports: ports))
        case "container":
            let target = try cursor.required("target")
            mode = .container(ContainerJoin(containerID: try target.required("containerID").string(),
                                            network: try target.required("network").string(),
                                            ifname: try target.required("ifname").string()))
        case let other:
            throw modeField!.invalid("unknown mode \(other.debugDescription)")
        }
    }

    private static func bridgeDetails(_ cursor: JSONCursor) throws(JSONShapeError) -> BridgeAttachment {
        var ips: [CNIResult.IPConfig] = []
        for entry in try cursor.required("ips").array() {
            ips.append(CNIResult.IPConfig(address: try entry.required("address").prefix(), gateway: try entry.member("gateway")?.address()))
        }
        var defaultGateways: [IPAddress] = []
        for entry in try cursor.member("defaultGateways")?.array() ?? [] { defaultGateways.append(try entry.address()) }
        var ports: [PortMapping] = []
        for entry in try cursor.member("ports")?.array() ?? [] {
            let protoField = try entry.required("protocol")
            let protoName = try protoField.string()
            guard let proto = NFTProtocol(name: protoName) else { throw protoField.invalid("unknown protocol \(protoName)") }
            ports.append(PortMapping(hostIP: try entry.member("hostIP")?.address(), proto: proto,
                                     hostPort: UInt16(clamping: try entry.required("hostPort").int()),
                                     containerIP: try entry.required("containerIP").address(),
                                     containerPort: UInt16(clamping: try entry.required("containerPort").int())))
        }
        return BridgeAttachment(bridge: try cursor.required("bridge").string(),
                                hostInterface: try cursor.required("hostInterface").string(),
                                ips: ips, defaultGateways: defaultGateways, ports: ports,
                                masquerade: try cursor.member("masquerade")?.bool() ?? true,
                                icc: try cursor.member("icc")?.bool() ?? true,
                                unmasqueraded: try (cursor.member("noMasquerade")?.array() ?? []).map { entry throws(JSONShapeError) in try entry.prefix() })
    }
}
