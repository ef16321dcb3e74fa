import BerthAttachments
import BerthCNI
import BerthFirewall
import BerthIPAM
import BerthNetlink

extension CNIError.Code {
    /// berth-bridge: CNI_IFNAME already exists in the container.
    public static let interfaceExists = CNIError.Code(rawValue: 115)
    /// berth-bridge: the bridge name belongs to a link that is not a bridge.
    public static let bridgeNameTaken = CNIError.Code(rawValue: 116)
}

/// Where addresses come from: berth-ipam in this process (same store and code as the
/// executable), or an IPAM plugin run through CNI_PATH.
enum AddressSource {
    case inProcess(AddressManager)
    case delegated(IPAMDelegate)

    init(_ request: CNIRequest, type: String) throws(CNIError) {
        if type == "berth-ipam" {
            self = .inProcess(try AddressManager(config: IPAMConfig(request)))
        } else {
            self = .delegated(try IPAMDelegate(for: request))
        }
    }

    func add(_ request: CNIRequest) throws(CNIError) -> CNIResult {
        switch self {
        case .inProcess(let manager): try manager.add(request.attachment)
        case .delegated(let delegate): try delegate.add(request)
        }
    }

    /// Releases the attachment's addresses; `environment` lets GC name another attachment.
    func release(_ request: CNIRequest, attachment: Attachment) throws(CNIError) {
        switch self {
        case .inProcess(let manager):
            try manager.release(attachment)
        case .delegated(let delegate):
            try delegate.run(.del, request.retargeted(to: attachment))
        }
    }

    func check(_ request: CNIRequest) throws(CNIError) {
        switch self {
        case .inProcess(let manager): try manager.check(request.attachment)
        case .delegated(let delegate): try delegate.run(.check, request)
        }
    }
}

extension CNIRequest {
    /// The same request for another attachment (CNI_CONTAINERID / CNI_IFNAME replaced), as GC
    /// needs it to release a stale attachment through a delegated IPAM plugin.
    func retargeted(to attachment: Attachment) throws(CNIError) -> CNIRequest {
        guard attachment != self.attachment else { return self }
        let variables = environment.variables.filter {
            !$0.hasPrefix("CNI_CONTAINERID=") && !$0.hasPrefix("CNI_IFNAME=") && !$0.hasPrefix("CNI_COMMAND=") && !$0.hasPrefix("CNI_NETNS=")
        } + ["CNI_COMMAND=DEL", "CNI_CONTAINERID=\(attachment.containerID)", "CNI_IFNAME=\(attachment.ifname)"]
        return CNIRequest(environment: try CNIEnvironment(variables: variables), config: config, stdin: stdin)
    }
}
