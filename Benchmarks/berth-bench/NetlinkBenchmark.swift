#if canImport(Glibc)
import Glibc
#endif
import BerthIP
import BerthNetlink

/// The netlink cost of attaching a container: a veth whose peer is born in the container's
/// namespace plus the container side in one round trip, against creating the veth on the host
/// and moving one end (what runtimes that move links pay). Every container namespace is created
/// before timing starts; both variants alternate, so drift hits both alike.
struct NetlinkBenchmark {
    let iterations: Int

    /// A container namespace held open by a descriptor (no name, nothing to clean up: it goes
    /// when the descriptor closes, or with the sandbox).
    struct Container {
        let fd: Int32
        var path: String { "/proc/self/fd/\(fd)" }
        var peerNamespace: PeerNamespace { .fd(fd, path: path) }

        init() throws {
            fd = try NetworkNamespace.run(in: .new) { () throws -> Int32 in
                let fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { throw BenchmarkError("open a new namespace: errno \(errno)") }
                return fd
            }
        }
    }

    struct BenchmarkError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    func run() throws {
        let host = try RouteNetlink.current()
        try host.bridgeAdd(name: "bench0", mtu: 1500)
        guard let bridge = try host.link(named: "bench0") else { throw BenchmarkError("bench0 missing") }
        try host.addressAdd(IPPrefix("10.200.0.1/16")!, to: bridge.id)

        let warmup = 10
        let total = iterations + warmup
        print("creating \(2 * total) container namespaces…")
        let born = try (0..<total).map { _ in try Container() }
        let moved = try (0..<total).map { _ in try Container() }

        var openSocket = Samples("open socket in container netns (thread + setns)")
        var vethBorn = Samples("veth, peer born in netns, host end enslaved + up")
        var containerSide = Samples("container side: up + addr + lo + default route (1 sendmsg)")
        var bornTotal = Samples("TOTAL veth born in netns + container side")
        var vethOnHost = Samples("veth created on host, host end enslaved + up")
        var move = Samples("move peer into netns (rename eth0)")
        var movedTotal = Samples("TOTAL create on host + move + container side")
        var portFlags = Samples("bridge-port flags (hairpin + isolated)")
        var linkGet = Samples("link lookup by name")
        var deleteVeth = Samples("delete veth (synchronous unregister)")

        // The two variants run one after the other rather than interleaved: a move leaves the
        // kernel tens of milliseconds of deferred work that would land in the next measurement.
        let gateway = IPAddress("10.200.0.1")!
        for iteration in 0..<total {
            let measured = iteration >= warmup
            let address = IPPrefix(address: IPAddress(v4: 0x0AC8_0000 + UInt32(iteration) + 10), length: 16)!
            var socketTime = 0.0, vethTime = 0.0, sideTime = 0.0
            var hostPort = LinkID.named("")
            let bornTime = try milliseconds {
                var inside: RouteNetlink!
                socketTime = try milliseconds { inside = try RouteNetlink.open(in: .path(born[iteration].path)) }
                var created: (host: Link?, peerIndex: Int32?)
                vethTime = try milliseconds {
                    created = try host.vethAdd(name: "vb\(iteration)", master: bridge.index, up: true,
                                               peer: .init(name: "eth0", namespace: born[iteration].peerNamespace))
                }
                guard let peerIndex = created.peerIndex, let hostEnd = created.host else {
                    throw BenchmarkError("kernel did not echo the new veth")
                }
                hostPort = hostEnd.id
                let eth0 = LinkID(index: peerIndex, name: "eth0")
                sideTime = try milliseconds {
                    try inside.perform(.linkSetUp(eth0), .addressAdd(address, to: eth0), .linkSetUp(.named("lo")),
                                       .routeAdd(.defaultRoute(via: gateway), dev: eth0))
                }
            }
            let flagsTime = try milliseconds { try host.bridgePortSet(hostPort, hairpin: true, isolated: true) }
            let getTime = try milliseconds { _ = try host.link(named: hostPort.name) }
            guard measured else { continue }
            openSocket.values.append(socketTime)
            vethBorn.values.append(vethTime)
            containerSide.values.append(sideTime)
            bornTotal.values.append(bornTime)
            portFlags.values.append(flagsTime)
            linkGet.values.append(getTime)
        }

        for iteration in 0..<total {
            let measured = iteration >= warmup
            let address = IPPrefix(address: IPAddress(v4: 0x0AC8_8000 + UInt32(iteration) + 10), length: 16)!
            var hostVethTime = 0.0, moveTime = 0.0
            let movedName = "vm\(iteration)", temporary = "tmp\(iteration)"
            let movedTime = try milliseconds {
                let inside = try RouteNetlink.open(in: .path(moved[iteration].path))
                hostVethTime = try milliseconds {
                    try host.vethAdd(name: movedName, master: bridge.index, up: true, peer: .init(name: temporary, namespace: nil))
                }
                guard let peer = try host.link(named: temporary) else { throw BenchmarkError("\(temporary) missing") }
                moveTime = try milliseconds {
                    try host.perform(.linkSetNamespace(peer.id, moved[iteration].peerNamespace, newName: "eth0"))
                }
                guard let eth0 = try inside.link(named: "eth0") else { throw BenchmarkError("eth0 missing after move") }
                try inside.perform(.linkSetUp(eth0.id), .addressAdd(address, to: eth0.id), .linkSetUp(.named("lo")),
                                   .routeAdd(.defaultRoute(via: gateway), dev: eth0.id))
            }
            guard measured else { continue }
            vethOnHost.values.append(hostVethTime)
            move.values.append(moveTime)
            movedTotal.values.append(movedTime)
        }

        // Deleting every veth would dominate the run; a tenth of them measure the cost.
        for iteration in stride(from: warmup, to: total, by: 10) {
            deleteVeth.values.append(try milliseconds { try host.linkDelete(.named("vm\(iteration)")) })
        }

        print("netlink cost per container, \(iterations) containers each way (+\(warmup) warm-up), one bridge")
        printTable([openSocket, vethBorn, containerSide, bornTotal, vethOnHost, move, movedTotal, portFlags, linkGet, deleteVeth])
        let tenth = max(1, iterations / 10)
        func tenths(_ samples: Samples) -> String {
            var first = Samples(""), last = Samples("")
            first.values = Array(samples.values.prefix(tenth))
            last.values = Array(samples.values.suffix(tenth))
            return "first tenth p50 \(format(first.p50)) ms, last tenth p50 \(format(last.p50)) ms"
        }
        print("born in netns: \(tenths(bornTotal)); moved: \(tenths(movedTotal))")
        print("ratio born/moved p50: \(format(bornTotal.p50 / movedTotal.p50, decimals: 3))")
        print("RESULT netlink veth_container_p50_ms=\(format(bornTotal.p50)) move_p50_ms=\(format(movedTotal.p50))")
    }
}
