import BerthCNI
import BerthJSON

/// Options every plugin reads the same way.
public enum CommonOptions {
    public static let defaultStateDirectory = "/var/lib/berth"

    /// `stateDir`: where attachment records live; absolute, without `..`.
    public static func stateDirectory(_ root: JSONCursor) throws(JSONShapeError) -> String {
        guard let field = root.member("stateDir") else { return defaultStateDirectory }
        let path = try field.string()
        guard path.hasPrefix("/"), !path.split(separator: "/").contains(".."), !path.unicodeScalars.contains("\u{0}") else {
            throw field.invalid("\(path.debugDescription) must be an absolute path without '..'")
        }
        return path
    }
}

extension RecordStore {
    /// GC's sweep; the caller holds the network's lock. Every record of `mode` whose attachment
    /// is not in `valid`, or that `isStale` flags, is torn down by `teardown` (which may remove
    /// the record itself) and then removed. Records another plugin wrote under this network's name
    /// are left alone: only their plugin knows what to undo. Keeps going after a failure; a
    /// record whose teardown failed stays, so the next GC tries again.
    public func sweep(mode: AttachmentRecord.Kind, keeping valid: Set<Attachment>, alsoRemoving isStale: (AttachmentRecord) -> Bool = { _ in false },
                      _ teardown: (AttachmentRecord) throws -> Void) -> FailureList {
        var failures = FailureList()
        let records: [AttachmentRecord]
        do {
            records = try all()
        } catch {
            failures.append(CNIError(.stateRecordFailed, "attachment records of network \(network): \(error)"))
            return failures
        }
        for record in records where record.mode.kind == mode && (!valid.contains(record.attachment) || isStale(record)) {
            failures.step {
                try teardown(record)
                try remove(record.attachment)
            }
        }
        return failures
    }

    /// The attachment's record when `mode` wrote it; nil when there is none. A record of another
    /// mode under this network's name is code 113: a plugin never undoes another's attachment.
    public func record(of attachment: Attachment, mode: AttachmentRecord.Kind) throws(CNIError) -> AttachmentRecord? {
        guard let record = try record(of: attachment) else { return nil }
        guard record.mode.kind == mode else {
            throw CNIError(.stateRecordFailed, "\(record.owner) on network \(network) was attached by \(record.mode.kind.plugin), not \(mode.plugin)",
                           details: "networks of different plugins need different names")
        }
        return record
    }

    /// DEL of a mode that creates nothing: the record goes, under the network's lock; none is
    /// fine (DEL twice).
    public func removeRecord(of attachment: Attachment, mode: AttachmentRecord.Kind) throws {
        try locked {
            if try record(of: attachment, mode: mode) != nil { try remove(attachment) }
        }
    }
}

/// STATUS plumbing: code 50 naming what would make an ADD fail.
public enum PluginStatus {
    /// Code 50 for `what`, carrying the underlying error's message.
    public static func unavailable(_ what: String, _ error: any Error) -> CNIError {
        let failure = cniError(error)
        return CNIError(.pluginNotAvailable, "\(what): \(failure.msg)", details: failure.details)
    }

    /// The network's record directory exists or can be made, and its lock opened.
    public static func requireStateDirectory(_ stateDirectory: String, network: String) throws(CNIError) {
        do {
            _ = try RecordStore(stateDirectory: stateDirectory, network: network)
        } catch {
            throw unavailable("state directory \(stateDirectory)", error)
        }
    }
}

extension RecordStore {
    /// The attachment's record; one that cannot be read or parsed is code 113.
    public func record(of attachment: Attachment) throws(CNIError) -> AttachmentRecord? {
        do {
            return try load(attachment)
        } catch {
            throw CNIError(.stateRecordFailed, "attachment record of \(attachment.containerID)/\(attachment.ifname) in \(directory): \(error)")
        }
    }

    /// A store for a plugin call: code 113 when the directory cannot be made or opened.
    public static func open(stateDirectory: String, network: String) throws(CNIError) -> RecordStore {
        do {
            return try RecordStore(stateDirectory: stateDirectory, network: network)
        } catch {
            throw CNIError(.stateRecordFailed, "attachment records of network \(network): \(error)")
        }
    }
}
