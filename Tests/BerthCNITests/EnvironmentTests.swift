import BerthCNI
import BerthTestSupport
import Testing

/// A complete environment for `command`, minus `dropping`, with `overrides` applied.
func cniEnvironment(_ command: String, dropping: Set<String> = [], _ overrides: [String: String] = [:]) -> [String] {
    var values = [
        "CNI_COMMAND": command, "CNI_CONTAINERID": "c0ffee-1", "CNI_NETNS": "/var/run/netns/c1",
        "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin:/usr/lib/cni", "PATH": "/usr/bin",
    ]
    for name in dropping { values[name] = nil }
    values.merge(overrides) { $1 }
    return values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
}

func environmentError(_ variables: [String]) -> CNIError? {
    do {
        _ = try CNIEnvironment(variables: variables)
        return nil
    } catch {
        return error
    }
}

@Suite struct EnvironmentValidationTests {
    @Test func completeAddEnvironmentIsRead() throws {
        let environment = try CNIEnvironment(variables: cniEnvironment("ADD", ["CNI_ARGS": "IP=10.0.0.9"]))
        #expect(environment.command == .add)
        #expect(environment.containerID == "c0ffee-1")
        #expect(environment.netns == "/var/run/netns/c1")
        #expect(environment.ifname == "eth0")
        #expect(environment.path == ["/opt/cni/bin", "/usr/lib/cni"])
        #expect(environment.args["IP"] == "10.0.0.9")
    }

    @Test(arguments: [
        ("ADD", ["CNI_CONTAINERID"], "[CNI_CONTAINERID]"),
        ("ADD", ["CNI_NETNS", "CNI_IFNAME"], "[CNI_NETNS,CNI_IFNAME]"),
        ("ADD", ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"], "[CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH]"),
        ("CHECK", ["CNI_NETNS"], "[CNI_NETNS]"),
        ("CHECK", ["CNI_PATH"], "[CNI_PATH]"),
        ("DEL", ["CNI_CONTAINERID", "CNI_IFNAME"], "[CNI_CONTAINERID,CNI_IFNAME]"),
        ("DEL", ["CNI_PATH"], "[CNI_PATH]"),
        ("GC", ["CNI_PATH"], "[CNI_PATH]"),
        ("STATUS", ["CNI_PATH"], "[CNI_PATH]"),
    ])
    func namesEveryMissingVariableInOneMessage(command: String, missing: [String], listed: String) throws {
        let error = try #require(environmentError(cniEnvironment(command, dropping: Set(missing))))
        #expect(error.code == .invalidEnvironment)
        #expect(error.msg == "required env variables \(listed) missing")
    }

    @Test func emptyCountsAsMissing() throws {
        let error = try #require(environmentError(cniEnvironment("ADD", ["CNI_NETNS": ""])))
        #expect(error.msg == "required env variables [CNI_NETNS] missing")
    }

    @Test func delWithoutNetnsIsValid() throws {
        #expect(try CNIEnvironment(variables: cniEnvironment("DEL", dropping: ["CNI_NETNS"])).netns == "")
        #expect(try CNIEnvironment(variables: cniEnvironment("DEL", ["CNI_NETNS": ""])).netns == "")
    }

    @Test func versionNeedsNothingAndIgnoresDummyValues() throws {
        #expect(environmentError(["CNI_COMMAND=VERSION"]) == nil)
        #expect(environmentError(["CNI_COMMAND=VERSION", "CNI_IFNAME=not a valid/name", "CNI_NETNS=dummy",
                                  "CNI_CONTAINERID=../x", "CNI_PATH=dummy", "CNI_ARGS=garbage"]) == nil)
    }

    @Test func gcAndStatusNeedNoAttachment() throws {
        let gc = try CNIEnvironment(variables: ["CNI_COMMAND=GC", "CNI_PATH=/opt/cni/bin"])
        #expect(gc.containerID.isEmpty && gc.ifname.isEmpty)
        _ = try CNIEnvironment(variables: ["CNI_COMMAND=STATUS", "CNI_PATH=/opt/cni/bin"])
    }

    @Test func unknownCommandIsCode4() throws {
        let error = try #require(environmentError(cniEnvironment("FOO")))
        #expect(error.code == .invalidEnvironment)
        #expect(error.msg == "unknown CNI_COMMAND: FOO")
        #expect(try #require(environmentError(cniEnvironment("add"))).code == .invalidEnvironment)
    }

    @Test(arguments: ["a", "0", "abc-DEF_1.2", "c0ffee" + String(repeating: "f", count: 58)])
    func acceptsValidContainerIDs(id: String) {
        #expect(environmentError(cniEnvironment("ADD", ["CNI_CONTAINERID": id])) == nil)
    }

    @Test(arguments: ["-abc", ".abc", "_abc", "a/b", "..", "a b", "a:b", "a\u{0}b", "é"])
    func rejectsInvalidContainerIDs(id: String) throws {
        let error = try #require(environmentError(cniEnvironment("ADD", ["CNI_CONTAINERID": id])))
        #expect(error.code == .invalidEnvironment)
        #expect(error.msg == "invalid characters in CNI_CONTAINERID")
    }

    @Test(arguments: ["eth0", "net1", "a", "123456789012345", "eth0.100", "veth-é"])
    func acceptsValidInterfaceNames(name: String) {
        #expect(environmentError(cniEnvironment("ADD", ["CNI_IFNAME": name])) == nil)
    }

    @Test(arguments: ["1234567890123456", ".", "..", "eth/0", "eth:0", "eth 0", "eth\t0", "ééééééééé"])
    func rejectsInvalidInterfaceNames(name: String) throws {
        let error = try #require(environmentError(cniEnvironment("ADD", ["CNI_IFNAME": name])))
        #expect(error.code == .invalidEnvironment)
        #expect(error.msg.hasPrefix("invalid CNI_IFNAME"))
        // DEL validates the name too: it addresses the same attachment.
        #expect(environmentError(cniEnvironment("DEL", ["CNI_IFNAME": name]))?.code == .invalidEnvironment)
    }
}

@Suite struct CNIArgsTests {
    @Test func keepsUnknownKeysAndReadsKnownOnes() throws {
        let args = try CNIArgs(parsing: "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=1-2;IP=10.88.0.9;MAC=02:42:0a:58:00:09")
        #expect(args["K8S_POD_NAME"] == "web-0")
        #expect(args["IP"] == "10.88.0.9")
        #expect(args["MAC"] == "02:42:0a:58:00:09")
        #expect(args.pairs.count == 7)
    }

    @Test func toleratesEmptySegmentsAndEqualsInValues() throws {
        let args = try CNIArgs(parsing: ";A=1;;B=x=y;")
        #expect(args["A"] == "1")
        #expect(args["B"] == "x=y")
        #expect(try CNIArgs(parsing: "").pairs.isEmpty)
        #expect(try CNIArgs(parsing: "A=").pairs.first?.value == "")
    }

    @Test(arguments: ["justtext", "A=1;broken", "=value"])
    func rejectsPairsWithoutAKey(text: String) {
        #expect(throws: CNIError.self) { try CNIArgs(parsing: text) }
    }

    @Test func unknownKeysNeverFailAnEnvironment() throws {
        let environment = try CNIEnvironment(variables: cniEnvironment("ADD", ["CNI_ARGS": "K8S_POD_NAME=a;SOMETHING_NEW=b"]))
        #expect(environment.args["SOMETHING_NEW"] == "b")
        #expect(environmentError(cniEnvironment("ADD", ["CNI_ARGS": "broken"]))?.code == .invalidEnvironment)
    }
}
