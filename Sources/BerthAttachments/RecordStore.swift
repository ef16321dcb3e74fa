#if canImport(Glibc)
import Glibc
#endif
import BerthCNI
import BerthJSON
import CLinux
import SystemPackage

/// Attachment records of one network under `<stateDir>/<network>/`, one file each
/// (`<containerID>:<ifname>.json`, mode 0600, written whole or not at all), and the network's
/// lock. Containers are found across networks through `StateDirectory`.
public final class RecordStore {
    public let network: String
    public let directory: String
    private let directoryFD: Int32
    /// -1 for a store opened only to read (`StateDirectory`).
    private let lockFD: Int32

    public struct Failure: Error, CustomStringConvertible {
        public let operation: String
        public let errno: Errno
        public var description: String { "\(operation): \(errno)" }
    }

    /// The network's store, its directory and lock file created when missing.
    public init(stateDirectory: String, network: String) throws(Failure) {
        self.network = network
        directory = stateDirectory + "/" + network
        var prefix = ""
        for component in directory.split(separator: "/") {
            prefix += "/" + component
            if mkdir(prefix, 0o700) != 0 && errno != EEXIST { throw Failure(operation: "create \(prefix)", errno: Errno(rawValue: errno)) }
        }
        directoryFD = Glibc.open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directoryFD >= 0 else { throw Failure(operation: "open \(directory)", errno: Errno(rawValue: errno)) }
        lockFD = openat(directoryFD, "lock", O_RDONLY | O_CREAT | O_CLOEXEC, 0o600)
        guard lockFD >= 0 else {
            let error = Errno(rawValue: errno)
            close(directoryFD)
            throw Failure(operation: "open \(directory)/lock", errno: error)
        }
    }

    /// An existing network directory, to read; nil when there is none. Creates nothing.
    init?(reading stateDirectory: String, network: String) throws(Failure) {
        self.network = network
        directory = stateDirectory + "/" + network
        directoryFD = Glibc.open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directoryFD >= 0 else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw Failure(operation: "open \(directory)", errno: Errno(rawValue: errno))
        }
        lockFD = -1
    }

    deinit {
        if lockFD >= 0 { close(lockFD) }
        close(directoryFD)
    }

    /// Runs `body` holding the network's lock: bridge creation, the firewall's network objects and
    /// "is this the last attachment" decisions happen one at a time per network.
    public func locked<T>(_ body: () throws -> T) throws -> T {
        precondition(lockFD >= 0, "a store opened for reading has no lock")
        while flock(lockFD, LOCK_EX) != 0 {
            guard errno == EINTR else { throw Failure(operation: "lock \(directory)/lock", errno: Errno(rawValue: errno)) }
        }
        defer { flock(lockFD, LOCK_UN) }
        return try body()
    }

    private static func name(_ attachment: Attachment) -> String { "\(attachment.containerID):\(attachment.ifname).json" }

    public func load(_ attachment: Attachment) throws -> AttachmentRecord? {
        try load(named: Self.name(attachment))
    }

    /// The record in file `name`; nil when there is none.
    func load(named name: String) throws -> AttachmentRecord? {
        guard let text = try read(name) else { return nil }
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
        try names().compactMap { try load(named: $0) }
    }

    /// How many attachments the network has (directory entries only; no record is read).
    public func count() throws -> Int { try names().count }

    /// The records of one container (any interface).
    public func records(ofContainer containerID: String) throws -> [AttachmentRecord] {
        try names().filter { $0.hasPrefix(containerID + ":") }.sorted().compactMap { try load(named: $0) }
    }

    func names() throws(Failure) -> [String] {
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

/// The state directory as a whole (`/var/lib/berth` by default): one directory per network.
/// Read without any network's lock: records are written whole, so a reader sees one or none.
public struct StateDirectory: Sendable {
    public let path: String

    public init(_ path: String) { self.path = path }

    /// The networks that have a directory here.
    public func networks() throws(RecordStore.Failure) -> [String] {
        guard let stream = opendir(path) else {
            if errno == ENOENT { return [] }
            throw RecordStore.Failure(operation: "list \(path)", errno: Errno(rawValue: errno))
        }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            // DT_UNKNOWN on file systems without d_type: opening it as a store tells.
            let isDirectory = entry.pointee.d_type == UInt8(DT_DIR) || entry.pointee.d_type == UInt8(DT_UNKNOWN)
            if isDirectory, CNIEnvironment.isValidIdentifier(name) { names.append(name) }
        }
        return names.sorted()
    }

    /// Every record of every network, by network name. With `skippingDamaged`, a record that
    /// cannot be read or parsed is left out instead of failing the whole scan (a broken record
    /// of an unrelated network must not stop an ADD).
    public func records(skippingDamaged: Bool = false) throws -> [AttachmentRecord] {
        try networks().flatMap { network -> [AttachmentRecord] in
            guard let store = try RecordStore(reading: path, network: network) else { return [] }
            return try store.names().sorted().compactMap { name in
                do {
                    return try store.load(named: name)
                } catch where skippingDamaged {
                    return nil
                }
            }
        }
    }

    /// Every record, and every record file that cannot be read or parsed (its path and why):
    /// what netctl lists, damaged records included.
    public func scan() throws -> (records: [AttachmentRecord], damaged: [(path: String, problem: String)]) {
        var records: [AttachmentRecord] = [], damaged: [(path: String, problem: String)] = []
        for network in try networks() {
            guard let store = try RecordStore(reading: path, network: network) else { continue }
            for name in try store.names().sorted() {
                do {
                    if let record = try store.load(named: name) { records.append(record) }
                } catch {
                    damaged.append(("\(store.directory)/\(name)", "\(error)"))
                }
            }
        }
        return (records, damaged)
    }

    /// Every record of `containerID`, in every network, by network name.
    public func records(ofContainer containerID: String) throws -> [AttachmentRecord] {
        try networks().flatMap { network in
            try RecordStore(reading: path, network: network)?.records(ofContainer: containerID) ?? []
        }
    }
}
