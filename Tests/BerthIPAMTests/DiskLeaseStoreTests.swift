import BerthCNI
import BerthIP
import BerthIPAM
import BerthTestSupport
import Foundation
import Testing

/// The on-disk store in a scratch data directory, removed when the value goes away. Suites hold it
/// as a stored property so it lives exactly as long as the test.
final class ScratchStore: Sendable {
    let dataDirectory: String
    var directory: String { dataDirectory + "/testnet" }

    init() { dataDirectory = try! makeTemporaryDirectory() }
    deinit { removeTemporaryDirectory(dataDirectory) }

    func manager(_ ranges: String = #"[[{"subnet":"10.0.0.0/29"}]]"#, extra: String = "") throws -> AddressManager {
        try AddressManager(config: ipamConfig(#"{"type":"berth-ipam","dataDir":"\#(dataDirectory)","ranges":\#(ranges)}"#, extra: extra))
    }

    func contents(_ name: String) throws -> String { String(decoding: try readFile("\(directory)/\(name)"), as: UTF8.self) }
    func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: "\(directory)/\(name)") }
    func write(_ name: String, _ text: String) throws { try Data(text.utf8).write(to: URL(fileURLWithPath: "\(directory)/\(name)")) }
    func leaseNames() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).filter { IPAddress($0) != nil }.sorted()
    }
}

@Suite struct DiskLeaseStoreTests {
    let store = ScratchStore()

    @Test func leasesUseHostLocalsLayout() throws {
        let manager = try store.manager(#"[[{"subnet":"10.0.0.0/29"}],[{"subnet":"fd00::/120"}]]"#)
        _ = try manager.allocate(for: attachment("c0ffee"))

        #expect(try store.leaseNames() == ["10.0.0.2", "fd00::2"])
        #expect(try store.contents("10.0.0.2") == "c0ffee\r\neth0")
        #expect(try store.contents("last_reserved_ip.0") == "10.0.0.2")
        #expect(try store.contents("last_reserved_ip.1") == "fd00::2")
        #expect(store.exists("lock"))
        let mode = try FileManager.default.attributesOfItem(atPath: "\(store.directory)/10.0.0.2")[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test func addReturnsRoutesAndTheResolvConfAsDNS() throws {
        let resolv = store.dataDirectory + "/resolv.conf"
        try Data("nameserver 10.0.0.1\nsearch berth.example\noptions ndots:1\n".utf8).write(to: URL(fileURLWithPath: resolv))
        let manager = try AddressManager(config: ipamConfig(
            #"{"type":"berth-ipam","dataDir":"\#(store.dataDirectory)","subnet":"10.0.0.0/29","resolvConf":"\#(resolv)","routes":[{"dst":"0.0.0.0/0"}]}"#))
        let result = try manager.add(attachment("a"))
        #expect(result.dns == .init(nameservers: ["10.0.0.1"], search: ["berth.example"], options: ["ndots:1"]))
        #expect(result.routes == [.init(destination: IPPrefix("0.0.0.0/0")!)])
        #expect(result.ips.map(\.address) == [IPPrefix("10.0.0.2/29")!])
    }

    @Test func emptyFilesLeftByOlderToolsAreReclaimed() throws {
        try store.manager().release(attachment("nobody"))  // creates the directory
        try store.write("10.0.0.2", "")
        let given = try store.manager().allocate(for: attachment("a"))
        #expect(given.first?.address == IPPrefix("10.0.0.2/29"))
        #expect(try store.contents("10.0.0.2") == "a\r\neth0")
    }

    @Test func leasesWrittenByHostLocalAreReleasedByWalking() throws {
        try store.manager().release(attachment("nobody"))
        try store.write("10.0.0.3", "hostlocal\r\neth0")
        try store.write("10.0.0.4", "hostlocal\r\nnet1")
        try store.write("10.0.0.5", "legacy")
        try store.manager().release(attachment("hostlocal"))
        #expect(try store.leaseNames() == ["10.0.0.4", "10.0.0.5"])
        // host-local's rule for pre-0.7 leases: the bare container ID matches when nothing else does.
        try store.manager().release(attachment("legacy"))
        #expect(try store.leaseNames() == ["10.0.0.4"])
    }

    @Test func addAndDelNeverReadOtherLeases() throws {
        let manager = try store.manager(#"[[{"subnet":"10.0.0.0/24"}]]"#)
        try manager.release(attachment("nobody"))
        // A "lease" that cannot be read: any code path that reads every lease fails on it.
        try FileManager.default.createDirectory(atPath: "\(store.directory)/10.0.0.200", withIntermediateDirectories: false)
        for id in ["a", "b", "c"] { _ = try manager.allocate(for: attachment(id)) }
        try manager.check(attachment("b"))
        try manager.release(attachment("b"))
        #expect(throws: CNIError.self) { try manager.collectGarbage(keeping: []) }
    }

    @Test func anIndexEntryWhoseLeaseWasReleasedElsewhereIsIgnored() throws {
        let manager = try store.manager()
        _ = try manager.allocate(for: attachment("a"))  // 10.0.0.2
        // host-local releases a's lease and hands the address to b.
        try FileManager.default.removeItem(atPath: "\(store.directory)/10.0.0.2")
        try store.write("10.0.0.2", "b\r\neth0")

        let again = try manager.allocate(for: attachment("a"))
        #expect(again.first?.address == IPPrefix("10.0.0.3/29"))
        try manager.release(attachment("a"))
        #expect(try store.contents("10.0.0.2") == "b\r\neth0")
        #expect(!store.exists("10.0.0.3"))
    }

    @Test func gcRemovesLeasesAndIndexEntriesOfUnlistedAttachments() throws {
        let manager = try store.manager()
        for id in ["a", "b"] { _ = try manager.allocate(for: attachment(id)) }
        try store.write("10.0.0.6", "legacy")
        try manager.collectGarbage(keeping: [attachment("b"), attachment("legacy", "net1")])
        #expect(try store.leaseNames() == ["10.0.0.3", "10.0.0.6"])
        #expect(!store.exists(".berth-attachments/a:eth0:0"))
        try manager.collectGarbage(keeping: [])
        #expect(try store.leaseNames().isEmpty)
    }

    @Test func theIndexIsOneSymlinkPerAttachmentAndSet() throws {
        let manager = try store.manager(#"[[{"subnet":"10.0.0.0/29"}],[{"subnet":"fd00::/120"}]]"#)
        _ = try manager.allocate(for: attachment("a"))
        let index = try FileManager.default.contentsOfDirectory(atPath: store.directory + "/.berth-attachments").sorted()
        #expect(index == ["a:eth0:0", "a:eth0:1"])
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: store.directory + "/.berth-attachments/a:eth0:1") == "fd00::2")
        try manager.release(attachment("a"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.directory + "/.berth-attachments").isEmpty)
        #expect(try store.leaseNames().isEmpty)
    }

    /// Berth before 0.8 indexed with a directory per attachment: its leases are found and released.
    @Test func theOlderIndexLayoutIsReadAndRemoved() throws {
        let manager = try store.manager()
        try manager.release(attachment("nobody"))
        try store.write("10.0.0.5", "old\r\neth0")
        try FileManager.default.createDirectory(atPath: store.directory + "/.berth-attachments/old:eth0", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: store.directory + "/.berth-attachments/old:eth0/0", withDestinationPath: "10.0.0.5")
        try manager.check(attachment("old"))
        #expect(throws: CNIError.self, "the attachment is known to hold its address") { try manager.allocate(for: attachment("old")) }
        try manager.release(attachment("old"))
        #expect(try store.leaseNames().isEmpty)
        #expect(!store.exists(".berth-attachments/old:eth0"))
    }

    @Test func lastReservedIsRewrittenInPlace() throws {
        let manager = try store.manager()
        _ = try manager.allocate(for: attachment("a"))
        let inode = try FileManager.default.attributesOfItem(atPath: store.directory + "/last_reserved_ip.0")[.systemFileNumber] as? Int
        _ = try manager.allocate(for: attachment("b"))
        #expect(try store.contents("last_reserved_ip.0") == "10.0.0.3")
        #expect(try FileManager.default.attributesOfItem(atPath: store.directory + "/last_reserved_ip.0")[.systemFileNumber] as? Int == inode)
    }

    @Test func anUnusableDataDirectoryIsAStoreError() throws {
        try Data().write(to: URL(fileURLWithPath: store.dataDirectory + "/file"))
        let config = try ipamConfig(#"{"type":"berth-ipam","dataDir":"\#(store.dataDirectory)/file/below","subnet":"10.0.0.0/29"}"#)
        do {
            _ = try AddressManager(config: config)
            Issue.record("opened a store below a regular file")
        } catch {
            #expect(error.code == .leaseStoreFailed)
            #expect(error.msg.contains("\(store.dataDirectory)/file/below: Not a directory"))
        }
    }
}
