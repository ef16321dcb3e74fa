import BerthCNI
import BerthIP
import BerthIPAM
import BerthTestSupport
import Testing

@Suite struct IPAMConfigTests {
    @Test func defaultsFollowHostLocal() throws {
        let config = try ipamConfig(#"{"type":"berth-ipam","ranges":[[{"subnet":"10.88.0.0/16"}],[{"subnet":"fd00:88::/64"}]]}"#)
        let v4 = config.rangeSets[0].ranges[0], v6 = config.rangeSets[1].ranges[0]
        #expect(v4.gateway == IPAddress("10.88.0.1") && v4.start == IPAddress("10.88.0.1") && v4.end == IPAddress("10.88.255.254"))
        #expect(v6.gateway == IPAddress("fd00:88::1") && v6.start == IPAddress("fd00:88::1"))
        #expect(v6.end == IPAddress("fd00:88::ffff:ffff:ffff:ffff"))
        #expect(config.dataDirectory == "/var/lib/cni/networks")
        #expect(config.network == "testnet")
        #expect(config.requested.isEmpty)
        #expect(config.rangeSets[0].capacity == 65533)  // 10.88.0.1 … 10.88.255.254, less the gateway
    }

    @Test func legacyRangeAndRuntimeRangesComeFirstInHostLocalsOrder() throws {
        let config = try ipamConfig(
            #"{"type":"berth-ipam","subnet":"10.1.0.0/24","rangeStart":"10.1.0.10","rangeEnd":"10.1.0.20","gateway":"10.1.0.254","ranges":[[{"subnet":"10.2.0.0/24"}]]}"#,
            extra: #""runtimeConfig":{"ipRanges":[[{"subnet":"10.3.0.0/24"}]]}"#)
        #expect(config.rangeSets.map { $0.ranges[0].subnet.description } == ["10.3.0.0/24", "10.1.0.0/24", "10.2.0.0/24"])
        let legacy = config.rangeSets[1].ranges[0]
        #expect(legacy.start == IPAddress("10.1.0.10") && legacy.end == IPAddress("10.1.0.20") && legacy.gateway == IPAddress("10.1.0.254"))
    }

    /// containerd's go-cni passes `ipRanges` flat, with Go field names and empty strings for
    /// what is unset: each range becomes a set of its own, as a pod's CIDRs are.
    @Test func goCNIsFlatIPRangesAreOneSetPerRange() throws {
        let config = try ipamConfig(#"{"type":"berth-ipam"}"#, extra: #""runtimeConfig":{"ipRanges":[{"Subnet":"10.244.1.0/24","RangeStart":"","RangeEnd":"","Gateway":""},{"Subnet":"fd00:244:1::/64","RangeStart":"fd00:244:1::10","RangeEnd":"","Gateway":""}]}"#)
        #expect(config.rangeSets.map { $0.ranges.map(\.subnet.description) } == [["10.244.1.0/24"], ["fd00:244:1::/64"]])
        #expect(config.rangeSets[0].ranges[0].gateway == IPAddress("10.244.1.1"))
        #expect(config.rangeSets[1].ranges[0].start == IPAddress("fd00:244:1::10"))
        let error = configError(#"{"type":"berth-ipam"}"#, extra: #""runtimeConfig":{"ipRanges":[{"Subnet":"10.244.1.0/24","Gateway":"10.9.0.1"}]}"#)
        #expect("\(error.map { $0.msg + " " + $0.details } ?? "")".contains("runtimeConfig.ipRanges[0].Gateway: 10.9.0.1 is not in subnet 10.244.1.0/24"), "\(String(describing: error))")
    }

    @Test func routesDataDirAndResolvConfAreRead() throws {
        let config = try ipamConfig(#"{"type":"berth-ipam","subnet":"10.1.0.0/24","dataDir":"/tmp/leases","resolvConf":"/etc/resolv.conf","routes":[{"dst":"0.0.0.0/0"},{"dst":"192.168.0.0/16","gw":"10.1.0.5"}]}"#)
        #expect(config.routes == [.init(destination: IPPrefix("0.0.0.0/0")!),
                                  .init(destination: IPPrefix("192.168.0.0/16")!, gateway: IPAddress("10.1.0.5"))])
        #expect(config.dataDirectory == "/tmp/leases")
        #expect(config.resolvConf == "/etc/resolv.conf")
    }

    @Test func requestedAddressesFromEverySourceLandInTheirSets() throws {
        let config = try ipamConfig(
            #"{"type":"berth-ipam","ranges":[[{"subnet":"10.1.0.0/24"}],[{"subnet":"fd00::/64"}],[{"subnet":"10.2.0.0/24"}]]}"#,
            extra: #""args":{"cni":{"ips":["fd00::9"]}},"runtimeConfig":{"ips":["10.2.0.9/24"]}"#,
            cniArgs: "IgnoreUnknown=1;IP=10.1.0.9;K8S_POD_NAME=x")
        #expect(config.requested == [0: IPAddress("10.1.0.9")!, 1: IPAddress("fd00::9")!, 2: IPAddress("10.2.0.9")!])
    }

    @Test(arguments: [
        (#"{"type":"berth-ipam"}"#, "ipam.ranges: at least one range is required (or ipam.subnet)"),
        (#"{"type":"berth-ipam","ranges":[]}"#, "ipam.ranges: at least one range is required (or ipam.subnet)"),
        (#"{"type":"berth-ipam","ranges":[[]]}"#, "ipam.ranges[0]: must list at least one range"),
        (#"{"type":"berth-ipam","ranges":[[{"gateway":"10.0.0.1"}]]}"#, "ipam.ranges[0][0].subnet: is required"),
        (#"{"type":"berth-ipam","ranges":[[{"subnet":"10.0.0.0"}]]}"#, #"ipam.ranges[0][0].subnet: "10.0.0.0" is not an address with a prefix length (CIDR)"#),
        (#"{"type":"berth-ipam","ranges":[[{"subnet":"10.0.0.0/31"}]]}"#, "ipam.ranges[0][0].subnet: 10.0.0.0/31 is too small to allocate from (a /31 has no host addresses besides the gateway)"),
        (#"{"type":"berth-ipam","ranges":[[{"subnet":"10.0.0.1/32"}]]}"#, "ipam.ranges[0][0].subnet: 10.0.0.1/32 is too small to allocate from (a /32 has no host addresses besides the gateway)"),
        (#"{"type":"berth-ipam","ranges":[[{"subnet":"fd00::/127"}]]}"#, "ipam.ranges[0][0].subnet: fd00::/127 is too small to allocate from (a /127 has no host addresses besides the gateway)"),
        (#"{"type":"berth-ipam","ranges":[[{"subnet":"10.88.0.5/16"}]]}"#, "ipam.ranges[0][0].subnet: 10.88.0.5/16 has host bits set; the network is 10.88.0.0/16"),
        (#"{"type":"berth-ipam","ranges":[[{"subnet":"10.88.0.0/16","rangeStart":"10.89.0.1"}]]}"#, "ipam.ranges[0][0].rangeStart: 10.89.0.1 is not in subnet 10.88.0.0/16"),
        (#"{"type":"berth-ipam","ranges":[[{"subnet":"10.88.0.0/16","rangeEnd":"10.89.0.1"}]]}"#, "ipam.ranges[0][0].rangeEnd: 10.89.0.1 is not in subnet 10.88.0.0/16"),
        (#"{"type":"berth-ipam","ranges":[[{"subnet":"10.88.0.0/16","gateway":"10.89.0.1"}]]}"#, "ipam.ranges[0][0].gateway: 10.89.0.1 is not in subnet 10.88.0.0/16"),
        (#"{"type":"berth-ipam","ranges":[[{"subnet":"10.88.0.0/16","gateway":"fd00::1"}]]}"#, "ipam.ranges[0][0].gateway: fd00::1 is not an IPv4 address like subnet 10.88.0.0/16"),
        (#"{"type":"berth-ipam","ranges":[[{"subnet":"10.88.0.0/16","rangeStart":"10.88.0.9","rangeEnd":"10.88.0.5"}]]}"#, "ipam.ranges[0][0]: rangeStart 10.88.0.9 is after rangeEnd 10.88.0.5"),
        (#"{"type":"berth-ipam","ranges":[[{"subnet":"10.88.0.0/16"},{"subnet":"fd00::/64"}]]}"#, "ipam.ranges[0][1]: IPv6 range in a set of IPv4 ranges (one family per set)"),
        (#"{"type":"berth-ipam","ranges":[[{"subnet":"10.88.0.0/16"},{"subnet":"10.88.5.0/24"}]]}"#, "ipam.ranges[0][1]: 10.88.5.1-10.88.5.254 overlaps 10.88.0.1-10.88.255.254 in the same set"),
        (#"{"type":"berth-ipam","ranges":[[{"subnet":"10.88.0.0/16"}],[{"subnet":"10.88.5.0/24"}]]}"#, "ipam.ranges[1]: overlaps ipam.ranges[0] (10.88.0.1-10.88.255.254)"),
        (#"{"type":"berth-ipam","subnet":"10.88.0.0/16","ranges":[[{"subnet":"10.88.0.0/24"}]]}"#, "ipam.ranges[0]: overlaps ipam (10.88.0.1-10.88.255.254)"),
        (#"{"type":"berth-ipam","subnet":"10.88.0.0/16","dataDir":"var/lib"}"#, #"ipam.dataDir: "var/lib" must be an absolute path without '..'"#),
        (#"{"type":"berth-ipam","subnet":"10.88.0.0/16","dataDir":"/var/lib/../../etc"}"#, #"ipam.dataDir: "/var/lib/../../etc" must be an absolute path without '..'"#),
        (#"{"type":"berth-ipam","subnet":"10.88.0.0/16","routes":[{"gw":"10.88.0.1"}]}"#, "ipam.routes[0].dst: is required"),
    ])
    func invalidConfigIsCode7NamingTheField(ipam: String, message: String) throws {
        let error = try #require(configError(ipam))
        #expect(error.code == .invalidConfig)
        #expect(error.msg == "invalid network configuration: " + message)
    }

    @Test(arguments: [
        (#""runtimeConfig":{"ips":["10.99.0.5"]}"#, "", "runtimeConfig.ips[0]: requested address 10.99.0.5 is not in any range set"),
        (#""runtimeConfig":{"ips":["10.88.0.1"]}"#, "", "runtimeConfig.ips[0]: requested address 10.88.0.1 is the gateway of its range"),
        (#""args":{"cni":{"ips":["banana"]}}"#, "", #"args.cni.ips[0]: "banana" is not an IP address"#),
        ("", "IP=10.88.0.300", #"CNI_ARGS IP: "10.88.0.300" is not an IP address"#),
        (#""runtimeConfig":{"ips":["10.88.0.5","10.88.0.6"]}"#, "", "runtimeConfig.ips[1]: requested address 10.88.0.6 is in the same range set as 10.88.0.5; one address per set"),
    ])
    func invalidRequestedAddressesAreCode7(extra: String, cniArgs: String, message: String) throws {
        let error = try #require(configError(#"{"type":"berth-ipam","subnet":"10.88.0.0/16"}"#, extra: extra, cniArgs: cniArgs))
        #expect(error.code == .invalidConfig)
        #expect(error.msg == "invalid network configuration: " + message)
    }

    @Test func theSameAddressFromTwoSourcesIsOneRequest() throws {
        let config = try ipamConfig(#"{"type":"berth-ipam","subnet":"10.88.0.0/16"}"#,
                                    extra: #""runtimeConfig":{"ips":["10.88.0.5"]}"#, cniArgs: "IP=10.88.0.5")
        #expect(config.requested == [0: IPAddress("10.88.0.5")!])
    }

    @Test func perFamilyVersionsTakeOneSetPerFamily() throws {
        let twoV4 = #"{"type":"berth-ipam","ranges":[[{"subnet":"10.1.0.0/24"}],[{"subnet":"10.2.0.0/24"}]]}"#
        #expect(configError(twoV4, version: "0.2.0")?.code == .invalidConfig)
        #expect(configError(twoV4, version: "0.3.0") == nil)
        #expect(configError(#"{"type":"berth-ipam","ranges":[[{"subnet":"10.1.0.0/24"}],[{"subnet":"fd00::/64"}]]}"#, version: "0.2.0") == nil)
    }

    @Test func missingIPAMSectionIsCode7() throws {
        let error = try #require(try? NetworkConfig(parsing: Array(#"{"cniVersion":"1.0.0","name":"n","type":"t"}"#.utf8)))
        #expect(throws: CNIError(.invalidConfig, "invalid network configuration: ipam: is required")) {
            try IPAMConfig(config: error)
        }
    }
}

@Suite struct ResolvConfTests {
    @Test func readsServersDomainSearchAndOptions() {
        let dns = ResolvConf.parse("""
            # generated
            ; also a comment
            nameserver 10.88.0.1
            nameserver fd00::53
            domain berth.local
            search a.example b.example
            options ndots:2 timeout:1
            options edns0
            """)
        #expect(dns == .init(nameservers: ["10.88.0.1", "fd00::53"], domain: "berth.local",
                             search: ["a.example", "b.example"], options: ["ndots:2", "timeout:1", "edns0"]))
    }

    @Test func unreadableFileIsAnError() {
        #expect(throws: CNIError.self) { try ResolvConf.load("/nonexistent/resolv.conf", key: "ipam.resolvConf") }
    }
}

@Suite struct IPAMErrorCodeTests {
    @Test func everyCodeIsDocumentedInTheREADME() throws {
        let readme = String(decoding: try readFile(repositoryRoot + "/README.md"), as: UTF8.self)
        let codes: [CNIError.Code] = [.addressesExhausted, .addressUnavailable, .addressAlreadyAllocated, .leaseStoreFailed, .leaseMissing]
        for code in codes { #expect(readme.contains("\n| \(code.rawValue) | berth-ipam"), "code \(code) has no row in README.md") }
    }
}
