/// A value that does not have the shape a reader asked for, named by its path in the document
/// ("ipam.ranges[0][1].subnet: expected a string, found a number").
public struct JSONShapeError: Error, Sendable, Equatable, CustomStringConvertible {
    public let path: String
    public let problem: String

    public init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }

    public var description: String { path.isEmpty ? problem : "\(path): \(problem)" }
}

/// A position in a JSON document: a value and the path that leads to it. Readers of configs
/// walk documents with cursors so that every complaint names the offending field.
public struct JSONCursor: Sendable {
    public let value: JSON
    public let path: String

    public init(_ value: JSON, path: String = "") {
        self.value = value
        self.path = path
    }

    private func mismatch(_ expected: String) -> JSONShapeError {
        JSONShapeError(path: path, problem: "expected \(expected), found \(value.kindDescription)")
    }

    /// The member `key` of this object, or nil when this is an object without that member or with
    /// `null` there (Go's decoder treats `null` as absent too). Not an object: nil as well; use
    /// `object()` first where that must be an error.
    public func member(_ key: String) -> JSONCursor? {
        guard case .object(let object) = value, let member = object[key] else { return nil }
        if case .null = member { return nil }
        return JSONCursor(member, path: path.isEmpty ? key : "\(path).\(key)")
    }

    /// The member Go's encoding/json decodes into a struct field named `key`: the last member
    /// whose name equals `key` ignoring (ASCII) case, `null` counting as absent. Runtimes written
    /// in Go pass capability arguments with their own field names — containerd's go-cni sends
    /// `{"HostPort": 8080, "ContainerPort": 80, "Protocol": "tcp", "HostIP": ""}` — and the
    /// reference plugins, decoding with Go, accept them.
    public func field(_ key: String) -> JSONCursor? {
        guard case .object(let object) = value else { return nil }
        let folded = key.lowercased()
        guard let member = object.members.last(where: { $0.key.lowercased() == folded }) else { return nil }
        if case .null = member.value { return nil }
        return JSONCursor(member.value, path: path.isEmpty ? member.key : "\(path).\(member.key)")
    }

    public func object() throws(JSONShapeError) -> JSONObject {
        guard case .object(let object) = value else { throw mismatch("an object") }
        return object
    }

    public func string() throws(JSONShapeError) -> String {
        guard case .string(let string) = value else { throw mismatch("a string") }
        return string
    }

    public func bool() throws(JSONShapeError) -> Bool {
        guard case .bool(let bool) = value else { throw mismatch("a boolean") }
        return bool
    }

    public func int() throws(JSONShapeError) -> Int {
        guard case .number(let number) = value else { throw mismatch("an integer") }
        guard let int = number.int else {
            throw JSONShapeError(path: path, problem: "expected an integer, found \(number.literal)")
        }
        return int
    }

    public func array() throws(JSONShapeError) -> [JSONCursor] {
        guard case .array(let elements) = value else { throw mismatch("an array") }
        return elements.enumerated().map { JSONCursor($0.element, path: "\(path)[\($0.offset)]") }
    }

    public func strings() throws(JSONShapeError) -> [String] {
        var strings: [String] = []
        for element in try array() { strings.append(try element.string()) }
        return strings
    }

    /// A complaint about this value's content rather than its type.
    public func invalid(_ problem: String) -> JSONShapeError {
        JSONShapeError(path: path, problem: problem)
    }
}
