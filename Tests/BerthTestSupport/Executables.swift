import Foundation

/// The build's products directory: the test bundle and the fixture executables live side by side.
public let productsDirectory: String = {
    let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    return executable.deletingLastPathComponent().path
}()

/// The repository checkout this test was built from.
public let repositoryRoot: String = {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
}()

public struct ProcessOutcome: Sendable {
    public var stdout: String
    public var stderr: String
    public var status: Int32
}

/// Runs a built executable (a name in the products directory, or an absolute path) with exactly
/// `environment` and `stdin`, and waits for it.
public func runExecutable(_ name: String, arguments: [String] = [], environment: [String], stdin: [UInt8]) throws -> ProcessOutcome {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: name.hasPrefix("/") ? name : "\(productsDirectory)/\(name)")
    process.arguments = arguments
    process.environment = Dictionary(environment.compactMap { variable -> (String, String)? in
        guard let equals = variable.firstIndex(of: "=") else { return nil }
        return (String(variable[..<equals]), String(variable[variable.index(after: equals)...]))
    }, uniquingKeysWith: { $1 })
    let input = Pipe(), output = Pipe(), errors = Pipe()
    process.standardInput = input
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    // Feed stdin from another thread so a large input cannot deadlock against a full stdout pipe.
    // A plugin may exit before reading all of it (oversized input): SIGPIPE is blocked on that
    // thread only, so the write fails with EPIPE instead of killing the test runner, and the
    // plugin still starts with SIGPIPE at its default.
    let writer = Thread {
        var pipeSignal = sigset_t()
        sigemptyset(&pipeSignal)
        sigaddset(&pipeSignal, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &pipeSignal, nil)
        try? input.fileHandleForWriting.write(contentsOf: Data(stdin))
        try? input.fileHandleForWriting.close()
    }
    writer.start()
    let stdout = output.fileHandleForReading.readDataToEndOfFile()
    let stderr = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return ProcessOutcome(stdout: String(decoding: stdout, as: UTF8.self),
                          stderr: String(decoding: stderr, as: UTF8.self),
                          status: process.terminationStatus)
}

/// A directory for one test's files, removed by the caller with `removeTemporaryDirectory`.
public func makeTemporaryDirectory() throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("berth-test-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

public func removeTemporaryDirectory(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}

public func readFile(_ path: String) throws -> [UInt8] {
    Array(try Data(contentsOf: URL(fileURLWithPath: path)))
}
