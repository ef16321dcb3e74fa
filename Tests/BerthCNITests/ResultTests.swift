import BerthCNI
import BerthIP
import BerthJSON
import BerthTestSupport
import Testing

/// A bridge ADD's result: bridge, host veth, container interface; dual-stack; a route with every
/// 1.1 attribute; DNS.
let sampleResult = CNIResult(
    interfaces: [
        .init(name: "berth0", mac: "02:42:0a:58:00:01", mtu: 1500),
        .init(name: "vethab12cd34", mac: "9a:1b:2c:3d:4e:5f", mtu: 1500),
        .init(name: "eth0", mac: "02:42:0a:58:00:05", mtu: 1500, sandbox: "/var/run/netns/c1",
              socketPath: "/run/vhost.sock", pciID: "0000:00:1f.6"),
    ],
    ips: [
        .init(interface: 2, address: IPPrefix("10.88.0.5/16")!, gateway: IPAddress("10.88.0.1")!),
        .init(interface: 2, address: IPPrefix("fd00:88::5/64")!, gateway: IPAddress("fd00:88::1")!),
    ],
    routes: [
        .init(destination: IPPrefix("0.0.0.0/0")!, gateway: IPAddress("10.88.0.1")!,
              mtu: 1400, advmss: 1360, priority: 100, table: 0, scope: 0),
        .init(destination: IPPrefix("::/0")!, gateway: IPAddress("fd00:88::1")!),
        .init(destination: IPPrefix("192.168.7.0/24")!),
    ],
    dns: .init(nameservers: ["10.88.0.1"], domain: "berth.local", search: ["example.com"], options: ["ndots:2"])
)

/// The sample in every version's shape, as Berth prints it (compact here; plugins indent).
let sampleVectors: [(CNIVersion, String)] = {
    let interfaces04 = #""interfaces":[{"name":"berth0","mac":"02:42:0a:58:00:01"},{"name":"vethab12cd34","mac":"9a:1b:2c:3d:4e:5f"},{"name":"eth0","mac":"02:42:0a:58:00:05","sandbox":"/var/run/netns/c1"}]"#
    let routes04 = #""routes":[{"dst":"0.0.0.0/0","gw":"10.88.0.1"},{"dst":"::/0","gw":"fd00:88::1"},{"dst":"192.168.7.0/24"}]"#
    let dns = #""dns":{"nameservers":["10.88.0.1"],"domain":"berth.local","search":["example.com"],"options":["ndots:2"]}"#
    let ips04 = #""ips":[{"version":"4","interface":2,"address":"10.88.0.5/16","gateway":"10.88.0.1"},{"version":"6","interface":2,"address":"fd00:88::5/64","gateway":"fd00:88::1"}]"#
    let ips10 = #""ips":[{"interface":2,"address":"10.88.0.5/16","gateway":"10.88.0.1"},{"interface":2,"address":"fd00:88::5/64","gateway":"fd00:88::1"}]"#
    let ip020 = #""ip4":{"ip":"10.88.0.5/16","gateway":"10.88.0.1","routes":[{"dst":"0.0.0.0/0","gw":"10.88.0.1"},{"dst":"192.168.7.0/24"}]},"ip6":{"ip":"fd00:88::5/64","gateway":"fd00:88::1","routes":[{"dst":"::/0","gw":"fd00:88::1"}]}"#
    return [
        (.v0_1_0, #"{"cniVersion":"0.1.0","# + ip020 + "," + dns + "}"),
        (.v0_2_0, #"{"cniVersion":"0.2.0","# + ip020 + "," + dns + "}"),
        (.v0_3_0, #"{"cniVersion":"0.3.0","# + interfaces04 + "," + ips04 + "," + routes04 + "," + dns + "}"),
        (.v0_3_1, #"{"cniVersion":"0.3.1","# + interfaces04 + "," + ips04 + "," + routes04 + "," + dns + "}"),
        (.v0_4_0, #"{"cniVersion":"0.4.0","# + interfaces04 + "," + ips04 + "," + routes04 + "," + dns + "}"),
        (.v1_0_0, #"{"cniVersion":"1.0.0","# + interfaces04 + "," + ips10 + "," + routes04 + "," + dns + "}"),
        (.v1_1_0, #"{"cniVersion":"1.1.0","interfaces":[{"name":"berth0","mac":"02:42:0a:58:00:01","mtu":1500},{"name":"vethab12cd34","mac":"9a:1b:2c:3d:4e:5f","mtu":1500},{"name":"eth0","mac":"02:42:0a:58:00:05","mtu":1500,"sandbox":"/var/run/netns/c1","socketPath":"/run/vhost.sock","pciID":"0000:00:1f.6"}],"# + ips10 + #","routes":[{"dst":"0.0.0.0/0","gw":"10.88.0.1","mtu":1400,"advmss":1360,"priority":100,"table":0,"scope":0},{"dst":"::/0","gw":"fd00:88::1"},{"dst":"192.168.7.0/24"}],"# + dns + "}"),
    ]
}()

/// What is left of the sample after a trip through `version` (fields the version lacks dropped).
func sampleAsReadBack(in version: CNIVersion) -> CNIResult {
    var result = sampleResult
    switch version.resultShape {
    case .ipsWithRouteAttributes:
        break
    case .ips, .ipsWithVersion:
        for index in result.interfaces.indices {
            result.interfaces[index].mtu = nil
            result.interfaces[index].socketPath = nil
            result.interfaces[index].pciID = nil
        }
        for index in result.routes.indices {
            result.routes[index] = .init(destination: result.routes[index].destination, gateway: result.routes[index].gateway)
        }
    case .ipPerFamily:
        result.interfaces = []
        result.ips = result.ips.map { .init(address: $0.address, gateway: $0.gateway) }
        // 0.2.0 keeps routes per family, v4 first.
        let plain = result.routes.map { CNIResult.Route(destination: $0.destination, gateway: $0.gateway) }
        result.routes = plain.filter { $0.destination.family == .v4 } + plain.filter { $0.destination.family == .v6 }
    }
    return result
}

@Suite struct ResultEncodingTests {
    @Test(arguments: sampleVectors.map(\.0))
    func encodesEveryVersionExactly(version: CNIVersion) throws {
        let expected = try #require(sampleVectors.first { $0.0 == version }?.1)
        #expect(try sampleResult.json(version: version).serialized() == expected)
    }

    @Test(arguments: sampleVectors.map(\.0))
    func decodesEveryVersion(version: CNIVersion) throws {
        let text = try #require(sampleVectors.first { $0.0 == version }?.1)
        let decoded = try CNIResult(json: JSONCursor(JSON.parse(text)), version: version)
        #expect(decoded == sampleAsReadBack(in: version))
    }

    /// Every version converts to every other: read in one, write in the next, read again.
    @Test(arguments: CNIVersion.allCases)
    func convertsBetweenAllVersions(from: CNIVersion) throws {
        let text = try #require(sampleVectors.first { $0.0 == from }?.1)
        let decoded = try CNIResult(json: JSONCursor(JSON.parse(text)), version: from)
        for to in CNIVersion.allCases {
            let converted = try decoded.json(version: to)
            guard case .object(let object) = converted else { Issue.record("not an object"); continue }
            #expect(object["cniVersion"] == .string(to.rawValue))
            let back = try CNIResult(json: JSONCursor(converted), version: to)
            // What survives is what the poorer of the two versions can express.
            let poorer = min(from, to)
            let expected = poorer.resultShape == .ipPerFamily
                ? sampleAsReadBack(in: .v0_2_0)
                : (poorer == .v1_1_0 ? sampleResult : sampleAsReadBack(in: poorer))
            #expect(back == expected, "\(from) → \(to)")
        }
    }

    @Test func downConversionToPerFamilyKeepsTheFirstAddressOfEachFamily() throws {
        let result = CNIResult(ips: [
            .init(address: IPPrefix("10.1.0.2/24")!), .init(address: IPPrefix("10.2.0.2/24")!),
            .init(address: IPPrefix("fd01::2/64")!), .init(address: IPPrefix("fd02::2/64")!),
        ])
        #expect(try result.json(version: .v0_2_0).serialized()
            == #"{"cniVersion":"0.2.0","ip4":{"ip":"10.1.0.2/24"},"ip6":{"ip":"fd01::2/64"}}"#)
    }

    @Test(arguments: [CNIVersion.v0_1_0, .v0_2_0])
    func resultWithoutAddressesCannotBeExpressedInPerFamilyVersions(version: CNIVersion) {
        let result = CNIResult(interfaces: [.init(name: "eth0", sandbox: "/run/netns/c")])
        #expect(throws: CNIError.self) { try result.json(version: version) }
        do {
            _ = try result.json(version: version)
        } catch {
            #expect(error.code == .incompatibleVersion)
            #expect(error.msg.contains("without IP addresses"))
        }
    }

    @Test func resultWithoutAddressesIsFineFromVersion030() throws {
        let result = CNIResult(interfaces: [.init(name: "eth0", sandbox: "/run/netns/c")])
        #expect(try result.json(version: .v0_3_0).serialized()
            == #"{"cniVersion":"0.3.0","interfaces":[{"name":"eth0","sandbox":"/run/netns/c"}]}"#)
    }

    @Test(arguments: CNIVersion.allCases.filter { $0 >= .v0_3_0 })
    func interfaceIndexZeroIsEmitted(version: CNIVersion) throws {
        let result = CNIResult(interfaces: [.init(name: "eth0")],
                               ips: [.init(interface: 0, address: IPPrefix("10.0.0.2/24")!)])
        let text = try result.json(version: version).serialized()
        #expect(text.contains(#""interface":0"#))
    }

    @Test(arguments: CNIVersion.allCases)
    func emptyDNSIsOmitted(version: CNIVersion) throws {
        let result = CNIResult(ips: [.init(address: IPPrefix("10.0.0.2/24")!)], dns: .init(domain: ""))
        #expect(!(try result.json(version: version).serialized().contains("dns")))
    }

    @Test func routeAttributesOfVersion11AreDroppedBelowIt() throws {
        let result = CNIResult(ips: [.init(address: IPPrefix("10.0.0.2/24")!)],
                               routes: [.init(destination: IPPrefix("10.9.0.0/16")!, mtu: 1400, table: 7, scope: 253)])
        #expect(try result.json(version: .v1_0_0).serialized()
            == #"{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24"}],"routes":[{"dst":"10.9.0.0/16"}]}"#)
        #expect(try result.json(version: .v1_1_0).serialized()
            == #"{"cniVersion":"1.1.0","ips":[{"address":"10.0.0.2/24"}],"routes":[{"dst":"10.9.0.0/16","mtu":1400,"table":7,"scope":253}]}"#)
    }
}

@Suite struct ResultDecodingTests {
    func decode(_ text: String, _ version: CNIVersion) throws -> CNIResult {
        try CNIResult(json: JSONCursor(JSON.parse(text), path: "prevResult"), version: version)
    }

    @Test(arguments: [
        (#"{"ips":[{"gateway":"10.0.0.1"}]}"#, CNIVersion.v1_0_0, "prevResult.ips[0].address: is required"),
        (#"{"ips":[{"address":"10.0.0.2"}]}"#, .v1_0_0, #"prevResult.ips[0].address: "10.0.0.2" is not an address with a prefix length (CIDR)"#),
        (#"{"ips":[{"address":"10.0.0.2/24","gateway":"10.0.0.300"}]}"#, .v1_0_0, #"prevResult.ips[0].gateway: "10.0.0.300" is not an IP address"#),
        (#"{"ips":[{"version":"6","address":"10.0.0.2/24"}]}"#, .v0_4_0, #"prevResult.ips[0].version: "6" does not match address 10.0.0.2/24"#),
        (#"{"ips":[{"interface":-1,"address":"10.0.0.2/24"}]}"#, .v1_0_0, "prevResult.ips[0].interface: must not be negative"),
        (#"{"interfaces":[{"mac":"x"}]}"#, .v1_0_0, "prevResult.interfaces[0].name: is required"),
        (#"{"routes":[{"gw":"10.0.0.1"}]}"#, .v1_1_0, "prevResult.routes[0].dst: is required"),
        (#"{"ip4":{"gateway":"10.0.0.1"}}"#, .v0_2_0, "prevResult.ip4.ip: is required"),
        (#"{"ip4":{"ip":"fd00::2/64"}}"#, .v0_2_0, "prevResult.ip4.ip: fd00::2/64 is not an IPv4 address"),
        (#"{"ip6":{"ip":"10.0.0.2/24"}}"#, .v0_1_0, "prevResult.ip6.ip: 10.0.0.2/24 is not an IPv6 address"),
        (#"{"dns":{"nameservers":"10.0.0.1"}}"#, .v1_0_0, "prevResult.dns.nameservers: expected an array, found a string"),
        (#"[]"#, .v1_0_0, "prevResult: expected an object, found an array"),
    ])
    func namesTheOffendingField(text: String, version: CNIVersion, message: String) {
        do {
            _ = try decode(text, version)
            Issue.record("decoded \(text)")
        } catch {
            #expect("\(error)" == message)
        }
    }

    @Test func perFamilyResultBecomesIPsWithoutInterfaceIndex() throws {
        let result = try decode(#"{"cniVersion":"0.2.0","ip4":{"ip":"10.1.0.5/24","gateway":"10.1.0.1","routes":[{"dst":"0.0.0.0/0"}]}}"#, .v0_2_0)
        #expect(result == CNIResult(ips: [.init(address: IPPrefix("10.1.0.5/24")!, gateway: IPAddress("10.1.0.1")!)],
                                    routes: [.init(destination: IPPrefix("0.0.0.0/0")!)]))
        #expect(try result.json(version: .v1_0_0).serialized()
            == #"{"cniVersion":"1.0.0","ips":[{"address":"10.1.0.5/24","gateway":"10.1.0.1"}],"routes":[{"dst":"0.0.0.0/0"}]}"#)
    }
}
