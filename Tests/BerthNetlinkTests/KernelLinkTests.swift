import BerthNetlink
import BerthTestSupport
import Testing

/// libmnl and libnftnl are linked and answer: both netlink families, in a namespace of our own.
@Suite(needsKernel)
struct KernelLinkTests {
    let scope = NamespaceScope()

    @Test func routeAndNetfilterSocketsAnswerInAFreshNamespace() throws {
        let before = try NetworkNamespace.currentThreadIdentity()

        // A dedicated thread creates the namespace and opens both sockets there; the namespace
        // lives as long as the sockets do.
        let (route, netfilter, inside) = try NetworkNamespace.run(in: .new) {
            (try NetlinkSocket(.route), try NetlinkSocket(.netfilter), try NetworkNamespace.currentThreadIdentity())
        }
        #expect(inside != before)

        // A new namespace has exactly one link: lo, down, index 1.
        let links = try RouteNetlink(transport: route).links()
        #expect(links.map(\.name) == ["lo"])
        #expect(links.first?.index == 1)
        #expect(links.first?.isUp == false)

        // No transaction has committed in between, so the generation is stable.
        let generation = try netfilter.rulesetGeneration()
        #expect(try netfilter.rulesetGeneration() == generation)

        // The caller's thread never left its namespace.
        #expect(try NetworkNamespace.currentThreadIdentity() == before)
        #expect(route.portID != 0 && netfilter.portID != 0)
    }

    @Test func socketOpenedByPathSeesThatNamespacesLinks() throws {
        let namespace = try scope.make()
        let probe = uniqueName("probe")
        try run("ip", "-n", namespace.name, "link", "add", probe, "type", "bridge")

        let inside = try namespace.netlink()
        let sandbox = try RouteNetlink.current()

        #expect(try inside.links().map(\.name) == ["lo", probe])
        #expect(try sandbox.link(named: probe) == nil)
        #expect(try NetworkNamespace.identity(ofPath: namespace.path) != NetworkNamespace.currentThreadIdentity())
    }

    /// Port ids are assigned by the kernel, so sockets of one process never collide (binding to
    /// getpid() would make the second fail with EADDRINUSE).
    @Test func socketsOfOneProcessGetDistinctPortIDs() throws {
        let sockets = try (0..<4).map { _ in try NetlinkSocket(.route) }
        #expect(Set(sockets.map(\.portID)).count == 4)
    }

    @Test func enteringAMissingNamespaceFileNamesThePath() throws {
        do {
            _ = try RouteNetlink.open(in: .path("/run/netns/berth-does-not-exist"))
            Issue.record("opened a socket in a missing namespace")
        } catch {
            #expect("\(error)" == "open network namespace /run/netns/berth-does-not-exist: No such file or directory")
        }
    }
}
