import BerthNetlink
import Foundation
import Testing

/// Kernel tests need root and a sandbox: the test command (Scripts/test.sh) runs every test
/// inside an `unshare --net --mount` sandbox as root and sets BERTH_REQUIRE_KERNEL_TESTS, so there
/// they run (and fail loudly if they cannot). Elsewhere without root they are skipped, visibly.
let kernelTestsEnabled: Bool = {
    if ProcessInfo.processInfo.environment["BERTH_REQUIRE_KERNEL_TESTS"] == "1" { return true }
    return (try? NetworkNamespace.run(in: .new) { true }) ?? false
}()

/// libmnl and libnftnl are linked and answer: both netlink families, in a namespace of our own.
@Suite(.enabled(if: kernelTestsEnabled, "needs root (CAP_SYS_ADMIN) to create network namespaces"))
struct KernelLinkTests {
    @Test func routeAndNetfilterSocketsAnswerInAFreshNamespace() throws {
        let before = try NetworkNamespace.currentThreadIdentity()

        // A dedicated thread creates the namespace and opens both sockets there; the namespace
        // lives as long as the sockets do.
        let (route, netfilter, inside) = try NetworkNamespace.run(in: .new) {
            (try NetlinkSocket(.route), try NetlinkSocket(.netfilter), try NetworkNamespace.currentThreadIdentity())
        }
        #expect(inside != before)

        // A new namespace has exactly one link: lo, down, index 1.
        #expect(try route.linkSummaries() == [LinkSummary(index: 1, name: "lo")])

        // No transaction has committed in between, so the generation is stable.
        let generation = try netfilter.rulesetGeneration()
        #expect(try netfilter.rulesetGeneration() == generation)

        // The caller's thread never left its namespace.
        #expect(try NetworkNamespace.currentThreadIdentity() == before)
        #expect(route.portID != 0 && netfilter.portID != 0)
    }

    @Test func socketOpenedByPathSeesThatNamespacesLinks() throws {
        let namespace = try ScratchNamespace()
        try run("ip", "-n", namespace.name, "link", "add", "berth-probe0", "type", "bridge")

        let inside = try NetworkNamespace.run(in: .path(namespace.path)) { try NetlinkSocket(.route) }
        let sandbox = try NetlinkSocket(.route)

        #expect(try inside.linkSummaries().map(\.name) == ["lo", "berth-probe0"])
        #expect(try !sandbox.linkSummaries().contains { $0.name == "berth-probe0" })
        #expect(try NetworkNamespace.identity(ofPath: namespace.path) != NetworkNamespace.currentThreadIdentity())
    }

    @Test func enteringAMissingNamespaceFileNamesThePath() throws {
        #expect(throws: NamespaceError.self) {
            try NetworkNamespace.run(in: .path("/run/netns/berth-does-not-exist")) { 0 }
        }
        do {
            _ = try NetworkNamespace.run(in: .path("/run/netns/berth-does-not-exist")) { 0 }
        } catch {
            #expect("\(error)" == "open network namespace /run/netns/berth-does-not-exist: No such file or directory")
        }
    }
}

/// A named namespace (`ip netns add`) for one test, deleted when the value goes away.
final class ScratchNamespace {
    let name = "berth-t-\(UUID().uuidString.prefix(8).lowercased())"
    var path: String { "/run/netns/\(name)" }

    init() throws { try run("ip", "netns", "add", name) }
    deinit { _ = try? run("ip", "netns", "del", name) }
}

/// Runs a command to set up or observe the kernel from outside Berth; throws on failure.
@discardableResult
func run(_ arguments: String...) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw CommandFailure(command: arguments.joined(separator: " "), status: process.terminationStatus)
    }
    return String(decoding: data, as: UTF8.self)
}

struct CommandFailure: Error {
    let command: String
    let status: Int32
}
