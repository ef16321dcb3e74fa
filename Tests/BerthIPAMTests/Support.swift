import BerthCNI
import BerthIP
import BerthIPAM
import BerthJSON

/// A config from the `ipam` section's JSON (and optional extra top-level keys).
func ipamConfig(_ ipam: String, version: String = "1.0.0", extra: String = "", cniArgs: String = "") throws(CNIError) -> IPAMConfig {
    let text = #"{"cniVersion":"\#(version)","name":"testnet","type":"berth-bridge","ipam":\#(ipam)\#(extra.isEmpty ? "" : "," + extra)}"#
    return try IPAMConfig(config: NetworkConfig(parsing: Array(text.utf8)), cniArgs: CNIArgs(parsing: cniArgs))
}

func configError(_ ipam: String, version: String = "1.0.0", extra: String = "", cniArgs: String = "") -> CNIError? {
    do {
        _ = try ipamConfig(ipam, version: version, extra: extra, cniArgs: cniArgs)
        return nil
    } catch {
        return error
    }
}

func attachment(_ id: String, _ ifname: String = "eth0") -> Attachment {
    Attachment(containerID: id, ifname: ifname)
}

/// The lease store in memory, with the disk store's semantics, for allocator tests.
final class MemoryLeaseStore: LeaseStore {
    var leasesByAddress: [IPAddress: (Attachment, Int)] = [:]
    var last: [Int: IPAddress] = [:]
    var failReserve: ((IPAddress, Int) -> Bool)?

    func locked<T>(_ body: () throws -> T) throws -> T { try body() }

    func address(of attachment: Attachment, set: Int) throws -> IPAddress? {
        leasesByAddress.first { $0.value.0 == attachment && $0.value.1 == set }?.key
    }

    func reserve(_ address: IPAddress, for attachment: Attachment, set: Int) throws -> Bool {
        if let failReserve, failReserve(address, set) { throw StoreFailure() }
        guard leasesByAddress[address] == nil else { return false }
        leasesByAddress[address] = (attachment, set)
        last[set] = address
        return true
    }

    func lastReserved(set: Int) throws -> IPAddress? { last[set] }

    func release(_ attachment: Attachment, sets: Int) throws -> [IPAddress] {
        let addresses = leasesByAddress.filter { $0.value.0 == attachment }.map(\.key)
        for address in addresses { leasesByAddress[address] = nil }
        return addresses
    }

    func leases() throws -> [Lease] {
        leasesByAddress.map { Lease(address: $0.key, containerID: $0.value.0.containerID, ifname: $0.value.0.ifname) }
    }

    func remove(_ lease: Lease, sets: Int) throws { leasesByAddress[lease.address] = nil }

    struct StoreFailure: Error, CustomStringConvertible {
        var description: String { "disk full" }
    }
}
