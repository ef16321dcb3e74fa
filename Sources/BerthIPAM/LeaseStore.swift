import BerthCNI
import BerthIP

/// A lease as the store holds it: an address and who holds it. Files written by host-local
/// before 0.7 hold only a container ID (`ifname` nil).
public struct Lease: Sendable, Equatable {
    public let address: IPAddress
    public let containerID: String
    public let ifname: String?

    public init(address: IPAddress, containerID: String, ifname: String?) {
        self.address = address
        self.containerID = containerID
        self.ifname = ifname
    }
}

/// Where leases live: on disk in host-local's layout (`DiskLeaseStore`), or in memory for tests
/// of the allocation logic. Every method but `locked` is called with the lock held.
public protocol LeaseStore: AnyObject {
    /// Runs `body` holding the store's exclusive lock.
    func locked<T>(_ body: () throws -> T) throws -> T

    /// The address `attachment` holds in range set `set`, found without reading every lease.
    func address(of attachment: Attachment, set: Int) throws -> IPAddress?

    /// Claims `address` for `attachment` in set `set` and records it as the set's last reserved
    /// address; false, changing nothing, when someone holds it.
    func reserve(_ address: IPAddress, for attachment: Attachment, set: Int) throws -> Bool

    /// The set's last reserved address (`last_reserved_ip.<set>`), where round robin resumes.
    func lastReserved(set: Int) throws -> IPAddress?

    /// Releases every lease of `attachment` in range sets 0..<`sets`; returns the addresses released.
    @discardableResult
    func release(_ attachment: Attachment, sets: Int) throws -> [IPAddress]

    /// Every lease (GC, STATUS).
    func leases() throws -> [Lease]

    /// Removes one lease (GC) and anything of range sets 0..<`sets` that refers to it.
    func remove(_ lease: Lease, sets: Int) throws
}
