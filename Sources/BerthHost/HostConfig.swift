import BerthAttachments
import BerthCNI
import BerthJSON

/// berth-host's options, read from the config and `runtimeConfig`. A value of the wrong type is
/// code 7 naming the key.
public struct HostConfig: Sendable {
    public static let defaultResolvConf = "/etc/resolv.conf"

    public var network: String
    /// List `lo` among the result's interfaces (and its addresses, which are not global: none).
    public var includeLoopback = false
    /// `resolvConf`: where the result's `dns` comes from; it must be readable. nil: the host's
    /// /etc/resolv.conf, which may be missing (no `dns` then).
    public var resolvConf: String?
    /// `dns` in the config: returned instead of the host's resolv.conf.
    public var dns: CNIResult.DNS?
    public var stateDirectory = CommonOptions.defaultStateDirectory
    /// runtimeConfig.portMappings (the `portMappings` capability): host ports the container will
    /// bind itself; ADD checks they are free.
    public var portMappings: [PortRequest] = []

    public init(_ request: CNIRequest) throws(CNIError) {
        network = request.config.name
        dns = request.config.dns
        let root = JSONCursor(.object(request.config.raw))
        do throws(JSONShapeError) {
            includeLoopback = try root.member("includeLoopback")?.bool() ?? includeLoopback
            if let field = root.member("resolvConf") {
                let path = try field.string()
                guard path.hasPrefix("/") else { throw field.invalid("\(path.debugDescription) must be an absolute path") }
                resolvConf = path
            }
            stateDirectory = try CommonOptions.stateDirectory(root)
            portMappings = try PortRequest.requested(in: root)
        } catch {
            throw CNIError(config: error)
        }
    }
}
