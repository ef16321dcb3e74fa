import BerthTestSupport
import Foundation
import Testing

@Suite struct ModeDocumentationTests {
    let readme = (try? String(contentsOfFile: repositoryRoot + "/README.md", encoding: .utf8)) ?? ""

    /// The row of `code` in a table of `text`.
    func row(_ code: Int, in text: Substring) -> Substring? {
        text.split(separator: "\n").first { $0.hasPrefix("| \(code) | ") }
    }

    /// The README's section under `## <title>`.
    func section(_ title: String) throws -> Substring {
        let start = try #require(readme.range(of: "\n## \(title)\n"), "README.md has no section \(title)")
        let rest = readme[start.upperBound...]
        return rest[..<(rest.range(of: "\n## ")?.lowerBound ?? rest.endIndex)]
    }

    @Test(arguments: ["berth-host", "berth-container"])
    func eachModeHasASectionWithOptionsAndCodes(plugin: String) throws {
        let section = try section(plugin)
        #expect(section.contains("| option | meaning | default |"))
        for code in [3, 7, 113, 114] { #expect(row(code, in: section) != nil, "\(plugin): code \(code)") }
        // The suite-wide table says which plugins raise Berth's shared codes.
        let codes = plugin == "berth-host" ? [110, 111, 112, 113, 114] : [110, 113, 114]
        let suiteWide = try self.section("Error codes")
        for code in codes { #expect(row(code, in: suiteWide)?.contains(plugin) == true, "\(plugin): code \(code)") }
    }

    @Test func theExamplesAreListed() {
        for example in ["50-berth-host.conflist", "60-berth-container.conflist"] { #expect(readme.contains("`\(example)`")) }
    }
}
