import BerthAttachments
import BerthCNI
import BerthFirewall
import BerthIP
import BerthNetlink

/// berth-host: Docker's `--network host`. The container shares the host's namespace, so
/// nothing is created: ADD verifies the namespace is the host's, checks the host ports the
/// container asks for are free, records the attachment and reports the host's network. DEL never
/// touches the host's interfaces, addresses or rules.
public enum Host {
    public static func add(_ request: CNIRequest) throws -> CNIResult {
        let config = try HostConfig(request)
        let namespace = try requireHostNamespace(request.environment.netns)
        let records = try RecordStore.open(stateDirectory: config.stateDirectory, network: config.network)
        let dns = try config.dns ?? hostDNS(config)
        return try records.locked {
            _ = try records.record(of: request.attachment, mode: .host)  // another plugin's attachment of this name: 113
            try requireFreePorts(config.portMappings, for: request.attachment, config)
            let host = try RouteNetlink.current()
            var result = try NamespaceView.result(of: host, sandbox: request.environment.netns,
                                                  includeLoopback: config.includeLoopback, routes: .defaults)
            result.dns = dns
            try records.save(AttachmentRecord(containerID: request.environment.containerID, ifname: request.environment.ifname,
                                              network: config.network, netns: request.environment.netns, namespace: namespace,
                                              mode: .host(HostAttachment(ports: config.portMappings))))
            return result
        }
    }

    /// DEL: the record goes; nothing else was made. Idempotent.
    public static func del(_ request: CNIRequest) throws {
        let config = try HostConfig(request)
        let records = try RecordStore.open(stateDirectory: config.stateDirectory, network: config.network)
        try records.removeRecord(of: request.attachment, mode: .host)
    }

    /// CHECK: the attachment is recorded and CNI_NETNS is still the host's namespace.
    public static func check(_ request: CNIRequest) throws {
        let config = try HostConfig(request)
        let records = try RecordStore.open(stateDirectory: config.stateDirectory, network: config.network)
        guard let record = try records.record(of: request.attachment, mode: .host) else {
            throw CNIError(.unknownContainer, "\(request.environment.containerID)/\(request.environment.ifname) is not attached to network \(config.network)")
        }
        do {
            _ = try requireHostNamespace(request.environment.netns)
        } catch {
            throw CNIError(.checkFailed, "\(record.owner) on network \(config.network): \(error.msg)")
        }
    }

    /// GC: records of attachments not in `cni.dev/valid-attachments` go.
    public static func gc(_ request: CNIRequest) throws {
        let config = try HostConfig(request)
        let records = try RecordStore.open(stateDirectory: config.stateDirectory, network: config.network)
        let valid = Set(request.config.validAttachments ?? [])
        try records.locked { records.sweep(mode: .host, keeping: valid) { _ in } }.throwIfAny()
    }

    /// STATUS: an ADD can succeed when the state directory is usable.
    public static func status(_ request: CNIRequest) throws {
        let config = try HostConfig(request)
        try PluginStatus.requireStateDirectory(config.stateDirectory, network: config.network)
    }

    // MARK: Steps

    /// The identity of CNI_NETNS, which must be the namespace this plugin runs in: code 7 with
    /// both inodes otherwise, and code 7 naming the host's when CNI_NETNS is no namespace at all.
    static func requireHostNamespace(_ netns: String) throws(CNIError) -> NetworkNamespace.Identity {
        let host = try NamespaceView.hostIdentity()
        let given: NetworkNamespace.Identity
        do {
            given = try NamespaceView.identity(ofNetns: netns)
        } catch {
            throw CNIError(.invalidConfig, "berth-host: \(error.msg); host mode needs the host's network namespace (\(host))",
                           details: "pass the host's namespace as CNI_NETNS (e.g. /proc/1/ns/net)")
        }
        guard given == host else {
            throw CNIError(.invalidConfig, "berth-host: \(netns) is not the host's network namespace (it is \(given), the host's is \(host))",
                           details: "host mode shares the host's namespace: pass the host's (e.g. /proc/1/ns/net), or use berth-bridge for a namespace of its own")
        }
        return given
    }

    static func hostDNS(_ config: HostConfig) throws(CNIError) -> CNIResult.DNS {
        if let configured = config.resolvConf { return try ResolvConf.load(configured, key: "resolvConf") }
        // A host without /etc/resolv.conf: no dns to report.
        return (try? ResolvConf.load(HostConfig.defaultResolvConf, key: "resolvConf")) ?? CNIResult.DNS()
    }

    /// Every requested host port must be free: not published by Berth for a bridge container,
    /// not reserved by another host-mode container, and not bound by a process (bind probe).
    /// Code 112 naming the port and its holder; code 7 for a `hostIP` the host does not have.
    static func requireFreePorts(_ requests: [PortRequest], for attachment: Attachment, _ config: HostConfig) throws {
        guard !requests.isEmpty else { return }
        let published = try publishedPorts()
        let reserved = try reservedPorts(config.stateDirectory, except: attachment, network: config.network)
        for request in requests {
            if let (mapping, owner) = published.first(where: { request.overlaps($0.mapping) }) {
                throw CNIError(.hostPortTaken, "host port \(request) is published by Berth for container \(owner ?? "?") (\(mapping))",
                               details: "a host-mode container and a published port cannot share a host port")
            }
            if let (other, _) = reserved.first(where: { request.overlaps($0.port) }) {
                throw CNIError(.hostPortTaken, "host port \(request) is reserved by host-mode container \(other.owner) on network \(other.network)")
            }
            for address in HostPorts.bindAddresses(request) {
                switch HostPorts.probe(request.proto, address, port: request.hostPort) {
                case .free, .unsupported: continue
                case .notLocal:
                    throw CNIError(.invalidConfig, "invalid network configuration: runtimeConfig.portMappings: hostIP \(address) is not an address of this host")
                case .busy:
                    let holders = HostPorts.holders(request.proto, port: request.hostPort, hostIP: request.hostIP)
                    throw CNIError(.hostPortTaken, "host port \(request.hostPort)/\(request.proto) on \(address) is in use on the host"
                                       + (holders.isEmpty ? "" : " by " + holders.joined(separator: ", ")),
                                   details: holders.isEmpty ? "no process holding it was found in /proc" : "")
                }
            }
        }
    }

    /// Ports Berth published for bridge containers; none without nftables or Berth's table.
    static func publishedPorts() throws -> [(mapping: PortMapping, owner: String?)] {
        let firewall: Firewall
        do { firewall = try Firewall.current() } catch { return [] }  // no nf_tables: nothing published
        return try firewall.publishedPorts()
    }

    /// Host ports other host-mode attachments asked for, in every network of the state directory.
    static func reservedPorts(_ stateDirectory: String, except attachment: Attachment, network: String) throws
        -> [(record: AttachmentRecord, port: PortRequest)] {
        try StateDirectory(stateDirectory).records(skippingDamaged: true).flatMap { record in
            guard let host = record.host, !(record.attachment == attachment && record.network == network) else { return [] as [(AttachmentRecord, PortRequest)] }
            return host.ports.map { (record, $0) }
        }
    }
}

extension PortRequest {
    /// Whether two host-side bindings collide: same protocol and port, and the same host IP or
    /// either on every address of that family.
    func overlaps(_ other: PortRequest) -> Bool {
        guard proto == other.proto, hostPort == other.hostPort else { return false }
        guard let hostIP, let otherIP = other.hostIP else { return true }
        return hostIP == otherIP
    }

    func overlaps(_ published: PortMapping) -> Bool {
        guard proto == published.proto, hostPort == published.hostPort else { return false }
        switch (hostIP, published.hostIP) {
        case (nil, _): return true
        case (let mine?, nil): return mine.family == published.family
        case (let mine?, let theirs?): return mine == theirs
        }
    }
}

extension CNIPlugin {
    /// berth-host: Docker's host network mode.
    public static let host = CNIPlugin(
        about: "berth-host: Docker-style host networking (the container shares the host's namespace)",
        add: { request in
            do { return try Host.add(request) } catch { throw cniError(error) }
        },
        del: { request in
            do { try Host.del(request) } catch { throw cniError(error) }
        },
        check: { request in
            do { try Host.check(request) } catch { throw cniError(error) }
        },
        gc: { request in
            do { try Host.gc(request) } catch { throw cniError(error) }
        },
        status: { request in
            do { try Host.status(request) } catch { throw cniError(error) }
        })
}
