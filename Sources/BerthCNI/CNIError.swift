import BerthJSON

/// The one error type a plugin reports: code, message and details, printed as
/// `{"cniVersion","code","msg","details"}` on stdout with a non-zero exit status.
public struct CNIError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: Code
    public var msg: String
    public var details: String

    public init(_ code: Code, _ msg: String, details: String = "") {
        self.code = code
        self.msg = msg
        self.details = details
    }

    /// An error code: the spec's well-known codes (1–99, stable across plugins) and Berth's own
    /// (100 and up, listed in the README). Other values arrive from delegated plugins and are
    /// passed on unchanged.
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        public var description: String { String(rawValue) }

        /// Incompatible CNI version.
        public static let incompatibleVersion = Code(rawValue: 1)
        /// Unsupported field in network configuration.
        public static let unsupportedField = Code(rawValue: 2)
        /// Container unknown or does not exist.
        public static let unknownContainer = Code(rawValue: 3)
        /// Invalid necessary environment variables (CNI_COMMAND, CNI_CONTAINERID, …).
        public static let invalidEnvironment = Code(rawValue: 4)
        /// I/O failure, such as reading stdin.
        public static let ioFailure = Code(rawValue: 5)
        /// Failed to decode content (stdin is not JSON).
        public static let decodingFailure = Code(rawValue: 6)
        /// Invalid network configuration.
        public static let invalidConfig = Code(rawValue: 7)
        /// Try again later: a transient condition.
        public static let tryAgainLater = Code(rawValue: 11)
        /// STATUS: the plugin is not available, ADD will fail.
        public static let pluginNotAvailable = Code(rawValue: 50)
        /// STATUS: the plugin is not available and existing containers may be affected.
        public static let pluginNotAvailableExistingAffected = Code(rawValue: 51)

        /// Berth: stdin is larger than the bound (`PluginIO.maximumInputSize`).
        public static let inputTooLarge = Code(rawValue: 100)
        /// Berth: a delegated plugin (`ipam.type`) is not in any CNI_PATH directory.
        public static let delegateNotFound = Code(rawValue: 101)
        /// Berth: a delegated plugin could not be started, was killed, or failed without printing
        /// a CNI error (or succeeded and printed something that is not a CNI result).
        public static let delegateFailed = Code(rawValue: 102)
        /// Berth: a failure no layer classified; a bug to report.
        public static let unclassified = Code(rawValue: 103)
    }

    public var description: String { details.isEmpty ? msg : "\(msg); \(details)" }

    /// The error as CNI prints it; `details` only when non-empty, as the Go library omits it.
    public func json(version: String) -> JSON {
        var object: JSONObject = ["cniVersion": .string(version), "code": .int(code.rawValue), "msg": .string(msg)]
        if !details.isEmpty { object["details"] = .string(details) }
        return .object(object)
    }

    /// Reads an error a delegated plugin printed; nil when the text is not a CNI error.
    public init?(json: JSON) {
        let cursor = JSONCursor(json)
        guard case .object = json,
              let code = try? cursor.member("code")?.int(),
              let msg = try? cursor.member("msg")?.string() ?? ""
        else { return nil }
        self.init(Code(rawValue: code), msg, details: (try? cursor.member("details")?.string()) ?? "")
    }
}

/// An error from a lower layer that knows its CNI code. The entry point converts thrown errors
/// through this protocol in one place; anything else becomes `.unclassified`.
public protocol CNIErrorConvertible: Error {
    var cniError: CNIError { get }
}

extension CNIError: CNIErrorConvertible {
    public var cniError: CNIError { self }
}

extension CNIError {
    /// A config field of the wrong type or value: code 7 naming the field.
    public init(config error: JSONShapeError) {
        self.init(.invalidConfig, "invalid network configuration: \(error)")
    }
}

extension CNIError {
    /// Code 1 for a version Berth does not speak, listing the ones it does.
    public static func unsupportedVersion(_ requested: String) -> CNIError {
        CNIError(.incompatibleVersion, "unsupported CNI version \(requested.debugDescription)",
                 details: "supported versions: " + CNIVersion.supported.joined(separator: ", "))
    }
}
