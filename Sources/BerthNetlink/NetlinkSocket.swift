#if canImport(Glibc)
import Glibc
#endif
import CMnl
import SystemPackage

/// A netlink request or reply failed; names what was being done.
public struct NetlinkError: Error, Sendable, Equatable, CustomStringConvertible {
    public let operation: String
    public let errno: Errno

    public init(_ operation: String, _ errno: Errno) {
        self.operation = operation
        self.errno = errno
    }

    public var description: String { "\(operation): \(errno)" }
}

/// A netlink socket bound to the network namespace it was opened in, with a kernel-assigned
/// port id (so several sockets coexist in one process).
///
/// Not thread-safe: one request at a time. Open one per namespace per operation; open it inside
/// a container namespace with `NetworkNamespace.run(in:)`.
public final class NetlinkSocket {
    public enum Bus: Sendable {
        /// NETLINK_ROUTE: links, addresses, routes.
        case route
        /// NETLINK_NETFILTER: nftables.
        case netfilter

        var protocolNumber: Int32 { self == .route ? NETLINK_ROUTE : NETLINK_NETFILTER }
    }

    private let socket: OpaquePointer
    public let bus: Bus
    public let portID: UInt32
    private var sequence: UInt32 = 0
    /// Large enough for one datagram of any dump (the kernel sends up to 32 KiB per read).
    private var receiveBuffer = [UInt8](repeating: 0, count: 64 * 1024)

    public init(_ bus: Bus) throws(NetlinkError) {
        guard let socket = mnl_socket_open2(bus.protocolNumber, Int32(SOCK_CLOEXEC.rawValue)) else {
            throw NetlinkError("open netlink socket", Errno(rawValue: errno))
        }
        guard mnl_socket_bind(socket, 0, pid_t(MNL_SOCKET_AUTOPID)) == 0 else {
            let error = Errno(rawValue: errno)
            mnl_socket_close(socket)
            throw NetlinkError("bind netlink socket", error)
        }
        self.socket = socket
        self.bus = bus
        portID = mnl_socket_get_portid(socket)
    }

    deinit { mnl_socket_close(socket) }

    /// A fresh sequence number for the next request.
    public func nextSequence() -> UInt32 {
        sequence &+= 1
        return sequence
    }

    /// Sends `request` (one or more messages numbered `sequence`…) and collects the replies that
    /// carry our port id and those sequence numbers, until `expectedACKs` ACKs or errors, or a
    /// NLMSG_DONE, have arrived. The first error reply throws, named `operation`.
    ///
    /// Replies are walked here rather than with `mnl_cb_run`, which stops at the first ACK of a
    /// multi-message request.
    public func transact(_ request: [UInt8], sequences: ClosedRange<UInt32>, expectedACKs: Int = 1,
                         operation: String) throws(NetlinkError) -> Reply {
        let sent = request.withUnsafeBytes { mnl_socket_sendto(socket, $0.baseAddress, $0.count) }
        guard sent == request.count else {
            throw NetlinkError(operation, sent < 0 ? Errno(rawValue: errno) : .messageTooLong)
        }
        var reply = Reply()
        var acknowledged = 0
        var firstError: Errno?
        while true {
            let count = receiveBuffer.withUnsafeMutableBytes {
                mnl_socket_recvfrom(socket, $0.baseAddress, $0.count)
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw NetlinkError(operation, Errno(rawValue: errno))
            }
            var finished = false
            receiveBuffer.withUnsafeBytes { buffer in
                var remaining = Int32(count)
                var header = UnsafePointer(buffer.baseAddress!.assumingMemoryBound(to: nlmsghdr.self))
                while mnl_nlmsg_ok(header, remaining) {
                    let message = header.pointee
                    defer { header = UnsafePointer(mnl_nlmsg_next(header, &remaining)!) }
                    // Only replies to this request: right port id and sequence range.
                    guard message.nlmsg_pid == portID, sequences.contains(message.nlmsg_seq) else { continue }
                    switch Int32(message.nlmsg_type) {
                    case NLMSG_ERROR:
                        let code = UnsafeRawPointer(header).load(fromByteOffset: MemoryLayout<nlmsghdr>.size, as: Int32.self)
                        if code != 0, firstError == nil { firstError = Errno(rawValue: -code) }
                        acknowledged += 1
                        if acknowledged >= expectedACKs { finished = true }
                    case NLMSG_DONE:
                        let code = Int(message.nlmsg_len) >= MemoryLayout<nlmsghdr>.size + 4
                            ? UnsafeRawPointer(header).load(fromByteOffset: MemoryLayout<nlmsghdr>.size, as: Int32.self)
                            : 0
                        if code < 0, firstError == nil { firstError = Errno(rawValue: -code) }
                        finished = true
                    case NLMSG_NOOP:
                        break
                    default:
                        if Int32(message.nlmsg_flags) & NLM_F_DUMP_INTR != 0 { reply.interrupted = true }
                        reply.messages.append(Array(UnsafeRawBufferPointer(start: header, count: Int(message.nlmsg_len))))
                    }
                }
            }
            if finished { break }
        }
        if let firstError { throw NetlinkError(operation, firstError) }
        return reply
    }

    /// What came back for a request: the data messages (each a whole netlink message, header
    /// included) and whether a dump was interrupted by a concurrent change and must be retried.
    public struct Reply {
        public var messages: [[UInt8]] = []
        public var interrupted = false
    }

    /// A dump request, retried while the kernel flags it interrupted (NLM_F_DUMP_INTR).
    public func dump(operation: String, maximumAttempts: Int = 10,
                     build: (_ sequence: UInt32) -> [UInt8]) throws(NetlinkError) -> [[UInt8]] {
        for _ in 0..<maximumAttempts {
            let sequence = nextSequence()
            let reply = try transact(build(sequence), sequences: sequence...sequence, operation: operation)
            if !reply.interrupted { return reply.messages }
        }
        throw NetlinkError(operation, .resourceTemporarilyUnavailable)
    }
}
