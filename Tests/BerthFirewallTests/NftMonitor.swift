import BerthTestSupport
import Foundation
import Synchronization

/// `nft monitor` in a namespace, read line by line (line-buffered with stdbuf: its stdout is a
/// pipe). Readiness is established by
/// making a change of our own until the monitor reports it: no sleeping.
final class NftMonitor: @unchecked Sendable {
    private let process = Process()
    private let namespace: ScratchNamespace
    private let text = Mutex("")
    private let output = Pipe()

    init(_ namespace: ScratchNamespace) throws {
        self.namespace = namespace
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        // nsenter execs in place (ip netns exec may fork), so terminating the process ends nft.
        process.arguments = ["nsenter", "--net=\(namespace.path)", "stdbuf", "-oL", "nft", "monitor"]
        process.standardOutput = output
        output.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let chunk = String(decoding: handle.availableData, as: UTF8.self)
            self?.text.withLock { $0 += chunk }
        }
        try process.run()
    }

    /// Generation numbers reported so far ("# new generation 7 by process …").
    var generations: [Int] {
        text.withLock { $0 }.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("# new generation ") else { return nil }
            return Int(line.dropFirst("# new generation ".count).split(separator: " ").first ?? "")
        }
    }

    func waitUntilReady() throws {
        for attempt in 0..<500 {
            try namespace.nft("add", "table", "ip", "monitor-probe-\(attempt)")
            try namespace.nft("delete", "table", "ip", "monitor-probe-\(attempt)")
            if try waitForGenerations(1, rounds: 20) { return }
        }
        throw CommandFailure(command: "nft monitor never reported a generation", status: 1)
    }

    /// Waits (polling briefly) until `count` generations were reported; false on timeout.
    @discardableResult
    func waitForGenerations(_ count: Int, rounds: Int = 2000) throws -> Bool {
        for _ in 0..<rounds {
            if generations.count >= count { return true }
            usleep(1000)
        }
        return generations.count >= count
    }

    func stop() {
        // SIGKILL: the test runner's threads block SIGTERM, and children inherit the mask.
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        output.fileHandleForReading.readabilityHandler = nil
    }
}
