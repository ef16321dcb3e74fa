#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// The few global network knobs that have no netlink form (`net.ipv4.ip_forward`,
/// `net.ipv6.conf.all.forwarding`), written under /proc/sys.
///
/// /proc/sys/net shows the namespace of the task that *opens* the file, so a write for another
/// namespace happens on a thread inside it (`NetworkNamespace.run`).
public enum Sysctl {
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let operation: String
        public let errno: Errno
        public var description: String { "\(operation): \(errno)" }
    }

    /// Writes `value` to `/proc/sys/<key>` (`net/ipv4/ip_forward`) in `namespace` (nil: ours).
    public static func set(_ key: String, _ value: String, in namespace: NetworkNamespace.Target? = nil) throws {
        let path = "/proc/sys/" + key
        let operation = "set \(key) to \(value)" + (namespace.map { " in \($0)" } ?? "")
        let write = { () throws(Failure) in
            do {
                let fd = try FileDescriptor.open(path, .writeOnly, options: .closeOnExec)
                defer { try? fd.close() }
                _ = try fd.writeAll(Array((value + "\n").utf8))
            } catch let error as Errno {
                throw Failure(operation: operation, errno: error)
            } catch {
                throw Failure(operation: operation, errno: .ioError)
            }
        }
        if let namespace { try NetworkNamespace.run(in: namespace, write) } else { try write() }
    }

    /// Reads `/proc/sys/<key>` in `namespace` (nil: ours), without the trailing newline.
    public static func get(_ key: String, in namespace: NetworkNamespace.Target? = nil) throws -> String {
        let path = "/proc/sys/" + key
        let read = { () throws -> String in
            let fd = try FileDescriptor.open(path, .readOnly, options: .closeOnExec)
            defer { try? fd.close() }
            var buffer = [UInt8](repeating: 0, count: 256)
            let count = try buffer.withUnsafeMutableBytes { try fd.read(into: $0) }
            return String(decoding: buffer[0..<count], as: UTF8.self).trimmingTrailingNewline()
        }
        if let namespace { return try NetworkNamespace.run(in: namespace, read) }
        return try read()
    }
}

extension String {
    fileprivate func trimmingTrailingNewline() -> String {
        var text = self
        while text.last == "\n" { text.removeLast() }
        return text
    }
}
