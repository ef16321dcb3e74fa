import BerthCNI
import BerthFirewall
import BerthNetlink

extension CNIError.Code {
    /// The kernel refused a link, address or route change (the message names it).
    public static let netlinkFailed = CNIError.Code(rawValue: 110)
    /// An nftables transaction failed (the message names the failing change).
    public static let firewallFailed = CNIError.Code(rawValue: 111)
    /// A requested host port is taken: published by another container, or (berth-host) in use
    /// on the host.
    public static let hostPortTaken = CNIError.Code(rawValue: 112)
    /// An attachment record cannot be read or written.
    public static let stateRecordFailed = CNIError.Code(rawValue: 113)
    /// CHECK: what the record lists is not all there (the message says what).
    public static let checkFailed = CNIError.Code(rawValue: 114)
}

/// The one place lower-layer errors become CNI errors.
public func cniError(_ error: any Error) -> CNIError {
    switch error {
    case let error as CNIError: return error
    case let error as NetlinkError: return CNIError(.netlinkFailed, error.description)
    case let error as FirewallError where error.conflictingOwner != nil:
        return CNIError(.hostPortTaken, error.description)
    case let error as FirewallError: return CNIError(.firewallFailed, error.description)
    case let error as RecordStore.Failure: return CNIError(.stateRecordFailed, "attachment record: \(error)")
    case let error as NamespaceError: return CNIError(.unknownContainer, error.description)
    case let error as Sysctl.Failure: return CNIError(.netlinkFailed, error.description)
    default: return CNIError(.unclassified, "\(error)")
    }
}

/// Undo steps registered as an ADD makes changes, run newest first when a later step fails.
public struct UndoStack {
    private var steps: [(String, () throws -> Void)] = []

    public init() {}

    public mutating func push(_ what: String, _ step: @escaping () throws -> Void) { steps.append((what, step)) }

    /// Runs every step, newest first; returns what could not be undone.
    public func run() -> [String] {
        var failures: [String] = []
        for (what, step) in steps.reversed() {
            do { try step() } catch { failures.append("\(what): \(error)") }
        }
        return failures
    }

    /// Runs `body`; when it throws, undoes every step registered so far and throws its error,
    /// with whatever could not be undone added to the details.
    public static func undoingOnFailure<T>(_ body: (inout UndoStack) throws -> T) throws(CNIError) -> T {
        var undo = UndoStack()
        do {
            return try body(&undo)
        } catch {
            let failure = cniError(error)
            let leftovers = undo.run()
            guard leftovers.isEmpty else {
                throw CNIError(failure.code, failure.msg,
                               details: ([failure.details] + ["could not undo: " + leftovers.joined(separator: "; ")])
                                   .filter { !$0.isEmpty }.joined(separator: "; "))
            }
            throw failure
        }
    }
}

/// Teardown that keeps going: DEL and GC run every step, collect what failed, and report the
/// first failure with the rest in its details.
public struct FailureList {
    public private(set) var failures: [CNIError] = []

    public init() {}

    /// Runs `body`, keeping its error if it throws.
    public mutating func step(_ body: () throws -> Void) {
        do { try body() } catch { failures.append(cniError(error)) }
    }

    public mutating func append(_ error: any Error) { failures.append(cniError(error)) }

    /// Throws the first failure, the others in its details; returns when there was none.
    public func throwIfAny() throws(CNIError) {
        guard let first = failures.first else { return }
        let details = ([first.details].filter { !$0.isEmpty } + failures.dropFirst().map(\.description)).joined(separator: "; ")
        throw CNIError(first.code, first.msg, details: details)
    }
}
