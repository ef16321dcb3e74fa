import BerthCNI

extension CNIPlugin {
    /// berth-ipam as a CNI IPAM plugin: ADD returns `ips` (without `interface`), `routes` and
    /// `dns`; DEL, CHECK, GC and STATUS work on the same lease store.
    public static let ipam = CNIPlugin(
        about: "berth-ipam: host-local-compatible address management",
        add: { request in
            try AddressManager(config: IPAMConfig(request)).add(attachment(request))
        },
        del: { request in
            try AddressManager(config: IPAMConfig(request)).release(attachment(request))
        },
        check: { request in
            try AddressManager(config: IPAMConfig(request)).check(attachment(request))
        },
        gc: { request in
            try AddressManager(config: IPAMConfig(request)).collectGarbage(keeping: request.config.validAttachments ?? [])
        },
        status: { request in
            // Whatever keeps an ADD from succeeding is "not available" (50) here.
            do throws(CNIError) {
                try AddressManager(config: IPAMConfig(request)).status()
            } catch where error.code != .pluginNotAvailable {
                throw CNIError(.pluginNotAvailable, error.msg, details: error.details)
            }
        })

    private static func attachment(_ request: CNIRequest) -> Attachment {
        Attachment(containerID: request.environment.containerID, ifname: request.environment.ifname)
    }
}
