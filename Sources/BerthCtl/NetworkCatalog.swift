import BerthCNI
import BerthJSON
import FoundationEssentials

/// The network configurations of a directory, read as libcni reads them: `*.conflist` files are
/// lists, `*.conf` and `*.json` single plugin configs wrapped into a list of one; files in name
/// order, the first of a name wins.
public struct NetworkCatalog: Sendable {
    public let directory: String

    public struct Entry: Sendable {
        public let path: String
        /// The list as a runtime would run it; for a single config, a list of one.
        public let list: NetworkConfigList
        /// The bytes of the list (for a single config, the list built around it): what libcni's
        /// cache keeps as `config`.
        public let bytes: [UInt8]
    }

    public init(directory: String) { self.directory = directory }

    /// Every readable configuration, and the files that could not be read (path and why).
    public func entries() -> (entries: [Entry], problems: [(path: String, problem: String)]) {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(".conflist") || $0.hasSuffix(".conf") || $0.hasSuffix(".json") }.sorted()
        var entries: [Entry] = [], problems: [(path: String, problem: String)] = []
        for name in names {
            let path = directory + "/" + name
            do {
                entries.append(try Self.load(path))
            } catch {
                problems.append((path, error.description))
            }
        }
        return (entries, problems)
    }

    /// The configuration of `network`; an error listing the networks there are otherwise.
    public func find(_ network: String) throws(CtlError) -> Entry {
        let (entries, problems) = entries()
        if let entry = entries.first(where: { $0.list.name == network }) { return entry }
        let known = entries.map(\.list.name)
        throw CtlError("no network \(network.debugDescription) in \(directory)"
            + (known.isEmpty ? " (no configurations there)" : "; networks there: " + known.joined(separator: ", "))
            + (problems.isEmpty ? "" : "; unreadable: " + problems.map { "\($0.path): \($0.problem)" }.joined(separator: "; ")))
    }

    static func load(_ path: String) throws(CtlError) -> Entry {
        guard let data = FileManager.default.contents(atPath: path) else { throw CtlError("cannot read \(path)") }
        var bytes = Array(data)
        do {
            if !path.hasSuffix(".conflist") {
                // libcni's ConfListFromConf: the list takes the config's name and version.
                let object = try NetworkConfig.parseObject(bytes)
                var list: JSONObject = ["name": object["name"] ?? .null, "plugins": .array([.object(object)])]
                if let version = object["cniVersion"] { list["cniVersion"] = version }
                bytes = Array(JSON.object(list).serialized().utf8)
            }
            return Entry(path: path, list: try NetworkConfigList(parsing: bytes), bytes: bytes)
        } catch {
            throw CtlError("\(path): \(error.description)")
        }
    }
}
