// A minimal plugin on Berth's entry point, for tests of the binary contract: every command is
// delegated to the IPAM plugin named in the config; ADD without `ipam` returns an empty result.
import BerthCNI

CNIPlugin(
    about: "fixture-plugin: a Berth test fixture",
    add: { request in
        guard request.config.ipamType != nil else { return CNIResult() }
        return try IPAMDelegate(for: request).add(request)
    },
    del: { request in
        if request.config.ipamType != nil { try IPAMDelegate(for: request).run(.del, request) }
    },
    check: { request in try IPAMDelegate(for: request).run(.check, request) },
    gc: { request in try IPAMDelegate(for: request).run(.gc, request) },
    status: { request in try IPAMDelegate(for: request).run(.status, request) }
).main()
