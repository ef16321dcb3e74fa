import BerthIP

/// What an ADD produced, in a version-independent form: the union of every version's fields.
/// `json(version:)` renders it in one version's shape; `init(json:version:)` reads any version.
public struct CNIResult: Sendable, Equatable {
    public var interfaces: [Interface]
    public var ips: [IPConfig]
    public var routes: [Route]
    public var dns: DNS

    public init(interfaces: [Interface] = [], ips: [IPConfig] = [], routes: [Route] = [], dns: DNS = DNS()) {
        self.interfaces = interfaces
        self.ips = ips
        self.routes = routes
        self.dns = dns
    }

    public struct Interface: Sendable, Equatable {
        public var name: String
        public var mac: String?
        /// 1.1.0 and later.
        public var mtu: Int?
        /// The netns path for an interface inside the container; nil for host interfaces.
        public var sandbox: String?
        /// 1.1.0 and later.
        public var socketPath: String?
        /// 1.1.0 and later.
        public var pciID: String?

        public init(name: String, mac: String? = nil, mtu: Int? = nil, sandbox: String? = nil,
                    socketPath: String? = nil, pciID: String? = nil) {
            self.name = name
            self.mac = mac
            self.mtu = mtu
            self.sandbox = sandbox
            self.socketPath = socketPath
            self.pciID = pciID
        }
    }

    public struct IPConfig: Sendable, Equatable {
        /// Index into `interfaces`; absent in results converted from 0.2.0 and in IPAM results.
        public var interface: Int?
        public var address: IPPrefix
        public var gateway: IPAddress?

        public init(interface: Int? = nil, address: IPPrefix, gateway: IPAddress? = nil) {
            self.interface = interface
            self.address = address
            self.gateway = gateway
        }
    }

    public struct Route: Sendable, Equatable {
        public var destination: IPPrefix
        public var gateway: IPAddress?
        /// 1.1.0 and later, as are the fields below.
        public var mtu: Int?
        public var advmss: Int?
        public var priority: Int?
        public var table: Int?
        public var scope: Int?

        public init(destination: IPPrefix, gateway: IPAddress? = nil, mtu: Int? = nil, advmss: Int? = nil,
                    priority: Int? = nil, table: Int? = nil, scope: Int? = nil) {
            self.destination = destination
            self.gateway = gateway
            self.mtu = mtu
            self.advmss = advmss
            self.priority = priority
            self.table = table
            self.scope = scope
        }
    }

    public struct DNS: Sendable, Equatable {
        public var nameservers: [String]
        public var domain: String?
        public var search: [String]
        public var options: [String]

        public init(nameservers: [String] = [], domain: String? = nil, search: [String] = [], options: [String] = []) {
            self.nameservers = nameservers
            self.domain = domain
            self.search = search
            self.options = options
        }

        public var isEmpty: Bool {
            nameservers.isEmpty && (domain ?? "").isEmpty && search.isEmpty && options.isEmpty
        }
    }
}
