#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// Reads a resolv.conf-format file into CNI `dns` (berth-ipam's `resolvConf`, berth-host's host
/// DNS), as host-local does: `nameserver` lines add servers, `domain` sets the domain, `search`
/// and `options` take the rest of their line. Lines starting with `#` or `;` are comments.
public enum ResolvConf {
    public static func parse(_ text: String) -> CNIResult.DNS {
        var dns = CNIResult.DNS()
        for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let keyword = fields.first, !keyword.hasPrefix("#"), !keyword.hasPrefix(";") else { continue }
            switch keyword {
            case "nameserver" where fields.count > 1: dns.nameservers.append(fields[1])
            case "domain" where fields.count > 1: dns.domain = fields[1]
            case "search": dns.search = Array(fields.dropFirst())
            case "options": dns.options += fields.dropFirst()
            default: break
            }
        }
        return dns
    }

    /// Reads and parses `path`; a file that cannot be read is code 7 naming the config key
    /// (`key`) that pointed at it.
    public static func load(_ path: String, key: String) throws(CNIError) -> CNIResult.DNS {
        do {
            let fd = try FileDescriptor.open(path, .readOnly, options: .closeOnExec)
            defer { try? fd.close() }
            return parse(String(decoding: try PluginIO.readAll(fd, limit: 1 << 20, what: path), as: UTF8.self))
        } catch let error as CNIError {
            throw error
        } catch {
            throw CNIError(.invalidConfig, "invalid network configuration: \(key): cannot read \(path): \(error)")
        }
    }
}
