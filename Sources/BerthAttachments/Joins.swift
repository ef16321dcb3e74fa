import BerthNetlink

extension AttachmentRecord {
    /// The namespace the attachment was made in: the recorded identity, or for records written
    /// before identities were kept, that of its netns path while it still exists.
    public var namespaceIdentity: NetworkNamespace.Identity? {
        namespace ?? (netns.isEmpty ? nil : try? NetworkNamespace.identity(ofPath: netns))
    }
}

extension StateDirectory {
    /// The attachments of `containerID` another container can join: berth-bridge and berth-host
    /// ones (a join is not joinable, so joins never chain), by network name.
    public func joinableRecords(ofContainer containerID: String) throws -> [AttachmentRecord] {
        try records(ofContainer: containerID).filter { $0.join == nil }
    }

    /// Whether a join's target is gone: no berth-bridge or berth-host attachment of the target
    /// container in the join's namespace remains (its DEL or GC ran). A joiner then keeps a
    /// namespace nobody manages; CHECK reports it and GC removes the join.
    public func isOrphaned(_ record: AttachmentRecord) throws -> Bool {
        guard let join = record.join else { return false }
        return try !joinableRecords(ofContainer: join.containerID).contains {
            record.namespace == nil || $0.namespaceIdentity == record.namespace
        }
    }
}
