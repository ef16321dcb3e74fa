import BerthCNI
import BerthIP
import BerthJSON
import Synchronization
import BerthTestSupport
import Testing

/// Records which handler ran with which request.
final class HandlerLog: Sendable {
    let calls = Mutex<[(CNICommand, CNIRequest)]>([])
    var commands: [CNICommand] { calls.withLock { $0.map(\.0) } }
}

func recordingPlugin(_ log: HandlerLog, result: CNIResult = CNIResult(ips: [.init(interface: 0, address: IPPrefix("10.88.0.5/16")!)]),
                     failWith error: (any Error)? = nil) -> CNIPlugin {
    @Sendable func record(_ request: CNIRequest) throws {
        log.calls.withLock { $0.append((request.command, request)) }
        if let error { throw error }
    }
    return CNIPlugin(
        about: "test-plugin: records calls",
        add: { request in
            try record(request)
            return result
        },
        del: record, check: record, gc: record, status: record)
}

func run(_ plugin: CNIPlugin, _ variables: [String], stdin: String) -> CNIPlugin.Outcome {
    plugin.run(environment: variables) { () throws(CNIError) in Array(stdin.utf8) }
}

/// The error an outcome printed, after checking it is a failure with nothing on stderr.
func printedError(_ outcome: CNIPlugin.Outcome, sourceLocation: SourceLocation = #_sourceLocation) throws -> (version: String, error: CNIError) {
    #expect(outcome.exitStatus != 0, sourceLocation: sourceLocation)
    let json = try JSON.parse(outcome.stdout)
    let error = try #require(CNIError(json: json), sourceLocation: sourceLocation)
    guard case .object(let object) = json, case .string(let version)? = object["cniVersion"] else {
        Issue.record("error without cniVersion", sourceLocation: sourceLocation)
        return ("", error)
    }
    return (version, error)
}

let config10 = #"{"cniVersion":"1.0.0","name":"berth","type":"test"}"#

@Suite struct EntryPointTests {
    @Test func withoutCommandPrintsAboutOnStderrAndSucceeds() {
        let log = HandlerLog()
        for variables in [[String](), ["CNI_COMMAND="], ["PATH=/bin"]] {
            let outcome = run(recordingPlugin(log), variables, stdin: "")
            #expect(outcome.exitStatus == 0)
            #expect(outcome.stdout == "")
            #expect(outcome.stderr == "test-plugin: records calls (CNI versions 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0)\n")
        }
        #expect(log.commands.isEmpty)
    }

    @Test(arguments: [
        ("{\"cniVersion\":\"1.1.0\"}", "1.1.0"),
        ("{\"cniVersion\":\"0.3.1\"}", "0.3.1"),
        ("{\"cniVersion\":\"2.0.0\"}", "2.0.0"),
        ("{}", "0.1.0"),
        ("", "1.1.0"),
        ("\n", "1.1.0"),
    ])
    func versionEchoesTheRequestedVersionAndListsAllSupported(stdin: String, echoed: String) throws {
        // Dummy values in the other variables must not matter.
        let outcome = run(recordingPlugin(HandlerLog()),
                          ["CNI_COMMAND=VERSION", "CNI_NETNS=dummy", "CNI_IFNAME=dummy", "CNI_PATH=dummy"], stdin: stdin)
        #expect(outcome.exitStatus == 0)
        #expect(try JSON.parse(outcome.stdout).serialized()
            == #"{"cniVersion":"\#(echoed)","supportedVersions":["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}"#)
    }

    @Test func versionWithMalformedStdinIsCode6() throws {
        let outcome = run(recordingPlugin(HandlerLog()), ["CNI_COMMAND=VERSION"], stdin: "{")
        #expect(try printedError(outcome).error.code == .decodingFailure)
    }

    @Test func addPrintsTheResultInTheConfigsVersion() throws {
        let log = HandlerLog()
        for version in CNIVersion.allCases {
            let outcome = run(recordingPlugin(log), cniEnvironment("ADD"),
                              stdin: #"{"cniVersion":"\#(version)","name":"berth","type":"test"}"#)
            #expect(outcome.exitStatus == 0)
            #expect(outcome.stderr == "")
            let printed = try JSON.parse(outcome.stdout)
            guard case .object(let object) = printed else { Issue.record("not an object"); continue }
            #expect(object["cniVersion"] == .string(version.rawValue))
            #expect(try CNIResult(json: JSONCursor(printed), version: version).ips.first?.address.description == "10.88.0.5/16")
        }
        #expect(log.commands == Array(repeating: .add, count: CNIVersion.allCases.count))
    }

    @Test func resultsAreIndentedLikeTheGoLibrary() throws {
        let outcome = run(recordingPlugin(HandlerLog()), cniEnvironment("ADD"), stdin: config10)
        #expect(outcome.stdout == """
            {
                "cniVersion": "1.0.0",
                "ips": [
                    {
                        "interface": 0,
                        "address": "10.88.0.5/16"
                    }
                ]
            }

            """)
    }

    @Test(arguments: ["DEL", "CHECK"])
    func delAndCheckPrintNothingOnSuccess(command: String) {
        let outcome = run(recordingPlugin(HandlerLog()), cniEnvironment(command), stdin: config10)
        #expect(outcome == CNIPlugin.Outcome(stdout: "", stderr: "", exitStatus: 0))
    }

    @Test(arguments: ["GC", "STATUS"])
    func gcAndStatusPrintNothingOnSuccess(command: String) {
        let outcome = run(recordingPlugin(HandlerLog()), ["CNI_COMMAND=\(command)", "CNI_PATH=/opt/cni/bin"],
                          stdin: #"{"cniVersion":"1.1.0","name":"berth","type":"test"}"#)
        #expect(outcome == CNIPlugin.Outcome(stdout: "", stderr: "", exitStatus: 0))
    }

    @Test func delWithoutNetnsReachesTheHandler() {
        let log = HandlerLog()
        let outcome = run(recordingPlugin(log), cniEnvironment("DEL", dropping: ["CNI_NETNS"]), stdin: config10)
        #expect(outcome.exitStatus == 0)
        #expect(log.calls.withLock { $0.first?.1.environment.netns } == "")
    }

    /// CHECK needs 0.4.0, GC and STATUS 1.1.0: below that, code 1 and no handler runs.
    @Test(arguments: CNIVersion.allCases)
    func commandsAreGatedByTheConfigsVersion(version: CNIVersion) throws {
        for command in [CNICommand.check, .gc, .status] {
            let log = HandlerLog()
            let variables = command == .check ? cniEnvironment("CHECK") : ["CNI_COMMAND=\(command.rawValue)", "CNI_PATH=/x"]
            let outcome = run(recordingPlugin(log), variables, stdin: #"{"cniVersion":"\#(version)","name":"n","type":"t"}"#)
            if version >= CNIVersion.minimum(for: command) {
                #expect(outcome.exitStatus == 0, "\(command) at \(version)")
                #expect(log.commands == [command])
            } else {
                let printed = try printedError(outcome)
                #expect(printed.error.code == .incompatibleVersion, "\(command) at \(version)")
                #expect(printed.error.msg == "\(command.rawValue) requires cniVersion \(CNIVersion.minimum(for: command)) or later; the config has \(version)")
                #expect(printed.version == version.rawValue)
                #expect(log.commands.isEmpty)
            }
        }
    }

    @Test func unknownCommandIsCode4() throws {
        let log = HandlerLog()
        let printed = try printedError(run(recordingPlugin(log), cniEnvironment("FOO"), stdin: config10))
        #expect(printed.error.code == .invalidEnvironment)
        #expect(printed.version == "1.1.0")
        #expect(log.commands.isEmpty)
    }

    @Test(arguments: ["", "not json", "[]", "{\"cniVersion\":"])
    func malformedStdinIsCode6AndReachesNoHandler(stdin: String) throws {
        let log = HandlerLog()
        let printed = try printedError(run(recordingPlugin(log), cniEnvironment("ADD"), stdin: stdin))
        #expect(printed.error.code == .decodingFailure)
        #expect(log.commands.isEmpty)
    }

    @Test func unsupportedVersionIsCode1InTheNewestEnvelope() throws {
        let printed = try printedError(run(recordingPlugin(HandlerLog()), cniEnvironment("ADD"),
                                           stdin: #"{"cniVersion":"3.0.0","name":"n","type":"t"}"#))
        #expect(printed.error.code == .incompatibleVersion)
        #expect(printed.error.details.contains("1.1.0"))
        #expect(printed.version == "1.1.0")
    }

    @Test func configErrorsUseTheConfigsVersion() throws {
        let printed = try printedError(run(recordingPlugin(HandlerLog()), cniEnvironment("ADD"),
                                           stdin: #"{"cniVersion":"0.4.0","name":"../x","type":"t"}"#))
        #expect(printed.error.code == .invalidConfig)
        #expect(printed.version == "0.4.0")
        let implied = try printedError(run(recordingPlugin(HandlerLog()), cniEnvironment("ADD"), stdin: #"{"name":"../x","type":"t"}"#))
        #expect(implied.version == "0.1.0")
    }

    @Test func handlerErrorsPassThroughUnchanged() throws {
        let error = CNIError(.tryAgainLater, "bridge berth0 is being created", details: "retry")
        let printed = try printedError(run(recordingPlugin(HandlerLog(), failWith: error), cniEnvironment("ADD"), stdin: config10))
        #expect(printed.error == error)
        #expect(printed.version == "1.0.0")
    }

    struct LowerLayerFailure: CNIErrorConvertible {
        var cniError: CNIError { CNIError(CNIError.Code(rawValue: 110), "create veth vethab12cd34: File exists") }
    }

    struct UnmappedFailure: Error {}

    @Test func lowerLayerErrorsAreMappedInOnePlace() throws {
        let mapped = try printedError(run(recordingPlugin(HandlerLog(), failWith: LowerLayerFailure()), cniEnvironment("DEL"), stdin: config10))
        #expect(mapped.error.code.rawValue == 110)
        #expect(mapped.error.msg == "create veth vethab12cd34: File exists")
        let unmapped = try printedError(run(recordingPlugin(HandlerLog(), failWith: UnmappedFailure()), cniEnvironment("DEL"), stdin: config10))
        #expect(unmapped.error.code == .unclassified)
    }

    @Test func resultThatTheVersionCannotExpressIsAnError() throws {
        let plugin = recordingPlugin(HandlerLog(), result: CNIResult(interfaces: [.init(name: "eth0")]))
        let printed = try printedError(run(plugin, cniEnvironment("ADD"), stdin: #"{"cniVersion":"0.2.0","name":"n","type":"t"}"#))
        #expect(printed.error.code == .incompatibleVersion)
    }

    @Test func readFailureIsCode5() throws {
        let outcome = recordingPlugin(HandlerLog()).run(environment: cniEnvironment("ADD")) { () throws(CNIError) in
            throw CNIError(.ioFailure, "error reading from stdin: Input/output error")
        }
        #expect(try printedError(outcome).error.code == .ioFailure)
    }

    @Test func handlersSeeTheRawStdinAndParsedEnvironment() throws {
        let log = HandlerLog()
        var variables = cniEnvironment("ADD")
        variables.append("CNI_ARGS=K8S_POD_NAME=web;IP=10.88.0.9")
        _ = run(recordingPlugin(log), variables, stdin: config10)
        let request = try #require(log.calls.withLock { $0.first?.1 })
        #expect(request.stdin == Array(config10.utf8))
        #expect(request.environment.args["IP"] == "10.88.0.9")
        #expect(request.environment.variables == variables)
    }
}
