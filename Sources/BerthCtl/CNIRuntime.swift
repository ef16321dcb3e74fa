import BerthCNI
import BerthJSON
import FoundationEssentials

/// A CNI runtime for one network, with libcni's semantics: plugins found in the plugin
/// directories; their supported versions checked first (VERSION); ADD through the chain with each
/// result as the next plugin's `prevResult`; the final result cached; CHECK and DEL given the
/// cached result, DEL in reverse order; GC told the attachments the cache still holds; STATUS
/// asked of every plugin. Capability arguments reach only the plugins that declare them.
public struct CNIRuntime: Sendable {
    public let network: NetworkCatalog.Entry
    public let paths: CtlPaths
    /// This process's environment, passed on to plugins without its `CNI_*` variables.
    public let environment: [String]

    public init(network: NetworkCatalog.Entry, paths: CtlPaths, environment: [String] = PluginIO.environment()) {
        self.network = network
        self.paths = paths
        self.environment = environment.filter { !$0.hasPrefix("CNI_") }
    }

    /// Who is attached: `CNI_CONTAINERID`, `CNI_NETNS`, `CNI_IFNAME`, `CNI_ARGS`, capability args.
    public struct Attachment: Sendable {
        public var containerID: String
        public var netns: String
        public var ifname: String
        public var cniArgs: [(String, String)]
        public var capabilityArgs: JSONObject

        public init(containerID: String, netns: String, ifname: String, cniArgs: [(String, String)] = [], capabilityArgs: JSONObject = [:]) {
            self.containerID = containerID
            self.netns = netns
            self.ifname = ifname
            self.cniArgs = cniArgs
            self.capabilityArgs = capabilityArgs
        }

        var key: BerthCNI.Attachment { BerthCNI.Attachment(containerID: containerID, ifname: ifname) }

        /// This attachment with the cached ADD's capability and CNI arguments where it has none.
        func completed(from entry: ResultCache.Entry) -> Attachment {
            var completed = self
            if completed.capabilityArgs.isEmpty { completed.capabilityArgs = entry.capabilityArgs }
            if completed.cniArgs.isEmpty { completed.cniArgs = entry.cniArgs }
            return completed
        }
    }

    var list: NetworkConfigList { network.list }
    var cache: ResultCache { ResultCache(cacheDirectory: paths.cacheDirectory) }

    // MARK: Commands

    /// ADD through the chain; the final result, cached. When a plugin fails, the list is DELeted
    /// in reverse (as runtimes do after a failed ADD), so nothing is left half-attached.
    public func add(_ attachment: Attachment) throws(CtlError) -> JSON {
        try negotiateVersions()
        var previous: JSON?
        for index in list.plugins.indices {
            do {
                let output = try call(.add, plugin: index, attachment, prevResult: previous)
                previous = try normalized(JSON.parse(output))
            } catch let error as CtlError {
                try? del(attachment, cached: previous)
                throw error
            } catch {
                try? del(attachment, cached: previous)
                throw CtlError("ADD: plugin \(index + 1) (\(type(index))) printed a result that is not JSON: \(error)")
            }
        }
        let result = previous ?? .object(["cniVersion": .string(list.cniVersion.rawValue)])
        try cache.save(ResultCache.Entry(network: list.name, containerID: attachment.containerID, ifname: attachment.ifname,
                                         netns: attachment.netns, config: network.bytes, capabilityArgs: attachment.capabilityArgs,
                                         cniArgs: attachment.cniArgs, result: result))
        return result
    }

    /// CHECK through the chain with the cached result (libcni refuses CHECK without one).
    public func check(_ attachment: Attachment) throws(CtlError) {
        guard list.cniVersion >= .v0_4_0 else { throw CtlError("CHECK needs cniVersion 0.4.0 or later; \(list.name) has \(list.cniVersion)") }
        guard !list.disableCheck else { throw CtlError("\(list.name) disables CHECK (disableCheck)") }
        try negotiateVersions()
        guard let entry = cache.load(network: list.name, attachment.key), let cached = entry.result else {
            throw CtlError("no cached result for \(attachment.containerID)/\(attachment.ifname) on \(list.name) in \(cache.directory): was it added by a runtime using this cache directory?")
        }
        let attachment = attachment.completed(from: entry)
        for index in list.plugins.indices { _ = try call(.check, plugin: index, attachment, prevResult: cached) }
    }

    /// DEL in reverse order, each plugin given the cached result and, unless the caller gives
    /// them again, the capability and CNI arguments of the ADD (as runtimes keep them: the
    /// reference portmap withdraws nothing without its portMappings). The cache entry goes last.
    /// Every plugin runs even when one fails; the first failure is reported.
    public func del(_ attachment: Attachment) throws(CtlError) {
        let entry = cache.load(network: list.name, attachment.key)
        try del(entry.map(attachment.completed) ?? attachment, cached: entry?.result)
        cache.remove(network: list.name, attachment.key)
    }

    private func del(_ attachment: Attachment, cached: JSON?) throws(CtlError) {
        var first: CtlError?
        for index in list.plugins.indices.reversed() {
            do {
                _ = try call(.del, plugin: index, attachment, prevResult: list.cniVersion >= .v0_4_0 ? cached : nil)
            } catch {
                if first == nil { first = error }
            }
        }
        if let first { throw first }
    }

    /// GC: every plugin (cniVersion 1.1.0 and later) is told which attachments are valid — those
    /// given, else those the result cache holds for this network.
    public func gc(validAttachments: [BerthCNI.Attachment]? = nil) throws(CtlError) -> [BerthCNI.Attachment] {
        guard list.cniVersion >= .v1_1_0 else { throw CtlError("GC needs cniVersion 1.1.0 or later; \(list.name) has \(list.cniVersion)") }
        guard !list.disableGC else { throw CtlError("\(list.name) disables GC (disableGC)") }
        let valid = validAttachments ?? cache.entries(network: list.name).map(\.attachment)
        let listed: JSON = .array(valid.map { .object(["containerID": .string($0.containerID), "ifname": .string($0.ifname)]) })
        for index in list.plugins.indices { _ = try call(.gc, plugin: index, nil, extra: ["cni.dev/valid-attachments": listed]) }
        return valid
    }

    /// STATUS of every plugin (cniVersion 1.1.0 and later): the first that is not ready fails.
    public func status() throws(CtlError) {
        guard list.cniVersion >= .v1_1_0 else { throw CtlError("STATUS needs cniVersion 1.1.0 or later; \(list.name) has \(list.cniVersion)") }
        for index in list.plugins.indices { _ = try call(.status, plugin: index, nil) }
    }

    // MARK: Plugins

    func type(_ index: Int) -> String {
        if case .string(let type)? = list.plugins[index]["type"] { return type }
        return "?"
    }

    /// The plugin's executable in the first plugin directory that has it.
    func executable(_ index: Int) throws(CtlError) -> String {
        let type = type(index)
        guard !type.contains("/") else { throw CtlError("\(network.path): plugin type \(type.debugDescription) must be a name, not a path") }
        for directory in paths.pluginDirectories {
            let candidate = directory + "/" + type
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw CtlError("plugin \(type) (plugin \(index + 1) of \(list.name)) is not in \(paths.pluginDirectories.joined(separator: ":"))")
    }

    /// VERSION of every plugin: each must support the list's version.
    func negotiateVersions() throws(CtlError) {
        let request = Array(JSON.object(["cniVersion": .string(list.cniVersion.rawValue)]).serialized().utf8)
        for index in list.plugins.indices {
            let output = try run(.version, plugin: index, environment: ["CNI_COMMAND=VERSION"], stdin: request)
            guard case .object(let reply)? = try? JSON.parse(output), case .array(let versions)? = reply["supportedVersions"] else {
                throw CtlError("plugin \(type(index)) answered VERSION with something that is not a CNI version reply")
            }
            let supported = versions.compactMap { if case .string(let text) = $0 { text } else { nil } }
            guard supported.contains(list.cniVersion.rawValue) else {
                throw CtlError("plugin \(type(index)) does not support cniVersion \(list.cniVersion) of \(list.name); it supports \(supported.joined(separator: ", "))")
            }
        }
    }

    /// One plugin call: its stdin is the entry as libcni builds it; its stdout on success.
    func call(_ command: CNICommand, plugin index: Int, _ attachment: Attachment?, prevResult: JSON? = nil,
              extra: JSONObject = [:]) throws(CtlError) -> [UInt8] {
        var stdin: JSON
        do {
            stdin = try list.requestConfig(plugin: index, capabilityArgs: attachment?.capabilityArgs ?? [:])
        } catch {
            throw CtlError("\(network.path): \(error.description)")
        }
        if case .object(var object) = stdin {
            if let prevResult { object["prevResult"] = prevResult }
            for member in extra { object[member.key] = member.value }
            stdin = .object(object)
        }
        var variables = ["CNI_COMMAND=\(command.rawValue)", "CNI_PATH=\(paths.pluginDirectories.joined(separator: ":"))"]
        if let attachment {
            variables += ["CNI_CONTAINERID=\(attachment.containerID)", "CNI_NETNS=\(attachment.netns)", "CNI_IFNAME=\(attachment.ifname)"]
            if !attachment.cniArgs.isEmpty { variables.append("CNI_ARGS=" + attachment.cniArgs.map { "\($0.0)=\($0.1)" }.joined(separator: ";")) }
        }
        return try run(command, plugin: index, environment: variables, stdin: Array(stdin.serialized().utf8))
    }

    private func run(_ command: CNICommand, plugin index: Int, environment variables: [String], stdin: [UInt8]) throws(CtlError) -> [UInt8] {
        let executable = try executable(index)
        let output: Spawn.Output
        do {
            output = try Spawn.run(executable, environment: environment + variables, stdin: stdin, stdoutLimit: 16 << 20)
        } catch {
            throw CtlError("\(command.rawValue): plugin \(index + 1) (\(type(index))) could not be run: \(error)")
        }
        guard output.termination == .exited(0) else {
            if let printed = try? JSON.parse(output.stdout), let error = CNIError(json: printed) {
                throw CtlError(CtlError.PluginFailure(type: type(index), index: index, command: command, error: error))
            }
            let excerpt = String(decoding: output.stdout.prefix(200), as: UTF8.self)
            throw CtlError("\(command.rawValue): plugin \(index + 1) (\(type(index))) \(output.termination) without a CNI error"
                + (excerpt.isEmpty ? "" : ": \(excerpt)"))
        }
        return output.stdout
    }

    /// A result in the list's version, as libcni converts the last plugin's answer.
    func normalized(_ result: JSON) throws(CtlError) -> JSON {
        var version = list.cniVersion
        if case .object(let object) = result, case .string(let text)? = object["cniVersion"], let labelled = CNIVersion(rawValue: text) {
            version = labelled
        }
        do {
            return try CNIResult(json: JSONCursor(result), version: version).json(version: list.cniVersion)
        } catch let error as CNIError {
            throw CtlError("the chain's result cannot be expressed in cniVersion \(list.cniVersion): \(error.msg)")
        } catch {
            throw CtlError("the chain's result is not a CNI result: \(error)")
        }
    }
}
