/// An operation a runtime asks for through `CNI_COMMAND`.
public enum CNICommand: String, Sendable, CaseIterable {
    case add = "ADD"
    case del = "DEL"
    case check = "CHECK"
    case gc = "GC"
    case status = "STATUS"
    case version = "VERSION"
}

/// The CNI parameters a runtime passes in environment variables, validated for one command.
public struct CNIEnvironment: Sendable {
    public let command: CNICommand
    /// `CNI_CONTAINERID`; empty for commands that do not take one (GC, STATUS, VERSION).
    public let containerID: String
    /// `CNI_NETNS`: path of the container's network namespace; may be empty for DEL.
    public let netns: String
    /// `CNI_IFNAME`: the interface to create inside the container.
    public let ifname: String
    /// `CNI_ARGS`, parsed.
    public let args: CNIArgs
    /// `CNI_PATH`, split on ':' with empty entries dropped.
    public let path: [String]
    /// The whole environment as received ("KEY=VALUE"), passed on to delegated plugins.
    public let variables: [String]

    /// Which variables a command cannot run without (CNI spec "Parameters"; DEL may omit the
    /// netns because the container may already be gone).
    static func required(for command: CNICommand) -> [String] {
        switch command {
        case .add, .check: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"]
        case .del: ["CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"]
        case .gc, .status: ["CNI_PATH"]
        case .version: []
        }
    }

    /// Validates the environment for the command it names.
    ///
    /// - `CNI_COMMAND` unknown: code 4.
    /// - every missing required variable named in one message: code 4.
    /// - container ID not matching `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`: code 4.
    /// - interface name empty, longer than 15 bytes, `.`/`..`, or with `/`, `:` or whitespace: code 4.
    /// - malformed `CNI_ARGS`: code 4.
    public init(variables: [String]) throws(CNIError) {
        // The first `NAME=` wins, as getenv finds it. A scan, not a dictionary: a handful of
        // lookups over a few dozen variables, and no generic type for the runtime to build at
        // start-up (a [Substring: Substring] costs more to instantiate than all the lookups).
        func value(_ name: String) -> String {
            let prefix = name.utf8.count
            for variable in variables where variable.utf8.count > prefix {
                let bytes = variable.utf8
                if bytes[bytes.index(bytes.startIndex, offsetBy: prefix)] == UInt8(ascii: "="), bytes.starts(with: name.utf8) {
                    return String(variable.dropFirst(prefix + 1))
                }
            }
            return ""
        }

        let commandText = value("CNI_COMMAND")
        guard let command = CNICommand(rawValue: commandText) else {
            throw commandText.isEmpty
                ? CNIError(.invalidEnvironment, "required env variables [CNI_COMMAND] missing")
                : CNIError(.invalidEnvironment, "unknown CNI_COMMAND: \(commandText)",
                           details: "known commands: " + CNICommand.allCases.map(\.rawValue).joined(separator: ", "))
        }
        let missing = Self.required(for: command).filter { value($0).isEmpty }
        if !missing.isEmpty {
            throw CNIError(.invalidEnvironment, "required env variables [\(missing.joined(separator: ","))] missing")
        }

        self.command = command
        self.variables = variables
        containerID = command.takesAttachment ? value("CNI_CONTAINERID") : ""
        netns = command.takesAttachment ? value("CNI_NETNS") : ""
        ifname = command.takesAttachment ? value("CNI_IFNAME") : ""
        path = value("CNI_PATH").split(separator: ":").map(String.init)
        args = command == .version ? CNIArgs() : try CNIArgs(parsing: value("CNI_ARGS"))

        if command.takesAttachment {
            try Self.validateContainerID(containerID)
            try Self.validateInterfaceName(ifname)
        }
    }

    /// A container ID or network name becomes a path component and a log key: the CNI spec's
    /// character set, which excludes `/`, NUL and a leading `.`.
    public static func isValidIdentifier(_ text: String) -> Bool {
        guard let first = text.utf8.first, isAlphanumeric(first) else { return false }
        return text.utf8.allSatisfy {
            isAlphanumeric($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-")
        }
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
            || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    static func validateContainerID(_ id: String) throws(CNIError) {
        guard isValidIdentifier(id) else {
            throw CNIError(.invalidEnvironment, "invalid characters in CNI_CONTAINERID",
                           details: "\(id.debugDescription) must match ^[a-zA-Z0-9][a-zA-Z0-9_.\\-]*$")
        }
    }

    /// IFNAMSIZ is 16 including the NUL; the kernel also refuses "." and ".." and names with '/',
    /// ':' (alias syntax) or whitespace.
    static func validateInterfaceName(_ name: String) throws(CNIError) {
        let problem: String? =
            if name.utf8.count > 15 { "is longer than 15 bytes" }
            else if name == "." || name == ".." { "is not a valid interface name" }
            else if name.unicodeScalars.contains(where: { $0 == "/" || $0 == ":" || $0.properties.isWhitespace || $0.value == 0 }) {
                "contains '/', ':', NUL or whitespace"
            } else { nil }
        if let problem {
            throw CNIError(.invalidEnvironment, "invalid CNI_IFNAME \(name.debugDescription): it \(problem)")
        }
    }
}

extension CNICommand {
    /// Commands that act on one attachment (container ID + interface).
    var takesAttachment: Bool { self == .add || self == .del || self == .check }
}

/// `CNI_ARGS`: `KEY=VALUE` pairs separated by ';' (`IgnoreUnknown=1;IP=10.0.0.5;K8S_POD_NAME=web`).
/// Unknown keys are kept and never an error: runtimes pass Kubernetes pod metadata to every plugin.
public struct CNIArgs: Sendable, Equatable {
    public private(set) var pairs: [(key: String, value: String)]

    public init() { pairs = [] }

    public init(parsing text: String) throws(CNIError) {
        pairs = []
        for item in text.split(separator: ";", omittingEmptySubsequences: true) {
            guard let equals = item.firstIndex(of: "="), equals != item.startIndex else {
                throw CNIError(.invalidEnvironment, "invalid CNI_ARGS pair \(String(item).debugDescription)",
                               details: "CNI_ARGS is a ';'-separated list of KEY=VALUE pairs")
            }
            pairs.append((String(item[..<equals]), String(item[item.index(after: equals)...])))
        }
    }

    /// The value of the last pair named `key`.
    public subscript(key: String) -> String? { pairs.last(where: { $0.key == key })?.value }

    public static func == (lhs: CNIArgs, rhs: CNIArgs) -> Bool {
        lhs.pairs.elementsEqual(rhs.pairs) { $0.key == $1.key && $0.value == $1.value }
    }
}
