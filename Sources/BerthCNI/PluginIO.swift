#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// The process boundary of a plugin: environment, bounded reads, whole writes.
public enum PluginIO {
    /// The largest stdin a plugin accepts. Real configs are a few KiB; a bound keeps a runaway
    /// writer from making a plugin allocate without limit.
    public static let maximumInputSize = 1 << 20

    /// How long stdin may stay silent without ending. Runtimes write the configuration and close
    /// stdin at once; a writer that keeps it open would otherwise hold the plugin (and the
    /// runtime's call) forever.
    public static let inputIdleSeconds: Int32 = 5

    /// Reads `fd` to end of file. More than `limit` bytes: `.inputTooLarge`; a read error, or
    /// `idleSeconds` without a byte or the end: `.ioFailure`. `what` names the stream in
    /// messages ("stdin").
    public static func readAll(_ fd: FileDescriptor, limit: Int = maximumInputSize, idleSeconds: Int32 = inputIdleSeconds,
                               what: String) throws(CNIError) -> [UInt8] {
        var data: [UInt8] = []
        // Not zeroed: only what is read into it becomes resident.
        var chunk = [UInt8](unsafeUninitializedCapacity: 64 * 1024) { _, count in count = 64 * 1024 }
        while true {
            var ready = pollfd(fd: fd.rawValue, events: Int16(POLLIN), revents: 0)
            let polled = poll(&ready, 1, idleSeconds * 1000)
            if polled == 0 {
                throw CNIError(.ioFailure, "\(what) sent nothing and did not end for \(idleSeconds) s (\(data.count) bytes read)",
                               details: "write the network configuration to \(what) and close it")
            }
            if polled < 0 {
                if errno == EINTR { continue }
                throw CNIError(.ioFailure, "error waiting for \(what): \(String(cString: strerror(errno)))")
            }
            let count: Int
            do {
                count = try chunk.withUnsafeMutableBytes { try fd.read(into: $0, retryOnInterrupt: true) }
            } catch {
                throw CNIError(.ioFailure, "error reading from \(what): \(error)")
            }
            if count == 0 { return data }
            if data.count + count > limit {
                throw CNIError(.inputTooLarge, "\(what) is larger than \(limit) bytes",
                               details: "a network configuration is expected to be a few KiB")
            }
            data.append(contentsOf: chunk[0..<count])
        }
    }

    /// Writes every byte of `text`, retrying short writes; errors are ignored (there is nowhere
    /// left to report them).
    public static func write(_ text: String, to fd: FileDescriptor) {
        var bytes = Array(text.utf8)
        _ = try? bytes.withUnsafeMutableBytes { buffer in
            _ = try fd.writeAll(UnsafeRawBufferPointer(buffer))
        }
    }

    /// This process's environment as "KEY=VALUE" strings.
    public static func environment() -> [String] {
        var variables: [String] = []
        var cursor = environ
        while let entry = cursor.pointee {
            variables.append(String(cString: entry))
            cursor += 1
        }
        return variables
    }
}
