#if canImport(Glibc)
import Glibc
#endif
import BerthCNI
import CLinux

/// One plugin call as a runtime makes it, with the faults this harness injects: a SIGKILL after a
/// chosen delay, stdin left open, and a cap on how long the plugin may take before it counts as
/// hung (and is killed).
struct PluginCall {
    var executable: String
    var environment: [String]
    var stdin: [UInt8]
    /// False: stdin is written and then kept open until the plugin ends.
    var closeStdin = true
}

struct PluginOutcome {
    /// Exactly what the plugin printed on stdout (at most 8 MiB).
    var stdout: [UInt8]
    var termination: Spawn.Termination
    /// The harness's SIGKILL ended it (the fault asked for), not the plugin itself.
    var killedOnPurpose: Bool
    /// It ran past the cap and was killed for it.
    var hung: Bool
    var milliseconds: Double
    /// Peak resident memory (VmHWM, sampled while it ran), KiB.
    var peakKilobytes: Int = 0

    var succeeded: Bool { termination == .exited(0) && !killedOnPurpose && !hung }
    var text: String { String(decoding: stdout, as: UTF8.self) }
}

enum PluginRunner {
    static let stdoutCap = 8 << 20

    /// Runs `call`; `killAfterMicroseconds` delivers SIGKILL that long after the start (if the
    /// plugin still runs); `capSeconds` is the hang limit.
    static func run(_ call: PluginCall, killAfterMicroseconds: Int? = nil, capSeconds: Double = 10) -> PluginOutcome {
        var input: [Int32] = [-1, -1], output: [Int32] = [-1, -1]
        guard pipe2(&input, O_CLOEXEC) == 0, pipe2(&output, O_CLOEXEC) == 0 else { fatalError("pipe2: \(errno)") }
        let devNull = open("/dev/null", O_WRONLY | O_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input[0], 0)
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        posix_spawn_file_actions_adddup2(&actions, devNull, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup(call.executable), nil]
        let envp: [UnsafeMutablePointer<CChar>?] = call.environment.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) }; envp.forEach { free($0) } }

        let start = now()
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, call.executable, &actions, &attributes, argv, envp)
        close(input[0]); close(output[1]); close(devNull)
        guard spawned == 0 else { fatalError("posix_spawn \(call.executable): \(spawned)") }

        // Non-blocking both ways: stdin is fed and stdout drained in one poll loop, so a plugin
        // that stops reading cannot block the harness.
        _ = fcntl(input[1], F_SETFL, fcntl(input[1], F_GETFL) | O_NONBLOCK)
        _ = fcntl(output[0], F_SETFL, fcntl(output[0], F_GETFL) | O_NONBLOCK)
        var writeFD: Int32 = input[1]
        var written = 0
        if call.stdin.isEmpty && call.closeStdin { close(writeFD); writeFD = -1 }
        var stdout: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        var killedOnPurpose = false, hung = false
        let killAt = killAfterMicroseconds.map { start + Double($0) / 1000 }
        let capAt = start + capSeconds * 1000
        var stdoutOpen = true
        var peakKilobytes = 0
        while stdoutOpen {
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
            var fds = [pollfd(fd: output[0], events: Int16(POLLIN), revents: 0)]
            if writeFD >= 0 && written < call.stdin.count { fds.append(pollfd(fd: writeFD, events: Int16(POLLOUT), revents: 0)) }
            var timeout = Int32(max(0, min(capAt - current, 100)))
            if let killAt, !killedOnPurpose { timeout = Int32(max(0, min(Double(timeout), killAt - current))) }
            if hung { timeout = 100 }
            let ready = poll(&fds, nfds_t(fds.count), timeout)
            if ready < 0 && errno != EINTR { break }
            if fds.count > 1 && fds[1].revents != 0 {
                let count = call.stdin.withUnsafeBytes { write(writeFD, $0.baseAddress! + written, $0.count - written) }
                if count > 0 { written += count }
                if count < 0 && errno != EAGAIN { written = call.stdin.count }  // EPIPE: it stopped reading
                if written == call.stdin.count && call.closeStdin { close(writeFD); writeFD = -1 }
            }
            if fds[0].revents != 0 {
                let count = buffer.withUnsafeMutableBytes { read(output[0], $0.baseAddress, $0.count) }
                if count > 0 {
                    if stdout.count < stdoutCap { stdout.append(contentsOf: buffer[0..<count]) }
                } else if count == 0 || errno != EAGAIN {
                    stdoutOpen = false
                }
            }
            // A killed plugin whose stdout a child still holds: stop once the plugin is gone.
            if hung && current >= capAt + 2000 { break }
        }
        if writeFD >= 0 { close(writeFD) }
        close(output[0])
        // Stdout closed is not the end of the process: reap it, still within the cap.
        var status: Int32 = 0
        var usage = rusage()
        while true {
            let reaped = wait4(pid, &status, WNOHANG, &usage)
            if reaped == pid || (reaped < 0 && errno != EINTR) { break }
            if !hung && now() >= capAt {
                kill(pid, SIGKILL)
                hung = true
            }
            usleep(500)
        }
        let termination: Spawn.Termination = status & 0x7F == 0 ? .exited((status >> 8) & 0xFF) : .signaled(status & 0x7F)
        return PluginOutcome(stdout: stdout, termination: termination, killedOnPurpose: killedOnPurpose && termination == .signaled(SIGKILL),
                             hung: hung, milliseconds: now() - start, peakKilobytes: peakKilobytes)
    }

    /// The process's resident high-water mark (VmHWM), sampled while it runs. Not wait4's
    /// ru_maxrss: posix_spawn's child shares this harness's memory until exec, and the kernel
    /// carries that high-water mark across the exec, so ru_maxrss would report the harness.
    static func highWaterKilobytes(_ pid: pid_t) -> Int {
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
    static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) * 1000 + Double(time.tv_nsec) / 1_000_000
    }
}

/// A deterministic pseudo-random generator (SplitMix64): a seed gives the same run every time.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
