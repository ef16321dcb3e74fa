import BerthCNI
import BerthIP
import BerthJSON
import BerthTestSupport
import Foundation
import Testing

/// berth-ipam as runtimes run it: the built executable, CNI environment, config on stdin.
struct IPAMPluginRunner: Sendable {
    let store: ScratchStore
    var ranges = #"[[{"subnet":"10.0.0.0/24"}],[{"subnet":"fd00::/120"}]]"#
    var type = "berth-ipam"

    init(store: ScratchStore, ranges: String? = nil) {
        self.store = store
        if let ranges { self.ranges = ranges }
    }

    func config(_ version: String = "1.0.0", extra: String = "") -> String {
        #"{"cniVersion":"\#(version)","name":"testnet","type":"bridge","ipam":{"type":"\#(type)","dataDir":"\#(store.dataDirectory)","ranges":\#(ranges)}\#(extra)}"#
    }

    func run(_ command: String, _ id: String = "", ifname: String = "eth0", version: String = "1.0.0",
             extra: String = "", plugin: String? = nil) throws -> ProcessOutcome {
        let executable = plugin ?? "\(productsDirectory)/berth-ipam"
        let environment = ["CNI_COMMAND=\(command)", "CNI_CONTAINERID=\(id)", "CNI_NETNS=/var/run/netns/\(id)",
                           "CNI_IFNAME=\(ifname)", "CNI_PATH=/usr/lib/cni:\(productsDirectory)"]
        return try runExecutable(executable, environment: environment, stdin: Array(config(version, extra: extra).utf8))
    }

    /// ADD's addresses, after checking it succeeded.
    func add(_ id: String, plugin: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String] {
        let outcome = try run("ADD", id, plugin: plugin)
        #expect(outcome.status == 0, "ADD \(id): \(outcome.stdout)", sourceLocation: sourceLocation)
        let result = try CNIResult(json: JSONCursor(JSON.parse(outcome.stdout)), version: .v1_0_0)
        return result.ips.map(\.address.address.description)
    }
}

let hostLocal = "/usr/lib/cni/host-local"
let hostLocalAvailable = FileManager.default.isExecutableFile(atPath: hostLocal)

@Suite struct IPAMPluginTests {
    let store = ScratchStore()
    let otherStore = ScratchStore()

    @Test func addInEveryVersionCheckDelGCStatus() throws {
        var runner = IPAMPluginRunner(store: store)
        runner.ranges = #"[[{"subnet":"10.0.0.0/24"}],[{"subnet":"fd00::/120"}]]"#
        for (index, version) in CNIVersion.allCases.enumerated() {
            let id = "c\(index)"
            let add = try runner.run("ADD", id, version: version.rawValue)
            #expect(add.status == 0, "\(version): \(add.stdout)")
            let result = try CNIResult(json: JSONCursor(JSON.parse(add.stdout)), version: version)
            #expect(result.ips.map(\.address.description) == ["10.0.0.\(index + 2)/24", "fd00::\(index + 2)/120"])
            #expect(result.ips.allSatisfy { $0.interface == nil })
            if version >= .v0_4_0 { #expect(try runner.run("CHECK", id, version: version.rawValue).status == 0) }
            let del = try runner.run("DEL", id, version: version.rawValue)
            #expect(del.status == 0 && del.stdout.isEmpty)
            #expect(try runner.run("DEL", id, version: version.rawValue).status == 0)
        }
        #expect(try store.leaseNames().isEmpty)
        #expect(try runner.run("STATUS", version: "1.1.0").status == 0)
    }

    @Test func checkFailsWhenTheLeaseIsGone() throws {
        let runner = IPAMPluginRunner(store: store)
        _ = try runner.add("a")
        try FileManager.default.removeItem(atPath: "\(store.directory)/fd00::2")
        let check = try runner.run("CHECK", "a")
        #expect(check.status != 0)
        #expect(CNIError(json: try JSON.parse(check.stdout))?.code == .leaseMissing)
    }

    @Test func gcKeepsOnlyTheValidAttachments() throws {
        let runner = IPAMPluginRunner(store: store)
        for id in ["a", "b", "c"] { _ = try runner.add(id) }
        let gc = try runner.run("GC", version: "1.1.0",
                                extra: #","cni.dev/valid-attachments":[{"containerID":"b","ifname":"eth0"}]"#)
        #expect(gc.status == 0, "\(gc.stdout)")
        #expect(try store.leaseNames() == ["10.0.0.3", "fd00::3"])
    }

    @Test func statusIs50WhenASetIsFullOrTheStoreUnusable() throws {
        var runner = IPAMPluginRunner(store: store)
        runner.ranges = #"[[{"subnet":"10.0.0.0/30"}]]"#
        _ = try runner.add("a")
        let full = try runner.run("STATUS", version: "1.1.0")
        #expect(CNIError(json: try JSON.parse(full.stdout))?.code == .pluginNotAvailable)
        #expect(CNIError(json: try JSON.parse(full.stdout))?.msg == "range set 0 (10.0.0.1-10.0.0.2) of network testnet has no free address")

        try Data().write(to: URL(fileURLWithPath: store.dataDirectory + "/blocker"))
        let broken = IPAMPluginRunner(store: otherStore)
        var blocked = broken
        blocked.ranges = runner.ranges
        let text = blocked.config("1.1.0").replacingOccurrences(of: broken.store.dataDirectory, with: store.dataDirectory + "/blocker")
        let outcome = try runExecutable("\(productsDirectory)/berth-ipam", environment: ["CNI_COMMAND=STATUS", "CNI_PATH=/usr/lib/cni"],
                                        stdin: Array(text.utf8))
        #expect(CNIError(json: try JSON.parse(outcome.stdout))?.code == .pluginNotAvailable)
    }

    @Test func twoHundredParallelAddsGetDistinctAddresses() async throws {
        let runner = IPAMPluginRunner(store: store, ranges: #"[[{"subnet":"10.0.0.0/16"}]]"#)
        let addresses = try await withThrowingTaskGroup(of: [String].self) { group in
            for index in 0..<200 {
                group.addTask { try runner.add("p\(index)") }
            }
            var all: [String] = []
            for try await result in group { all += result }
            return all
        }
        #expect(addresses.count == 200)
        #expect(Set(addresses).count == 200)
        #expect(try store.leaseNames().count == 200)
    }

    /// Killing berth-ipam at random instants during ADD never leaves an empty, partial or
    /// unreachable lease: every lease file is whole, and DEL of every attachment empties the store.
    @Test func sigkillDuringAddLeavesNoEmptyOrOrphanedFile() throws {
        var runner = IPAMPluginRunner(store: store)
        runner.ranges = #"[[{"subnet":"10.0.0.0/24"}],[{"subnet":"fd00::/120"}]]"#
        let config = Array(runner.config().utf8)
        var ids: [String] = []
        for index in 0..<150 {
            let id = "k\(index)"
            ids.append(id)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "\(productsDirectory)/berth-ipam")
            process.environment = ["CNI_COMMAND": "ADD", "CNI_CONTAINERID": id, "CNI_NETNS": "/x", "CNI_IFNAME": "eth0",
                                   "CNI_PATH": "/usr/lib/cni"]
            let input = Pipe()
            process.standardInput = input
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            try input.fileHandleForWriting.write(contentsOf: Data(config))
            try input.fileHandleForWriting.close()
            usleep(UInt32(index % 50) * 250)  // 0 to 12 ms: before, during and after the store's writes
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        // The kills landed at different stages: some ADDs finished, some never got their leases.
        let holders = Set(try store.leaseNames().map { try store.contents($0).components(separatedBy: "\r\n")[0] })
        #expect(!holders.isEmpty && holders.count < ids.count, "\(holders.count) of \(ids.count) ADDs left leases")
        for name in try store.leaseNames() {
            let content = try store.contents(name)
            let parts = content.components(separatedBy: "\r\n")
            #expect(parts.count == 2 && ids.contains(parts[0]) && parts[1] == "eth0", "\(name): \(content.debugDescription)")
        }
        let everything = try FileManager.default.contentsOfDirectory(atPath: store.directory)
        #expect(everything.allSatisfy { IPAddress($0) != nil || $0 == "lock" || $0.hasPrefix("last_reserved_ip.") || $0 == ".berth-attachments" },
                "unexpected files: \(everything)")
        for name in everything where name.hasPrefix("last_reserved_ip.") {
            #expect(IPAddress(try store.contents(name)) != nil, "\(name) is damaged")
        }
        for id in ids { #expect(try runner.run("DEL", id).status == 0) }
        #expect(try store.leaseNames().isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.directory + "/.berth-attachments").isEmpty)
    }

    @Test(.enabled(if: hostLocalAvailable, "needs the reference host-local (containernetworking-plugins)"))
    func sharesItsStoreWithTheReferenceHostLocal() throws {
        var berth = IPAMPluginRunner(store: store)
        berth.ranges = #"[[{"subnet":"10.0.0.0/24"}],[{"subnet":"fd00::/120"}]]"#
        var reference = berth
        reference.type = "host-local"

        #expect(try berth.add("a") == ["10.0.0.2", "fd00::2"])
        #expect(try reference.add("b", plugin: hostLocal) == ["10.0.0.3", "fd00::3"])
        #expect(try berth.add("c") == ["10.0.0.4", "fd00::4"])
        #expect(try reference.add("d", plugin: hostLocal) == ["10.0.0.5", "fd00::5"])

        // Each reads the other's leases: CHECK passes on them, a second ADD is refused.
        #expect(try reference.run("CHECK", "a", plugin: hostLocal).status == 0)
        #expect(try reference.run("ADD", "c", plugin: hostLocal).status != 0)
        #expect(try berth.run("CHECK", "b").status == 0)

        // Each releases the other's leases.
        #expect(try reference.run("DEL", "a", plugin: hostLocal).status == 0)
        #expect(try berth.run("DEL", "b").status == 0)
        #expect(try store.leaseNames() == ["10.0.0.4", "10.0.0.5", "fd00::4", "fd00::5"])

        // Round robin continues past both.
        #expect(try reference.add("e", plugin: hostLocal) == ["10.0.0.6", "fd00::6"])
        #expect(try berth.add("f") == ["10.0.0.7", "fd00::7"])
        #expect(try berth.add("a") == ["10.0.0.8", "fd00::8"])
    }
}
