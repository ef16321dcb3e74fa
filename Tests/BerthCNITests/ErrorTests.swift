import BerthCNI
import BerthJSON
import BerthTestSupport
import Testing

@Suite struct ErrorEncodingTests {
    @Test(arguments: CNIVersion.allCases)
    func errorsPrintTheSameShapeInEveryVersion(version: CNIVersion) {
        let error = CNIError(.invalidConfig, "invalid network configuration: name: is required", details: "see README")
        #expect(error.json(version: version.rawValue).serialized()
            == #"{"cniVersion":"\#(version)","code":7,"msg":"invalid network configuration: name: is required","details":"see README"}"#)
        #expect(CNIError(.tryAgainLater, "busy").json(version: version.rawValue).serialized()
            == #"{"cniVersion":"\#(version)","code":11,"msg":"busy"}"#)
    }

    @Test func readsErrorsOtherPluginsPrint() throws {
        #expect(CNIError(json: try JSON.parse(#"{"code":999,"msg":"x","details":"y"}"#)) == CNIError(.init(rawValue: 999), "x", details: "y"))
        #expect(CNIError(json: try JSON.parse(#"{"cniVersion":"0.4.0","code":3}"#)) == CNIError(.unknownContainer, ""))
        #expect(CNIError(json: try JSON.parse(#"{"msg":"no code"}"#)) == nil)
        #expect(CNIError(json: try JSON.parse(#"{"code":"7","msg":"string code"}"#)) == nil)
        #expect(CNIError(json: try JSON.parse("[]")) == nil)
    }

    /// The README's error table is the user's reference: every code the protocol core defines
    /// has a row there.
    @Test func everyCodeIsDocumentedInTheREADME() throws {
        let readme = String(decoding: try readFile(repositoryRoot + "/README.md"), as: UTF8.self)
        let codes: [CNIError.Code] = [
            .incompatibleVersion, .unsupportedField, .unknownContainer, .invalidEnvironment, .ioFailure,
            .decodingFailure, .invalidConfig, .tryAgainLater, .pluginNotAvailable, .pluginNotAvailableExistingAffected,
            .inputTooLarge, .delegateNotFound, .delegateFailed, .unclassified,
        ]
        for code in codes {
            #expect(readme.contains("\n| \(code.rawValue) | "), "code \(code) has no row in README.md")
        }
    }
}
