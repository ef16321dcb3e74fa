#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import BerthCNI
import BerthJSON
import BerthNetlink
import FoundationEssentials

/// The command `netctl run` waits for: SIGTERM and SIGHUP sent to netctl are passed on to it,
/// so netctl lives to clean up.
nonisolated(unsafe) private var runningCommand: pid_t = 0

private func forwardSignal(_ signal: Int32) {
    if runningCommand > 0 { kill(runningCommand, signal) }
}

extension Netctl {
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a command in a throwaway namespace attached to a network, then detach and remove it.",
            discussion: """
            Creates a network namespace (/run/netns/netctl-run-…), ADDs it to the network, runs the \
            command inside, then DELs it and removes the namespace whatever the outcome: the command \
            failing, being killed, or netctl receiving SIGTERM (passed on to the command). The exit \
            status is the command's (128 + the signal when it was killed; 127 when it cannot be \
            started). The attachment is reported on stderr, so stdout is the command's own.

            Examples:
              netctl run --network berth -- ping -c 1 10.88.0.1
              netctl run --network berth --publish 8080:80/tcp -- python3 -m http.server 80
              netctl run --network berth -- sh -c 'ip addr; ip route'
            """)
        @Option(help: "The network to attach to.")
        var network: String
        @Option(help: "CNI_IFNAME inside the namespace.")
        var ifname = "eth0"
        @Option(name: .customLong("publish"), parsing: .singleValue,
                help: ArgumentHelp("Publish a port: [hostIP:]hostPort:containerPort[/tcp|udp|sctp] (repeatable).", valueName: "ports"))
        var publish: [String] = []
        @Option(help: ArgumentHelp("Capability arguments as a JSON object.", valueName: "json"))
        var capArgs: String?
        @OptionGroup var options: LocationOptions
        @Argument(parsing: .postTerminator, help: "The command and its arguments, after --.")
        var command: [String] = []

        func validate() throws {
            guard !command.isEmpty else { throw ValidationError("give the command to run after --, e.g. netctl run --network berth -- ip addr") }
        }

        func run() throws {
            var status: Int32 = 1
            try Output.reporting(json: options.json) {
                let runtime = try CNIRuntime(network: NetworkCatalog(directory: options.paths.confDirectory).find(network), paths: options.paths)
                let name = "netctl-run-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
                let path = KnownNamespace.namedDirectory + "/" + name
                mkdir(KnownNamespace.namedDirectory, 0o755)
                do { try NetworkNamespace.create(at: path) } catch { throw CtlError("cannot create a namespace: \(error)") }
                defer { try? NetworkNamespace.remove(at: path) }

                var attachmentOptions = try AttachmentOptions.parse([network, path, "--id", name, "--ifname", ifname]
                                                                    + publish.flatMap { ["--publish", $0] } + (capArgs.map { ["--cap-args", $0] } ?? []))
                attachmentOptions.id = name
                let attachment = try attachmentOptions.attachment()
                let result = try runtime.add(attachment)
                defer {
                    do { try runtime.del(attachment) } catch { Output.printError("netctl: DEL after the command: \(error)\n") }
                }
                let addresses = (try? CNIResult(json: JSONCursor(result), version: runtime.list.cniVersion))?.ips.map(\.address.description) ?? []
                Output.printError("netctl: \(name)/\(ifname) on \(network)\(addresses.isEmpty ? "" : ": " + addresses.joined(separator: ", ")) in \(path)\n")

                signal(SIGINT, SIG_IGN)
                signal(SIGQUIT, SIG_IGN)
                signal(SIGTERM, forwardSignal)
                signal(SIGHUP, forwardSignal)
                defer {
                    runningCommand = 0
                    for number in [SIGINT, SIGQUIT, SIGTERM, SIGHUP] { signal(number, SIG_DFL) }
                }
                let pid: pid_t
                do {
                    // Started from a thread inside the namespace: the command is born there.
                    pid = try NetworkNamespace.run(in: .path(path)) { try Spawn.start(command, environment: PluginIO.environment()) }
                } catch {
                    Output.printError("netctl: cannot run \(command[0]): \(error)\n")
                    status = 127
                    return
                }
                runningCommand = pid
                switch Spawn.wait(pid) {
                case .exited(let code): status = code
                case .signaled(let number): status = 128 + number
                }
            }
            throw ExitCode(status)
        }
    }
}
