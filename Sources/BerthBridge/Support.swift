import BerthCNI
import BerthFirewall
import BerthIPAM
import BerthNetlink

extension CNIError.Code {
    /// berth-bridge: the kernel refused a link, address or route change (the message names it).
    public static let netlinkFailed = CNIError.Code(rawValue: 110)
    /// berth-bridge: an nftables transaction failed (the message names the failing change).
    public static let firewallFailed = CNIError.Code(rawValue: 111)
    /// berth-bridge: a requested host port is already published by another container.
    public static let portAlreadyPublished = CNIError.Code(rawValue: 112)
    /// berth-bridge: an attachment record cannot be read or written.
    public static let stateRecordFailed = CNIError.Code(rawValue: 113)
    /// berth-bridge CHECK: what the record lists is not all there (the message says what).
    public static let checkFailed = CNIError.Code(rawValue: 114)
    /// berth-bridge: CNI_IFNAME already exists in the container.
    public static let interfaceExists = CNIError.Code(rawValue: 115)
    /// berth-bridge: the bridge name belongs to a link that is not a bridge.
    public static let bridgeNameTaken = CNIError.Code(rawValue: 116)
}

/// The one place lower-layer errors become CNI errors.
func cniError(_ error: any Error) -> CNIError {
    switch error {
    case let error as CNIError: return error
    case let error as NetlinkError: return CNIError(.netlinkFailed, error.description)
    case let error as FirewallError where error.conflictingOwner != nil:
        return CNIError(.portAlreadyPublished, error.description)
    case let error as FirewallError: return CNIError(.firewallFailed, error.description)
    case let error as RecordStore.Failure: return CNIError(.stateRecordFailed, "attachment record: \(error)")
    case let error as NamespaceError: return CNIError(.unknownContainer, error.description)
    case let error as Sysctl.Failure: return CNIError(.netlinkFailed, error.description)
    default: return CNIError(.unclassified, "\(error)")
    }
}

/// Undo steps registered as an ADD makes changes, run newest first when a later step fails.
struct UndoStack {
    private var steps: [(String, () throws -> Void)] = []

    mutating func push(_ what: String, _ step: @escaping () throws -> Void) { steps.append((what, step)) }

    /// Runs every step, newest first; returns what could not be undone.
    func run() -> [String] {
        var failures: [String] = []
        for (what, step) in steps.reversed() {
            do { try step() } catch { failures.append("\(what): \(error)") }
        }
        return failures
    }
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
    var attachment: Attachment { Attachment(containerID: environment.containerID, ifname: environment.ifname) }

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
