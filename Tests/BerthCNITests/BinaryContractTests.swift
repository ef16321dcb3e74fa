import BerthCNI
import BerthJSON
import Foundation
import BerthTestSupport
import Testing

/// The entry point as a runtime sees it: a real executable, environment, stdin pipe, stdout,
/// stderr and exit status.
@Suite struct BinaryContractTests {
    func plugin(_ environment: [String], stdin: String) throws -> ProcessOutcome {
        try runExecutable("fixture-plugin", environment: environment, stdin: Array(stdin.utf8))
    }

    @Test func withoutCommandPrintsAboutToStderr() throws {
        let outcome = try plugin(["PATH=/usr/bin"], stdin: "")
        #expect(outcome.status == 0)
        #expect(outcome.stdout.isEmpty)
        #expect(outcome.stderr == "fixture-plugin: a Berth test fixture (CNI versions 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0)\n")
    }

    @Test func versionAnswersWithDummyEnvironment() throws {
        let outcome = try plugin(["CNI_COMMAND=VERSION", "CNI_NETNS=dummy", "CNI_IFNAME=dummy", "CNI_PATH=dummy"],
                                 stdin: #"{"cniVersion":"1.1.0"}"#)
        #expect(outcome.status == 0)
        #expect(try JSON.parse(outcome.stdout).serialized()
            == #"{"cniVersion":"1.1.0","supportedVersions":["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}"#)
    }

    @Test func errorsGoToStdoutWithNonZeroExit() throws {
        let outcome = try plugin(["CNI_COMMAND=ADD"], stdin: #"{"cniVersion":"1.0.0","name":"n","type":"t"}"#)
        #expect(outcome.status == 1)
        #expect(outcome.stderr.isEmpty)
        let error = try #require(CNIError(json: try JSON.parse(outcome.stdout)))
        #expect(error == CNIError(.invalidEnvironment, "required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH] missing"))
    }

    @Test func unknownCommandIsCode4() throws {
        let outcome = try plugin(cniEnvironment("FOO"), stdin: "{}")
        #expect(outcome.status == 1)
        #expect(CNIError(json: try JSON.parse(outcome.stdout))?.code == .invalidEnvironment)
    }

    @Test func stdinBeyondTheBoundIsRefused() throws {
        let padding = String(repeating: " ", count: PluginIO.maximumInputSize)
        let outcome = try plugin(cniEnvironment("ADD"), stdin: #"{"cniVersion":"1.0.0","name":"n","type":"t"}"# + padding)
        #expect(outcome.status == 1)
        let error = try #require(CNIError(json: try JSON.parse(outcome.stdout)))
        #expect(error.code == .inputTooLarge)
        #expect(error.msg == "stdin is larger than 1048576 bytes")
    }

    /// A writer that sends part of a config and keeps stdin open gets an error once stdin has
    /// been silent for PluginIO.inputIdleSeconds, not a plugin that waits forever.
    @Test func stdinThatNeverEndsIsAnErrorAfterItFallsSilent() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "\(productsDirectory)/fixture-plugin")
        process.environment = Dictionary(uniqueKeysWithValues: cniEnvironment("ADD").map {
            let parts = $0.split(separator: "=", maxSplits: 1)
            return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
        })
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        input.fileHandleForWriting.write(Data(#"{"cniVersion":"1.0.0","#.utf8))
        // A watchdog well past the plugin's own limit: a hang fails the test instead of blocking it.
        let watchdog = DispatchWorkItem { process.terminate() }
        DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(Int(PluginIO.inputIdleSeconds) * 4), execute: watchdog)
        let stdout = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        watchdog.cancel()
        try input.fileHandleForWriting.close()
        #expect(process.terminationReason == .exit && process.terminationStatus == 1)
        let error = try #require(CNIError(json: try JSON.parse(String(decoding: stdout, as: UTF8.self))))
        #expect(error.code == .ioFailure)
        #expect(error.msg == "stdin sent nothing and did not end for 5 s (22 bytes read)")
    }

    @Test func stdinJustUnderTheBoundIsAccepted() throws {
        let config = #"{"cniVersion":"1.0.0","name":"n","type":"t"}"#
        let padding = String(repeating: " ", count: PluginIO.maximumInputSize - config.utf8.count)
        let outcome = try plugin(cniEnvironment("DEL"), stdin: config + padding)
        #expect(outcome.status == 0)
        #expect(outcome.stdout.isEmpty)
    }

    @Test func addThroughADelegatedPluginPrintsTheConfigsVersion() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(directory) }
        let answer = #"{"cniVersion":"0.2.0","ip4":{"ip":"10.1.0.5/24","gateway":"10.1.0.1"}}"#
        let config = delegatingConfig(version: "0.2.0", record: directory, replies: ["ADD": reply(stdout: answer)])
        let outcome = try plugin(cniEnvironment("ADD", ["CNI_PATH": productsDirectory]), stdin: config)
        #expect(outcome.status == 0)
        #expect(try JSON.parse(outcome.stdout).serialized() == #"{"cniVersion":"0.2.0","ip4":{"ip":"10.1.0.5/24","gateway":"10.1.0.1"}}"#)
        #expect(try readFile("\(directory)/ADD.stdin") == Array(config.utf8))
    }

    @Test func delegateErrorReachesTheRuntimeUnchanged() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(directory) }
        let printed = #"{"cniVersion":"1.0.0","code":11,"msg":"lease store busy","details":"flock held"}"#
        let config = delegatingConfig(record: directory, replies: ["ADD": reply(stdout: printed, exitCode: 1)])
        let outcome = try plugin(cniEnvironment("ADD", ["CNI_PATH": productsDirectory]), stdin: config)
        #expect(outcome.status == 1)
        #expect(CNIError(json: try JSON.parse(outcome.stdout)) == CNIError(.tryAgainLater, "lease store busy", details: "flock held"))
    }

    @Test func delWithoutNetnsSucceedsSilently() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(directory) }
        let outcome = try plugin(cniEnvironment("DEL", dropping: ["CNI_NETNS"], ["CNI_PATH": productsDirectory]),
                                 stdin: delegatingConfig(record: directory))
        #expect(outcome.status == 0)
        #expect(outcome.stdout.isEmpty)
        let recorded = String(decoding: try readFile("\(directory)/DEL.env"), as: UTF8.self)
        #expect(!recorded.contains("CNI_NETNS="))
    }

    /// The plugin process does not ignore SIGPIPE; a delegate that exits without reading a large
    /// stdin must still not kill it: the runtime gets a CNI error naming the delegate's status.
    @Test func pluginSurvivesADelegateThatIgnoresItsStdin() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(directory) }
        let config = delegatingConfig(record: directory, padding: 900_000)
        let outcome = try plugin(cniEnvironment("ADD", ["CNI_PATH": productsDirectory, "FIXTURE_IPAM_EXIT_WITHOUT_READING": "3"]),
                                 stdin: config)
        #expect(outcome.status == 1)
        let error = try #require(CNIError(json: try JSON.parse(outcome.stdout)))
        #expect(error.code == .delegateFailed)
        #expect(error.msg == #"IPAM plugin "fixture-ipam" exited with status 3 on ADD without a CNI error"#)
    }
}
