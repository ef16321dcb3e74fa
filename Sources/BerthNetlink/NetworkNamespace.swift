#if canImport(Glibc)
import Glibc
#endif
import CLinux
import SystemPackage

/// Network namespaces, entered the only safe way: a dedicated thread that switches namespace,
/// opens what it needs (sockets stay bound to the namespace they were opened in) and exits.
///
/// `setns` moves only the calling thread. Calling it from async code, Dispatch or a pool thread
/// would leave that thread, and every task later scheduled on it, in the wrong namespace.
public enum NetworkNamespace {
    public enum Target: Sendable, CustomStringConvertible {
        /// A namespace file: `/run/netns/<name>`, `/proc/<pid>/ns/net`, or `CNI_NETNS`.
        case path(String)
        /// A new, empty namespace that lives as long as something opened in it (a socket) does.
        case new

        public var description: String {
            switch self {
            case .path(let path): path
            case .new: "a new network namespace"
            }
        }
    }

    /// Runs `body` on a dedicated thread inside `target` and returns what it returns. The thread
    /// exits afterwards; the caller's thread never changes namespace.
    public static func run<T>(in target: Target, _ body: () throws -> T) throws -> T {
        try withoutActuallyEscaping(body) { body in
            let context = ThreadContext { () -> Result<Any, any Error> in
                do {
                    try enter(target)
                    return .success(try body())
                } catch {
                    return .failure(error)
                }
            }
            let unmanaged = Unmanaged.passRetained(context)
            var thread = pthread_t()
            let created = pthread_create(&thread, nil, { raw in
                let context = Unmanaged<ThreadContext>.fromOpaque(raw!).takeRetainedValue()
                context.result = context.work()
                return nil
            }, unmanaged.toOpaque())
            guard created == 0 else {
                unmanaged.release()
                throw NamespaceError(operation: "start a thread for \(target)", errno: Errno(rawValue: created))
            }
            pthread_join(thread, nil)
            return try context.result!.get() as! T
        }
    }

    private final class ThreadContext: @unchecked Sendable {
        let work: () -> Result<Any, any Error>
        var result: Result<Any, any Error>?
        init(_ work: @escaping () -> Result<Any, any Error>) { self.work = work }
    }

    private static func enter(_ target: Target) throws(NamespaceError) {
        switch target {
        case .new:
            guard unshare(berth_CLONE_NEWNET) == 0 else {
                throw NamespaceError(operation: "create a network namespace", errno: Errno(rawValue: errno))
            }
        case .path(let path):
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                throw NamespaceError(operation: "open network namespace \(path)", errno: Errno(rawValue: errno))
            }
            defer { close(fd) }
            guard setns(fd, berth_CLONE_NEWNET) == 0 else {
                throw NamespaceError(operation: "enter network namespace \(path)", errno: Errno(rawValue: errno))
            }
        }
    }

    /// A new, empty namespace kept alive by a bind mount at `path` (what `ip netns add` does, for
    /// `/run/netns/<name>`), with `lo` down. The directory must exist; an existing file there is
    /// an error (EEXIST).
    public static func create(at path: String) throws(NamespaceError) {
        let fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0)
        guard fd >= 0 else { throw NamespaceError(operation: "create \(path)", errno: Errno(rawValue: errno)) }
        close(fd)
        let failure: NamespaceError?
        do {
            // On a thread that has entered the new namespace: its namespace file is that one.
            let mountError = try run(in: .new) { () -> Int32 in
                mount("/proc/thread-self/ns/net", path, "none", UInt(MS_BIND), nil) == 0 ? 0 : errno
            }
            failure = mountError == 0 ? nil : NamespaceError(operation: "bind the new namespace to \(path)", errno: Errno(rawValue: mountError))
        } catch {
            failure = (error as? NamespaceError) ?? NamespaceError(operation: "create a namespace for \(path)", errno: .ioError)
        }
        if let failure {
            unlink(path)
            throw failure
        }
    }

    /// Removes a namespace made by `create(at:)`: it ends when nothing else holds it.
    public static func remove(at path: String) throws(NamespaceError) {
        if umount2(path, Int32(MNT_DETACH)) != 0 && errno != EINVAL && errno != ENOENT {
            throw NamespaceError(operation: "unmount \(path)", errno: Errno(rawValue: errno))
        }
        if unlink(path) != 0 && errno != ENOENT {
            throw NamespaceError(operation: "remove \(path)", errno: Errno(rawValue: errno))
        }
    }

    /// The identity of a namespace file: two processes share a network namespace exactly when
    /// their namespace files have the same inode (and device).
    public static func identity(ofPath path: String) throws(NamespaceError) -> Identity {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw NamespaceError(operation: "stat network namespace \(path)", errno: Errno(rawValue: errno))
        }
        return Identity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    /// The namespace of the calling thread.
    public static func currentThreadIdentity() throws(NamespaceError) -> Identity {
        try identity(ofPath: "/proc/thread-self/ns/net")
    }

    /// The namespace this process was started in (its first thread's).
    public static func processIdentity() throws(NamespaceError) -> Identity {
        try identity(ofPath: "/proc/self/ns/net")
    }

    /// A namespace's device and inode; `description` is `net:[inode]`, as
    /// `readlink /proc/<pid>/ns/net` and `lsns` show it.
    public struct Identity: Sendable, Hashable, CustomStringConvertible {
        public let device: UInt64
        public let inode: UInt64

        public init(device: UInt64, inode: UInt64) {
            self.device = device
            self.inode = inode
        }

        public var description: String { "net:[\(inode)]" }
    }
}

public struct NamespaceError: Error, Sendable, Equatable, CustomStringConvertible {
    public let operation: String
    public let errno: Errno
    public var description: String { "\(operation): \(errno)" }
}
