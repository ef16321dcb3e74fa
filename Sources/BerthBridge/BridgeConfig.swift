import BerthAttachments
import BerthCNI
import BerthFirewall
import BerthIP
import BerthJSON
import BerthNetlink

/// berth-bridge's options, read from the request (config, runtimeConfig, args, CNI_ARGS).
/// A value of the wrong type or out of range is code 7 naming the key.
public struct BridgeConfig: Sendable {
    public var network: String
    public var bridge = "berth0"
    public var isGateway = true
    public var isDefaultGateway = true
    public var ipMasq = true
    /// Destinations the network's traffic reaches with its own addresses even with `ipMasq`
    /// (a cluster's pod and service ranges): `noMasquerade`.
    public var noMasquerade: [IPPrefix] = []
    /// nil: the MTU of the host's default-route interface.
    public var mtu: UInt32?
    /// nil: on when the container publishes ports.
    public var hairpinMode: Bool?
    public var promiscMode = false
    public var icc = true
    public var forceAddress = false
    public var enableDad = false
    public var removeBridgeWhenEmpty = false
    /// A gratuitous ARP when the container's interface comes up (arp_notify). nil: only with a
    /// `mac` of the runtime's choosing. Docker-style MACs are derived from the IPv4 address, so a
    /// reused address keeps its MAC and no neighbour cache needs telling; each gratuitous ARP is
    /// flooded to every port of the bridge, a cost that grows with the network.
    public var arpNotify: Bool?
    /// An IPv6 link-local address on the container interface. Off by default (addrgenmode none;
    /// Docker ≥ 26 disables IPv6 altogether on IPv4-only networks): its DAD, MLD reports and
    /// router solicitations are multicast the bridge floods to every port. Global addresses
    /// (IPv6 networks) work without it.
    public var ipv6LinkLocal = false
    /// Multicast snooping on a bridge Berth creates. Off by default: with it on, every port that
    /// comes up makes the kernel revisit every port's multicast state (br_port_state_selection),
    /// so each ADD costs more as the bridge grows; off, multicast is flooded like broadcast.
    public var multicastSnooping = false
    /// `mac`: runtimeConfig.mac, else args.cni.mac, else CNI_ARGS MAC.
    public var mac: MACAddress?
    public var dns: CNIResult.DNS?
    public var stateDirectory = CommonOptions.defaultStateDirectory
    /// runtimeConfig.portMappings (the `portMappings` capability).
    public var portMappings: [PortRequest] = []
    /// `ipam.type`.
    public var ipamType: String

    public init(_ request: CNIRequest) throws(CNIError) {
        let config = request.config
        network = config.name
        guard let ipamType = config.ipamType else {
            throw CNIError(.invalidConfig, "invalid network configuration: ipam: berth-bridge needs an IPAM section (\"type\": \"berth-ipam\" or a CNI IPAM plugin)")
        }
        self.ipamType = ipamType
        let root = JSONCursor(.object(config.raw))
        do throws(JSONShapeError) {
            if let field = root.member("bridge") {
                bridge = try field.string()
                guard Self.isValidInterfaceName(bridge) else { throw field.invalid("\(bridge.debugDescription) is not a valid interface name (1–15 bytes, no '/', ':' or whitespace)") }
            }
            isGateway = try root.member("isGateway")?.bool() ?? isGateway
            isDefaultGateway = try root.member("isDefaultGateway")?.bool() ?? isDefaultGateway
            ipMasq = try root.member("ipMasq")?.bool() ?? ipMasq
            for entry in try root.member("noMasquerade")?.array() ?? [] {
                let prefix = try entry.prefix()
                guard prefix.isNetwork else { throw entry.invalid("\(prefix) has host bits set (the network is \(prefix.network))") }
                noMasquerade.append(prefix)
            }
            if let field = root.member("mtu") {
                let value = try field.int()
                guard (68...65535).contains(value) else { throw field.invalid("\(value) is not an MTU between 68 and 65535") }
                mtu = UInt32(value)
            }
            hairpinMode = try root.member("hairpinMode")?.bool()
            promiscMode = try root.member("promiscMode")?.bool() ?? promiscMode
            icc = try root.member("icc")?.bool() ?? icc
            forceAddress = try root.member("forceAddress")?.bool() ?? forceAddress
            enableDad = try root.member("enableDad")?.bool() ?? enableDad
            removeBridgeWhenEmpty = try root.member("removeBridgeWhenEmpty")?.bool() ?? removeBridgeWhenEmpty
            arpNotify = try root.member("arpNotify")?.bool()
            ipv6LinkLocal = try root.member("ipv6LinkLocal")?.bool() ?? ipv6LinkLocal
            multicastSnooping = try root.member("multicastSnooping")?.bool() ?? multicastSnooping
            dns = try root.member("dns").map { cursor throws(JSONShapeError) in try CNIResult.DNS(json: cursor) }
            stateDirectory = try CommonOptions.stateDirectory(root)
            mac = try Self.mac(root: root, cniArgs: request.environment.args)
            portMappings = try PortRequest.requested(in: root)
        } catch {
            throw CNIError(config: error)
        }
    }

    private static func mac(root: JSONCursor, cniArgs: CNIArgs) throws(JSONShapeError) -> MACAddress? {
        func parse(_ cursor: JSONCursor) throws(JSONShapeError) -> MACAddress {
            let text = try cursor.string()
            guard let mac = MACAddress(text) else { throw cursor.invalid("\(text.debugDescription) is not a MAC address") }
            return mac
        }
        if let field = root.member("runtimeConfig")?.member("mac") { return try parse(field) }
        if let field = root.member("args")?.member("cni")?.member("mac") { return try parse(field) }
        if let text = cniArgs["MAC"] {
            guard let mac = MACAddress(text) else {
                throw JSONShapeError(path: "CNI_ARGS MAC", problem: "\(text.debugDescription) is not a MAC address")
            }
            return mac
        }
        return nil
    }

    static func isValidInterfaceName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 15 && name != "." && name != ".."
            && !name.unicodeScalars.contains { $0 == "/" || $0 == ":" || $0.properties.isWhitespace || $0.value == 0 }
    }

    /// The published ports for a container with `addresses`: each request for every container
    /// address of the host IP's family (both families when no host IP is given).
    public func portMappings(for addresses: [IPAddress]) -> [PortMapping] {
        portMappings.flatMap { request in
            addresses.filter { request.hostIP == nil || $0.family == request.hostIP!.family }.map {
                PortMapping(hostIP: request.hostIP, proto: request.proto, hostPort: request.hostPort,
                            containerIP: $0, containerPort: request.containerPort)
            }
        }
    }
}
