#if canImport(Glibc)
import Glibc
#endif
import BerthAttachments
import BerthCNI
import BerthFirewall
import BerthIP

/// Whether host ports are free in the namespace this process runs in (the host's): a bind
/// probe per port and family, and who holds a busy one according to /proc.
enum HostPorts {
    enum Probe: Equatable {
        case free
        case busy
        /// The kernel cannot open such a socket (no IPv6, no SCTP): nothing to collide with.
        case unsupported
        /// `hostIP` is not an address of this host (EADDRNOTAVAIL).
        case notLocal
    }

    /// The addresses a request binds: its host IP, or the wildcard of each family.
    static func bindAddresses(_ request: PortRequest) -> [IPAddress] {
        if let hostIP = request.hostIP { return [hostIP] }
        return [IPAddress(v4: 0), IPAddress(v6High: 0, low: 0)]
    }

    /// Binds (without listening) a socket of the request's protocol to `address`:`port` and
    /// closes it. TCP sets SO_REUSEADDR, as servers do, so a connection lingering in TIME_WAIT
    /// does not count as busy while a listener does; UDP does not, so any bound socket counts.
    /// IPv6 wildcards are probed v6-only: the IPv4 wildcard has its own probe.
    static func probe(_ proto: NFTProtocol, _ address: IPAddress, port: UInt16) -> Probe {
        let family = address.family == .v4 ? AF_INET : AF_INET6
        let (type, protocolNumber): (Int32, Int32) = switch proto {
        case .tcp: (Int32(SOCK_STREAM.rawValue), Int32(IPPROTO_TCP))
        case .udp: (Int32(SOCK_DGRAM.rawValue), Int32(IPPROTO_UDP))
        case .sctp: (Int32(SOCK_STREAM.rawValue), Int32(IPPROTO_SCTP))
        }
        let fd = socket(family, type | Int32(SOCK_CLOEXEC.rawValue), protocolNumber)
        guard fd >= 0 else { return .unsupported }
        defer { close(fd) }
        var on: Int32 = 1
        if proto != .udp { setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size)) }
        let result: Int32
        if address.family == .v4 {
            var socketAddress = sockaddr_in()
            socketAddress.sin_family = sa_family_t(AF_INET)
            socketAddress.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &socketAddress.sin_addr) { $0.copyBytes(from: address.bytes) }
            result = withUnsafePointer(to: &socketAddress) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        } else {
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &on, socklen_t(MemoryLayout<Int32>.size))
            var socketAddress = sockaddr_in6()
            socketAddress.sin6_family = sa_family_t(AF_INET6)
            socketAddress.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &socketAddress.sin6_addr) { $0.copyBytes(from: address.bytes) }
            result = withUnsafePointer(to: &socketAddress) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
        guard result != 0 else { return .free }
        switch errno {
        case EADDRINUSE: return .busy
        case EADDRNOTAVAIL: return .notLocal
        default: return .unsupported
        }
    }

    // MARK: Who holds a port

    /// The processes holding sockets of `proto` on `port` (at `hostIP`, or any address when
    /// nil), from /proc/net/{tcp,udp,sctp}{,6} and every process's descriptors: "nc (pid 4242)".
    /// Empty when /proc does not tell (a kernel socket, a process of another user namespace).
    static func holders(_ proto: NFTProtocol, port: UInt16, hostIP: IPAddress?) -> [String] {
        let inodes = socketInodes(proto, port: port, hostIP: hostIP)
        guard !inodes.isEmpty else { return [] }
        var holders: [String] = []
        for pid in processIDs() {
            guard let descriptors = opendir("/proc/\(pid)/fd") else { continue }
            defer { closedir(descriptors) }
            var holds = false
            while !holds, let entry = readdir(descriptors) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                guard let target = readLink("/proc/\(pid)/fd/\(name)"), target.hasPrefix("socket:["),
                      let inode = UInt64(target.dropFirst(8).dropLast()) else { continue }
                holds = inodes.contains(inode)
            }
            if holds {
                let command = readText("/proc/\(pid)/comm")?.split(separator: "\n").first.map(String.init) ?? "?"
                holders.append("\(command) (pid \(pid))")
            }
        }
        return holders
    }

    /// Inodes of the sockets bound to `port` in this namespace's socket tables. TCP counts
    /// listeners only (state 0A); other protocols every bound socket.
    static func socketInodes(_ proto: NFTProtocol, port: UInt16, hostIP: IPAddress?) -> Set<UInt64> {
        var inodes: Set<UInt64> = []
        for table in ["/proc/net/\(proto)", "/proc/net/\(proto)6"] {
            guard let text = readText(table) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                guard fields.count > 9, let local = ProcSocketAddress(fields[1]), local.port == port,
                      let inode = UInt64(fields[9]), inode != 0 else { continue }
                if proto == .tcp && fields[3] != "0A" { continue }
                if let hostIP, let address = local.address, address.value != 0, address != hostIP { continue }
                inodes.insert(inode)
            }
        }
        return inodes
    }

    private static func processIDs() -> [Int] {
        guard let proc = opendir("/proc") else { return [] }
        defer { closedir(proc) }
        var pids: [Int] = []
        while let entry = readdir(proc) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if let pid = Int(name) { pids.append(pid) }
        }
        return pids.sorted()
    }

    private static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 256)
        let length = readlink(path, &buffer, buffer.count - 1)
        guard length > 0 else { return nil }
        return String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func readText(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(fd, &chunk, chunk.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += chunk[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// `0100007F:1F90` (IPv4) or 32 hex digits `:PORT` (IPv6), as /proc/net/tcp prints a local
/// address: the address as the kernel's native-order 32-bit words, the port in hex.
struct ProcSocketAddress: Equatable {
    let address: IPAddress?
    let port: UInt16

    init?(_ text: Substring) {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1], radix: 16) else { return nil }
        self.port = port
        var bytes: [UInt8] = []
        var words = parts[0][...]
        while words.count >= 8 {
            guard let word = UInt32(words.prefix(8), radix: 16) else { return nil }
            withUnsafeBytes(of: word) { bytes += $0 }  // the kernel printed the word in its own byte order
            words = words.dropFirst(8)
        }
        address = IPAddress(bytes: bytes)
    }
}
