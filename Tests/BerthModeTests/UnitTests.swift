@testable import BerthContainer
@testable import BerthHost
import BerthAttachments
import BerthCNI
import BerthFirewall
import BerthIP
import BerthJSON
import BerthTestSupport
import Testing

/// What berth-host and berth-container decide without the kernel.
@Suite struct HostPortUnitTests {
    @Test(arguments: [
        ("0100007F:1F90", "127.0.0.1", 8080),
        ("00000000:0035", "0.0.0.0", 53),
        ("0102000A:01BB", "10.0.2.1", 443),
        ("00000000000000000000000001000000:0050", "::1", 80),
        ("B80D0120000000000000000001000000:1F91", "2001:db8::1", 8081),
    ])
    func procNetAddressesDecode(text: String, address: String, port: Int) {
        let decoded = ProcSocketAddress(text[...])
        #expect(decoded?.address == IPAddress(address) && decoded?.port == UInt16(port))
    }

    @Test func garbageIsNotAnAddress() {
        #expect(ProcSocketAddress("local_address") == nil)
        #expect(ProcSocketAddress("0100007F:XYZ") == nil)
    }

    @Test func bindingsOverlapOnTheSameProtocolPortAndAddressOrAWildcard() {
        let any = PortRequest(proto: .tcp, hostPort: 80, containerPort: 80)
        let loopback = PortRequest(hostIP: IPAddress("127.0.0.1")!, proto: .tcp, hostPort: 80, containerPort: 80)
        let uplink = PortRequest(hostIP: IPAddress("192.0.2.1")!, proto: .tcp, hostPort: 80, containerPort: 80)
        #expect(any.overlaps(loopback) && loopback.overlaps(any) && loopback.overlaps(loopback))
        #expect(!loopback.overlaps(uplink))
        #expect(!any.overlaps(PortRequest(proto: .udp, hostPort: 80, containerPort: 80)))
        #expect(!any.overlaps(PortRequest(proto: .tcp, hostPort: 81, containerPort: 80)))

        let publishedAnyV6 = PortMapping(proto: .tcp, hostPort: 80, containerIP: IPAddress("fd00::2")!, containerPort: 80)
        let publishedOnUplink = PortMapping(hostIP: IPAddress("192.0.2.1")!, proto: .tcp, hostPort: 80,
                                            containerIP: IPAddress("10.88.0.2")!, containerPort: 80)
        #expect(any.overlaps(publishedAnyV6) && any.overlaps(publishedOnUplink))
        #expect(!loopback.overlaps(publishedAnyV6), "an IPv6 wildcard does not take an IPv4 address")
        #expect(!loopback.overlaps(publishedOnUplink) && uplink.overlaps(publishedOnUplink))
    }
}

@Suite struct ContainerConfigUnitTests {
    func config(_ json: String, args: String = "") throws -> ContainerConfig {
        let environment = try CNIEnvironment(variables: ["CNI_COMMAND=ADD", "CNI_CONTAINERID=joiner", "CNI_NETNS=/run/netns/x",
                                                         "CNI_IFNAME=eth0", "CNI_PATH=/opt/cni/bin", "CNI_ARGS=\(args)"])
        let bytes = Array(#"{"cniVersion": "1.1.0", "name": "joined", "type": "berth-container"\#(json)}"#.utf8)
        return try ContainerConfig(CNIRequest(environment: environment, config: NetworkConfig(parsing: bytes), stdin: bytes))
    }

    @Test func theTargetComesFromTheConfigThenCNIArgsThenRuntimeConfig() throws {
        #expect(try config("").target == nil)
        #expect(try config(#", "container": "a""#).target == "a")
        #expect(try config(#", "container": "a""#, args: "BERTH_JOIN=b").target == "b")
        #expect(try config(#", "container": "a", "runtimeConfig": {"joinContainer": "c"}"#, args: "BERTH_JOIN=b").target == "c")
        #expect(try config("", args: "K8S_POD_NAME=web;BERTH_JOIN=b").target == "b")
    }

    @Test func aContainerCannotJoinItself() throws {
        let error = #expect(throws: CNIError.self) { try config(#", "container": "joiner""#).requireTarget(joiner: "joiner") }
        #expect(error?.code == .invalidConfig)
    }
}

/// The two executables answer the protocol's plumbing as every Berth plugin does.
@Suite struct ModePluginBinaryTests {
    @Test(arguments: ["berth-host", "berth-container"])
    func versionAndAbout(executable: String) throws {
        let version = try runExecutable(executable, environment: ["CNI_COMMAND=VERSION"], stdin: Array(#"{"cniVersion":"0.4.0"}"#.utf8))
        #expect(version.status == 0)
        #expect(try JSON.parse(version.stdout).serialized()
            == #"{"cniVersion":"0.4.0","supportedVersions":["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}"#)
        let about = try runExecutable(executable, environment: [], stdin: [])
        #expect(about.status == 0 && about.stderr.hasPrefix("\(executable): Docker-style "), "\(about.stderr)")
    }

    @Test(arguments: ["berth-host", "berth-container"])
    func commandsTheConfigsVersionLacksAreCode1(executable: String) throws {
        let config = Array(#"{"cniVersion":"0.3.1","name":"n","type":"\#(executable)"}"#.utf8)
        let check = try runExecutable(executable, environment: ["CNI_COMMAND=CHECK", "CNI_CONTAINERID=c", "CNI_NETNS=/proc/self/ns/net",
                                                                "CNI_IFNAME=eth0", "CNI_PATH=/opt/cni/bin"], stdin: config)
        #expect(CNIError(json: try JSON.parse(check.stdout))?.code == .incompatibleVersion)
        let gc = try runExecutable(executable, environment: ["CNI_COMMAND=GC", "CNI_PATH=/opt/cni/bin"], stdin: config)
        #expect(CNIError(json: try JSON.parse(gc.stdout))?.code == .incompatibleVersion)
    }
}
