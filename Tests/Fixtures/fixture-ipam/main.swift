// A scripted IPAM plugin for delegation tests. It records what it received and answers as its
// config tells it to:
//
//   "ipam": {
//     "type": "fixture-ipam",
//     "record": "/tmp/dir",                 // writes <COMMAND>.env and <COMMAND>.stdin there
//     "replies": { "ADD": { "stdout": "...", "exitCode": 0, "signal": 9, "readStdin": true } }
//   }
//
// Without a reply for the command it prints nothing and exits 0. With
// FIXTURE_IPAM_EXIT_WITHOUT_READING=<status> in the environment it exits at once, stdin unread.
#if canImport(Glibc)
import Glibc
#endif
import BerthCNI
import BerthJSON

func writeFile(_ path: String, _ bytes: [UInt8]) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { fatalError("fixture-ipam: cannot write \(path)") }
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
}

let variables = PluginIO.environment()
let command = variables.first { $0.hasPrefix("CNI_COMMAND=") }.map { String($0.dropFirst(12)) } ?? ""
if let early = variables.first(where: { $0.hasPrefix("FIXTURE_IPAM_EXIT_WITHOUT_READING=") }) {
    exit(Int32(early.split(separator: "=").last.flatMap { Int32($0) } ?? 0))
}
let stdin = (try? PluginIO.readAll(.standardInput, limit: .max, what: "stdin")) ?? []
let config = JSONCursor((try? JSON.parse(stdin)) ?? .null)
let ipam = config.member("ipam")

if let record = try? ipam?.member("record")?.string() {
    writeFile("\(record)/\(command).env", Array(variables.sorted().joined(separator: "\n").utf8))
    writeFile("\(record)/\(command).stdin", stdin)
}
let reply = ipam?.member("replies")?.member(command)
if let text = try? reply?.member("stdout")?.string() {
    let bytes = Array(text.utf8)
    _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
}
if let signal = try? reply?.member("signal")?.int() {
    kill(getpid(), Int32(signal))
}
exit(Int32((try? reply?.member("exitCode")?.int()) ?? 0))
