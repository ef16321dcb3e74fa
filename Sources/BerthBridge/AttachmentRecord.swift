#if canImport(Glibc)
import Glibc
#endif
import BerthCNI
import BerthIPAM
import BerthFirewall
import BerthIP
import BerthJSON
import CLinux
import SystemPackage

/// Everything DEL, CHECK and GC must know about an attachment, written at ADD: they never
/// depend on the container's namespace still existing or on the runtime repeating
/// `runtimeConfig`.
public struct AttachmentRecord: Sendable, Equatable {
    public var containerID: String
    public var ifname: String
    public var network: String
    public var netns: String
    public var bridge: String
    /// The host end of the veth.
    public var hostInterface: String
    public var ips: [CNIResult.IPConfig]
    /// Default routes installed in the container (gateways).
    public var defaultGateways: [IPAddress]
    public var ports: [PortMapping]
    public var masquerade: Bool
    public var icc: Bool

    public var attachment: Attachment { Attachment(containerID: containerID, ifname: ifname) }
    /// Firewall owner of the attachment's port elements.
    public var owner: String { "\(containerID)/\(ifname)" }

    /// The network as the firewall knows it, rebuilt from the record.
    public var firewallNetwork: FirewallNetwork {
        FirewallNetwork(bridge: bridge, subnets: ips.map(\.address.network), masquerade: masquerade,
                        interContainerCommunication: icc)
    }

    var json: JSON {
        .object([
            "version": .int(1),
            "containerID": .string(containerID), "ifname": .string(ifname), "network": .string(network),
            "netns": .string(netns), "bridge": .string(bridge), "hostInterface": .string(hostInterface),
            "ips": .array(ips.map { ip in
                var object: JSONObject = ["address": .string(ip.address.description)]
                if let gateway = ip.gateway { object["gateway"] = .string(gateway.description) }
                return .object(object)
            }),
            "defaultGateways": .array(defaultGateways.map { .string($0.description) }),
            "ports": .array(ports.map { port in
                var object: JSONObject = ["protocol": .string(port.proto.description), "hostPort": .int(Int(port.hostPort)),
                                          "containerIP": .string(port.containerIP.description), "containerPort": .int(Int(port.containerPort))]
                if let hostIP = port.hostIP { object["hostIP"] = .string(hostIP.description) }
                return .object(object)
            }),
            "masquerade": .bool(masquerade), "icc": .bool(icc),
        ])
    }

    init(json cursor: JSONCursor) throws(JSONShapeError) {
        containerID = try cursor.required("containerID").string()
        ifname = try cursor.required("ifname").string()
        network = try cursor.required("network").string()
        netns = try cursor.member("netns")?.string() ?? ""
        bridge = try cursor.required("bridge").string()
        hostInterface = try cursor.required("hostInterface").string()
        ips = []
        for entry in try cursor.required("ips").array() {
            ips.append(CNIResult.IPConfig(address: try entry.required("address").prefix(), gateway: try entry.member("gateway")?.address()))
        }
        defaultGateways = []
        for entry in try cursor.member("defaultGateways")?.array() ?? [] { defaultGateways.append(try entry.address()) }
        ports = []
        for entry in try cursor.member("ports")?.array() ?? [] {
            let protoName = try entry.required("protocol").string()
            guard let proto = NFTProtocol(name: protoName) else { throw entry.invalid("unknown protocol \(protoName)") }
            ports.append(PortMapping(hostIP: try entry.member("hostIP")?.address(), proto: proto,
                                     hostPort: UInt16(clamping: try entry.required("hostPort").int()),
                                     containerIP: try entry.required("containerIP").address(),
                                     containerPort: UInt16(clamping: try entry.required("containerPort").int())))
        }
        masquerade = try cursor.member("masquerade")?.bool() ?? true
        icc = try cursor.member("icc")?.bool() ?? true
    }

    init(containerID: String, ifname: String, network: String, netns: String, bridge: String, hostInterface: String,
         ips: [CNIResult.IPConfig], defaultGateways: [IPAddress], ports: [PortMapping], masquerade: Bool, icc: Bool) {
        self.containerID = containerID
        self.ifname = ifname
        self.network = network
        self.netns = netns
        self.bridge = bridge
        self.hostInterface = hostInterface
        self.ips = ips
        self.defaultGateways = defaultGateways
        self.ports = ports
        self.masquerade = masquerade
        self.icc = icc
    }
}

/// Attachment records of one network under `<stateDir>/<network>/`, one file each
/// (`<containerID>:<ifname>.json`, mode 0600, written whole or not at all), and the network's
/// lock.
public final class RecordStore {
    public let directory: String
    private let directoryFD: Int32
    private let lockFD: Int32

    public struct Failure: Error, CustomStringConvertible {
        public let operation: String
        public let errno: Errno
        public var description: String { "\(operation): \(errno)" }
    }

    public init(stateDirectory: String, network: String) throws(Failure) {
        directory = stateDirectory + "/" + network
        var prefix = ""
        for component in directory.split(separator: "/") {
            prefix += "/" + component
            if mkdir(prefix, 0o700) != 0 && errno != EEXIST { throw Failure(operation: "create \(prefix)", errno: Errno(rawValue: errno)) }
        }
        directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directoryFD >= 0 else { throw Failure(operation: "open \(directory)", errno: Errno(rawValue: errno)) }
        lockFD = openat(directoryFD, "lock", O_RDONLY | O_CREAT | O_CLOEXEC, 0o600)
        guard lockFD >= 0 else {
            let error = Errno(rawValue: errno)
            close(directoryFD)
            throw Failure(operation: "open \(directory)/lock", errno: error)
        }
    }

    deinit {
        close(lockFD)
        close(directoryFD)
    }

    /// Runs `body` holding the network's lock: bridge creation, the firewall's network objects and
    /// "is this the last attachment" decisions happen one at a time per network.
    public func locked<T>(_ body: () throws -> T) throws -> T {
        while flock(lockFD, LOCK_EX) != 0 {
            guard errno == EINTR else { throw Failure(operation: "lock \(directory)/lock", errno: Errno(rawValue: errno)) }
        }
        defer { flock(lockFD, LOCK_UN) }
        return try body()
    }

    private static func name(_ attachment: Attachment) -> String { "\(attachment.containerID):\(attachment.ifname).json" }

    public func load(_ attachment: Attachment) throws -> AttachmentRecord? {
        guard let text = try read(Self.name(attachment)) else { return nil }
        return try AttachmentRecord(json: JSONCursor(JSON.parse(text)))
    }

    /// Writes the record: an unnamed file linked into place complete (the old one unlinked just
    /// before), so a kill leaves the old record, the new one, or none.
    public func save(_ record: AttachmentRecord) throws(Failure) {
        let name = Self.name(record.attachment)
        let bytes = Array((record.json.serialized(pretty: true) + "\n").utf8)
        let fd = openat(directoryFD, ".", berth_O_TMPFILE | O_WRONLY | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure(operation: "write \(directory)/\(name)", errno: Errno(rawValue: errno)) }
        defer { close(fd) }
        do {
            _ = try bytes.withUnsafeBytes { try FileDescriptor(rawValue: fd).writeAll($0) }
        } catch {
            throw Failure(operation: "write \(directory)/\(name)", errno: (error as? Errno) ?? .ioError)
        }
        if unlinkat(directoryFD, name, 0) != 0 && errno != ENOENT { throw Failure(operation: "replace \(directory)/\(name)", errno: Errno(rawValue: errno)) }
        guard linkat(AT_FDCWD, "/proc/self/fd/\(fd)", directoryFD, name, AT_SYMLINK_FOLLOW) == 0 else {
            throw Failure(operation: "write \(directory)/\(name)", errno: Errno(rawValue: errno))
        }
    }

    public func remove(_ attachment: Attachment) throws(Failure) {
        let name = Self.name(attachment)
        guard unlinkat(directoryFD, name, 0) == 0 || errno == ENOENT else {
            throw Failure(operation: "remove \(directory)/\(name)", errno: Errno(rawValue: errno))
        }
    }

    /// Every record of the network.
    public func all() throws -> [AttachmentRecord] {
        try names().compactMap { name in
            guard let text = try read(name) else { return nil }
            return try AttachmentRecord(json: JSONCursor(JSON.parse(text)))
        }
    }

    /// How many attachments the network has (directory entries only; no record is read).
    public func count() throws -> Int { try names().count }

    private func names() throws(Failure) -> [String] {
        let fd = openat(directoryFD, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0, let stream = fdopendir(fd) else { throw Failure(operation: "list \(directory)", errno: Errno(rawValue: errno)) }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasSuffix(".json") { names.append(name) }
        }
        return names
    }

    private func read(_ name: String) throws(Failure) -> String? {
        let fd = openat(directoryFD, name, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return nil }
            throw Failure(operation: "read \(directory)/\(name)", errno: Errno(rawValue: errno))
        }
        do {
            defer { close(fd) }
            return String(decoding: try PluginIO.readAll(FileDescriptor(rawValue: fd), limit: 1 << 20, what: name), as: UTF8.self)
        } catch {
            throw Failure(operation: "read \(directory)/\(name)", errno: .ioError)
        }
    }
}
