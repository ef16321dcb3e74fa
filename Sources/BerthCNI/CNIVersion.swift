/// A CNI specification version Berth speaks. Results are emitted in exactly the version of the
/// request's config, so each case also decides the shape of a result.
public enum CNIVersion: String, Sendable, CaseIterable, Comparable, CustomStringConvertible {
    case v0_1_0 = "0.1.0"
    case v0_2_0 = "0.2.0"
    case v0_3_0 = "0.3.0"
    case v0_3_1 = "0.3.1"
    case v0_4_0 = "0.4.0"
    case v1_0_0 = "1.0.0"
    case v1_1_0 = "1.1.0"

    /// The newest version; used for VERSION with an empty stdin and for errors raised before a
    /// config's version is known.
    public static let latest = CNIVersion.v1_1_0

    /// What a config without `cniVersion` means (spec: "0.1.0" is assumed).
    public static let implied = CNIVersion.v0_1_0

    /// Every supported version, oldest first, as VERSION lists them.
    public static let supported: [String] = allCases.map(\.rawValue)

    public static func < (lhs: CNIVersion, rhs: CNIVersion) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }

    public var description: String { rawValue }

    /// The shape of a result in this version.
    public enum ResultShape: Sendable {
        /// 0.1.0 and 0.2.0: `ip4` / `ip6` objects, one address per family, routes inside them.
        case ipPerFamily
        /// 0.3.0 – 0.4.0: `interfaces`, `ips` with `version`, `routes`.
        case ipsWithVersion
        /// 1.0.0: as 0.4.0 without `ips[].version`.
        case ips
        /// 1.1.0: as 1.0.0, plus interface `mtu`/`socketPath`/`pciID` and route
        /// `mtu`/`advmss`/`priority`/`table`/`scope`.
        case ipsWithRouteAttributes
    }

    public var resultShape: ResultShape {
        switch self {
        case .v0_1_0, .v0_2_0: .ipPerFamily
        case .v0_3_0, .v0_3_1, .v0_4_0: .ipsWithVersion
        case .v1_0_0: .ips
        case .v1_1_0: .ipsWithRouteAttributes
        }
    }

    /// The oldest version that defines `command`.
    public static func minimum(for command: CNICommand) -> CNIVersion {
        switch command {
        case .add, .del, .version: .v0_1_0
        case .check: .v0_4_0
        case .gc, .status: .v1_1_0
        }
    }

    /// Of the versions a conflist's `cniVersions` lists, the newest one Berth supports
    /// (spec 1.1: the runtime picks the highest version both sides know).
    public static func newestSupported(among candidates: [String]) -> CNIVersion? {
        candidates.compactMap(CNIVersion.init(rawValue:)).max()
    }
}
