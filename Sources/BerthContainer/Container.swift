import BerthAttachments
import BerthCNI
import BerthNetlink

/// berth-container: Docker's `--network container:<id>`. The joiner shares an existing
/// container's namespace, so nothing is created: ADD finds the target's attachment record,
/// verifies CNI_NETNS is the target's namespace, records the join and reports what the target's
/// namespace has now. DEL removes the join record only, never anything of the target.
public enum Container {
    public static func add(_ request: CNIRequest) throws -> CNIResult {
        let config = try ContainerConfig(request)
        let environment = request.environment
        let targetID = try config.requireTarget(joiner: environment.containerID)
        let namespace = try NamespaceView.identity(ofNetns: environment.netns)
        let target = try targetRecord(targetID, in: namespace, netns: environment.netns, config)
        let records = try RecordStore.open(stateDirectory: config.stateDirectory, network: config.network)
        let inside = try RouteNetlink.open(in: .path(environment.netns))
        // A host-mode target shares the host's namespace: report it as berth-host does.
        var result = try NamespaceView.result(of: inside, sandbox: environment.netns,
                                              routes: target.host != nil ? .defaults : .viaGateway)
        if let dns = config.dns { result.dns = dns }
        let join = ContainerJoin(containerID: target.containerID, network: target.network, ifname: target.ifname)
        try records.locked {
            _ = try records.record(of: request.attachment, mode: .container)  // another plugin's attachment of this name: 113
            try records.save(AttachmentRecord(containerID: environment.containerID, ifname: environment.ifname, network: config.network,
                                              netns: environment.netns, namespace: namespace, mode: .container(join)))
        }
        return result
    }

    /// DEL: the join record goes; the target's interfaces, addresses, leases and ports stay.
    public static func del(_ request: CNIRequest) throws {
        let config = try ContainerConfig(request)
        let records = try RecordStore.open(stateDirectory: config.stateDirectory, network: config.network)
        try records.removeRecord(of: request.attachment, mode: .container)
    }

    /// CHECK: the join is recorded, its target still attached (else it is orphaned), and
    /// CNI_NETNS still the namespace that was joined.
    public static func check(_ request: CNIRequest) throws {
        let config = try ContainerConfig(request)
        let records = try RecordStore.open(stateDirectory: config.stateDirectory, network: config.network)
        guard let record = try records.record(of: request.attachment, mode: .container), let join = record.join else {
            throw CNIError(.unknownContainer, "\(request.environment.containerID)/\(request.environment.ifname) has not joined a container on network \(config.network)")
        }
        if try StateDirectory(config.stateDirectory).isOrphaned(record) {
            throw CNIError(.checkFailed, "\(record.owner) on network \(config.network) is orphaned: container \(join.containerID), whose namespace it joined, is no longer attached",
                           details: "DEL the joiner, or GC removes the join")
        }
        let namespace = try NamespaceView.identity(ofNetns: request.environment.netns)
        if let joined = record.namespace, joined != namespace {
            throw CNIError(.checkFailed, "\(record.owner) on network \(config.network): \(request.environment.netns) is \(namespace), not the joined namespace \(joined)")
        }
    }

    /// GC: joins not in `cni.dev/valid-attachments`, and orphaned joins, go.
    public static func gc(_ request: CNIRequest) throws {
        let config = try ContainerConfig(request)
        let records = try RecordStore.open(stateDirectory: config.stateDirectory, network: config.network)
        let valid = Set(request.config.validAttachments ?? [])
        let state = StateDirectory(config.stateDirectory)
        try records.locked {
            records.sweep(mode: .container, keeping: valid, alsoRemoving: { (try? state.isOrphaned($0)) ?? false }) { _ in }
        }.throwIfAny()
    }

    /// STATUS: an ADD can succeed when the state directory is usable.
    public static func status(_ request: CNIRequest) throws {
        let config = try ContainerConfig(request)
        try PluginStatus.requireStateDirectory(config.stateDirectory, network: config.network)
    }

    /// The target's attachment in `namespace`: code 3 when the target has none (or only joins
    /// of its own), code 7 with both inodes when its namespace is another one.
    static func targetRecord(_ targetID: String, in namespace: NetworkNamespace.Identity, netns: String,
                             _ config: ContainerConfig) throws -> AttachmentRecord {
        let state = StateDirectory(config.stateDirectory)
        let candidates = try state.joinableRecords(ofContainer: targetID)
        guard !candidates.isEmpty else {
            if let join = try state.records(ofContainer: targetID).lazy.compactMap(\.join).first {
                throw CNIError(.unknownContainer, "container \(targetID) has itself joined container \(join.containerID): join \(join.containerID) instead")
            }
            throw CNIError(.unknownContainer, "container \(targetID) has no Berth attachment to join (no berth-bridge or berth-host record in \(config.stateDirectory))")
        }
        if let match = candidates.first(where: { $0.namespaceIdentity == namespace }) { return match }
        let theirs = Set(candidates.compactMap(\.namespaceIdentity).map(\.description)).sorted().joined(separator: ", ")
        throw CNIError(.invalidConfig, "berth-container: \(netns) (\(namespace)) is not the network namespace of container \(targetID) (\(theirs.isEmpty ? "gone" : theirs))",
                       details: "pass the namespace of the container to join as CNI_NETNS")
    }
}

extension CNIPlugin {
    /// berth-container: join another container's network namespace.
    public static let container = CNIPlugin(
        about: "berth-container: Docker-style container networking (join another container's network namespace)",
        add: { request in
            do { return try Container.add(request) } catch { throw cniError(error) }
        },
        del: { request in
            do { try Container.del(request) } catch { throw cniError(error) }
        },
        check: { request in
            do { try Container.check(request) } catch { throw cniError(error) }
        },
        gc: { request in
            do { try Container.gc(request) } catch { throw cniError(error) }
        },
        status: { request in
            do { try Container.status(request) } catch { throw cniError(error) }
        })
}
