import BerthCNI
import BerthIP

/// berth-ipam's operations over a lease store; used by the berth-ipam executable and, in
/// process, by berth-bridge.
public struct AddressManager {
    public let config: IPAMConfig
    public let store: any LeaseStore

    public init(config: IPAMConfig, store: any LeaseStore) {
        self.config = config
        self.store = store
    }

    /// A manager over the on-disk store of `config`.
    public init(config: IPAMConfig) throws(CNIError) {
        do {
            self.init(config: config, store: try DiskLeaseStore(dataDirectory: config.dataDirectory, network: config.network))
        } catch {
            throw CNIError(.leaseStoreFailed, "lease store of network \(config.network): \(error)")
        }
    }

    /// One address per range set for `attachment`: the requested one where given, otherwise the
    /// next free one in round-robin order. All or nothing: a failure in a later set releases
    /// what earlier sets gave.
    public func allocate(for attachment: Attachment) throws(CNIError) -> [CNIResult.IPConfig] {
        try withStore { () throws(CNIError) in
            // First make sure the attachment holds nothing, so a rollback releases only what this
            // call took.
            for (index, set) in config.rangeSets.enumerated() {
                if let held = try stored({ try store.address(of: attachment, set: index) }) {
                    throw CNIError(.addressAlreadyAllocated,
                                   "\(attachment.containerID)/\(attachment.ifname) already holds \(held) in range set \(index) (\(set)) of network \(config.network)",
                                   details: "ADD twice without DEL")
                }
            }
            var allocated: [CNIResult.IPConfig] = []
            do throws(CNIError) {
                for (index, set) in config.rangeSets.enumerated() {
                    allocated.append(try allocate(in: set, index: index, for: attachment))
                }
            } catch {
                if !allocated.isEmpty { _ = try? store.release(attachment, sets: config.rangeSets.count) }
                throw error
            }
            return allocated
        }
    }

    private func allocate(in set: RangeSet, index: Int, for attachment: Attachment) throws(CNIError) -> CNIResult.IPConfig {
        if let address = config.requested[index] {
            let range = set.range(containing: address)!
            guard try stored({ try store.reserve(address, for: attachment, set: index) }) else {
                let holder = try stored { try store.leases() }.first { $0.address == address }
                throw CNIError(.addressUnavailable,
                               "requested address \(address) is already leased\(holder.map { " to \($0.containerID)/\($0.ifname ?? "?")" } ?? "") in network \(config.network)")
            }
            return CNIResult.IPConfig(address: IPPrefix(address: address, length: range.subnet.length)!, gateway: range.gateway)
        }
        let lastReserved = try stored { try store.lastReserved(set: index) }
        for (address, range) in RoundRobin(set, after: lastReserved) {
            if try stored({ try store.reserve(address, for: attachment, set: index) }) {
                return CNIResult.IPConfig(address: IPPrefix(address: address, length: range.subnet.length)!, gateway: range.gateway)
            }
        }
        throw CNIError(.addressesExhausted, "no free address in range set \(index) (\(set)) of network \(config.network)")
    }

    /// ADD's result: the addresses, `ipam.routes` and `dns` from `ipam.resolvConf`.
    public func add(_ attachment: Attachment) throws(CNIError) -> CNIResult {
        let dns = try config.resolvConf.map { path throws(CNIError) in try ResolvConf.load(path, key: "ipam.resolvConf") } ?? CNIResult.DNS()
        return CNIResult(ips: try allocate(for: attachment), routes: config.routes, dns: dns)
    }

    /// DEL: releases every lease of the attachment; releasing nothing is success.
    public func release(_ attachment: Attachment) throws(CNIError) {
        try withStore { () throws(CNIError) in _ = try stored { try store.release(attachment, sets: config.rangeSets.count) } }
    }

    /// CHECK: the attachment holds an address in every range set. Leases the index does not
    /// know (written by host-local) are looked for among all leases.
    public func check(_ attachment: Attachment) throws(CNIError) {
        try withStore { () throws(CNIError) in
            var all: [Lease]?
            for (index, set) in config.rangeSets.enumerated()
            where try stored({ try store.address(of: attachment, set: index) }) == nil {
                if all == nil { all = try stored { try store.leases() } }
                let unindexed = all!.contains {
                    $0.containerID == attachment.containerID && $0.ifname == attachment.ifname && set.range(containing: $0.address) != nil
                }
                if unindexed { continue }
                throw CNIError(.leaseMissing,
                               "\(attachment.containerID)/\(attachment.ifname) holds no address in range set \(index) (\(set)) of network \(config.network)")
            }
        }
    }

    /// GC: releases every lease whose attachment is not in `valid`. A lease written by an old
    /// host-local (container ID only) stays while any valid attachment has that container ID.
    @discardableResult
    public func collectGarbage(keeping valid: [Attachment]) throws(CNIError) -> [Lease] {
        let validIDs = Set(valid.map(\.containerID))
        let validAttachments = Set(valid)
        return try withStore { () throws(CNIError) in
            var removed: [Lease] = []
            for lease in try stored({ try store.leases() }) {
                let keep = lease.ifname.map { validAttachments.contains(Attachment(containerID: lease.containerID, ifname: $0)) }
                    ?? validIDs.contains(lease.containerID)
                if !keep {
                    try stored { try store.remove(lease, sets: config.rangeSets.count) }
                    removed.append(lease)
                }
            }
            return removed
        }
    }

    /// STATUS: the store is usable and every range set has a free address; code 50 otherwise.
    public func status() throws(CNIError) {
        let leases: [Lease]
        do {
            leases = try withStore { () throws(CNIError) in try stored { try store.leases() } }
        } catch {
            throw CNIError(.pluginNotAvailable, error.msg, details: error.details)
        }
        for (index, set) in config.rangeSets.enumerated() {
            let used = UInt128(leases.filter { set.range(containing: $0.address) != nil }.count)
            if used >= set.capacity {
                throw CNIError(.pluginNotAvailable,
                               "range set \(index) (\(set)) of network \(config.network) has no free address",
                               details: "\(used) of \(set.capacity) addresses leased")
            }
        }
    }

    // MARK: Store access

    private func withStore<T>(_ body: () throws(CNIError) -> T) throws(CNIError) -> T {
        do {
            return try store.locked { try body() }
        } catch let error as CNIError {
            throw error
        } catch {
            throw CNIError(.leaseStoreFailed, "lease store of network \(config.network): \(error)")
        }
    }

    private func stored<T>(_ body: () throws -> T) throws(CNIError) -> T {
        do {
            return try body()
        } catch let error as CNIError {
            throw error
        } catch {
            throw CNIError(.leaseStoreFailed, "lease store of network \(config.network): \(error)")
        }
    }
}

extension CNIError.Code {
    /// berth-ipam: a range set has no free address.
    public static let addressesExhausted = CNIError.Code(rawValue: 130)
    /// berth-ipam: a requested address is leased to someone else.
    public static let addressUnavailable = CNIError.Code(rawValue: 131)
    /// berth-ipam: the attachment already holds an address in the range set (ADD without DEL).
    public static let addressAlreadyAllocated = CNIError.Code(rawValue: 132)
    /// berth-ipam: the lease store cannot be read or written.
    public static let leaseStoreFailed = CNIError.Code(rawValue: 133)
    /// berth-ipam CHECK: the attachment holds no address in some range set.
    public static let leaseMissing = CNIError.Code(rawValue: 134)
}
