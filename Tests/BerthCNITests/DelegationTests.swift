import BerthCNI
import BerthIP
import BerthJSON
import Foundation
import BerthTestSupport
import Testing

/// A config delegating to fixture-ipam, which records into `record` and answers with `replies`
/// (`{"ADD": {"stdout": "...", "exitCode": 1}}`).
/// `padding` adds a string of that many bytes, for tests of large stdin.
func delegatingConfig(version: String = "1.0.0", record: String, replies: JSONObject = [:], padding: Int = 0) -> String {
    var config: JSONObject = [
        "cniVersion": .string(version), "name": .string("berth-delegation"), "type": .string("fixture-plugin"),
        "bridge": .string("berth0"),
        "ipam": .object(["type": .string("fixture-ipam"), "record": .string(record), "replies": .object(replies)]),
    ]
    if padding > 0 { config["padding"] = .string(String(repeating: "p", count: padding)) }
    return JSON.object(config).serialized()
}

func reply(stdout: String = "", exitCode: Int = 0, signal: Int? = nil) -> JSON {
    var object: JSONObject = ["stdout": .string(stdout), "exitCode": .int(exitCode)]
    if let signal { object["signal"] = .int(signal) }
    return .object(object)
}

func request(_ command: String, config: String, extra: [String: String] = [:]) throws -> CNIRequest {
    let environment = try CNIEnvironment(variables: cniEnvironment(command, ["CNI_PATH": "/nonexistent:\(productsDirectory)"].merging(extra) { $1 }))
    return CNIRequest(environment: environment, config: try NetworkConfig(parsing: Array(config.utf8)), stdin: Array(config.utf8))
}

let ipamResult10 = #"{"cniVersion":"1.0.0","ips":[{"address":"10.88.0.7/16","gateway":"10.88.0.1"}],"routes":[{"dst":"0.0.0.0/0"}],"dns":{"nameservers":["10.88.0.1"]}}"#

@Suite struct DelegationTests {
    @Test func delegatePluginGetsOurEnvironmentAndStdinUnchanged() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(directory) }
        let config = delegatingConfig(record: directory, replies: ["ADD": reply(stdout: ipamResult10)])
        let request = try request("ADD", config: config, extra: ["CNI_ARGS": "K8S_POD_NAME=web;IP=10.88.0.7"])

        let result = try IPAMDelegate(for: request).add(request)

        #expect(result == CNIResult(ips: [.init(address: IPPrefix("10.88.0.7/16")!, gateway: IPAddress("10.88.0.1")!)],
                                    routes: [.init(destination: IPPrefix("0.0.0.0/0")!)],
                                    dns: .init(nameservers: ["10.88.0.1"])))
        #expect(try readFile("\(directory)/ADD.stdin") == Array(config.utf8))
        let recorded = String(decoding: try readFile("\(directory)/ADD.env"), as: UTF8.self)
        #expect(recorded == request.environment.variables.sorted().joined(separator: "\n"))
    }

    @Test func callerCanOverrideTheCommandAndNothingElse() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(directory) }
        let request = try request("ADD", config: delegatingConfig(record: directory))
        try IPAMDelegate(for: request).run(.del, request)
        let recorded = String(decoding: try readFile("\(directory)/DEL.env"), as: UTF8.self)
        let expected = request.environment.variables.map { $0.hasPrefix("CNI_COMMAND=") ? "CNI_COMMAND=DEL" : $0 }
        #expect(recorded == expected.sorted().joined(separator: "\n"))
    }

    @Test(arguments: ["DEL", "CHECK", "GC", "STATUS"])
    func everyCommandIsDelegated(command: String) throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(directory) }
        let config = delegatingConfig(version: "1.1.0", record: directory)
        let request = try request(command, config: config)
        try IPAMDelegate(for: request).run(request.command, request)
        #expect(FileManager.default.fileExists(atPath: "\(directory)/\(command).stdin"))
    }

    @Test func resultIsReadInTheVersionThePluginAnsweredIn() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(directory) }
        let answer020 = #"{"cniVersion":"0.2.0","ip4":{"ip":"10.1.0.5/24","gateway":"10.1.0.1"},"ip6":{"ip":"fd00::5/64"}}"#
        let request = try request("ADD", config: delegatingConfig(version: "1.0.0", record: directory,
                                                                  replies: ["ADD": reply(stdout: answer020)]))
        let result = try IPAMDelegate(for: request).add(request)
        #expect(result.ips.map(\.address.description) == ["10.1.0.5/24", "fd00::5/64"])
        // Without a label it is read in the request's version.
        let unlabelled = #"{"ips":[{"address":"10.2.0.5/24"}]}"#
        let second = try BerthCNITests.request("ADD", config: delegatingConfig(record: directory, replies: ["ADD": reply(stdout: unlabelled)]))
        #expect(try IPAMDelegate(for: second).add(second).ips.first?.address.description == "10.2.0.5/24")
    }

    @Test(arguments: [
        #"{"cniVersion":"1.0.0","code":11,"msg":"lease store busy","details":"flock held"}"#,
        #"{"code":999,"msg":"whatever the plugin says"}"#,
        #"{"cniVersion":"0.4.0","code":7,"msg":"invalid range"}"#,
    ])
    func delegateErrorsPassThroughUnchanged(printed: String) throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(directory) }
        let request = try request("ADD", config: delegatingConfig(record: directory, replies: ["ADD": reply(stdout: printed, exitCode: 1)]))
        let expected = try #require(CNIError(json: try JSON.parse(printed)))
        #expect(throws: expected) { try IPAMDelegate(for: request).add(request) }
    }

    @Test(arguments: [
        (reply(stdout: "panic: oh no", exitCode: 2), "exited with status 2 on ADD without a CNI error"),
        (reply(exitCode: 1), "exited with status 1 on ADD without a CNI error"),
        (reply(stdout: #"{"cniVersion":"1.0.0","code":7"#, signal: 9), "was killed by signal 9 on ADD without a CNI error"),
        (reply(stdout: "not json"), "printed a result that is not JSON"),
        (reply(stdout: ""), "printed a result that is not JSON"),
        (reply(stdout: #"{"cniVersion":"7.0.0"}"#), #"answered in unsupported CNI version "7.0.0""#),
        (reply(stdout: #"{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.1"}]}"#), "printed an invalid result: ips[0].address"),
    ])
    func misbehavingDelegateIsCode102(answer: JSON, message: String) throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(directory) }
        let request = try request("ADD", config: delegatingConfig(record: directory, replies: ["ADD": answer]))
        do {
            _ = try IPAMDelegate(for: request).add(request)
            Issue.record("delegate succeeded")
        } catch {
            #expect(error.code == .delegateFailed)
            #expect(error.msg.hasPrefix(#"IPAM plugin "fixture-ipam" "# + message))
        }
    }

    @Test func oversizedDelegateOutputIsCut() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(directory) }
        let huge = String(repeating: "x", count: PluginIO.maximumInputSize + 10)
        let request = try request("ADD", config: delegatingConfig(record: directory, replies: ["ADD": reply(stdout: huge)]))
        do {
            _ = try IPAMDelegate(for: request).add(request)
            Issue.record("delegate succeeded")
        } catch {
            #expect(error.code == .delegateFailed)
            #expect(error.msg.contains("printed more than"))
        }
    }

    /// A delegate that exits without reading a large stdin must not take the caller down with
    /// SIGPIPE; its exit status is reported.
    @Test func delegateThatIgnoresStdinIsReported() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(directory) }
        let request = try request("ADD", config: delegatingConfig(record: directory, padding: 900_000), extra: ["FIXTURE_IPAM_EXIT_WITHOUT_READING": "3"])
        do {
            _ = try IPAMDelegate(for: request).add(request)
            Issue.record("delegate succeeded")
        } catch {
            #expect(error.code == .delegateFailed)
            #expect(error.msg.contains("exited with status 3"))
        }
    }

    @Test func missingPluginIsCode101NamingTheSearchPath() throws {
        let config = delegatingConfig(record: "/tmp")
        let environment = try CNIEnvironment(variables: cniEnvironment("ADD", ["CNI_PATH": "/nonexistent:/also/missing"]))
        let request = CNIRequest(environment: environment, config: try NetworkConfig(parsing: Array(config.utf8)), stdin: [])
        do {
            _ = try IPAMDelegate(for: request)
            Issue.record("found a plugin")
        } catch {
            #expect(error.code == .delegateNotFound)
            #expect(error.msg == #"IPAM plugin "fixture-ipam" not found in CNI_PATH"#)
            #expect(error.details == "searched: /nonexistent:/also/missing")
        }
    }

    @Test func nonExecutableFilesAndDirectoriesAreSkipped() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(directory) }
        try FileManager.default.createDirectory(atPath: "\(directory)/dir/fixture-ipam", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "\(directory)/plain", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: "\(directory)/plain/fixture-ipam", contents: Data("#!/bin/sh\n".utf8),
                                       attributes: [.posixPermissions: 0o644])
        let delegate = try IPAMDelegate(type: "fixture-ipam", searchPath: ["\(directory)/dir", "\(directory)/plain", productsDirectory + "/"])
        #expect(delegate.executable == "\(productsDirectory)/fixture-ipam")
    }

    @Test(arguments: ["../fixture-ipam", "/bin/true", "", ".", "..", "a\u{0}b"])
    func ipamTypeThatIsAPathIsCode7(type: String) {
        do {
            _ = try IPAMDelegate(type: type, searchPath: [productsDirectory])
            Issue.record("accepted \(type)")
        } catch {
            #expect(error.code == .invalidConfig)
        }
    }

    @Test func requestWithoutIPAMSectionIsCode7() throws {
        let config = #"{"cniVersion":"1.0.0","name":"n","type":"t"}"#
        let request = CNIRequest(environment: try CNIEnvironment(variables: cniEnvironment("ADD")),
                                 config: try NetworkConfig(parsing: Array(config.utf8)), stdin: Array(config.utf8))
        #expect(throws: CNIError(.invalidConfig, "invalid network configuration: ipam.type is required")) {
            try IPAMDelegate(for: request)
        }
    }
}
