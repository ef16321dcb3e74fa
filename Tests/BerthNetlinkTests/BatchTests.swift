import BerthIP
import BerthJSON
import BerthNetlink
import Foundation
import Synchronization
import BerthTestSupport
import Testing

@Suite(needsKernel)
struct BatchTests {
    let scope = NamespaceScope()

    /// The container side of an ADD in one sendmsg: eth0 up, its addresses, lo up, default routes.
    @Test func containerSideInOneRoundTrip() throws {
        let host = try scope.make(), container = try scope.make()
        let hostNetlink = try host.netlink()
        try hostNetlink.bridgeAdd(name: "br0")
        let fd = try container.openDescriptor()
        defer { close(fd) }
        let created = try hostNetlink.vethAdd(name: "vc0", master: try #require(try hostNetlink.link(named: "br0")).index,
                                              peer: .init(name: "eth0", namespace: .fd(fd, path: container.path)))
        let eth0 = LinkID(index: try #require(created.peerIndex), name: "eth0")

        let counting = CountingTransport(try NetworkNamespace.run(in: container.target) { try NetlinkSocket(.route) })
        let inside = RouteNetlink(transport: counting, namespace: container.path)
        try inside.perform(
            .linkSetUp(eth0),
            .addressAdd(IPPrefix("10.88.0.5/16")!, to: eth0),
            .addressAdd(IPPrefix("fd00:88::5/64")!, to: eth0, skipDAD: true),
            .linkSetUp(.named("lo")),
            .routeAdd(.defaultRoute(via: IPAddress("10.88.0.1")!), dev: eth0),
            .routeAdd(.defaultRoute(via: IPAddress("fd00:88::1")!), dev: eth0))
        #expect(counting.calls == 1)

        let link = try #require(try container.ip("addr", "show", "eth0")[0])
        #expect(link["flags"]?.arrayValue.contains(.string("UP")) == true)
        let addresses = link["addr_info"]?.arrayValue.filter { $0["scope"]?.stringValue == "global" }
            .compactMap { $0["local"]?.stringValue } ?? []
        #expect(Set(addresses) == ["10.88.0.5", "fd00:88::5"])
        #expect(try container.ip("link", "show", "lo")[0]?["flags"]?.arrayValue.contains(.string("UP")) == true)
        #expect(try container.ip("route", "show", "default")[0]?["gateway"]?.stringValue == "10.88.0.1")
        #expect(try container.ip("-6", "route", "show", "default")[0]?["gateway"]?.stringValue == "fd00:88::1")
    }

    /// Every ACK is checked: the failing message is named even when others succeed after it.
    @Test func aFailureInTheMiddleIsReportedByItsOperation() throws {
        let (namespace, netlink, bridge) = try namespaceWithBridge(scope)
        do {
            try netlink.perform(
                .addressAdd(IPPrefix("10.1.0.1/24")!, to: bridge.id),
                .addressAdd(IPPrefix("10.1.0.2/24")!, to: LinkID(index: 9999, name: "ghost0")),
                .addressAdd(IPPrefix("10.1.0.3/24")!, to: bridge.id))
            Issue.record("batch succeeded")
        } catch {
            #expect(error.operation == "add address 10.1.0.2/24 to ghost0 in \(namespace.path)")
            #expect(error.errno == .noSuchDevice)
        }
        // The kernel went on after the failure: first and third are there.
        let addresses = try netlink.addresses(index: bridge.index).map(\.prefix.description)
        #expect(addresses.contains("10.1.0.1/24") && addresses.contains("10.1.0.3/24"))
    }

    @Test func theKernelsOwnExplanationIsKept() throws {
        let (namespace, netlink, _) = try namespaceWithBridge(scope)
        do {
            try netlink.bridgeAdd(name: "big0", mtu: 70_000)
            Issue.record("created a bridge with MTU 70000")
        } catch {
            #expect(error.description == "create bridge big0 in \(namespace.path): Invalid argument (mtu greater than device maximum)")
        }
    }
}

/// Counts round trips through a real socket.
final class CountingTransport: NetlinkTransport {
    let socket: NetlinkSocket
    private(set) var calls = 0

    init(_ socket: NetlinkSocket) { self.socket = socket }

    func perform(_ requests: [NetlinkRequest]) throws(NetlinkError) -> [NetlinkMessage] {
        calls += 1
        return try socket.perform(requests)
    }
}

@Suite(needsKernel)
struct ConcurrencyTests {
    let scope = NamespaceScope()

    /// Many tasks open namespace-bound sockets and use them at once; no thread of the process is
    /// left in a foreign namespace afterwards (setns only ever ran on threads that exited).
    @Test func namespaceBoundSocketsFromManyTasks() async throws {
        let processNamespace = try NetworkNamespace.identity(ofPath: "/proc/self/ns/net")
        let namespaces = try (0..<8).map { _ in try scope.make() }
        for (index, namespace) in namespaces.enumerated() {
            try run("ip", "-n", namespace.name, "link", "add", "mark\(index)", "type", "bridge")
        }
        let targets = namespaces.map(\.target)

        let seen = try await withThrowingTaskGroup(of: (Int, [String]).self) { group in
            for round in 0..<64 {
                let index = round % targets.count
                let target = targets[index]
                group.addTask {
                    let netlink = try RouteNetlink.open(in: target)
                    return (index, try netlink.links().map(\.name))
                }
            }
            var results: [(Int, [String])] = []
            for try await result in group { results.append(result) }
            return results
        }

        #expect(seen.count == 64)
        for (index, names) in seen { #expect(names == ["lo", "mark\(index)"]) }
        let tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")
        for task in tasks {
            #expect(try NetworkNamespace.identity(ofPath: "/proc/self/task/\(task)/ns/net") == processNamespace,
                    "thread \(task) is in another namespace")
        }
    }
}
