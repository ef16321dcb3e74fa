#if canImport(Glibc)
import Glibc
#endif
import BerthIP
import BerthNetlink
import CMnl
import CNftnl
import SystemPackage

/// A firewall change failed: which message, and why.
public struct FirewallError: Error, Sendable, CustomStringConvertible {
    public let operation: String
    public let errno: Errno?
    public let detail: String?
    /// For a host port someone else publishes: who (the element's owner comment).
    public let conflictingOwner: String?

    public init(_ operation: String, errno: Errno?, detail: String? = nil, conflictingOwner: String? = nil) {
        self.operation = operation
        self.errno = errno
        self.detail = detail
        self.conflictingOwner = conflictingOwner
    }

    /// Another transaction committed since the generation this one was built against.
    public var isConcurrentChange: Bool { errno?.rawValue == ERESTART }

    public var description: String {
        var text = operation
        if let errno { text += ": \(errno)" }
        if let detail, !detail.isEmpty { text += errno == nil ? ": \(detail)" : " (\(detail))" }
        return text
    }
}

/// nftables in one network namespace, through a NETLINK_NETFILTER socket: atomic batches, the
/// generation id for optimistic concurrency, and a read side for CHECK, GC and netctl.
public final class Firewall {
    public let socket: NetlinkSocket
    public let table: NFTTable
    /// DESTROY messages (kernel ≥ 6.3): removal that succeeds when the object is gone.
    public let supportsDestroy: Bool

    public init(socket: NetlinkSocket, table: NFTTable = .berth, supportsDestroy: Bool = Firewall.kernelHasDestroy) {
        self.socket = socket
        self.table = table
        self.supportsDestroy = supportsDestroy
    }

    /// A firewall in this process's namespace.
    public static func current() throws(NetlinkError) -> Firewall {
        Firewall(socket: try NetlinkSocket(.netfilter))
    }

    /// A firewall in `namespace` (the socket is opened there by a dedicated thread).
    public static func open(in namespace: NetworkNamespace.Target) throws -> Firewall {
        Firewall(socket: try NetworkNamespace.run(in: namespace) { try NetlinkSocket(.netfilter) })
    }

    /// Whether the running kernel has NFT_MSG_DESTROY* (added in Linux 6.3).
    public static let kernelHasDestroy: Bool = {
        var names = utsname()
        uname(&names)
        let release = withUnsafeBytes(of: names.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let numbers = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard numbers.count == 2 else { return false }
        return (numbers[0], numbers[1]) >= (6, 3)
    }()

    /// The ruleset generation; every committed transaction increments it.
    public func generation() throws(FirewallError) -> UInt32 {
        do {
            return try socket.rulesetGeneration()
        } catch {
            throw FirewallError(error.operation, errno: error.errno, detail: error.kernelMessage)
        }
    }

    // MARK: Transactions

    /// Commits `batch` as one transaction. With `generation`, the kernel refuses it (ERESTART,
    /// `isConcurrentChange`) if another transaction committed since that generation. Every reply
    /// is read: a failing message aborts the whole batch and is reported by its operation.
    public func commit(_ batch: FirewallBatch, generation: UInt32? = nil) throws(FirewallError) {
        guard !batch.isEmpty else { return }
        let begin = socket.nextSequence()
        var bytes = Self.batchMarker(type: UInt16(NFNL_MSG_BATCH_BEGIN), sequence: begin, generation: generation)
        var operations: [UInt32: String] = [:]
        var last = begin
        for (index, message) in batch.messages.enumerated() {
            last = socket.nextSequence()
            operations[last] = message.operation
            var messageBytes = message.bytes
            withUnsafeBytes(of: last.littleEndian) { messageBytes.replaceSubrange(8..<12, with: $0) }
            if index == batch.messages.count - 1 {
                // Only the last message asks for an ACK: errors come back regardless, and one
                // ACK per message would overflow the receive buffer on large batches.
                messageBytes[6] |= UInt8(NLM_F_ACK)
            }
            bytes += messageBytes
        }
        let end = socket.nextSequence()
        bytes += Self.batchMarker(type: UInt16(NFNL_MSG_BATCH_END), sequence: end, generation: nil)

        let summary = batch.messages.count == 1 ? batch.messages[0].operation : "nftables transaction (\(batch.messages.count) changes)"
        if bytes.count > 64 * 1024 { socket.reserveSendBuffer(bytes.count) }
        let replies: [NetlinkSocket.Acknowledgement]
        do {
            replies = try socket.sendBatch(bytes, sequences: begin...end, operation: summary)
        } catch {
            throw FirewallError(error.operation, errno: error.errno, detail: error.kernelMessage)
        }
        if let failure = replies.filter({ $0.errno != nil }).min(by: { $0.sequence < $1.sequence }) {
            let operation = operations[failure.sequence] ?? (failure.errno?.rawValue == ERESTART
                ? "commit nftables transaction (the ruleset changed since generation \(generation.map(String.init) ?? "?"))"
                : "commit \(summary)")
            throw FirewallError(operation, errno: failure.errno, detail: failure.kernelMessage)
        }
        guard replies.contains(where: { $0.sequence == last && $0.errno == nil }) else {
            throw FirewallError("commit \(summary)", errno: nil, detail: "the kernel did not acknowledge the transaction")
        }
    }

    /// Builds and commits a batch against the current generation, rebuilding and retrying when
    /// another transaction commits in between (optimistic concurrency).
    public func transact(attempts: Int = 10, _ build: (_ generation: UInt32) throws -> FirewallBatch) throws {
        for attempt in 1...attempts {
            let generation = try self.generation()
            do {
                try commit(try build(generation), generation: generation)
                return
            } catch let error as FirewallError where error.isConcurrentChange && attempt < attempts {
                continue
            }
        }
    }

    /// NFNL_MSG_BATCH_BEGIN / _END for the nftables subsystem, BEGIN carrying NFNL_BATCH_GENID.
    private static func batchMarker(type: UInt16, sequence: UInt32, generation: UInt32?) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 64)
        let length = buffer.withUnsafeMutableBytes { raw -> Int in
            let header = mnl_nlmsg_put_header(raw.baseAddress)!
            header.pointee.nlmsg_type = type
            header.pointee.nlmsg_flags = UInt16(NLM_F_REQUEST)
            header.pointee.nlmsg_seq = sequence
            let extra = mnl_nlmsg_put_extra_header(header, MemoryLayout<nfgenmsg>.size)!.assumingMemoryBound(to: nfgenmsg.self)
            extra.pointee.nfgen_family = UInt8(AF_UNSPEC)
            extra.pointee.version = UInt8(NFNETLINK_V0)
            extra.pointee.res_id = UInt16(NFNL_SUBSYS_NFTABLES).bigEndian
            if let generation { mnl_attr_put_u32(header, UInt16(NFNL_BATCH_GENID.rawValue), generation.bigEndian) }
            return Int(header.pointee.nlmsg_len)
        }
        return Array(buffer[0..<length])
    }

    // MARK: Changes

    /// Ensures the table and `network` (repairing whatever is missing or altered) and publishes
    /// `ports` for `owner`, in one transaction: what a container ADD does. The table is read
    /// first (a few small dumps) and only what differs is rewritten. A host port already
    /// published fails the whole transaction with an error naming the port and its owner.
    public func apply(network: FirewallNetwork, publishing ports: [PortMapping] = [], owner: String = "") throws {
        func attempt(exclusive: Bool) throws {
            try transact { _ in
                var batch = FirewallBatch(table: table)
                batch.repair(try state(), networks: [network])
                batch.publish(ports, owner: owner, exclusive: exclusive)
                return batch
            }
        }
        do {
            try attempt(exclusive: true)
        } catch let error as FirewallError where error.errno == .fileExists && !ports.isEmpty {
            if let conflict = try conflict(for: ports, owner: owner) { throw conflict }
            // Every port that exists is this owner's already (a repeated ADD): publish again
            // without exclusivity, which keeps them.
            try attempt(exclusive: false)
        }
    }

    /// Withdraws `owner`'s published ports; those already gone, or published by someone else
    /// since, are left alone. The ownership check and the removal are one optimistic
    /// transaction: a change in between makes it start over.
    public func withdraw(_ ports: [PortMapping], owner: String) throws {
        guard !ports.isEmpty else { return }
        try transact { _ in
            let owned = try ports.filter { port in
                let (map, element) = FirewallLayout.element(of: port, owner: owner)
                return try self.element(element.key, in: map)?.comment == owner
            }
            var batch = FirewallBatch(table: table)
            batch.unpublish(owned, owner: owner, destroy: supportsDestroy)
            return batch
        }
    }

    /// Removes a network; with `lastNetwork`, the whole table, so no Berth object remains.
    public func remove(_ network: FirewallNetwork, lastNetwork: Bool) throws {
        try transact { _ in
            var batch = FirewallBatch(table: table)
            if lastNetwork {
                batch.removeTable(destroy: supportsDestroy)
            } else {
                batch.remove(network, destroy: supportsDestroy)
            }
            return batch
        }
    }

    /// The error for the first of `ports` another owner already holds.
    private func conflict(for ports: [PortMapping], owner: String) throws -> FirewallError? {
        for port in ports {
            let (map, element) = FirewallLayout.element(of: port, owner: owner)
            if let existing = try self.element(element.key, in: map), existing.comment != owner || existing.data != element.data {
                let holder = existing.comment ?? "another container"
                return FirewallError("\(port.hostSide) is already published by \(holder)", errno: nil, conflictingOwner: holder)
            }
        }
        return nil
    }
}
