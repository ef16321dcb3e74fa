import BerthAttachments
import BerthCNI
import BerthJSON

/// berth-container's options. The container to join comes from, in increasing precedence, the
/// config key `container`, `CNI_ARGS` `BERTH_JOIN=<id>` and `runtimeConfig.joinContainer`
/// (the `joinContainer` capability). Only ADD needs it: DEL, CHECK and GC read the join record.
public struct ContainerConfig: Sendable {
    public var network: String
    /// The container whose namespace is joined; nil when no source names one.
    public var target: String?
    public var stateDirectory = CommonOptions.defaultStateDirectory
    /// `dns` in the config, returned as the result's `dns`.
    public var dns: CNIResult.DNS?

    public init(_ request: CNIRequest) throws(CNIError) {
        network = request.config.name
        dns = request.config.dns
        let root = JSONCursor(.object(request.config.raw))
        var fromConfig: String?, fromRuntime: String?, fromArgs: String?
        do throws(JSONShapeError) {
            stateDirectory = try CommonOptions.stateDirectory(root)
            if let field = root.member("container") { fromConfig = try Self.containerID(field.string(), field.path) }
            if let field = root.member("runtimeConfig")?.member("joinContainer") {
                fromRuntime = try Self.containerID(field.string(), field.path)
            }
        } catch {
            throw CNIError(config: error)
        }
        if let value = request.environment.args["BERTH_JOIN"] {
            guard CNIEnvironment.isValidIdentifier(value) else {
                throw CNIError(.invalidEnvironment, "invalid CNI_ARGS BERTH_JOIN: \(value.debugDescription) is not a container ID (^[a-zA-Z0-9][a-zA-Z0-9_.\\-]*$)")
            }
            fromArgs = value
        }
        target = fromRuntime ?? fromArgs ?? fromConfig
    }

    private static func containerID(_ text: String, _ path: String) throws(JSONShapeError) -> String {
        guard CNIEnvironment.isValidIdentifier(text) else {
            throw JSONShapeError(path: path, problem: "\(text.debugDescription) is not a container ID (^[a-zA-Z0-9][a-zA-Z0-9_.\\-]*$)")
        }
        return text
    }

    /// The target, for ADD: code 7 when no source names one, or when it is the joiner itself.
    func requireTarget(joiner: String) throws(CNIError) -> String {
        guard let target else {
            throw CNIError(.invalidConfig, "invalid network configuration: berth-container needs the container to join",
                           details: "name it with the config key \"container\", CNI_ARGS BERTH_JOIN=<id> or runtimeConfig.joinContainer (capability joinContainer)")
        }
        guard target != joiner else {
            throw CNIError(.invalidConfig, "invalid network configuration: container \(target) cannot join its own network namespace")
        }
        return target
    }
}
