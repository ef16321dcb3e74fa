#if canImport(Glibc)
import Glibc
#endif
import CMnl
import SystemPackage

/// A netlink request failed: what was being done, the errno, and the kernel's own explanation
/// when it gave one (extended ACK).
public struct NetlinkError: Error, Sendable, Equatable, CustomStringConvertible {
    public let operation: String
    public let errno: Errno
    public let kernelMessage: String?

    public init(_ operation: String, _ errno: Errno, kernelMessage: String? = nil) {
        self.operation = operation
        self.errno = errno
        self.kernelMessage = kernelMessage
    }

    /// The object already exists (EEXIST): callers that ensure objects treat this as success.
    public var isExists: Bool { errno == .fileExists }
    /// The link does not exist (ENODEV), or for addresses and routes the object is gone
    /// (EADDRNOTAVAIL / ESRCH): callers that remove objects treat this as success.
    public var isNotFound: Bool {
        errno == .noSuchDevice || errno == .addressNotAvailable || errno == .noSuchProcess
    }

    public var description: String {
        guard let kernelMessage, !kernelMessage.isEmpty else { return "\(operation): \(errno)" }
        return "\(operation): \(errno) (\(kernelMessage))"
    }
}

extension Errno {
    /// ENODEV, "No such device": what rtnetlink answers for a link that does not exist.
    /// (swift-system spells it `operationNotSupportedByDevice`, after BSD's text.)
    public static var noSuchDevice: Errno { Errno(rawValue: Glibc.ENODEV) }
}

/// Something that carries netlink requests to a kernel and brings back the answers: a real
/// socket, or in tests a fake that records the request bytes.
public protocol NetlinkTransport: AnyObject {
    /// Sends `requests` in one sendmsg and waits for every answer. A single dump returns its
    /// messages (retried while the kernel flags it interrupted); other requests must all be
    /// acknowledged, and the first that failed, in order, is thrown with its operation.
    func perform(_ requests: [NetlinkRequest]) throws(NetlinkError) -> [NetlinkMessage]
}

/// A netlink socket bound to the network namespace it was opened in, with a kernel-assigned
/// port id (so several sockets coexist in one process).
///
/// Not thread-safe: one request at a time. Open it inside a container namespace with
/// `NetworkNamespace.run(in:)`; it keeps acting there from any thread.
public final class NetlinkSocket: NetlinkTransport {
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
    /// Large enough for one datagram of any dump (the kernel sends up to 32 KiB per read). Not
    /// zeroed: only the pages the kernel writes into become resident (a plugin's peak memory is
    /// measured against the reference's).
    private var receiveBuffer = [UInt8](unsafeUninitializedCapacity: 64 * 1024) { _, count in count = 64 * 1024 }

    public init(_ bus: Bus) throws(NetlinkError) {
        guard let socket = mnl_socket_open2(bus.protocolNumber, Int32(SOCK_CLOEXEC.rawValue)) else {
            throw NetlinkError("open netlink socket", Errno(rawValue: errno))
        }
        guard mnl_socket_bind(socket, 0, pid_t(MNL_SOCKET_AUTOPID)) == 0 else {
            let error = Errno(rawValue: errno)
            mnl_socket_close(socket)
            throw NetlinkError("bind netlink socket", error)
        }
        // Errors come back with the kernel's explanation and without a copy of our request.
        var on: Int32 = 1
        _ = mnl_socket_setsockopt(socket, NETLINK_EXT_ACK, &on, socklen_t(MemoryLayout<Int32>.size))
        _ = mnl_socket_setsockopt(socket, NETLINK_CAP_ACK, &on, socklen_t(MemoryLayout<Int32>.size))
        // Dumps honour the filters in their header (an address dump of one link), instead of
        // walking every link: Linux ≥ 4.20; older kernels ignore it and the caller filters.
        _ = mnl_socket_setsockopt(socket, NETLINK_GET_STRICT_CHK, &on, socklen_t(MemoryLayout<Int32>.size))
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

    public func perform(_ requests: [NetlinkRequest]) throws(NetlinkError) -> [NetlinkMessage] {
        guard let first = requests.first else { return [] }
        if requests.count == 1, first.isDump {
            for _ in 0..<10 {
                let sequence = nextSequence()
                let reply = try transact(first.bytes(sequence: sequence), sequences: sequence...sequence,
                                         expectedACKs: 1, operation: first.operation)
                if let failure = reply.failures.first {
                    throw NetlinkError(first.operation, failure.errno, kernelMessage: failure.message)
                }
                if !reply.interrupted { return reply.messages }
            }
            throw NetlinkError(first.operation, .resourceTemporarilyUnavailable,
                               kernelMessage: "dump interrupted by concurrent changes 10 times")
        }
        precondition(!requests.contains { $0.isDump }, "a dump cannot share a sendmsg with other requests")
        let firstSequence = sequence &+ 1
        var batch: [UInt8] = []
        for request in requests { batch += request.bytes(sequence: nextSequence()) }
        let operation = requests.count == 1 ? first.operation : requests.map(\.operation).joined(separator: ", ")
        let reply = try transact(batch, sequences: firstSequence...sequence, expectedACKs: requests.count,
                                 operation: operation)
        if let failure = reply.failures.min(by: { $0.sequence < $1.sequence }) {
            let request = requests[Int(failure.sequence &- firstSequence)]
            throw NetlinkError(request.operation, failure.errno, kernelMessage: failure.message)
        }
        return reply.messages
    }

    /// Makes room for sending `bytes` in one sendmsg: netlink refuses a message larger than the
    /// socket's send buffer (EMSGSIZE). SO_SNDBUFFORCE lifts the sysctl cap for root.
    public func reserveSendBuffer(_ bytes: Int) {
        let fd = mnl_socket_get_fd(socket)
        var size = Int32(clamping: bytes + 4096)
        var current: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        // The kernel reports twice the value set (bookkeeping overhead).
        if getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &current, &length) == 0, current / 2 >= size { return }
        if setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    /// A reply the kernel queued for a batch: the sequence it answers, and the error (nil for an
    /// ACK) with the kernel's explanation.
    public struct Acknowledgement: Sendable, Equatable {
        public let sequence: UInt32
        public let errno: Errno?
        public let kernelMessage: String?
    }

    /// Sends `bytes` in one sendmsg and collects every acknowledgement and error the kernel
    /// queued for sequences in `sequences`. nfnetlink handles a batch synchronously inside
    /// sendmsg, so every answer is queued by the time it returns: the socket is drained without
    /// waiting.
    public func sendBatch(_ bytes: [UInt8], sequences: ClosedRange<UInt32>,
                          operation: String) throws(NetlinkError) -> [Acknowledgement] {
        let sent = bytes.withUnsafeBytes { mnl_socket_sendto(socket, $0.baseAddress, $0.count) }
        guard sent == bytes.count else {
            throw NetlinkError(operation, sent < 0 ? Errno(rawValue: errno) : .messageTooLong)
        }
        let fd = mnl_socket_get_fd(socket)
        var acknowledgements: [Acknowledgement] = []
        while true {
            let count = receiveBuffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { return acknowledgements }
                throw NetlinkError(operation, Errno(rawValue: errno))
            }
            forEachReply(count: count, sequences: sequences) { message, raw in
                guard Int32(message.nlmsg_type) == NLMSG_ERROR, raw.count >= 20 else { return }
                let code = raw.loadUnaligned(fromByteOffset: 16, as: Int32.self)
                acknowledgements.append(Acknowledgement(sequence: message.nlmsg_seq,
                                                        errno: code == 0 ? nil : Errno(rawValue: -code),
                                                        kernelMessage: code == 0 ? nil : Self.extendedMessage(raw)))
            }
        }
    }

    /// Calls `body` for each message of the `count` bytes just received that answers us: our
    /// port id and a sequence number in `sequences`.
    private func forEachReply(count: Int, sequences: ClosedRange<UInt32>,
                              _ body: (nlmsghdr, UnsafeRawBufferPointer) -> Void) {
        receiveBuffer.withUnsafeBytes { buffer in
            var remaining = Int32(count)
            var header = UnsafePointer(buffer.baseAddress!.assumingMemoryBound(to: nlmsghdr.self))
            while mnl_nlmsg_ok(header, remaining) {
                let message = header.pointee
                let raw = UnsafeRawBufferPointer(start: header, count: Int(message.nlmsg_len))
                header = UnsafePointer(mnl_nlmsg_next(header, &remaining)!)
                guard message.nlmsg_pid == portID, sequences.contains(message.nlmsg_seq) else { continue }
                body(message, raw)
            }
        }
    }

    /// What came back for a request: data messages, the error ACKs, and whether a dump was
    /// interrupted by a concurrent change (NLM_F_DUMP_INTR) and must be retried.
    struct Reply {
        var messages: [NetlinkMessage] = []
        var failures: [(sequence: UInt32, errno: Errno, message: String?)] = []
        var interrupted = false
    }

    /// Sends `request` (one or more messages numbered within `sequences`) and collects the
    /// replies that carry our port id and one of those sequence numbers, until `expectedACKs`
    /// ACKs or errors, or a NLMSG_DONE, have arrived.
    ///
    /// Replies are walked here rather than with `mnl_cb_run`, which stops at the first ACK of a
    /// multi-message request.
    func transact(_ request: [UInt8], sequences: ClosedRange<UInt32>, expectedACKs: Int,
                  operation: String) throws(NetlinkError) -> Reply {
        let sent = request.withUnsafeBytes { mnl_socket_sendto(socket, $0.baseAddress, $0.count) }
        guard sent == request.count else {
            throw NetlinkError(operation, sent < 0 ? Errno(rawValue: errno) : .messageTooLong)
        }
        var reply = Reply()
        var acknowledged = 0
        var finished = false
        while !finished {
            let count = receiveBuffer.withUnsafeMutableBytes {
                mnl_socket_recvfrom(socket, $0.baseAddress, $0.count)
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw NetlinkError(operation, Errno(rawValue: errno))
            }
            forEachReply(count: count, sequences: sequences) { message, raw in
                switch Int32(message.nlmsg_type) {
                case NLMSG_ERROR:
                    let code = raw.count >= 20 ? raw.loadUnaligned(fromByteOffset: 16, as: Int32.self) : -EPROTO
                    if code != 0 {
                        reply.failures.append((message.nlmsg_seq, Errno(rawValue: -code), Self.extendedMessage(raw)))
                    }
                    acknowledged += 1
                    if acknowledged >= expectedACKs { finished = true }
                case NLMSG_DONE:
                    let code = raw.count >= 20 ? raw.loadUnaligned(fromByteOffset: 16, as: Int32.self) : 0
                    if code < 0 { reply.failures.append((message.nlmsg_seq, Errno(rawValue: -code), nil)) }
                    finished = true
                case NLMSG_NOOP:
                    break
                default:
                    if Int32(message.nlmsg_flags) & NLM_F_DUMP_INTR != 0 { reply.interrupted = true }
                    reply.messages.append(NetlinkMessage(bytes: Array(raw)))
                }
            }
        }
        return reply
    }

    /// NLMSGERR_ATTR_MSG of an error ACK sent with NETLINK_EXT_ACK and NETLINK_CAP_ACK: after
    /// nlmsghdr (16 B), the error code (4 B) and the echoed request header (16 B).
    private static func extendedMessage(_ raw: UnsafeRawBufferPointer) -> String? {
        let flags = Int32(raw.loadUnaligned(fromByteOffset: 6, as: UInt16.self))
        guard flags & NLM_F_ACK_TLVS != 0, flags & NLM_F_CAPPED != 0, raw.count > 36 else { return nil }
        let attributes = NetlinkAttributes(bytes: Array(raw[36...]))
        return attributes[UInt16(NLMSGERR_ATTR_MSG.rawValue)]?.string
    }
}
