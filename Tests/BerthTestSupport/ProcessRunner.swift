#if canImport(Glibc)
import Glibc
#endif
import BerthCNI
import CLinux

/// A program run the way a runtime runs a plugin (posix_spawn, the environment given, stdin fed,
/// stdout collected), with the faults the reliability harness injects: a SIGKILL after a chosen
/// delay, stdin left open, and a cap on how long it may take before it counts as hung (and is
/// killed). Not Foundation's Process: its waitUntilExit runs a run loop that was seen to miss a
/// child's exit and wait forever.
public struct ProcessCall: Sendable {
    public var executable: String
    public var arguments: [String]
    public var environment: [String]
    public var stdin: [UInt8]
    /// False: stdin is written and then kept open until the program ends.
    public var closeStdin: Bool
    /// True: stderr is collected too (otherwise it goes to /dev/null).
    public var captureStderr: Bool

    public init(executable: String, arguments: [String] = [], environment: [String], stdin: [UInt8] = [],
                closeStdin: Bool = true, captureStderr: Bool = false) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.stdin = stdin
        self.closeStdin = closeStdin
        self.captureStderr = captureStderr
    }
}

public struct RunOutcome: Sendable {
    /// Exactly what the program printed on stdout (at most 8 MiB).
    public var stdout: [UInt8]
    public var stderr: [UInt8] = []
    public var termination: Spawn.Termination
    /// The harness's SIGKILL ended it (the fault asked for), not the program itself.
    public var killedOnPurpose: Bool
    /// It ran past the cap and was killed for it.
    public var hung: Bool
    public var milliseconds: Double
    /// Peak resident memory (VmHWM, sampled while it ran), KiB.
    public var peakKilobytes: Int = 0

    public var succeeded: Bool { termination == .exited(0) && !killedOnPurpose && !hung }
    public var text: String { String(decoding: stdout, as: UTF8.self) }
}

public enum ProcessRunner {
    static let outputCap = 8 << 20

    /// Runs `call`; `killAfterMicroseconds` delivers SIGKILL that long after the start (if the
    /// program still runs); `capSeconds` is the hang limit.
    public static func run(_ call: ProcessCall, killAfterMicroseconds: Int? = nil, capSeconds: Double = 10) -> RunOutcome {
        var input: [Int32] = [-1, -1], output: [Int32] = [-1, -1], errors: [Int32] = [-1, -1]
        guard pipe2(&input, O_CLOEXEC) == 0, pipe2(&output, O_CLOEXEC) == 0, pipe2(&errors, O_CLOEXEC) == 0 else {
            fatalError("pipe2: \(errno)")
        }
        let devNull = open("/dev/null", O_WRONLY | O_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input[0], 0)
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        posix_spawn_file_actions_adddup2(&actions, call.captureStderr ? errors[1] : devNull, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        Spawn.setPluginSignals(&attributes)
        let argv: [UnsafeMutablePointer<CChar>?] = ([call.executable] + call.arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = call.environment.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) }; envp.forEach { free($0) } }

        let start = now()
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, call.executable, &actions, &attributes, argv, envp)
        close(input[0]); close(output[1]); close(errors[1]); close(devNull)
        if !call.captureStderr { close(errors[0]) }
        guard spawned == 0 else { fatalError("posix_spawn \(call.executable): \(spawned)") }

        // Non-blocking both ways: stdin is fed and stdout drained in one poll loop, so a plugin
        // that stops reading cannot block the harness.
        _ = fcntl(input[1], F_SETFL, fcntl(input[1], F_GETFL) | O_NONBLOCK)
        _ = fcntl(output[0], F_SETFL, fcntl(output[0], F_GETFL) | O_NONBLOCK)
        if call.captureStderr { _ = fcntl(errors[0], F_SETFL, fcntl(errors[0], F_GETFL) | O_NONBLOCK) }
        var writeFD: Int32 = input[1]
        var written = 0
        if call.stdin.isEmpty && call.closeStdin { close(writeFD); writeFD = -1 }
        // The output descriptors still open, and what each gathered.
        var readers: [(fd: Int32, data: [UInt8])] = [(output[0], [])]
        if call.captureStderr { readers.append((errors[0], [])) }
        var open = [true, call.captureStderr]
        var buffer = [UInt8](repeating: 0, count: 65536)
        var killedOnPurpose = false, hung = false
        let killAt = killAfterMicroseconds.map { start + Double($0) / 1000 }
        let capAt = start + capSeconds * 1000
        var peakKilobytes = 0
        while open.contains(true) {
            peakKilobytes = max(peakKilobytes, highWaterKilobytes(pid))
            let current = now()
            if let killAt, !killedOnPurpose, current >= killAt {
                kill(pid, SIGKILL)
                killedOnPurpose = true
            }
            if !hung && current >= capAt {
                kill(pid, SIGKILL)
                hung = true
            }
            var fds = readers.indices.map { pollfd(fd: open[$0] ? readers[$0].fd : -1, events: Int16(POLLIN), revents: 0) }
            let writing = writeFD >= 0 && written < call.stdin.count
            if writing { fds.append(pollfd(fd: writeFD, events: Int16(POLLOUT), revents: 0)) }
            var timeout = Int32(max(0, min(capAt - current, 100)))
            if let killAt, !killedOnPurpose { timeout = Int32(max(0, min(Double(timeout), killAt - current))) }
            if hung { timeout = 100 }
            let ready = poll(&fds, nfds_t(fds.count), timeout)
            if ready < 0 && errno != EINTR { break }
            if writing && fds[readers.count].revents != 0 {
                let count = call.stdin.withUnsafeBytes { write(writeFD, $0.baseAddress! + written, $0.count - written) }
                if count > 0 { written += count }
                if count < 0 && errno != EAGAIN { written = call.stdin.count }  // EPIPE: it stopped reading
                if written == call.stdin.count && call.closeStdin { close(writeFD); writeFD = -1 }
            }
            for index in readers.indices where open[index] && fds[index].revents != 0 {
                let count = buffer.withUnsafeMutableBytes { read(readers[index].fd, $0.baseAddress, $0.count) }
                if count > 0 {
                    if readers[index].data.count < outputCap { readers[index].data.append(contentsOf: buffer[0..<count]) }
                } else if count == 0 || errno != EAGAIN {
                    open[index] = false
                }
            }
            // A killed program whose output a child still holds: stop once the program is gone.
            if hung && current >= capAt + 2000 { break }
        }
        for index in readers.indices { close(readers[index].fd) }
        if writeFD >= 0 { close(writeFD) }
        // Stdout closed is not the end of the process: reap it, still within the cap.
        var status: Int32 = 0
        while true {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid || (reaped < 0 && errno != EINTR) { break }
            if !hung && now() >= capAt {
                kill(pid, SIGKILL)
                hung = true
            }
            usleep(500)
        }
        let termination = Spawn.Termination(waitStatus: status)
        return RunOutcome(stdout: readers[0].data, stderr: call.captureStderr ? readers[1].data : [], termination: termination, killedOnPurpose: killedOnPurpose && termination == .signaled(SIGKILL),
                             hung: hung, milliseconds: now() - start, peakKilobytes: peakKilobytes)
    }

    /// The process's resident high-water mark (VmHWM), sampled while it runs. Not wait4's
    /// ru_maxrss: posix_spawn's child shares this harness's memory until exec, and the kernel
    /// carries that high-water mark across the exec, so ru_maxrss would report the harness.
    public static func highWaterKilobytes(_ pid: pid_t) -> Int {
        let fd = open("/proc/\(pid)/status", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return 0 }
        for line in String(decoding: buffer[..<count], as: UTF8.self).split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "") ?? 0
        }
        return 0
    }

    /// Milliseconds on the monotonic clock.
    public static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) * 1000 + Double(time.tv_nsec) / 1_000_000
    }
}

/// A deterministic pseudo-random generator (SplitMix64): a seed gives the same run every time.
public struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
