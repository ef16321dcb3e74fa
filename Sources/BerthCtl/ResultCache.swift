import BerthCNI
import BerthJSON
import FoundationEssentials

/// libcni's result cache, in its format, so netctl, podman and containerd read each other's
/// entries: `<cacheDir>/results/<network>-<containerID>-<ifname>`, a JSON object with `kind`
/// `cniCacheV1`, the list's bytes (base64), the attachment, `cniArgs`, `capabilityArgs` and the
/// chain's final `result`.
public struct ResultCache: Sendable {
    public let directory: String

    public struct Entry: Sendable {
        public var network: String
        public var containerID: String
        public var ifname: String
        public var netns: String
        public var config: [UInt8]
        public var capabilityArgs: JSONObject
        public var cniArgs: [(String, String)]
        /// The final result as printed, in the list's version.
        public var result: JSON?

        public var attachment: Attachment { Attachment(containerID: containerID, ifname: ifname) }
    }

    public init(cacheDirectory: String) { directory = cacheDirectory + "/results" }

    func path(network: String, _ attachment: Attachment) -> String {
        "\(directory)/\(network)-\(attachment.containerID)-\(attachment.ifname)"
    }

    public func save(_ entry: Entry) throws(CtlError) {
        var object: JSONObject = [
            "kind": .string("cniCacheV1"), "containerId": .string(entry.containerID),
            "config": .string(Data(entry.config).base64EncodedString()), "ifName": .string(entry.ifname),
            "networkName": .string(entry.network),
        ]
        if !entry.netns.isEmpty { object["netns"] = .string(entry.netns) }
        if !entry.cniArgs.isEmpty { object["cniArgs"] = .array(entry.cniArgs.map { .array([.string($0.0), .string($0.1)]) }) }
        if !entry.capabilityArgs.isEmpty { object["capabilityArgs"] = .object(entry.capabilityArgs) }
        if let result = entry.result { object["result"] = result }
        let path = path(network: entry.network, entry.attachment)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try Data(JSON.object(object).serialized().utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw CtlError("cannot write the result cache \(path): \(error)")
        }
    }

    public func load(network: String, _ attachment: Attachment) -> Entry? {
        FileManager.default.contents(atPath: path(network: network, attachment)).flatMap { Self.decode(Array($0)) }
    }

    public func remove(network: String, _ attachment: Attachment) {
        try? FileManager.default.removeItem(atPath: path(network: network, attachment))
    }

    /// Every entry of `network`: the attachments a runtime still knows about.
    public func entries(network: String) -> [Entry] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasPrefix(network + "-") }.sorted().compactMap { name in
            FileManager.default.contents(atPath: directory + "/" + name).flatMap { Self.decode(Array($0)) }
        }.filter { $0.network == network }
    }

    static func decode(_ bytes: [UInt8]) -> Entry? {
        guard case .object(let object)? = try? JSON.parse(bytes), case .string("cniCacheV1")? = object["kind"],
              case .string(let network)? = object["networkName"], case .string(let containerID)? = object["containerId"],
              case .string(let ifname)? = object["ifName"]
        else { return nil }
        var config: [UInt8] = []
        if case .string(let encoded)? = object["config"], let data = Data(base64Encoded: encoded) { config = Array(data) }
        var netns = ""
        if case .string(let text)? = object["netns"] { netns = text }
        var capabilityArgs = JSONObject()
        if case .object(let args)? = object["capabilityArgs"] { capabilityArgs = args }
        var cniArgs: [(String, String)] = []
        if case .array(let pairs)? = object["cniArgs"] {
            for case .array(let pair) in pairs where pair.count == 2 {
                if case .string(let key) = pair[0], case .string(let value) = pair[1] { cniArgs.append((key, value)) }
            }
        }
        return Entry(network: network, containerID: containerID, ifname: ifname, netns: netns, config: config,
                     capabilityArgs: capabilityArgs, cniArgs: cniArgs, result: object["result"])
    }
}
