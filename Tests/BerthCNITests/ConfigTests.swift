import BerthCNI
import BerthIP
import BerthJSON
import BerthTestSupport
import Testing

func parseConfig(_ text: String) -> Result<NetworkConfig, CNIError> {
    Result { () throws(CNIError) in try NetworkConfig(parsing: Array(text.utf8)) }
}

@Suite struct NetworkConfigTests {
    @Test func readsTheSharedKeysAndKeepsEverythingElse() throws {
        let config = try parseConfig(#"""
            {"cniVersion":"1.0.0","name":"berth","type":"berth-bridge","bridge":"berth0",
             "capabilities":{"portMappings":true},
             "ipam":{"type":"host-local","ranges":[[{"subnet":"10.88.0.0/16"}]]},
             "dns":{"nameservers":["10.88.0.1"]},
             "runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]},
             "args":{"cni":{"ips":["10.88.0.9"]}},
             "somethingNew":{"x":1}}
            """#).get()
        #expect(config.cniVersion == .v1_0_0)
        #expect(config.name == "berth")
        #expect(config.type == "berth-bridge")
        #expect(config.ipamType == "host-local")
        #expect(config.dns?.nameservers == ["10.88.0.1"])
        #expect(config.runtimeConfig["portMappings"] != nil)
        #expect(config.args["cni"] != nil)
        #expect(config.raw.keys == ["cniVersion", "name", "type", "bridge", "capabilities", "ipam", "dns",
                                    "runtimeConfig", "args", "somethingNew"])
        #expect(config.prevResult == nil)
        #expect(config.validAttachments == nil)
    }

    @Test func missingVersionMeans010() throws {
        #expect(try parseConfig(#"{"name":"n","type":"t"}"#).get().cniVersion == .v0_1_0)
    }

    @Test(arguments: ["1.2.0", "0.5.0", "1.0", "v1.0.0", ""])
    func unsupportedVersionIsCode1ListingTheSupportedOnes(version: String) throws {
        #expect(throws: CNIError.self) { try parseConfig(#"{"cniVersion":"\#(version)","name":"n","type":"t"}"#).get() }
        if case .failure(let error) = parseConfig(#"{"cniVersion":"\#(version)","name":"n","type":"t"}"#) {
            #expect(error.code == .incompatibleVersion)
            #expect(error.details == "supported versions: 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0")
        }
    }

    @Test(arguments: [
        ("", CNIError.Code.decodingFailure, "network configuration is not valid JSON: empty document at byte 0"),
        ("{", .decodingFailure, "network configuration is not valid JSON: expected a member name at byte 1"),
        ("[1]", .decodingFailure, "network configuration must be a JSON object, found an array"),
        (#"{"cniVersion":1,"name":"n","type":"t"}"#, .invalidConfig, "invalid network configuration: cniVersion: expected a string, found a number"),
        (#"{"cniVersion":"1.0.0","type":"t"}"#, .invalidConfig, "invalid network configuration: name: is required"),
        (#"{"cniVersion":"1.0.0","name":"../etc","type":"t"}"#, .invalidConfig, #"invalid network configuration: name: "../etc" must match ^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$"#),
        (#"{"cniVersion":"1.0.0","name":"a/b","type":"t"}"#, .invalidConfig, #"invalid network configuration: name: "a/b" must match ^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$"#),
        (#"{"cniVersion":"1.0.0","name":"a\u0000b","type":"t"}"#, .invalidConfig, #"invalid network configuration: name: "a\0b" must match ^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$"#),
        (#"{"cniVersion":"1.0.0","name":"n"}"#, .invalidConfig, "invalid network configuration: type: is required"),
        (#"{"cniVersion":"1.0.0","name":"n","type":"t","ipam":{}}"#, .invalidConfig, "invalid network configuration: ipam.type: is required"),
        (#"{"cniVersion":"1.0.0","name":"n","type":"t","runtimeConfig":[]}"#, .invalidConfig, "invalid network configuration: runtimeConfig: expected an object, found an array"),
        (#"{"cniVersion":"1.0.0","name":"n","type":"t","prevResult":{"ips":[{}]}}"#, .invalidConfig, "invalid network configuration: prevResult.ips[0].address: is required"),
        (#"{"cniVersion":"1.1.0","name":"n","type":"t","cni.dev/valid-attachments":[{"containerID":"a"}]}"#, .invalidConfig, "invalid network configuration: cni.dev/valid-attachments[0].ifname: is required"),
    ])
    func badInputGetsAClearError(text: String, code: CNIError.Code, message: String) {
        switch parseConfig(text) {
        case .success: Issue.record("accepted \(text)")
        case .failure(let error):
            #expect(error.code == code)
            #expect(error.msg == message)
        }
    }

    @Test func strayCapabilitiesKeyIsTolerated() throws {
        let config = try parseConfig(#"{"cniVersion":"1.0.0","name":"n","type":"t","capabilities":{"portMappings":true,"ips":"weird"}}"#).get()
        #expect(config.runtimeConfig.isEmpty)
    }

    @Test func prevResultIsReadInTheConfigsVersion() throws {
        let v020 = try parseConfig(#"{"cniVersion":"0.2.0","name":"n","type":"t","prevResult":{"cniVersion":"0.2.0","ip4":{"ip":"10.1.0.2/24"}}}"#).get()
        #expect(v020.prevResult?.ips == [.init(address: IPPrefix("10.1.0.2/24")!)])
        let v040 = try parseConfig(#"{"cniVersion":"0.4.0","name":"n","type":"t","prevResult":{"cniVersion":"0.4.0","interfaces":[{"name":"eth0","sandbox":"/x"}],"ips":[{"version":"4","interface":0,"address":"10.1.0.2/24"}]}}"#).get()
        #expect(v040.prevResult?.ips.first?.interface == 0)
        #expect(v040.prevResult?.interfaces.first?.sandbox == "/x")
        // A 1.0 result has no ip4 key, so read as 0.2.0 it carries no address.
        let mismatched = try parseConfig(#"{"cniVersion":"0.2.0","name":"n","type":"t","prevResult":{"ips":[{"address":"10.1.0.2/24"}]}}"#).get()
        #expect(mismatched.prevResult?.ips == [])
    }

    @Test func gcReadsEitherAttachmentKey() throws {
        let current = try parseConfig(#"{"cniVersion":"1.1.0","name":"n","type":"t","cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"}]}"#).get()
        #expect(current.validAttachments == [.init(containerID: "a", ifname: "eth0")])
        let older = try parseConfig(#"{"cniVersion":"1.1.0","name":"n","type":"t","cni.dev/attachments":[{"containerID":"b","ifname":"net1"}]}"#).get()
        #expect(older.validAttachments == [.init(containerID: "b", ifname: "net1")])
        let empty = try parseConfig(#"{"cniVersion":"1.1.0","name":"n","type":"t","cni.dev/valid-attachments":[]}"#).get()
        #expect(empty.validAttachments == [])
    }
}

@Suite struct NetworkConfigListTests {
    let conflist = #"""
        {"cniVersion":"1.0.0","name":"berth","disableCheck":true,"plugins":[
          {"type":"berth-bridge","bridge":"berth0","capabilities":{"portMappings":true,"ips":false},
           "ipam":{"type":"berth-ipam","ranges":[[{"subnet":"10.88.0.0/16"}]]}},
          {"type":"tuning","sysctl":{"net.core.somaxconn":"500"}}]}
        """#

    @Test func readsTheList() throws {
        let list = try NetworkConfigList(parsing: Array(conflist.utf8))
        #expect(list.name == "berth")
        #expect(list.cniVersion == .v1_0_0)
        #expect(list.disableCheck)
        #expect(!list.disableGC)
        #expect(list.plugins.count == 2)
    }

    @Test func buildsEachPluginsRequestAsLibcniDoes() throws {
        let list = try NetworkConfigList(parsing: Array(conflist.utf8))
        let capabilityArgs: JSONObject = [
            "portMappings": .array([.object(["hostPort": .int(8080), "containerPort": .int(80), "protocol": .string("tcp")])]),
            "ips": .array([.string("10.88.0.9/16")]),
        ]
        let first = try list.requestConfig(plugin: 0, capabilityArgs: capabilityArgs)
        let config = try NetworkConfig(parsing: Array(first.serialized().utf8))
        #expect(config.name == "berth" && config.cniVersion == .v1_0_0 && config.type == "berth-bridge")
        // Only declared capabilities reach the plugin.
        #expect(config.runtimeConfig.keys == ["portMappings"])

        let previous = CNIResult(ips: [.init(address: IPPrefix("10.88.0.2/16")!)])
        let second = try list.requestConfig(plugin: 1, prevResult: previous, capabilityArgs: capabilityArgs)
        let secondConfig = try NetworkConfig(parsing: Array(second.serialized().utf8))
        #expect(secondConfig.prevResult == previous)
        #expect(secondConfig.runtimeConfig.isEmpty)
        #expect(secondConfig.raw["sysctl"] != nil)
    }

    @Test func cniVersionsPicksTheNewestSupported() throws {
        let list = try NetworkConfigList(parsing: Array(#"{"cniVersions":["0.4.0","1.1.0","9.9.9"],"name":"n","plugins":[{"type":"t"}]}"#.utf8))
        #expect(list.cniVersion == .v1_1_0)
        #expect(throws: CNIError.self) {
            try NetworkConfigList(parsing: Array(#"{"cniVersions":["9.9.9"],"name":"n","plugins":[{"type":"t"}]}"#.utf8))
        }
    }

    @Test(arguments: [
        #"{"cniVersion":"1.0.0","name":"n","plugins":[]}"#,
        #"{"cniVersion":"1.0.0","name":"n"}"#,
        #"{"cniVersion":"1.0.0","name":"n","plugins":[{"bridge":"x"}]}"#,
        #"{"cniVersion":"1.0.0","name":"bad name","plugins":[{"type":"t"}]}"#,
    ])
    func rejectsInvalidLists(text: String) {
        do {
            _ = try NetworkConfigList(parsing: Array(text.utf8))
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.code == .invalidConfig)
        }
    }
}
