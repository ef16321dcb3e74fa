import BerthBridge
import BerthCNI
import BerthTestSupport
import Testing

@Suite struct BridgeDocumentationTests {
    @Test func everyCodeIsDocumentedInTheREADME() throws {
        let readme = String(decoding: try readFile(repositoryRoot + "/README.md"), as: UTF8.self)
        let codes: [CNIError.Code] = [.netlinkFailed, .firewallFailed, .hostPortTaken, .stateRecordFailed,
                                      .checkFailed, .interfaceExists, .bridgeNameTaken]
        for code in codes { #expect(readme.contains("\n| \(code.rawValue) | berth-bridge"), "code \(code) has no row in README.md") }
    }
}
