import ArgumentParser
import BerthCNI
import BerthJSON
import FoundationEssentials
import SystemPackage

/// `netctl`: the debugging CLI for the person whose container has no network.
public struct Netctl: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "netctl",
        abstract: "Debug container networking: run CNI networks by hand, list namespaces and Berth's attachments, inspect, check the firewall and the host.",
        discussion: """
        Berth's records are read from --state-dir, else $BERTH_STATE_DIR, else /var/lib/berth. Network \
        configurations come from --conf-dir, else $NETCONFPATH, else /etc/cni/net.d; plugins from \
        --plugin-dir, else $CNI_PATH, else /opt/cni/bin. Every command prints a table for people, or \
        JSON with --json.

        Examples:
          netctl run --network berth --publish 8080:80/tcp -- ip addr
          netctl ps
          netctl inspect web-1
          netctl doctor
        """,
        subcommands: [Add.self, Check.self, Del.self, GC.self, Status.self, Namespaces.self, Ps.self, Inspect.self,
                      IPAM.self, Rules.self, Doctor.self, Run.self])

    public init() {}
}

/// Where things are, shared by every command.
struct LocationOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Berth's state directory (attachment records).", valueName: "dir"))
    var stateDir: String?
    @Option(help: ArgumentHelp("Directory of network configurations (.conflist, .conf, .json).", valueName: "dir"))
    var confDir: String?
    @Option(help: ArgumentHelp("Directories of CNI plugins, colon-separated.", valueName: "dirs"))
    var pluginDir: String?
    @Option(help: ArgumentHelp("libcni's cache directory (results under results/).", valueName: "dir"))
    var cacheDir: String?
    @Option(help: ArgumentHelp("Lease directory for networks whose config names no ipam.dataDir.", valueName: "dir"))
    var dataDir: String?
    @Flag(help: "Print JSON instead of tables.")
    var json = false

    var paths: CtlPaths {
        CtlPaths(stateDirectory: stateDir, confDirectory: confDir, pluginDirectory: pluginDir, cacheDirectory: cacheDir, dataDirectory: dataDir)
    }
}

enum Output {
    static func print(_ text: String) { PluginIO.write(text, to: .standardOutput) }
    static func printError(_ text: String) { PluginIO.write(text, to: .standardError) }
    static func print(_ json: JSON) { print(json.serialized(pretty: true) + "\n") }

    /// Runs a command body; a `CtlError` is printed (JSON on stdout with `--json`, a line on
    /// stderr otherwise) and becomes exit status 1.
    static func reporting(json: Bool, _ body: () throws -> Void) throws {
        do {
            try body()
        } catch let error as CtlError {
            if json { print(error.json) } else { printError("netctl: \(error.message)\n") }
            throw ExitCode(1)
        }
    }
}
