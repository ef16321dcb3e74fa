#if canImport(Glibc)
import Glibc
#endif
import BerthCNI
import BerthIP
import CLinux
import SystemPackage

/// Leases on disk in host-local's layout, so the two plugins share a store:
///
///     <dataDir>/<network>/lock                  flock(LOCK_EX) around every change
///     <dataDir>/<network>/<ip>                  "<containerID>\r\n<ifname>", mode 0600
///     <dataDir>/<network>/last_reserved_ip.<n>  where round robin resumes in range set n
///
/// plus an index host-local ignores, so ADD and DEL never read every lease:
///
///     <dataDir>/<network>/.berth-attachments/<containerID>:<ifname>:<n>  → symlink to "<ip>"
///
/// (Berth before 0.8 kept a directory per attachment, `…/<containerID>:<ifname>/<n>`; it is
/// still read and removed.) The entries are symlinks with short targets, stored in the inode:
/// no data block to allocate or free (and, on a file system mounted with `discard`, no
/// synchronous discard when a directory's block is freed).
///
/// Crash safety: a lease is written unnamed (O_TMPFILE) and linked into place complete, so a kill
/// at any instant leaves a lease either absent or whole. The index entry is created before the
/// lease and checked against it when read, so one left by a killed ADD is recognised as stale.
/// An empty lease file (host-local killed between create and write) is reclaimed under the lock.
/// `last_reserved_ip.<n>` is rewritten in place, as host-local does: a torn write only moves
/// where round robin resumes.
public final class DiskLeaseStore: LeaseStore {
    public let directory: String
    private let directoryFD: Int32
    private let lockFD: Int32
    private static let indexDirectory = ".berth-attachments"

    public struct Failure: Error, CustomStringConvertible {
        public let operation: String
        public let errno: Errno
        public var description: String { "\(operation): \(errno)" }
    }

    /// Opens (creating as needed, mode 0755 like host-local) `<dataDirectory>/<network>`.
    /// `network` must already be a safe path component (the CNI config reader checks it).
    public init(dataDirectory: String, network: String) throws(Failure) {
        directory = dataDirectory.hasSuffix("/") ? dataDirectory + network : dataDirectory + "/" + network
        try Self.makeDirectories(directory)
        directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directoryFD >= 0 else { throw Failure(operation: "open \(directory)", errno: .current) }
        lockFD = openat(directoryFD, "lock", O_RDONLY | O_CREAT | O_CLOEXEC, 0o600)
        guard lockFD >= 0 else {
            let error = Errno.current
            close(directoryFD)
            throw Failure(operation: "open \(directory)/lock", errno: error)
        }
    }

    deinit {
        close(lockFD)
        close(directoryFD)
    }

    private static func makeDirectories(_ path: String) throws(Failure) {
        var prefix = ""
        for component in path.split(separator: "/") {
            prefix += "/" + component
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw Failure(operation: "create \(prefix)", errno: .current)
            }
        }
    }

    public func locked<T>(_ body: () throws -> T) throws -> T {
        while flock(lockFD, LOCK_EX) != 0 {
            guard errno == EINTR else { throw Failure(operation: "lock \(directory)/lock", errno: .current) }
        }
        defer {
            closePendingLease()
            flock(lockFD, LOCK_UN)
        }
        return try body()
    }

    // MARK: Leases

    private static func content(of attachment: Attachment) -> String {
        attachment.containerID + "\r\n" + attachment.ifname
    }

    /// The index entry of an attachment's lease in range set `set`.
    private static func indexEntry(_ attachment: Attachment, set: Int) -> String {
        "\(indexDirectory)/\(attachment.containerID):\(attachment.ifname):\(set)"
    }

    /// The per-attachment index directory of Berth before 0.8.
    private static func legacyIndexDirectory(_ attachment: Attachment) -> String {
        "\(indexDirectory)/\(attachment.containerID):\(attachment.ifname)"
    }

    public func address(of attachment: Attachment, set: Int) throws -> IPAddress? {
        for entry in [Self.indexEntry(attachment, set: set), "\(Self.legacyIndexDirectory(attachment))/\(set)"] {
            guard let target = try readLink(entry) else { continue }
            if let lease = try lease(at: target), lease.containerID == attachment.containerID, lease.ifname == attachment.ifname {
                return lease.address
            }
            // Left by an ADD killed before it took the address, or released by host-local.
            try unlink(entry)
        }
        return nil
    }

    public func reserve(_ address: IPAddress, for attachment: Attachment, set: Int) throws -> Bool {
        let name = address.description
        try makeDirectory(Self.indexDirectory)
        let entry = Self.indexEntry(attachment, set: set)
        try unlink(entry)
        guard symlinkat(name, directoryFD, entry) == 0 else { throw Failure(operation: "index \(entry)", errno: .current) }
        guard try link(content: Self.content(of: attachment), as: name) else {
            try unlink(entry)
            return false
        }
        try overwrite("last_reserved_ip.\(set)", with: name)
        return true
    }

    public func lastReserved(set: Int) throws -> IPAddress? {
        guard let text = try read("last_reserved_ip.\(set)") else { return nil }
        return IPAddress(text.trimmingWhitespace)
    }

    public func release(_ attachment: Attachment, sets: Int) throws -> [IPAddress] {
        var indexed = false
        var released: [IPAddress] = []
        func release(entry: String) throws {
            guard let target = try readLink(entry) else { return }
            indexed = true
            if let lease = try lease(at: target), lease.containerID == attachment.containerID, lease.ifname == attachment.ifname {
                try unlink(target)
                released.append(lease.address)
            }
            try unlink(entry)
        }
        for set in 0..<sets { try release(entry: Self.indexEntry(attachment, set: set)) }
        let legacy = Self.legacyIndexDirectory(attachment)
        if let entries = try list(legacy) {
            indexed = true
            for entry in entries { try release(entry: "\(legacy)/\(entry)") }
            try removeDirectory(legacy)
        }
        // Not indexed: written by host-local (or an older tool). Walk the store as it does.
        return indexed ? released : try releaseByWalking(attachment)
    }

    /// host-local's rule: leases of the attachment; failing that, leases of the bare container ID.
    private func releaseByWalking(_ attachment: Attachment) throws -> [IPAddress] {
        let all = try leases()
        var matching = all.filter { $0.containerID == attachment.containerID && $0.ifname == attachment.ifname }
        if matching.isEmpty { matching = all.filter { $0.containerID == attachment.containerID && $0.ifname == nil } }
        for lease in matching { try unlink(lease.address.description) }
        return matching.map(\.address)
    }

    public func leases() throws -> [Lease] {
        var result: [Lease] = []
        for name in try list(".") ?? [] {
            if name.hasPrefix(".berth-tmp-") {
                try unlink(name)  // left by a writer killed on a file system without O_TMPFILE
            } else if let lease = try lease(at: name) {
                result.append(lease)
            }
        }
        return result
    }

    public func remove(_ lease: Lease, sets: Int) throws {
        try unlink(lease.address.description)
        guard let ifname = lease.ifname else { return }
        let attachment = Attachment(containerID: lease.containerID, ifname: ifname)
        for set in 0..<sets {
            let entry = Self.indexEntry(attachment, set: set)
            if try readLink(entry) == lease.address.description { try unlink(entry) }
        }
        let legacy = Self.legacyIndexDirectory(attachment)
        for entry in try list(legacy) ?? [] {
            let path = "\(legacy)/\(entry)"
            if try readLink(path) == lease.address.description { try unlink(path) }
        }
        if try list(legacy)?.isEmpty == true { try removeDirectory(legacy) }
    }

    /// The lease stored under `name`; nil when there is none. An empty file is what a host-local
    /// killed between create and write leaves: it is removed (we hold the lock, so no live
    /// writer is behind it).
    private func lease(at name: String) throws -> Lease? {
        guard let address = IPAddress(name), let text = try read(name) else { return nil }
        let content = text.trimmingWhitespace
        if content.isEmpty {
            try unlink(name)
            return nil
        }
        let parts = content.split(separator: "\r\n", maxSplits: 1)
        let containerID = String(parts[0])
        let ifname = parts.count > 1 ? String(parts[1]) : nil
        return Lease(address: address, containerID: containerID, ifname: ifname)
    }

    // MARK: Files, relative to the store directory

    /// An unnamed file holding the content of the lease being placed; reused while candidates
    /// turn out taken, closed when the lock is released.
    private var pendingLease: (content: String, fd: Int32)?

    private func closePendingLease() {
        if let pending = pendingLease { close(pending.fd) }
        pendingLease = nil
    }

    /// Places a file with `content` at `name` unless something is there: false if taken.
    private func link(content: String, as name: String) throws -> Bool {
        let fd: Int32
        if let pending = pendingLease, pending.content == content {
            fd = pending.fd
        } else {
            closePendingLease()
            guard let created = try unnamedFile(content) else {
                return try linkThroughNamedTemporary(content: content, as: name)
            }
            fd = created
            pendingLease = (content, fd)
        }
        for _ in 0..<2 {
            if linkat(AT_FDCWD, "/proc/self/fd/\(fd)", directoryFD, name, AT_SYMLINK_FOLLOW) == 0 {
                pendingLease = nil
                close(fd)
                return true
            }
            guard errno == EEXIST else { throw Failure(operation: "create \(directory)/\(name)", errno: .current) }
            // An empty file left by a killed writer does not hold the address.
            guard try isEmptyFile(name) else { return false }
            try unlink(name)
        }
        return false
    }

    /// Writes `content` over `name` in place (creating it the first time): no new file, so no
    /// inode to allocate per ADD. Not atomic: what a kill mid-write leaves is at worst an address
    /// that does not parse, and round robin then resumes at the start of the range.
    private func overwrite(_ name: String, with content: String) throws {
        let fd = openat(directoryFD, name, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw Failure(operation: "write \(directory)/\(name)", errno: .current) }
        defer { close(fd) }
        try writeAll(fd, content)
        guard ftruncate(fd, off_t(content.utf8.count)) == 0 else { throw Failure(operation: "write \(directory)/\(name)", errno: .current) }
    }

    /// An unnamed file in the store directory holding `content`, mode 0600; nil where the file
    /// system has no O_TMPFILE.
    private func unnamedFile(_ content: String) throws -> Int32? {
        let fd = openat(directoryFD, ".", berth_O_TMPFILE | O_WRONLY | O_CLOEXEC, 0o600)
        if fd < 0 {
            if errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL { return nil }
            throw Failure(operation: "create a file in \(directory)", errno: .current)
        }
        do {
            try writeAll(fd, content)
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// Without O_TMPFILE: write a named temporary, link it into place, remove the temporary.
    /// A kill between the two leaves `.berth-tmp-<pid>`, which GC removes.
    private func linkThroughNamedTemporary(content: String, as name: String) throws -> Bool {
        let temporary = ".berth-tmp-\(getpid())"
        try write(temporary, content)
        defer { try? unlink(temporary) }
        if linkat(directoryFD, temporary, directoryFD, name, 0) == 0 { return true }
        guard errno == EEXIST else { throw Failure(operation: "create \(directory)/\(name)", errno: .current) }
        guard try isEmptyFile(name) else { return false }
        try unlink(name)
        return linkat(directoryFD, temporary, directoryFD, name, 0) == 0
    }

    private func write(_ name: String, _ content: String) throws {
        let fd = openat(directoryFD, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure(operation: "create \(directory)/\(name)", errno: .current) }
        defer { close(fd) }
        try writeAll(fd, content)
    }

    private func writeAll(_ fd: Int32, _ content: String) throws {
        var bytes = Array(content.utf8)
        _ = try bytes.withUnsafeMutableBytes { buffer in
            try FileDescriptor(rawValue: fd).writeAll(UnsafeRawBufferPointer(buffer))
        }
    }

    private func read(_ name: String) throws -> String? {
        let fd = openat(directoryFD, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            if errno == ENOENT { return nil }
            throw Failure(operation: "read \(directory)/\(name)", errno: .current)
        }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 512)
        let count = try buffer.withUnsafeMutableBytes { try FileDescriptor(rawValue: fd).read(into: $0) }
        return String(decoding: buffer[0..<count], as: UTF8.self)
    }

    private func isEmptyFile(_ name: String) throws -> Bool {
        var info = stat()
        guard fstatat(directoryFD, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
            if errno == ENOENT { return false }
            throw Failure(operation: "stat \(directory)/\(name)", errno: .current)
        }
        return info.st_mode & S_IFMT == S_IFREG && info.st_size == 0
    }

    private func readLink(_ name: String) throws -> String? {
        var buffer = [CChar](repeating: 0, count: 256)
        let count = readlinkat(directoryFD, name, &buffer, buffer.count - 1)
        guard count >= 0 else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw Failure(operation: "read \(directory)/\(name)", errno: .current)
        }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private func unlink(_ name: String) throws {
        guard unlinkat(directoryFD, name, 0) == 0 || errno == ENOENT else {
            throw Failure(operation: "remove \(directory)/\(name)", errno: .current)
        }
    }

    private func makeDirectory(_ name: String) throws {
        guard mkdirat(directoryFD, name, 0o700) == 0 || errno == EEXIST else {
            throw Failure(operation: "create \(directory)/\(name)", errno: .current)
        }
    }

    private func removeDirectory(_ name: String) throws {
        guard unlinkat(directoryFD, name, AT_REMOVEDIR) == 0 || errno == ENOENT || errno == ENOTEMPTY else {
            throw Failure(operation: "remove \(directory)/\(name)", errno: .current)
        }
    }

    /// Entry names of a directory under the store (no "." and ".."); nil when it does not exist.
    private func list(_ name: String) throws -> [String]? {
        let fd = openat(directoryFD, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw Failure(operation: "list \(directory)/\(name)", errno: .current)
        }
        guard let stream = fdopendir(fd) else {
            close(fd)
            throw Failure(operation: "list \(directory)/\(name)", errno: .current)
        }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}

extension Errno {
    static var current: Errno { Errno(rawValue: errno) }
}

extension String {
    var trimmingWhitespace: String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }
}
