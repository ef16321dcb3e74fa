import BerthJSON

/// A network configuration list (`.conflist`): a named network and the chain of plugins a runtime
/// runs for it. Berth reads these for netctl, tests and install checks; plugins themselves only
/// ever see one entry, built by `requestConfig`.
public struct NetworkConfigList: Sendable {
    /// `cniVersion`, or the newest supported entry of `cniVersions` (spec 1.1) when present.
    public let cniVersion: CNIVersion
    public let name: String
    public let disableCheck: Bool
    public let disableGC: Bool
    /// The plugin entries, as written.
    public let plugins: [JSONObject]

    public init(parsing bytes: [UInt8]) throws(CNIError) {
        let object = try NetworkConfig.parseObject(bytes)
        let root = JSONCursor(.object(object))
        do {
            if let versions = root.member("cniVersions") {
                let listed = try versions.strings()
                guard let newest = CNIVersion.newestSupported(among: listed) else {
                    throw CNIError(.incompatibleVersion, "none of cniVersions \(listed) is supported",
                                   details: "supported versions: " + CNIVersion.supported.joined(separator: ", "))
                }
                cniVersion = newest
            } else {
                cniVersion = try NetworkConfig.version(of: root)
            }
            name = try NetworkConfig.networkName(root)
            disableCheck = try root.member("disableCheck")?.bool() ?? false
            disableGC = try root.member("disableGC")?.bool() ?? false
            let entries = try root.required("plugins").array()
            guard !entries.isEmpty else { throw try root.required("plugins").invalid("must list at least one plugin") }
            var plugins: [JSONObject] = []
            for entry in entries {
                _ = try entry.required("type").string()
                plugins.append(try entry.object())
            }
            self.plugins = plugins
        } catch let error as JSONShapeError {
            throw CNIError(config: error)
        } catch let error as CNIError {
            throw error
        } catch {
            throw CNIError(.unclassified, "\(error)")
        }
    }

    /// The stdin a runtime gives plugin `index`, as libcni builds it: the entry with the list's
    /// `name` and `cniVersion`, the previous plugin's result, and `runtimeConfig` holding only the
    /// capabilities the entry declares in `capabilities`.
    public func requestConfig(plugin index: Int, prevResult: CNIResult? = nil,
                              capabilityArgs: JSONObject = JSONObject()) throws(CNIError) -> JSON {
        var entry = plugins[index]
        entry["name"] = .string(name)
        entry["cniVersion"] = .string(cniVersion.rawValue)
        if let prevResult { entry["prevResult"] = try prevResult.json(version: cniVersion) }
        let declared = JSONCursor(entry["capabilities"] ?? .null)
        var runtimeConfig = JSONObject()
        for member in capabilityArgs where (try? declared.member(member.key)?.bool()) == true {
            runtimeConfig[member.key] = member.value
        }
        if !runtimeConfig.isEmpty { entry["runtimeConfig"] = .object(runtimeConfig) }
        return .object(entry)
    }
}
