/// A JSON value whose objects keep their members in document order.
///
/// Berth reads and writes JSON without Foundation: every plugin process parses one config and
/// prints one result, so start-up cost matters more than a general-purpose coder. Keeping member
/// order means a config passed on (to a delegated IPAM plugin, into a state record) reads the way
/// its author wrote it, and output key order is stable across processes.
public enum JSON: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSON])
    case object(JSONObject)

    /// A number from an integer.
    public static func int(_ value: Int) -> JSON { .number(JSONNumber(value)) }

    /// The kind of value, for error messages ("expected a string, found a number").
    public var kindDescription: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

/// A JSON number kept as its literal text, so that large integers and exact decimals survive a
/// round trip unchanged.
public struct JSONNumber: Sendable, Equatable, CustomStringConvertible {
    public let literal: String

    public init(_ value: Int) { literal = String(value) }

    /// A number from text that follows JSON's number grammar; nil otherwise.
    public init?(literal: String) {
        var parser = JSONParser(bytes: Array(literal.utf8))
        guard case .number(let number)? = try? parser.parseDocument() else { return nil }
        self = number
    }

    init(validatedLiteral: String) { literal = validatedLiteral }

    /// The value as an `Int` when it is an integer literal within range (no fraction, no exponent).
    public var int: Int? { Int(literal) }

    public var description: String { literal }
}

/// An object member list in document order. Lookup returns the last member of a name, as Go's
/// encoding/json (which every other CNI component uses) lets a repeated key win.
public struct JSONObject: Sendable, Equatable, Sequence, ExpressibleByDictionaryLiteral {
    public struct Member: Sendable, Equatable {
        public var key: String
        public var value: JSON
        public init(key: String, value: JSON) {
            self.key = key
            self.value = value
        }
    }

    public private(set) var members: [Member]

    public init() { members = [] }
    public init(_ members: [Member]) { self.members = members }
    public init(dictionaryLiteral elements: (String, JSON)...) {
        members = elements.map { Member(key: $0.0, value: $0.1) }
    }

    public var isEmpty: Bool { members.isEmpty }
    public var keys: [String] { members.map(\.key) }

    /// The member's value; setting replaces every member of that name by one, in the place of the
    /// first, or appends it; setting nil removes them.
    public subscript(key: String) -> JSON? {
        get { members.last(where: { $0.key == key })?.value }
        set {
            guard let first = members.firstIndex(where: { $0.key == key }) else {
                if let newValue { members.append(Member(key: key, value: newValue)) }
                return
            }
            if let newValue {
                members[first].value = newValue
                var index = members.index(after: first)
                while index < members.endIndex {
                    if members[index].key == key { members.remove(at: index) } else { index += 1 }
                }
            } else {
                members.removeAll { $0.key == key }
            }
        }
    }

    public func makeIterator() -> IndexingIterator<[Member]> { members.makeIterator() }
}
