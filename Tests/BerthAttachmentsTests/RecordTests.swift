import BerthAttachments
import BerthCNI
import BerthFirewall
import BerthIP
import BerthJSON
import BerthNetlink
import BerthTestSupport
import Foundation
import Testing

/// Attachment records: their JSON for every mode, the store, and joins across networks. Pure:
/// files in a scratch directory, namespace identities given as values.
@Suite struct AttachmentRecordTests {
    static let namespace = NetworkNamespace.Identity(device: 4, inode: 4026532240)

    static let records: [AttachmentRecord] = [
        AttachmentRecord(containerID: "web", ifname: "eth0", network: "berth", netns: "/run/netns/web", namespace: namespace,
                         mode: .bridge(BridgeAttachment(
                            bridge: "berth0", hostInterface: "veth0123abcd",
                            ips: [.init(address: IPPrefix("10.88.0.2/16")!, gateway: IPAddress("10.88.0.1")!)],
                            defaultGateways: [IPAddress("10.88.0.1")!],
                            ports: [PortMapping(proto: .tcp, hostPort: 8080, containerIP: IPAddress("10.88.0.2")!, containerPort: 80)],
                            masquerade: true, icc: false))),
        AttachmentRecord(containerID: "h", ifname: "eth0", network: "hostnet", netns: "/proc/1/ns/net", namespace: namespace,
                         mode: .host(HostAttachment(ports: [PortRequest(hostIP: IPAddress("127.0.0.1")!, proto: .udp, hostPort: 53, containerPort: 53)]))),
        AttachmentRecord(containerID: "side", ifname: "eth0", network: "joined", netns: "/run/netns/web", namespace: namespace,
                         mode: .container(ContainerJoin(containerID: "web", network: "berth", ifname: "eth0"))),
    ]

    @Test(arguments: records)
    func everyModeRoundTrips(record: AttachmentRecord) throws {
        let text = record.json.serialized(pretty: true)
        #expect(try AttachmentRecord(json: JSONCursor(JSON.parse(text))) == record)
        #expect(try JSON.parse(text)["mode"]?.stringValue == record.mode.name)
    }

    /// A record berth-bridge wrote before records had a mode or a namespace identity.
    @Test func aRecordFromBeforeModesIsABridgeRecord() throws {
        let text = """
        {"version": 1, "containerID": "old", "ifname": "eth0", "network": "berth", "netns": "/run/netns/old",
         "bridge": "berth0", "hostInterface": "vethdeadbeef", "ips": [{"address": "10.88.0.9/16", "gateway": "10.88.0.1"}],
         "defaultGateways": ["10.88.0.1"], "ports": [], "masquerade": true, "icc": true}
        """
        let record = try AttachmentRecord(json: JSONCursor(JSON.parse(text)))
        #expect(record.namespace == nil)
        #expect(record.bridge?.hostInterface == "vethdeadbeef")
        #expect(record.bridge?.ips.map(\.address) == [IPPrefix("10.88.0.9/16")!])
    }

    @Test func anUnknownModeNamesTheField() throws {
        let text = #"{"containerID": "x", "ifname": "eth0", "network": "n", "mode": "macvlan"}"#
        #expect(throws: JSONShapeError(path: "mode", problem: "unknown mode \"macvlan\"")) {
            try AttachmentRecord(json: JSONCursor(JSON.parse(text)))
        }
    }

    @Test func storeSavesLoadsListsAndRemoves() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(directory) }
        let store = try RecordStore(stateDirectory: directory + "/state", network: "berth")
        let record = Self.records[0]
        try store.save(record)
        try store.save(record)  // replacing is fine
        #expect(try store.load(record.attachment) == record)
        #expect(try store.all() == [record] && store.count() == 1)
        let mode = try FileManager.default.attributesOfItem(atPath: directory + "/state/berth/web:eth0.json")[.posixPermissions] as? Int
        #expect(mode == 0o600)
        try store.remove(record.attachment)
        try store.remove(record.attachment)  // twice is fine
        #expect(try store.load(record.attachment) == nil && store.count() == 0)
    }

    @Test func theStateDirectoryFindsAContainerInEveryNetworkAndSkipsDamagedRecordsWhenAsked() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(directory) }
        for record in Self.records { try RecordStore(stateDirectory: directory, network: record.network).save(record) }
        let state = StateDirectory(directory)
        #expect(try state.networks() == ["berth", "hostnet", "joined"])
        #expect(try state.records(ofContainer: "web") == [Self.records[0]])
        #expect(try state.records(ofContainer: "we").isEmpty, "a prefix of an ID is another container")

        try "{ not json".write(toFile: directory + "/hostnet/broken:eth0.json", atomically: true, encoding: .utf8)
        #expect(throws: (any Error).self) { try state.records() }
        #expect(try state.records(skippingDamaged: true).count == 3)
    }

    @Test func aJoinIsOrphanedWhenItsTargetHasNoAttachmentInItsNamespace() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(directory) }
        let target = Self.records[0], join = Self.records[2]
        let targetStore = try RecordStore(stateDirectory: directory, network: target.network)
        try targetStore.save(target)
        let state = StateDirectory(directory)
        #expect(try !state.isOrphaned(join))
        #expect(try state.joinableRecords(ofContainer: "web") == [target])

        // The target re-attached in another namespace: the join's namespace is no longer managed.
        var moved = target
        moved.namespace = NetworkNamespace.Identity(device: 4, inode: 4026532999)
        try targetStore.save(moved)
        #expect(try state.isOrphaned(join))
        try targetStore.remove(target.attachment)
        #expect(try state.isOrphaned(join))
        #expect(try !state.isOrphaned(target), "only joins can be orphaned")
    }
}

@Suite struct PortRequestTests {
    @Test func readsARuntimeConfigPortMapping() throws {
        let config = try JSON.parse(#"{"runtimeConfig": {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "UDP", "hostIP": "0.0.0.0"}, {"hostPort": 53, "containerPort": 53, "hostIP": "127.0.0.1"}]}}"#)
        let requests = try PortRequest.requested(in: JSONCursor(config))
        #expect(requests == [PortRequest(proto: .udp, hostPort: 8080, containerPort: 80),
                             PortRequest(hostIP: IPAddress("127.0.0.1")!, proto: .tcp, hostPort: 53, containerPort: 53)])
        #expect(requests.map(\.description) == ["8080/udp", "53/tcp on 127.0.0.1"])
        #expect(try PortRequest.requested(in: JSONCursor(JSON.parse("{}"))).isEmpty)
    }

    /// containerd's go-cni marshals its PortMapping struct as is: Go field names, empty HostIP.
    @Test func readsGoCNIsFieldNames() throws {
        let config = try JSON.parse(#"{"runtimeConfig": {"portMappings": [{"HostPort": 8080, "ContainerPort": 80, "Protocol": "tcp", "HostIP": ""}, {"HOSTPORT": 53, "containerport": 53, "Protocol": "udp", "HostIP": "127.0.0.1"}]}}"#)
        #expect(try PortRequest.requested(in: JSONCursor(config)) == [
            PortRequest(proto: .tcp, hostPort: 8080, containerPort: 80),
            PortRequest(hostIP: IPAddress("127.0.0.1")!, proto: .udp, hostPort: 53, containerPort: 53)])
        let bad = try JSON.parse(#"{"runtimeConfig": {"portMappings": [{"HostPort": 0, "ContainerPort": 80}]}}"#)
        let thrown = #expect(throws: JSONShapeError.self) { try PortRequest.requested(in: JSONCursor(bad)) }
        #expect(thrown?.description == "runtimeConfig.portMappings[0].HostPort: 0 is not a port number")
    }

    @Test(arguments: [
        (#"{"hostPort": 0, "containerPort": 80}"#, "runtimeConfig.portMappings[0].hostPort: 0 is not a port number"),
        (#"{"hostPort": 80, "containerPort": 65536}"#, "runtimeConfig.portMappings[0].containerPort: 65536 is not a port number"),
        (#"{"containerPort": 80}"#, "runtimeConfig.portMappings[0].hostPort: is required"),
        (#"{"hostPort": 80, "containerPort": 80, "protocol": "icmp"}"#, "runtimeConfig.portMappings[0].protocol: \"icmp\" is not tcp, udp or sctp"),
    ])
    func aBadMappingNamesItsKey(mapping: String, error: String) throws {
        let config = try JSON.parse(#"{"runtimeConfig": {"portMappings": [\#(mapping)]}}"#)
        let thrown = #expect(throws: JSONShapeError.self) { try PortRequest.requested(in: JSONCursor(config)) }
        #expect(thrown?.description == error)
    }
}
