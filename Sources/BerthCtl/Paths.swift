import BerthCNI
import BerthJSON
import FoundationEssentials

/// Where netctl reads and writes, each from its flag, else its environment variable, else the
/// default runtimes and Berth use.
public struct CtlPaths: Sendable {
    /// Berth's attachment records: `--state-dir`, `BERTH_STATE_DIR`, /var/lib/berth.
    public var stateDirectory: String
    /// Network configurations: `--conf-dir`, `NETCONFPATH`, /etc/cni/net.d.
    public var confDirectory: String
    /// Plugin executables: `--plugin-dir`, `CNI_PATH` (colon-separated), /opt/cni/bin.
    public var pluginDirectories: [String]
    /// libcni's result cache: `--cache-dir`, /var/lib/cni (results under `results/`).
    public var cacheDirectory: String
    /// Lease stores of networks whose config does not name `ipam.dataDir`: `--data-dir`,
    /// /var/lib/cni/networks.
    public var dataDirectory: String

    public static let defaultStateDirectory = "/var/lib/berth"
    public static let defaultConfDirectory = "/etc/cni/net.d"
    public static let defaultPluginDirectory = "/opt/cni/bin"
    public static let defaultCacheDirectory = "/var/lib/cni"
    public static let defaultDataDirectory = "/var/lib/cni/networks"

    public init(stateDirectory: String? = nil, confDirectory: String? = nil, pluginDirectory: String? = nil,
                cacheDirectory: String? = nil, dataDirectory: String? = nil,
                environment: [String: String] = ProcessInfo.processInfo.environment) {
        func nonEmpty(_ value: String?) -> String? { value.flatMap { $0.isEmpty ? nil : $0 } }
        self.stateDirectory = nonEmpty(stateDirectory) ?? nonEmpty(environment["BERTH_STATE_DIR"]) ?? Self.defaultStateDirectory
        self.confDirectory = nonEmpty(confDirectory) ?? nonEmpty(environment["NETCONFPATH"]) ?? Self.defaultConfDirectory
        let path = nonEmpty(pluginDirectory) ?? nonEmpty(environment["CNI_PATH"]) ?? Self.defaultPluginDirectory
        pluginDirectories = path.split(separator: ":").map(String.init)
        self.cacheDirectory = nonEmpty(cacheDirectory) ?? Self.defaultCacheDirectory
        self.dataDirectory = nonEmpty(dataDirectory) ?? Self.defaultDataDirectory
    }
}

/// A failure netctl reports: one line on stderr (with `--json`, a JSON object on stdout) and
/// exit status 1. When a plugin failed, which one and its CNI error.
public struct CtlError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var plugin: PluginFailure?

    public struct PluginFailure: Sendable {
        /// `type` of the failing entry, and its position in the list (0-based).
        public var type: String
        public var index: Int
        public var command: CNICommand
        public var error: CNIError
    }

    public init(_ message: String) { self.message = message }

    public init(_ failure: PluginFailure) {
        message = "\(failure.command.rawValue) failed in plugin \(failure.index + 1) (\(failure.type)): code \(failure.error.code): \(failure.error.msg)"
            + (failure.error.details.isEmpty ? "" : " (\(failure.error.details))")
        plugin = failure
    }

    public var description: String { message }

    public var json: JSON {
        var object: JSONObject = ["message": .string(message)]
        if let plugin {
            object["plugin"] = .string(plugin.type)
            object["index"] = .int(plugin.index)
            object["command"] = .string(plugin.command.rawValue)
            object["code"] = .int(plugin.error.code.rawValue)
            object["msg"] = .string(plugin.error.msg)
            if !plugin.error.details.isEmpty { object["details"] = .string(plugin.error.details) }
        }
        return .object(["error": .object(object)])
    }
}
