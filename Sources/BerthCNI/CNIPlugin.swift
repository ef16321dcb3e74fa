#if canImport(Glibc)
import Glibc
#endif
import BerthJSON
import SystemPackage

/// One invocation of a plugin: the validated environment, the parsed config and the raw stdin
/// (passed unchanged to a delegated IPAM plugin).
public struct CNIRequest: Sendable {
    public let environment: CNIEnvironment
    public let config: NetworkConfig
    public let stdin: [UInt8]

    public init(environment: CNIEnvironment, config: NetworkConfig, stdin: [UInt8]) {
        self.environment = environment
        self.config = config
        self.stdin = stdin
    }

    public var command: CNICommand { environment.command }

    /// CNI_CONTAINERID and CNI_IFNAME: the attachment the call is about.
    public var attachment: Attachment { Attachment(containerID: environment.containerID, ifname: environment.ifname) }
}

/// A plugin as its handlers: what `main()` in every Berth executable hands to `run()`.
///
/// The entry point owns the protocol: it validates the environment, reads stdin (bounded),
/// answers VERSION, parses the config, refuses commands the config's version does not define,
/// dispatches, prints the result in the config's version or the error as CNI JSON, and exits.
public struct CNIPlugin: Sendable {
    public typealias Handler = @Sendable (CNIRequest) throws -> Void

    /// One line for people who run the binary by hand; printed with the supported versions.
    public var about: String
    public var add: @Sendable (CNIRequest) throws -> CNIResult
    public var del: Handler
    public var check: Handler
    public var gc: Handler
    public var status: Handler

    public init(about: String,
                add: @escaping @Sendable (CNIRequest) throws -> CNIResult,
                del: @escaping Handler,
                check: @escaping Handler,
                gc: @escaping Handler,
                status: @escaping Handler) {
        self.about = about
        self.add = add
        self.del = del
        self.check = check
        self.gc = gc
        self.status = status
    }

    /// What an invocation prints and how it exits.
    public struct Outcome: Sendable, Equatable {
        public var stdout: String
        public var stderr: String
        public var exitStatus: Int32

        public init(stdout: String, stderr: String, exitStatus: Int32) {
            self.stdout = stdout
            self.stderr = stderr
            self.exitStatus = exitStatus
        }
    }

    /// The text printed when `CNI_COMMAND` is unset.
    public var aboutLine: String {
        "\(about) (CNI versions \(CNIVersion.supported.joined(separator: ", ")))"
    }

    /// Runs one invocation against the given environment and stdin, without touching the
    /// process's own streams (the testable core of `main()`).
    public func run(environment variables: [String],
                    readStdin: () throws(CNIError) -> [UInt8]) -> Outcome {
        let commandVariable = variables.first { $0.hasPrefix("CNI_COMMAND=") }  // as getenv finds it
        if commandVariable == nil || commandVariable == "CNI_COMMAND=" {
            return Outcome(stdout: "", stderr: aboutLine + "\n", exitStatus: 0)
        }
        // Errors raised before the config is read are reported in the newest version.
        var errorVersion = CNIVersion.latest.rawValue
        do {
            let environment = try CNIEnvironment(variables: variables)
            let stdin = try readStdin()
            if environment.command == .version {
                return Outcome(stdout: try Self.versionReply(stdin), stderr: "", exitStatus: 0)
            }
            let object = try NetworkConfig.parseObject(stdin)
            // From here on, errors speak the config's version when it has a usable one.
            if let version = try? NetworkConfig.version(of: JSONCursor(.object(object))) {
                errorVersion = version.rawValue
            }
            let config = try NetworkConfig(json: object)
            let minimum = CNIVersion.minimum(for: environment.command)
            guard config.cniVersion >= minimum else {
                throw CNIError(.incompatibleVersion,
                               "\(environment.command.rawValue) requires cniVersion \(minimum) or later; the config has \(config.cniVersion)")
            }
            Trace.step("environment and config read")
            let output = try dispatch(CNIRequest(environment: environment, config: config, stdin: stdin))
            return Outcome(stdout: output, stderr: "", exitStatus: 0)
        } catch {
            let cniError = (error as? CNIErrorConvertible)?.cniError
                ?? CNIError(.unclassified, "unexpected failure: \(error)")
            return Outcome(stdout: cniError.json(version: errorVersion).serialized(pretty: true) + "\n",
                           stderr: "", exitStatus: 1)
        }
    }

    private func dispatch(_ request: CNIRequest) throws -> String {
        switch request.command {
        case .add:
            return try add(request).json(version: request.config.cniVersion).serialized(pretty: true) + "\n"
        case .del: try del(request)
        case .check: try check(request)
        case .gc: try gc(request)
        case .status: try status(request)
        case .version: break  // answered before the config is parsed
        }
        return ""
    }

    /// VERSION: `{"cniVersion": <the request's>, "supportedVersions": [...]}`. An empty stdin asks
    /// in the newest version; a request without `cniVersion` is 0.1.0, as for any config.
    static func versionReply(_ stdin: [UInt8]) throws(CNIError) -> String {
        var requested = CNIVersion.latest.rawValue
        if stdin.contains(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }) {
            let object = try NetworkConfig.parseObject(stdin)
            switch object["cniVersion"] {
            case nil: requested = CNIVersion.implied.rawValue
            case .string(let text)?: requested = text
            case let other?:
                throw CNIError(.invalidConfig, "invalid network configuration: cniVersion: expected a string, found \(other.kindDescription)")
            }
        }
        let reply: JSON = .object([
            "cniVersion": .string(requested),
            "supportedVersions": .array(CNIVersion.supported.map(JSON.string)),
        ])
        return reply.serialized(pretty: true) + "\n"
    }

    /// The process entry point: real environment, stdin, stdout and stderr, then exit.
    public func main() -> Never {
        Trace.step("start")
        let outcome = run(environment: PluginIO.environment()) { () throws(CNIError) in
            try PluginIO.readAll(.standardInput, what: "stdin")
        }
        if !outcome.stdout.isEmpty { PluginIO.write(outcome.stdout, to: .standardOutput) }
        if !outcome.stderr.isEmpty { PluginIO.write(outcome.stderr, to: .standardError) }
        Trace.step("result written")
        exit(outcome.exitStatus)
    }
}
