import BerthCNI
import BerthJSON
import BerthNetlink
import Foundation
// Testing exists only where tests are built: `swift build -c release --static-swift-stdlib` of the
// whole package builds this target too, without it.
#if canImport(Testing)
import Testing
#endif

/// Kernel tests need root and a sandbox: the test command (Scripts/test.sh) runs every test
/// inside an `unshare --net --mount` sandbox as root and sets BERTH_REQUIRE_KERNEL_TESTS, so there
/// they run (and fail loudly if they cannot). Elsewhere without root they are skipped, visibly.
public let kernelTestsEnabled: Bool = {
    if ProcessInfo.processInfo.environment["BERTH_REQUIRE_KERNEL_TESTS"] == "1" { return true }
    return (try? NetworkNamespace.run(in: .new) { true }) ?? false
}()

#if canImport(Testing)
/// The trait every kernel suite carries.
public let needsKernel = Testing.ConditionTrait.enabled(if: kernelTestsEnabled, "needs root (CAP_SYS_ADMIN) to create network namespaces")
#endif

/// A short unique name for links and namespaces: parallel tests never share one.
public func uniqueName(_ prefix: String) -> String {
    "\(prefix)\(UUID().uuidString.prefix(6).lowercased())"
}

/// The namespaces of one test, deleted together when the scope goes away. A suite holds one as a
/// stored property, so they live exactly as long as the test: a namespace must not disappear while
/// the test still looks at links whose peers live in it (Swift may release a local object after
/// its last use, long before the end of the test).
public final class NamespaceScope: @unchecked Sendable {
    private var namespaces: [ScratchNamespace] = []

    public init() {}

    public func make(loopbackUp: Bool = false) throws -> ScratchNamespace {
        let namespace = try ScratchNamespace(loopbackUp: loopbackUp)
        namespaces.append(namespace)
        return namespace
    }
}

/// A named namespace (`ip netns add`), deleted when the value goes away. Create them through a
/// `NamespaceScope`.
public final class ScratchNamespace: @unchecked Sendable {
    public let name = uniqueName("berth-t-")
    public var path: String { "/run/netns/\(name)" }
    public var target: NetworkNamespace.Target { .path(path) }

    public init(loopbackUp: Bool = false) throws {
        try run("ip", "netns", "add", name)
        if loopbackUp { try run("ip", "-n", name, "link", "set", "lo", "up") }
    }

    deinit { _ = try? run("ip", "netns", "del", name) }

    /// rtnetlink inside this namespace.
    public func netlink() throws -> RouteNetlink { try RouteNetlink.open(in: target) }

    /// An open descriptor of the namespace, for IFLA_NET_NS_FD; closed by the caller.
    public func openDescriptor() throws -> Int32 {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CommandFailure(command: "open \(path)", status: errno) }
        return fd
    }

    /// `nft <arguments>` inside this namespace: its output.
    @discardableResult
    public func nft(_ arguments: String...) throws -> String {
        try run(["ip", "netns", "exec", name, "nft"] + arguments)
    }

    /// A command inside this namespace.
    @discardableResult
    public func exec(_ arguments: String...) throws -> String {
        try run(["ip", "netns", "exec", name] + arguments)
    }

    /// `ip -j -d <arguments>` inside this namespace, parsed.
    public func ip(_ arguments: String...) throws -> JSON {
        try JSON.parse(run(["ip", "-j", "-d", "-n", name] + arguments))
    }
}

/// Runs a command to set up or observe the kernel from outside Berth; throws on failure.
@discardableResult
public func run(_ arguments: String...) throws -> String { try run(arguments) }

@discardableResult
public func run(_ arguments: [String]) throws -> String {
    let outcome = ProcessRunner.run(ProcessCall(executable: "/usr/bin/env", arguments: arguments, environment: PluginIO.environment(),
                                                captureStderr: true), capSeconds: 600)
    guard outcome.termination == .exited(0) else {
        let status: Int32 = if case .exited(let code) = outcome.termination { code } else { 128 }
        throw CommandFailure(command: arguments.joined(separator: " "), status: status,
                             stderr: outcome.hung ? "ran past 600 s" : String(decoding: outcome.stderr, as: UTF8.self))
    }
    return outcome.text
}

public struct CommandFailure: Error {
    public let command: String
    public let status: Int32
    public var stderr = ""

    public init(command: String, status: Int32, stderr: String = "") {
        self.command = command
        self.status = status
        self.stderr = stderr
    }
}

extension JSON {
    /// `json["key"]` for objects, `json[0]` for arrays; nil elsewhere.
    public subscript(key: String) -> JSON? {
        guard case .object(let object) = self else { return nil }
        return object[key]
    }

    public subscript(index: Int) -> JSON? {
        guard case .array(let elements) = self, elements.indices.contains(index) else { return nil }
        return elements[index]
    }

    public var stringValue: String? { if case .string(let value) = self { value } else { nil } }
    public var intValue: Int? { if case .number(let value) = self { value.int } else { nil } }
    public var boolValue: Bool? { if case .bool(let value) = self { value } else { nil } }
    public var arrayValue: [JSON] { if case .array(let value) = self { value } else { [] } }
}

extension ScratchNamespace {
    /// Whether one ping from this namespace to `address` is answered within a second.
    public func pings(_ address: String) -> Bool {
        (try? exec("ping", "-c", "1", "-W", "1", address)) != nil
    }

    /// Whether a TCP connection from this namespace to `address`:`port` succeeds.
    public func connects(to address: String, port: Int, timeout: Int = 2) -> Bool {
        (try? exec("nc", "-z", "-w", String(timeout), address, String(port))) != nil
    }
}

/// TCP listeners (`nc -dlk`) a test starts in its namespaces, ended with it.
public final class Listeners: @unchecked Sendable {
    private var processes: [Process] = []

    public init() {}

    deinit {
        for process in processes {
            kill(process.processIdentifier, SIGKILL)  // the runner's threads block SIGTERM; children inherit it
            // waitpid, not waitUntilExit: that runs a run loop that can miss the exit and wait forever.
            var status: Int32 = 0
            _ = waitpid(process.processIdentifier, &status, 0)
        }
    }

    /// A listener in `namespace` on `port` (TCP, or UDP with `udp`; on every address, or on
    /// `address`), bound when this returns; its process ID.
    @discardableResult
    public func listen(in namespace: ScratchNamespace, port: Int, udp: Bool = false, address: String? = nil) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/nsenter")
        process.arguments = ["--net=\(namespace.path)", "nc", udp ? "-dlku" : "-dlk"] + (address.map { [$0] } ?? []) + [String(port)]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        processes.append(process)
        for _ in 0..<2000 {
            if try !namespace.exec("ss", "-Hln", udp ? "-u" : "-t", "sport = :\(port)").isEmpty { return process.processIdentifier }
            usleep(1000)
        }
        throw CommandFailure(command: "nc \(udp ? "-dlku" : "-dlk") \(port) in \(namespace.name) never listened", status: 1)
    }
}

/// A "host" namespace joined to an "outside" namespace by a veth pair (`up0` 192.0.2.1/24 —
/// `out0` 192.0.2.2/24, the host's default route pointing outside), and the ways tests look at
/// traffic between namespaces. The data-plane labs of the firewall and bridge tests build on it.
open class UplinkLab: @unchecked Sendable {
    public static let hostUplink = "192.0.2.1"
    public static let outsideAddress = "192.0.2.2"
    public let scope: NamespaceScope
    public let host: ScratchNamespace
    public let outside: ScratchNamespace
    private let listeners = Listeners()

    public init(_ scope: NamespaceScope) throws {
        self.scope = scope
        host = try scope.make(loopbackUp: true)
        outside = try scope.make(loopbackUp: true)
        try run("ip", "-n", host.name, "link", "add", "up0", "type", "veth", "peer", "name", "out0", "netns", outside.name)
        try run("ip", "-n", host.name, "addr", "add", "\(Self.hostUplink)/24", "dev", "up0")
        try run("ip", "-n", host.name, "link", "set", "up0", "up")
        try run("ip", "-n", host.name, "route", "add", "default", "via", Self.outsideAddress)
        try run("ip", "-n", outside.name, "addr", "add", "\(Self.outsideAddress)/24", "dev", "out0")
        try run("ip", "-n", outside.name, "link", "set", "out0", "up")
    }

    public func pings(from namespace: ScratchNamespace, _ address: String) -> Bool { namespace.pings(address) }

    public func connects(from namespace: ScratchNamespace, to address: String, port: Int, timeout: Int = 2) -> Bool {
        namespace.connects(to: address, port: port, timeout: timeout)
    }

    /// A listener in `namespace` on `port`, bound when this returns; ended with the lab. Its PID.
    @discardableResult
    public func listen(in namespace: ScratchNamespace, port: Int, udp: Bool = false, address: String? = nil) throws -> Int32 {
        try listeners.listen(in: namespace, port: port, udp: udp, address: address)
    }

    /// Counters in the outside namespace of packets arriving from each source prefix.
    public func countArrivals(from prefixes: [String]) throws {
        try outside.nft("add", "table", "ip", "watch")
        try outside.nft("add", "chain", "ip", "watch", "in", "{ type filter hook input priority 0; }")
        for prefix in prefixes { try outside.nft("add", "rule", "ip", "watch", "in", "ip", "saddr", prefix, "counter") }
    }

    /// Packets counted per source prefix, in the order given to `countArrivals`.
    public func arrivals() throws -> [Int] {
        let json = try JSON.parse(try outside.nft("-j", "list", "chain", "ip", "watch", "in"))
        return (json["nftables"]?.arrayValue ?? []).compactMap { item -> Int? in
            guard let expressions = item["rule"]?["expr"]?.arrayValue else { return nil }
            return expressions.compactMap { $0["counter"]?["packets"]?.intValue }.first
        }
    }
}
