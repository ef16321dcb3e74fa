import BerthIP
import BerthNetlink
import BerthTestSupport
import Testing

/// Records what would be sent; answers every request with an ACK, or with scripted replies.
final class FakeTransport: NetlinkTransport {
    private(set) var sent: [[NetlinkRequest]] = []
    var replies: [Result<[NetlinkMessage], NetlinkError>] = []

    func perform(_ requests: [NetlinkRequest]) throws(NetlinkError) -> [NetlinkMessage] {
        sent.append(requests)
        guard !replies.isEmpty else { return [] }
        return try replies.removeFirst().get()
    }

    /// The bytes of the only request of the last call.
    var lastBytes: [UInt8] { sent.last?.first?.bytes ?? [] }
}

/// Bytes from annotated hex: whitespace is ignored, `#` starts a comment.
func hex(_ text: String) -> [UInt8] {
    let digits = text.split(separator: "\n").map { $0.split(separator: "#", maxSplits: 1).first ?? "" }
        .joined().filter { !$0.isWhitespace }
    var bytes: [UInt8] = []
    var index = digits.startIndex
    while index < digits.endIndex {
        let next = digits.index(index, offsetBy: 2)
        bytes.append(UInt8(digits[index..<next], radix: 16)!)
        index = next
    }
    return bytes
}

func hexDump(_ bytes: [UInt8]) -> String {
    bytes.map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
}

/// Request bytes for every message kind, as the kernel reads them (little-endian host), with the
/// sequence number and port id zero. Each annotation names the field.
@Suite struct RequestBytesTests {
    let fake = FakeTransport()
    var netlink: RouteNetlink { RouteNetlink(transport: fake, namespace: "/run/netns/c1") }
    let eth0 = LinkID(index: 5, name: "eth0")

    func expect(_ expected: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(hexDump(fake.lastBytes) == hexDump(hex(expected)), sourceLocation: sourceLocation)
    }

    @Test func bridgeAdd() throws {
        try netlink.bridgeAdd(name: "berth0", mtu: 1500, mac: MACAddress("02:42:ac:11:00:01"), up: true)
        expect("""
            50000000 1000 0506 00000000 00000000  # nlmsghdr: len 80, RTM_NEWLINK, REQUEST|ACK|EXCL|CREATE
            00 00 0000 00000000 01000000 01000000 # ifinfomsg: AF_UNSPEC, index 0, flags IFF_UP, change IFF_UP
            0b00 0300 62657274683000 00           # IFLA_IFNAME "berth0"
            0800 0400 dc050000                    # IFLA_MTU 1500
            0a00 0100 0242ac110001 0000           # IFLA_ADDRESS 02:42:ac:11:00:01
            1000 1280                             # IFLA_LINKINFO (nested)
            0b00 0100 62726964676500 00           #   IFLA_INFO_KIND "bridge"
            """)
    }

    @Test func vethAddWithPeerBornInTheContainer() throws {
        try netlink.vethAdd(name: "vethab12cd34", mtu: 1450, master: 2, up: true,
                            peer: .init(name: "eth0", namespace: .fd(7, path: "/run/netns/c1"), mtu: 1450,
                                        mac: MACAddress("02:42:0a:58:00:05")))
        expect("""
            94000000 1000 0d06 00000000 00000000  # nlmsghdr: len 148, RTM_NEWLINK, REQUEST|ACK|ECHO|EXCL|CREATE
            00 00 0000 00000000 01000000 01000000 # ifinfomsg: host end up
            1100 0300 766574686162313263643334 00 000000 # IFLA_IFNAME "vethab12cd34", NUL, 3 bytes padding
            0800 0400 aa050000                    # IFLA_MTU 1450
            0800 0a00 02000000                    # IFLA_MASTER 2
            5000 1280                             # IFLA_LINKINFO
            0900 0100 7665746800 000000           #   IFLA_INFO_KIND "veth"
            4000 0280                             #   IFLA_INFO_DATA
            3c00 0180                             #     VETH_INFO_PEER
            00 00 0000 00000000 00000000 00000000 #       ifinfomsg of the peer (not up: ENOTCONN)
            0900 0300 6574683000 000000           #       IFLA_IFNAME "eth0"
            0800 1c00 07000000                    #       IFLA_NET_NS_FD 7
            0800 0400 aa050000                    #       IFLA_MTU 1450
            0a00 0100 02420a580005 0000           #       IFLA_ADDRESS 02:42:0a:58:00:05
            """)
    }

    @Test func vethPeerByProcess() throws {
        try netlink.vethAdd(name: "v1", up: false, peer: .init(name: "eth0", namespace: .pid(4242)))
        expect("""
            64000000 1000 0d06 00000000 00000000  # nlmsghdr: len 100
            00 00 0000 00000000 00000000 00000000 # ifinfomsg: not up
            0700 0300 763100 00                   # IFLA_IFNAME "v1"
            3c00 1280                             # IFLA_LINKINFO
            0900 0100 7665746800 000000           #   IFLA_INFO_KIND "veth"
            2c00 0280                             #   IFLA_INFO_DATA
            2800 0180                             #     VETH_INFO_PEER
            00 00 0000 00000000 00000000 00000000 #       ifinfomsg
            0900 0300 6574683000 000000           #       IFLA_IFNAME "eth0"
            0800 1300 92100000                    #       IFLA_NET_NS_PID 4242
            """)
    }

    @Test func linkSetUpAndDownByIndexAndByName() throws {
        try netlink.linkSetUp(eth0)
        expect("""
            20000000 1000 0500 00000000 00000000  # nlmsghdr: len 32, RTM_NEWLINK, REQUEST|ACK
            00 00 0000 05000000 01000000 01000000 # ifinfomsg: index 5, flags IFF_UP, change IFF_UP
            """)
        try netlink.linkSetUp(eth0, false)
        expect("""
            20000000 1000 0500 00000000 00000000
            00 00 0000 05000000 00000000 01000000 # flags 0, change IFF_UP
            """)
        try netlink.linkSetUp(.named("lo"))
        expect("""
            28000000 1000 0500 00000000 00000000  # len 40
            00 00 0000 00000000 01000000 01000000 # index 0: by name
            0700 0300 6c6f00 00                   # IFLA_IFNAME "lo"
            """)
    }

    @Test func linkSetPromiscuousMasterMTUAndMAC() throws {
        try netlink.linkSetPromiscuous(eth0, true)
        expect("""
            20000000 1000 0500 00000000 00000000
            00 00 0000 05000000 00010000 00010000 # flags IFF_PROMISC, change IFF_PROMISC
            """)
        try netlink.linkSetMaster(eth0, LinkID(index: 2, name: "berth0"))
        expect("""
            28000000 1000 0500 00000000 00000000
            00 00 0000 05000000 00000000 00000000
            0800 0a00 02000000                    # IFLA_MASTER 2
            """)
        try netlink.linkSetMaster(eth0, nil)
        expect("""
            28000000 1000 0500 00000000 00000000
            00 00 0000 05000000 00000000 00000000
            0800 0a00 00000000                    # IFLA_MASTER 0: nomaster
            """)
        try netlink.linkSetMTU(eth0, 1400)
        expect("""
            28000000 1000 0500 00000000 00000000
            00 00 0000 05000000 00000000 00000000
            0800 0400 78050000                    # IFLA_MTU 1400
            """)
        try netlink.linkSetMAC(eth0, MACAddress("02:00:00:00:be:ef")!)
        expect("""
            2c000000 1000 0500 00000000 00000000
            00 00 0000 05000000 00000000 00000000
            0a00 0100 02000000beef 0000           # IFLA_ADDRESS
            """)
    }

    @Test func linkDeleteGetAndDump() throws {
        try netlink.linkDelete(.named("veth1"))
        expect("""
            2c000000 1100 0500 00000000 00000000  # RTM_DELLINK, REQUEST|ACK
            00 00 0000 00000000 00000000 00000000
            0a00 0300 766574683100 0000           # IFLA_IFNAME "veth1"
            """)
        _ = try netlink.link(named: "berth0")
        expect("""
            2c000000 1200 0500 00000000 00000000  # RTM_GETLINK, REQUEST|ACK
            00 00 0000 00000000 00000000 00000000
            0b00 0300 62657274683000 00           # IFLA_IFNAME "berth0"
            """)
        _ = try netlink.links()
        expect("""
            20000000 1200 0103 00000000 00000000  # RTM_GETLINK, REQUEST|DUMP
            00 00 0000 00000000 00000000 00000000
            """)
        #expect(fake.sent.last?.first?.isDump == true)
    }

    @Test func linkMoveWithRename() throws {
        try netlink.perform(.linkSetNamespace(eth0, .fd(9, path: "/run/netns/c2"), newName: "net1"))
        expect("""
            34000000 1000 0500 00000000 00000000  # len 52, RTM_NEWLINK, REQUEST|ACK
            00 00 0000 05000000 00000000 00000000 # ifinfomsg: index 5
            0800 1c00 09000000                    # IFLA_NET_NS_FD 9
            0900 0300 6e65743100 000000           # IFLA_IFNAME "net1": the new name
            """)
    }

    @Test func bridgePortFlags() throws {
        try netlink.bridgePortSet(eth0, hairpin: true, isolated: true)
        expect("""
            34000000 1300 0500 00000000 00000000  # len 52, RTM_SETLINK, REQUEST|ACK
            07 00 0000 05000000 00000000 00000000 # ifinfomsg: AF_BRIDGE, index 5
            1400 0c80                             # IFLA_PROTINFO | NLA_F_NESTED
            0500 0400 01 000000                   #   IFLA_BRPORT_MODE 1 (hairpin)
            0500 2100 01 000000                   #   IFLA_BRPORT_ISOLATED 1
            """)
    }

    @Test func perInterfaceSettings() throws {
        try netlink.ipv4SettingsSet(eth0, [(.rpFilter, 2), (.arpNotify, 1), (.routeLocalnet, 1)])
        expect("""
            44000000 1000 0500 00000000 00000000  # len 68, RTM_NEWLINK
            00 00 0000 05000000 00000000 00000000
            2400 1a80                             # IFLA_AF_SPEC
            2000 0280                             #   AF_INET
            1c00 0180                             #     IFLA_INET_CONF
            0800 0800 02000000                    #       IPV4_DEVCONF_RP_FILTER 2
            0800 1600 01000000                    #       IPV4_DEVCONF_ARP_NOTIFY 1
            0800 1a00 01000000                    #       IPV4_DEVCONF_ROUTE_LOCALNET 1
            """)
        try netlink.ipv6AddressGenerationSet(eth0, .none)
        expect("""
            30000000 1000 0500 00000000 00000000  # len 48
            00 00 0000 05000000 00000000 00000000
            1000 1a80                             # IFLA_AF_SPEC
            0c00 0a80                             #   AF_INET6
            0500 0800 01 000000                   #     IFLA_INET6_ADDR_GEN_MODE NONE
            """)
    }

    @Test func addresses() throws {
        try netlink.addressAdd(IPPrefix("10.88.0.5/16")!, to: eth0)
        expect("""
            30000000 1400 0506 00000000 00000000  # len 48, RTM_NEWADDR, REQUEST|ACK|EXCL|CREATE
            02 10 00 00 05000000                  # ifaddrmsg: AF_INET, /16, flags 0, scope universe, index 5
            0800 0200 0a580005                    # IFA_LOCAL 10.88.0.5
            0800 0100 0a580005                    # IFA_ADDRESS 10.88.0.5
            0800 0400 0a58ffff                    # IFA_BROADCAST 10.88.255.255
            """)
        try netlink.addressAdd(IPPrefix("fd00:88::5/64")!, to: eth0, skipDAD: true)
        expect("""
            48000000 1400 0506 00000000 00000000  # len 72
            0a 40 02 00 05000000                  # ifaddrmsg: AF_INET6, /64, IFA_F_NODAD
            1400 0200 fd000088000000000000000000000005 # IFA_LOCAL
            1400 0100 fd000088000000000000000000000005 # IFA_ADDRESS
            0800 0800 02000000                    # IFA_FLAGS IFA_F_NODAD
            """)
        try netlink.addressDelete(IPPrefix("10.88.0.5/16")!, from: eth0)
        expect("""
            28000000 1500 0500 00000000 00000000  # len 40, RTM_DELADDR, REQUEST|ACK
            02 10 00 00 05000000
            0800 0200 0a580005
            0800 0100 0a580005
            """)
        _ = try netlink.addresses()
        expect("""
            18000000 1600 0103 00000000 00000000  # RTM_GETADDR, REQUEST|DUMP
            00 00 00 00 00000000
            """)
    }

    @Test func routes() throws {
        try netlink.routeAdd(.defaultRoute(via: IPAddress("10.88.0.1")!), dev: eth0)
        expect("""
            2c000000 1800 0506 00000000 00000000  # len 44, RTM_NEWROUTE, REQUEST|ACK|EXCL|CREATE
            02 00 00 00 fe 03 00 01 00000000      # rtmsg: AF_INET, dst/0, table main, proto boot, scope universe, unicast
            0800 0500 0a580001                    # RTA_GATEWAY 10.88.0.1
            0800 0400 05000000                    # RTA_OIF 5
            """)
        let route = Route(destination: IPPrefix("192.168.50.0/24")!, table: 1000, priority: 77, scope: .link,
                          mtu: 1400, advmss: 1360)
        try netlink.routeAdd(route, dev: eth0)
        expect("""
            50000000 1800 0506 00000000 00000000  # len 80
            02 18 00 00 00 03 fd 01 00000000      # rtmsg: /24, table UNSPEC (see RTA_TABLE), scope link
            0800 0f00 e8030000                    # RTA_TABLE 1000
            0800 0100 c0a83200                    # RTA_DST 192.168.50.0
            0800 0400 05000000                    # RTA_OIF 5
            0800 0600 4d000000                    # RTA_PRIORITY 77
            1400 0880                             # RTA_METRICS
            0800 0200 78050000                    #   RTAX_MTU 1400
            0800 0800 50050000                    #   RTAX_ADVMSS 1360
            """)
        try netlink.routeDelete(.defaultRoute(via: IPAddress("10.88.0.1")!), dev: eth0)
        expect("""
            2c000000 1900 0500 00000000 00000000  # RTM_DELROUTE, REQUEST|ACK
            02 00 00 00 fe 00 00 00 00000000      # rtmsg: no protocol, scope or type to match
            0800 0500 0a580001
            0800 0400 05000000
            """)
        _ = try netlink.routes(.v6)
        expect("""
            1c000000 1a00 0103 00000000 00000000  # RTM_GETROUTE, REQUEST|DUMP
            0a 00 00 00 00 00 00 00 00000000      # rtmsg: AF_INET6
            """)
    }

    @Test func rulesetGeneration() {
        #expect(hexDump(NetlinkRequest.rulesetGenerationGet().bytes) == hexDump(hex("""
            14000000 100a 0500 00000000 00000000  # len 20, NFNL_SUBSYS_NFTABLES<<8 | NFT_MSG_GETGEN, REQUEST|ACK
            00 00 0000                            # nfgenmsg: AF_UNSPEC, NFNETLINK_V0, res_id 0
            """)))
    }

    @Test func aBatchIsOneSendWithItsRequestsInOrder() throws {
        let requests: [NetlinkRequest] = [
            .linkSetUp(eth0), .addressAdd(IPPrefix("10.88.0.5/16")!, to: eth0), .linkSetUp(.named("lo")),
            .routeAdd(.defaultRoute(via: IPAddress("10.88.0.1")!), dev: eth0),
        ]
        try netlink.perform(requests)
        #expect(fake.sent.count == 1)
        #expect(fake.sent.first == requests)
        #expect(requests.map(\.operation) == ["set eth0 up", "add address 10.88.0.5/16 to eth0", "set lo up",
                                              "add route default via 10.88.0.1 dev eth0"])
    }

    @Test func errorsNameTheNamespace() throws {
        fake.replies = [.failure(NetlinkError("add address 10.88.0.5/16 to eth0", .fileExists))]
        do {
            try netlink.addressAdd(IPPrefix("10.88.0.5/16")!, to: eth0)
            Issue.record("no error")
        } catch {
            #expect(error.description == "add address 10.88.0.5/16 to eth0 in /run/netns/c1: File exists")
            #expect(error.isExists)
        }
    }

    @Test func sequenceNumbersAreWrittenAtSendTime() {
        let request = NetlinkRequest.linkSetUp(eth0)
        #expect(Array(request.bytes[8..<12]) == [0, 0, 0, 0])
        #expect(request.bytes.count == 32)
    }
}
