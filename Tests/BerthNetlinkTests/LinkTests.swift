import BerthIP
import BerthJSON
import BerthNetlink
import Foundation
import BerthTestSupport
import Testing

@Suite(needsKernel)
struct LinkTests {
    let scope = NamespaceScope()

    @Test func bridgeIsCreatedWithMTUPinnedMACAndUp() throws {
        let host = try scope.make()
        let netlink = try host.netlink()
        let mac = try #require(MACAddress("02:42:ac:11:00:01"))

        try netlink.bridgeAdd(name: "berth0", mtu: 1400, mac: mac, up: true)

        let shown = try #require(try host.ip("link", "show", "berth0")[0])
        #expect(shown["linkinfo"]?["info_kind"]?.stringValue == "bridge")
        #expect(shown["mtu"]?.intValue == 1400)
        #expect(shown["address"]?.stringValue == "02:42:ac:11:00:01")
        #expect(shown["flags"]?.arrayValue.contains(.string("UP")) == true)

        let link = try #require(try netlink.link(named: "berth0"))
        #expect(link.kind == "bridge" && link.mtu == 1400 && link.mac == mac && link.isUp)
    }

    @Test func secondBridgeOfTheSameNameIsEEXIST() throws {
        let netlink = try scope.make().netlink()
        try netlink.bridgeAdd(name: "berth0")
        do {
            try netlink.bridgeAdd(name: "berth0")
            Issue.record("created twice")
        } catch {
            #expect(error.isExists)
            #expect(error.description.hasPrefix("create bridge berth0 in /run/netns/berth-t-"))
            #expect(error.description.hasSuffix(": File exists"))
        }
    }

    @Test func vethPeerIsBornInTheContainerNamespace() throws {
        let host = try scope.make(), container = try scope.make()
        let netlink = try host.netlink()
        try netlink.bridgeAdd(name: "berth0", mtu: 1450)
        let bridge = try #require(try netlink.link(named: "berth0"))
        let fd = try container.openDescriptor()
        defer { close(fd) }
        let peerMAC = try #require(MACAddress("02:42:0a:58:00:05"))

        let created = try netlink.vethAdd(
            name: "vethab12cd34", mtu: 1450, master: bridge.index, up: true,
            peer: .init(name: "eth0", namespace: .fd(fd, path: container.path), mtu: 1450, mac: peerMAC))

        // The host end: a port of the bridge, up, with the peer in another namespace.
        let hostEnd = try #require(try host.ip("link", "show", "vethab12cd34")[0])
        #expect(hostEnd["master"]?.stringValue == "berth0")
        #expect(hostEnd["flags"]?.arrayValue.contains(.string("UP")) == true)
        #expect(hostEnd["mtu"]?.intValue == 1450)
        #expect(hostEnd["link_netnsid"] != nil)
        // The container end: never on the host, born in the container with its name, MAC, MTU.
        #expect(try netlink.link(named: "eth0") == nil)
        let peer = try #require(try container.ip("link", "show", "eth0")[0])
        #expect(peer["address"]?.stringValue == "02:42:0a:58:00:05")
        #expect(peer["mtu"]?.intValue == 1450)
        #expect(peer["flags"]?.arrayValue.contains(.string("UP")) == false)
        // The kernel's echo names the peer's index in its namespace.
        let echoedPeer = try #require(created.peerIndex)
        #expect(Int(echoedPeer) == peer["ifindex"]?.intValue)
        #expect(created.host?.name == "vethab12cd34")

        // The dump reports kind, master, MAC, peer index and the peer's namespace id.
        let dumped = try #require(try netlink.links().first { $0.name == "vethab12cd34" })
        #expect(dumped.kind == "veth" && dumped.master == bridge.index && dumped.isUp)
        #expect(dumped.peerIndex == created.peerIndex)
        #expect(dumped.peerNamespaceID == hostEnd["link_netnsid"]?.intValue.map(Int32.init))
        #expect(dumped.mac.map(\.description) == hostEnd["address"]?.stringValue)

        // With the container end down the host end has no carrier; bringing it up (from inside)
        // makes both operationally up.
        #expect(dumped.operationalState != .up)
        try container.netlink().linkSetUp(LinkID(index: echoedPeer, name: "eth0"))
        #expect(try netlink.link(named: "vethab12cd34")?.operationalState == .up)
    }

    @Test func aLinkMovedToAnotherNamespaceCanBeRenamedOnTheWay() throws {
        let host = try scope.make(), container = try scope.make()
        let netlink = try host.netlink()
        try netlink.vethAdd(name: "vm0", peer: .init(name: "tmp0", namespace: nil))
        let temporary = try #require(try netlink.link(named: "tmp0"))
        let fd = try container.openDescriptor()
        defer { close(fd) }
        try netlink.perform(.linkSetNamespace(temporary.id, .fd(fd, path: container.path), newName: "eth0"))
        #expect(try netlink.link(named: "tmp0") == nil)
        #expect(try container.ip("link", "show", "eth0")[0]?["linkinfo"]?["info_kind"]?.stringValue == "veth")
    }

    @Test func vethWithAnExistingPeerNameFailsAndLeavesNothing() throws {
        let host = try scope.make(), container = try scope.make()
        try run("ip", "-n", container.name, "link", "add", "eth0", "type", "bridge")
        let netlink = try host.netlink()
        let fd = try container.openDescriptor()
        defer { close(fd) }
        do {
            try netlink.vethAdd(name: "veth00000001", peer: .init(name: "eth0", namespace: .fd(fd, path: container.path)))
            Issue.record("created a second eth0")
        } catch {
            #expect(error.isExists)
            #expect(error.operation == "create veth veth00000001 (peer eth0 in \(container.path)) in \(host.path)")
        }
        #expect(try netlink.link(named: "veth00000001") == nil)
        #expect(try container.ip("link", "show", "eth0")[0]?["linkinfo"]?["info_kind"]?.stringValue == "bridge")
    }

    @Test func linkSettingsChangeWhatTheKernelShows() throws {
        let host = try scope.make()
        let netlink = try host.netlink()
        try netlink.bridgeAdd(name: "br-a", up: false)
        try netlink.bridgeAdd(name: "br-b", up: false)
        let brA = try #require(try netlink.link(named: "br-a"))
        let brB = try #require(try netlink.link(named: "br-b"))
        let peerNamespace = try scope.make()
        let peerFD = try peerNamespace.openDescriptor()
        defer { close(peerFD) }
        try netlink.vethAdd(name: "v-test", up: false, peer: .init(name: "eth0", namespace: .fd(peerFD, path: peerNamespace.path)))
        let veth = try #require(try netlink.link(named: "v-test"))

        try netlink.linkSetUp(brA.id)
        #expect(try host.ip("link", "show", "br-a")[0]?["flags"]?.arrayValue.contains(.string("UP")) == true)
        try netlink.linkSetUp(brA.id, false)
        #expect(try host.ip("link", "show", "br-a")[0]?["flags"]?.arrayValue.contains(.string("UP")) == false)

        try netlink.linkSetMaster(veth.id, brA.id)
        #expect(try host.ip("link", "show", "v-test")[0]?["master"]?.stringValue == "br-a")
        try netlink.linkSetMaster(veth.id, brB.id)
        #expect(try host.ip("link", "show", "v-test")[0]?["master"]?.stringValue == "br-b")
        try netlink.linkSetMaster(veth.id, nil)
        #expect(try host.ip("link", "show", "v-test")[0]?["master"] == nil)

        try netlink.linkSetMTU(veth.id, 1280)
        #expect(try host.ip("link", "show", "v-test")[0]?["mtu"]?.intValue == 1280)
        let mac = try #require(MACAddress("02:00:00:00:be:ef"))
        try netlink.linkSetMAC(veth.id, mac)
        #expect(try host.ip("link", "show", "v-test")[0]?["address"]?.stringValue == "02:00:00:00:be:ef")
        try netlink.linkSetPromiscuous(veth.id, true)
        #expect(try host.ip("link", "show", "v-test")[0]?["flags"]?.arrayValue.contains(.string("PROMISC")) == true)
        #expect(try netlink.link(veth.id)?.isPromiscuous == true)
        try netlink.linkSetPromiscuous(veth.id, false)
        #expect(try host.ip("link", "show", "v-test")[0]?["flags"]?.arrayValue.contains(.string("PROMISC")) == false)

        // By name works as well as by index for link requests.
        try netlink.linkSetMTU(.named("br-b"), 1300)
        #expect(try netlink.link(named: "br-b")?.mtu == 1300)
    }

    @Test func deletingAVethRemovesBothEnds() throws {
        let host = try scope.make(), container = try scope.make()
        let netlink = try host.netlink()
        let fd = try container.openDescriptor()
        defer { close(fd) }
        try netlink.vethAdd(name: "v-del", peer: .init(name: "eth0", namespace: .fd(fd, path: container.path)))
        try netlink.linkDelete(.named("v-del"))
        #expect(try netlink.link(named: "v-del") == nil)
        #expect(try container.netlink().link(named: "eth0") == nil)
    }

    @Test func missingLinksAreNilOrENODEV() throws {
        let netlink = try scope.make().netlink()
        #expect(try netlink.link(named: "nope0") == nil)
        #expect(try netlink.link(LinkID(index: 9999, name: "#9999")) == nil)
        do {
            try netlink.linkDelete(.named("nope0"))
            Issue.record("deleted a missing link")
        } catch {
            #expect(error.isNotFound)
            #expect(error.errno == .noSuchDevice)
            #expect(error.operation.hasPrefix("delete link nope0 in "))
        }
        #expect(throws: NetlinkError.self) { try netlink.linkSetUp(.named("nope0")) }
    }

    @Test func lookupByIndexAndByNameAgree() throws {
        let host = try scope.make()
        let netlink = try host.netlink()
        try netlink.bridgeAdd(name: "berth9")
        let byName = try #require(try netlink.link(named: "berth9"))
        #expect(try netlink.link(LinkID(index: byName.index, name: "berth9")) == byName)
        #expect(try host.ip("link", "show", "berth9")[0]?["ifindex"]?.intValue == Int(byName.index))
    }

    @Test func peerCanBeNamedByAProcessNamespace() throws {
        let host = try scope.make()
        let netlink = try host.netlink()
        // Our own pid's namespace is the sandbox; the peer lands there, the host end in `host`.
        let peerName = uniqueName("p")
        try netlink.vethAdd(name: uniqueName("v"), peer: .init(name: peerName, namespace: .pid(getpid())))
        defer { _ = try? RouteNetlink.current().linkDelete(.named(peerName)) }
        #expect(try RouteNetlink.current().link(named: peerName)?.kind == "veth")
    }
}
