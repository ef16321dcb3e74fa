import ArgumentParser
import BerthCNI
import BerthIP
import BerthJSON
import FoundationEssentials

/// What `add`, `check` and `del` share: the network, the namespace and the attachment.
struct AttachmentOptions: ParsableArguments {
    @Argument(help: "The network's name (its configuration is found in the configuration directory).")
    var network: String
    @Argument(help: "The container's network namespace, e.g. /run/netns/c1.")
    var netns: String
    @Option(help: ArgumentHelp("CNI_CONTAINERID (default: derived from the namespace path).", valueName: "id"))
    var id: String?
    @Option(help: "CNI_IFNAME.")
    var ifname = "eth0"
    @Option(name: .customLong("publish"), parsing: .singleValue,
            help: ArgumentHelp("Publish a port: [hostIP:]hostPort:containerPort[/tcp|udp|sctp] (portMappings capability; repeatable).", valueName: "ports"))
    var publish: [String] = []
    @Option(help: ArgumentHelp("Capability arguments as a JSON object, e.g. '{\"ips\": [\"10.88.0.9\"]}'.", valueName: "json"))
    var capArgs: String?
    @Option(help: ArgumentHelp("CNI_ARGS, e.g. 'IP=10.88.0.9;K8S_POD_NAME=web'.", valueName: "args"))
    var args: String?

    /// The ID a namespace path gets when none is given: stable, so add and del agree.
    static func derivedID(_ netns: String) -> String { "netctl-" + fnv1a(netns) }

    func attachment() throws(CtlError) -> CNIRuntime.Attachment {
        var capabilities = JSONObject()
        if let capArgs {
            guard case .object(let object)? = try? JSON.parse(Array(capArgs.utf8)) else {
                throw CtlError("--cap-args must be a JSON object, got \(capArgs.debugDescription)")
            }
            capabilities = object
        }
        if !publish.isEmpty {
            var mappings: [JSON] = []
            for text in publish { mappings.append(try PortSpec(text).json) }
            if case .array(let given)? = capabilities["portMappings"] { mappings = given + mappings }
            capabilities["portMappings"] = .array(mappings)
        }
        var cniArgs: [(String, String)] = []
        for pair in (args ?? "").split(separator: ";") {
            guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else { throw CtlError("--args: \(pair.debugDescription) is not KEY=VALUE") }
            cniArgs.append((String(pair[..<equals]), String(pair[pair.index(after: equals)...])))
        }
        let containerID = id ?? Self.derivedID(netns)
        guard CNIEnvironment.isValidIdentifier(containerID) else { throw CtlError("--id \(containerID.debugDescription) is not a valid container ID") }
        return CNIRuntime.Attachment(containerID: containerID, netns: netns, ifname: ifname, cniArgs: cniArgs, capabilityArgs: capabilities)
    }
}

/// `[hostIP:]hostPort:containerPort[/protocol]`, as `docker run -p` and `podman run -p` take it.
struct PortSpec: Sendable, Equatable {
    var hostIP: String?
    var hostPort: Int
    var containerPort: Int
    var proto = "tcp"

    init(_ text: String) throws(CtlError) {
        var spec = Substring(text)
        if let slash = spec.lastIndex(of: "/") {
            proto = spec[spec.index(after: slash)...].lowercased()
            spec = spec[..<slash]
            guard ["tcp", "udp", "sctp"].contains(proto) else { throw CtlError("--publish \(text): protocol must be tcp, udp or sctp") }
        }
        // An IPv6 host IP is bracketed: [::1]:8080:80.
        if spec.hasPrefix("["), let close = spec.firstIndex(of: "]") {
            hostIP = String(spec[spec.index(after: spec.startIndex)..<close])
            spec = spec[spec.index(after: close)...].drop { $0 == ":" }
        }
        var parts = spec.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        if hostIP == nil && parts.count == 3 { hostIP = parts.removeFirst() }
        guard parts.count == 2, let host = Int(parts[0]), let container = Int(parts[1]),
              (1...65535).contains(host), (1...65535).contains(container) else {
            throw CtlError("--publish \(text): expected [hostIP:]hostPort:containerPort[/tcp|udp|sctp]")
        }
        if let hostIP, IPAddress(hostIP) == nil { throw CtlError("--publish \(text): \(hostIP) is not an IP address") }
        hostPort = host
        containerPort = container
    }

    var json: JSON {
        var object: JSONObject = ["hostPort": .int(hostPort), "containerPort": .int(containerPort), "protocol": .string(proto)]
        if let hostIP { object["hostIP"] = .string(hostIP) }
        return .object(object)
    }
}

extension Netctl {
    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Attach a namespace to a network, running the network's plugin chain (ADD).",
            discussion: """
            Runs the chain as libcni does: every plugin must support the list's cniVersion; each \
            plugin's result becomes the next one's prevResult; the final result is printed and \
            cached (--cache-dir) for check, del and gc. If a plugin fails, the chain is deleted \
            again in reverse and the plugin's error is printed with its code.

            Examples:
              ip netns add c1
              netctl add berth /run/netns/c1
              netctl add berth /run/netns/c1 --id web --publish 8080:80/tcp --json
              netctl add berth /run/netns/c1 --cap-args '{"ips": ["10.88.0.9"]}'
            """)
        @OptionGroup var attachment: AttachmentOptions
        @OptionGroup var options: LocationOptions

        func run() throws {
            try Output.reporting(json: options.json) {
                let runtime = try CNIRuntime(network: NetworkCatalog(directory: options.paths.confDirectory).find(attachment.network), paths: options.paths)
                let target = try attachment.attachment()
                let result = try runtime.add(target)
                if options.json { return Output.print(result) }
                Output.print(ResultText.render(result, version: runtime.list.cniVersion,
                                               heading: "\(target.containerID)/\(target.ifname) attached to \(runtime.list.name) (cniVersion \(runtime.list.cniVersion)) in \(target.netns)"))
            }
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check an attachment with the network's plugins (CHECK, with the cached result).",
            discussion: """
            Examples:
              netctl check berth /run/netns/c1
              netctl check berth /run/netns/c1 --id web
            """)
        @OptionGroup var attachment: AttachmentOptions
        @OptionGroup var options: LocationOptions

        func run() throws {
            try Output.reporting(json: options.json) {
                let runtime = try CNIRuntime(network: NetworkCatalog(directory: options.paths.confDirectory).find(attachment.network), paths: options.paths)
                let target = try attachment.attachment()
                try runtime.check(target)
                if options.json { return Output.print(.object(["ok": .bool(true)])) }
                Output.print("\(target.containerID)/\(target.ifname) on \(runtime.list.name): ok\n")
            }
        }
    }

    struct Del: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Detach: run the network's plugins in reverse with the cached result (DEL).",
            discussion: """
            Every plugin runs even when one fails; the cache entry is removed afterwards. DEL is \
            idempotent: running it twice is fine.

            Examples:
              netctl del berth /run/netns/c1
              netctl del berth /run/netns/c1 --id web
            """)
        @OptionGroup var attachment: AttachmentOptions
        @OptionGroup var options: LocationOptions

        func run() throws {
            try Output.reporting(json: options.json) {
                let runtime = try CNIRuntime(network: NetworkCatalog(directory: options.paths.confDirectory).find(attachment.network), paths: options.paths)
                let target = try attachment.attachment()
                try runtime.del(target)
                if options.json { return Output.print(.object(["ok": .bool(true)])) }
                Output.print("\(target.containerID)/\(target.ifname) detached from \(runtime.list.name)\n")
            }
        }
    }

    struct GC: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "gc",
            abstract: "Garbage-collect a network: everything not in the result cache goes (GC).",
            discussion: """
            The plugins are told the valid attachments: those the result cache holds for the \
            network (cniVersion 1.1.0 and later).

            Examples:
              netctl gc berth
            """)
        @Argument(help: "The network's name.")
        var network: String
        @Argument(help: "Ignored: gc is about the whole network.")
        var netns: String?
        @OptionGroup var options: LocationOptions

        func run() throws {
            try Output.reporting(json: options.json) {
                let runtime = try CNIRuntime(network: NetworkCatalog(directory: options.paths.confDirectory).find(network), paths: options.paths)
                let valid = try runtime.gc()
                if options.json {
                    return Output.print(.object(["valid": .array(valid.map { .object(["containerID": .string($0.containerID), "ifname": .string($0.ifname)]) })]))
                }
                Output.print("\(network): garbage collected; \(valid.count) valid attachment(s) kept: "
                    + (valid.isEmpty ? "none" : valid.map { "\($0.containerID)/\($0.ifname)" }.joined(separator: ", ")) + "\n")
            }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask every plugin of a network whether it can serve an ADD now (STATUS).",
            discussion: """
            Examples:
              netctl status berth
            """)
        @Argument(help: "The network's name.")
        var network: String
        @Argument(help: "Ignored: status is about the whole network.")
        var netns: String?
        @OptionGroup var options: LocationOptions

        func run() throws {
            try Output.reporting(json: options.json) {
                let runtime = try CNIRuntime(network: NetworkCatalog(directory: options.paths.confDirectory).find(network), paths: options.paths)
                try runtime.status()
                if options.json { return Output.print(.object(["ready": .bool(true)])) }
                Output.print("\(network): ready\n")
            }
        }
    }
}

/// A CNI result for people.
enum ResultText {
    static func render(_ json: JSON, version: CNIVersion, heading: String) -> String {
        guard let result = try? CNIResult(json: JSONCursor(json), version: version) else { return json.serialized(pretty: true) + "\n" }
        var text = heading + "\n\n"
        var interfaces = Table("interface", "mac", "sandbox")
        for interface in result.interfaces { interfaces.add(interface.name, interface.mac ?? "", interface.sandbox ?? "(host)") }
        var addresses = Table("address", "gateway", "interface")
        for ip in result.ips {
            addresses.add(ip.address.description, ip.gateway?.description ?? "",
                          ip.interface.flatMap { result.interfaces.indices.contains($0) ? result.interfaces[$0].name : nil } ?? "")
        }
        var routes = Table("route", "gateway")
        for route in result.routes { routes.add(route.destination.description, route.gateway?.description ?? "") }
        text += interfaces.text + "\n" + addresses.text + "\n" + routes.text
        if !result.dns.isEmpty {
            text += "\ndns: nameservers \(result.dns.nameservers.joined(separator: ", "))"
                + (result.dns.domain.map { ", domain \($0)" } ?? "")
                + (result.dns.search.isEmpty ? "" : ", search \(result.dns.search.joined(separator: " "))") + "\n"
        }
        return text
    }
}
