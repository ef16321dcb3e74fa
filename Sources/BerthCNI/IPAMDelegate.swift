#if canImport(Glibc)
import Glibc
#endif
import BerthJSON

/// An IPAM plugin named by `ipam.type`, run as CNI prescribes: found in a CNI_PATH directory,
/// given the caller's environment and the caller's stdin unchanged. Its result is read in its
/// own `cniVersion`; its CNI error is passed through unchanged.
public struct IPAMDelegate: Sendable {
    /// `ipam.type`.
    public let type: String
    /// Where it was found.
    public let executable: String

    /// Finds the plugin the request's `ipam.type` names. No `ipam` section or a name that is a
    /// path: code 7. Not in any CNI_PATH directory: `.delegateNotFound`.
    public init(for request: CNIRequest) throws(CNIError) {
        guard let type = request.config.ipamType else {
            throw CNIError(.invalidConfig, "invalid network configuration: ipam.type is required")
        }
        try self.init(type: type, searchPath: request.environment.path)
    }

    public init(type: String, searchPath: [String]) throws(CNIError) {
        guard !type.isEmpty, type != ".", type != "..",
              !type.unicodeScalars.contains(where: { $0 == "/" || $0.value == 0 })
        else {
            throw CNIError(.invalidConfig,
                           "invalid network configuration: ipam.type \(type.debugDescription) must be a plugin name, not a path")
        }
        for directory in searchPath {
            let candidate = directory.hasSuffix("/") ? directory + type : directory + "/" + type
            var info = stat()
            if stat(candidate, &info) == 0, info.st_mode & S_IFMT == S_IFREG, access(candidate, X_OK) == 0 {
                self.type = type
                executable = candidate
                return
            }
        }
        throw CNIError(.delegateNotFound, "IPAM plugin \(type.debugDescription) not found in CNI_PATH",
                       details: "searched: " + searchPath.joined(separator: ":"))
    }

    /// ADD: the plugin's result, read in whatever version it answered in.
    public func add(_ request: CNIRequest) throws(CNIError) -> CNIResult {
        let stdout = try invoke(.add, request)
        let document: JSON
        do {
            document = try JSON.parse(stdout)
        } catch {
            throw invalidOutput("printed a result that is not JSON (\(error))", stdout)
        }
        // A plugin answers in the version it was asked in; trust its own label when it gives one.
        var version = request.config.cniVersion
        if case .object(let object) = document, case .string(let text)? = object["cniVersion"] {
            guard let labelled = CNIVersion(rawValue: text) else {
                throw invalidOutput("answered in unsupported CNI version \(text.debugDescription)", stdout)
            }
            version = labelled
        }
        do {
            return try CNIResult(json: JSONCursor(document), version: version)
        } catch {
            throw invalidOutput("printed an invalid result: \(error)", stdout)
        }
    }

    /// DEL, CHECK, GC or STATUS: success or the plugin's error. `command` overrides the
    /// request's own CNI_COMMAND, so an ADD that fails later can release its lease with `.del`.
    public func run(_ command: CNICommand, _ request: CNIRequest) throws(CNIError) {
        _ = try invoke(command, request)
    }

    /// The largest output accepted from a delegated plugin.
    static let maximumOutputSize = PluginIO.maximumInputSize

    private func invoke(_ command: CNICommand, _ request: CNIRequest) throws(CNIError) -> [UInt8] {
        let environment = request.environment.variables.filter { !$0.hasPrefix("CNI_COMMAND=") }
            + ["CNI_COMMAND=\(command.rawValue)"]
        let output: Spawn.Output
        do {
            output = try Spawn.run(executable, environment: environment, stdin: request.stdin,
                                   stdoutLimit: Self.maximumOutputSize)
        } catch {
            throw CNIError(.delegateFailed, "IPAM plugin \(type.debugDescription) could not be run: \(error)")
        }
        if output.stdoutOverflowed {
            throw CNIError(.delegateFailed,
                           "IPAM plugin \(type.debugDescription) printed more than \(Self.maximumOutputSize) bytes on \(command.rawValue)")
        }
        guard output.termination == .exited(0) else {
            if case .exited = output.termination, let json = try? JSON.parse(output.stdout),
               let error = CNIError(json: json) {
                throw error
            }
            throw invalidOutput("\(output.termination) on \(command.rawValue) without a CNI error", output.stdout)
        }
        return output.stdout
    }

    private func invalidOutput(_ problem: String, _ stdout: [UInt8]) -> CNIError {
        let excerpt = String(decoding: stdout.prefix(256), as: UTF8.self)
        return CNIError(.delegateFailed, "IPAM plugin \(type.debugDescription) \(problem)",
                        details: excerpt.isEmpty ? "no output" : "output: \(excerpt)")
    }
}
