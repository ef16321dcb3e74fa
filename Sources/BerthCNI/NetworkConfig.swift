import BerthJSON

/// A container attachment (container ID + interface): what GC keeps and everything else refers to.
public typealias Attachment = NetworkConfig.Attachment

/// The config a plugin receives on stdin: one entry of a conflist with `name`, `cniVersion` and
/// (after the first plugin) `prevResult` injected by the runtime.
///
/// Only the keys every plugin shares are read here; plugin-specific keys stay in `raw` for the
/// plugin to read with a `JSONCursor`, and the stdin bytes themselves are passed on unchanged to
/// a delegated IPAM plugin.
public struct NetworkConfig: Sendable {
    public let cniVersion: CNIVersion
    public let name: String
    public let type: String
    /// `ipam.type`, when the config has an `ipam` section.
    public let ipamType: String?
    /// The config's `dns` section.
    public let dns: CNIResult.DNS?
    /// The previous plugin's result, read in this config's version.
    public let prevResult: CNIResult?
    /// `runtimeConfig`: capability values from the runtime (`portMappings`, `ips`, `mac`…).
    /// Capabilities come from here only; a stray top-level `capabilities` key is ignored.
    public let runtimeConfig: JSONObject
    /// `args`: per-invocation arguments from the runtime (`args.cni.ips`…).
    public let args: JSONObject
    /// GC: the attachments to keep, from `cni.dev/valid-attachments` or the older
    /// `cni.dev/attachments`; nil when neither key is present.
    public let validAttachments: [Attachment]?
    /// Every key as received, in order.
    public let raw: JSONObject

    /// A container attachment: what GC keeps and everything else refers to.
    public struct Attachment: Sendable, Hashable {
        public let containerID: String
        public let ifname: String

        public init(containerID: String, ifname: String) {
            self.containerID = containerID
            self.ifname = ifname
        }
    }

    /// Reads a plugin config.
    ///
    /// Bytes that are not a JSON object: code 6. Unsupported `cniVersion`: code 1 with the
    /// supported versions in `details`. A missing or invalid `name` or `type`, or a field of the
    /// wrong shape: code 7 naming the field.
    public init(parsing bytes: [UInt8]) throws(CNIError) {
        try self.init(json: try Self.parseObject(bytes))
    }

    public init(json object: JSONObject) throws(CNIError) {
        raw = object
        let root = JSONCursor(.object(object))
        cniVersion = try Self.version(of: root)
        do {
            name = try Self.networkName(root)
            type = try root.required("type").string()
            ipamType = try root.member("ipam").map { ipam throws(JSONShapeError) in
                _ = try ipam.object()
                return try ipam.required("type").string()
            }
            dns = try root.member("dns").map(CNIResult.DNS.init(json:))
            prevResult = try root.member("prevResult").map { [cniVersion] previous throws(JSONShapeError) in
                try CNIResult(json: previous, version: cniVersion)
            }
            runtimeConfig = try root.member("runtimeConfig")?.object() ?? JSONObject()
            args = try root.member("args")?.object() ?? JSONObject()
            let attachments = root.member("cni.dev/valid-attachments") ?? root.member("cni.dev/attachments")
            validAttachments = try attachments.map { list throws(JSONShapeError) in
                var result: [Attachment] = []
                for entry in try list.array() {
                    result.append(Attachment(containerID: try entry.required("containerID").string(),
                                             ifname: try entry.required("ifname").string()))
                }
                return result
            }
        } catch {
            throw CNIError(config: error)
        }
    }

    /// Stdin as a JSON object, or code 6.
    public static func parseObject(_ bytes: [UInt8]) throws(CNIError) -> JSONObject {
        let json: JSON
        do {
            json = try JSON.parse(bytes)
        } catch {
            throw CNIError(.decodingFailure, "network configuration is not valid JSON: \(error)")
        }
        guard case .object(let object) = json else {
            throw CNIError(.decodingFailure, "network configuration must be a JSON object, found \(json.kindDescription)")
        }
        return object
    }

    /// `cniVersion` of a config or conflist; absent means 0.1.0. Not a string: code 7; a
    /// version Berth does not speak: code 1, with the supported versions in `details`.
    static func version(of root: JSONCursor) throws(CNIError) -> CNIVersion {
        guard let field = root.member("cniVersion") else { return .implied }
        let text: String
        do { text = try field.string() } catch { throw CNIError(config: error) }
        guard let version = CNIVersion(rawValue: text) else {
            throw CNIError.unsupportedVersion(text)
        }
        return version
    }

    /// The network name: required, and a safe path component (it names lease and state
    /// directories), so `..`, `/` and NUL can never get through.
    static func networkName(_ root: JSONCursor) throws(JSONShapeError) -> String {
        let field = try root.required("name")
        let name = try field.string()
        guard CNIEnvironment.isValidIdentifier(name) else {
            throw field.invalid("\(name.debugDescription) must match ^[a-zA-Z0-9][a-zA-Z0-9_.\\-]*$")
        }
        return name
    }
}
