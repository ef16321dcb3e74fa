#if canImport(Glibc)
import Glibc
#endif
import CLinux
import SystemPackage

/// Runs a program with posix_spawn, feeding it stdin and collecting its stdout; its stderr is
/// ours. Not Foundation's `Process`: that needs a run loop and hangs in a netns whose `lo` is down.
public enum Spawn {
    public enum Termination: Equatable, Sendable, CustomStringConvertible {
        case exited(Int32)
        case signaled(Int32)

        /// From a wait status (waitpid, wait4).
        public init(waitStatus status: Int32) {
            self = status & 0x7F == 0 ? .exited((status >> 8) & 0xFF) : .signaled(status & 0x7F)
        }

        public var description: String {
            switch self {
            case .exited(let status): "exited with status \(status)"
            case .signaled(let signal): "was killed by signal \(signal)"
            }
        }
    }

    public struct Output: Sendable {
        public var stdout: [UInt8]
        public var termination: Termination
        /// True when the program printed more than the limit and was killed for it.
        public var stdoutOverflowed: Bool
        /// The program's peak resident memory (ru_maxrss), in KiB.
        public var peakMemoryKilobytes: Int = 0
    }

    public struct Failure: Error, CustomStringConvertible {
        public let operation: String
        public let errno: Errno
        public var description: String { "\(operation): \(errno)" }
    }

    /// Runs `executable` with `argv[0]` = `executable`, the given environment ("KEY=VALUE") and
    /// stdin; returns when it has exited. Stdout beyond `stdoutLimit` bytes kills the program.
    public static func run(_ executable: String, environment: [String], stdin: [UInt8],
                           stdoutLimit: Int) throws(Failure) -> Output {
        let input = try pipe()
        let output: (read: Int32, write: Int32)
        do { output = try pipe() } catch {
            close(input.read); close(input.write)
            throw error
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // The pipes are O_CLOEXEC; dup2 onto 0 and 1 gives the child inheritable copies.
        posix_spawn_file_actions_adddup2(&actions, input.read, 0)
        posix_spawn_file_actions_adddup2(&actions, output.write, 1)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        setPluginSignals(&attributes)

        let argv: [UnsafeMutablePointer<CChar>?] = [strdup(executable), nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }

        var pid: pid_t = 0
        let spawnResult = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        close(input.read)
        close(output.write)
        guard spawnResult == 0 else {
            close(input.write)
            close(output.read)
            throw Failure(operation: "start \(executable)", errno: Errno(rawValue: spawnResult))
        }

        // Writing to a child that exited without reading raises SIGPIPE, which would kill us.
        // Block it on this thread while we write, and discard one left pending before unblocking.
        var pipeSignal = sigset_t()
        sigemptyset(&pipeSignal)
        sigaddset(&pipeSignal, SIGPIPE)
        var previousMask = sigset_t()
        pthread_sigmask(SIG_BLOCK, &pipeSignal, &previousMask)
        defer {
            var pending = sigset_t()
            sigpending(&pending)
            if sigismember(&pending, SIGPIPE) == 1 {
                var noWait = timespec()
                _ = sigtimedwait(&pipeSignal, nil, &noWait)
            }
            pthread_sigmask(SIG_SETMASK, &previousMask, nil)
        }

        let (stdout, overflowed) = exchange(stdin: stdin, writeFD: input.write, readFD: output.read,
                                            limit: stdoutLimit, pid: pid)
        var usage = rusage()
        let termination = wait(pid, usage: &usage)
        return Output(stdout: stdout, termination: termination, stdoutOverflowed: overflowed, peakMemoryKilobytes: Int(usage.ru_maxrss))
    }

    /// Spawn attributes for a plugin-like child: it starts with no signal blocked (we block
    /// SIGPIPE while writing its stdin) and SIGPIPE at its default even if we ignore it (an
    /// ignored signal stays ignored across exec).
    public static func setPluginSignals(_ attributes: inout posix_spawnattr_t) {
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
    }

    /// Starts `arguments[0]` (looked up in PATH when it has no `/`) with the caller's stdin,
    /// stdout and stderr, and returns its process ID. A thread that has entered another network
    /// namespace starts the program there: the child is born in its parent thread's namespace.
    public static func start(_ arguments: [String], environment: [String]) throws(Failure) -> pid_t {
        precondition(!arguments.isEmpty, "a program to start")
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        // Signals the caller ignores while it waits (a terminal's ^C reaches the whole group)
        // are the program's to act on.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGPIPE] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = posix_spawnp(&pid, arguments[0], nil, &attributes, argv, envp)
        guard result == 0 else { throw Failure(operation: "start \(arguments[0])", errno: Errno(rawValue: result)) }
        return pid
    }

    /// Waits for `pid` to end.
    public static func wait(_ pid: pid_t) -> Termination {
        var usage = rusage()
        return wait(pid, usage: &usage)
    }

    /// Waits for `pid` to end and fills in what it used.
    public static func wait(_ pid: pid_t, usage: inout rusage) -> Termination {
        var status: Int32 = 0
        while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
        return Termination(waitStatus: status)
    }

    private static func pipe() throws(Failure) -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        guard pipe2(&fds, O_CLOEXEC) == 0 else { throw Failure(operation: "pipe2", errno: Errno(rawValue: errno)) }
        return (fds[0], fds[1])
    }

    /// Writes stdin and reads stdout at the same time, so neither side can fill a pipe and wait
    /// on the other. Closes both descriptors.
    private static func exchange(stdin: [UInt8], writeFD: Int32, readFD: Int32,
                                 limit: Int, pid: pid_t) -> ([UInt8], Bool) {
        var writeFD = writeFD
        _ = fcntl(writeFD, F_SETFL, fcntl(writeFD, F_GETFL) | O_NONBLOCK)
        var written = 0
        if stdin.isEmpty {
            close(writeFD)
            writeFD = -1
        }
        var stdout: [UInt8] = []
        var buffer = [UInt8](unsafeUninitializedCapacity: 64 * 1024) { _, count in count = 64 * 1024 }
        var overflowed = false
        var readOpen = true
        while readOpen {
            var fds = [pollfd(fd: readFD, events: Int16(POLLIN), revents: 0)]
            if writeFD >= 0 { fds.append(pollfd(fd: writeFD, events: Int16(POLLOUT), revents: 0)) }
            if poll(&fds, nfds_t(fds.count), -1) < 0 {
                if errno == EINTR { continue }
                kill(pid, SIGKILL)  // we stop reading: the child must not block on a full pipe
                break
            }
            if writeFD >= 0, fds[1].revents != 0 {
                let count = stdin.withUnsafeBytes { bytes in
                    Glibc.write(writeFD, bytes.baseAddress! + written, bytes.count - written)
                }
                if count > 0 { written += count }
                // Done, or the child closed its stdin (EPIPE): either way we are finished writing.
                if written == stdin.count || (count < 0 && errno != EAGAIN && errno != EINTR) {
                    close(writeFD)
                    writeFD = -1
                }
            }
            if fds[0].revents != 0 {
                let count = buffer.withUnsafeMutableBytes { Glibc.read(readFD, $0.baseAddress!, $0.count) }
                if count > 0 {
                    if stdout.count + count > limit {
                        overflowed = true
                        kill(pid, SIGKILL)
                        readOpen = false
                    } else {
                        stdout.append(contentsOf: buffer[0..<count])
                    }
                } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                    readOpen = false
                }
            }
        }
        if writeFD >= 0 { close(writeFD) }
        close(readFD)
        return (stdout, overflowed)
    }
}
