#!/usr/bin/env bash
# Berth's demo (the README's main command): Docker's default network, made by Berth's real
# plugin binaries, inside a network sandbox that disappears afterwards. Needs root.
#
#   sudo Scripts/demo.sh
#
# It installs what is missing, builds the release plugins into a scratch directory, then, in a
# fresh network namespace playing the host (with an uplink to an "outside" namespace), attaches
# two containers to a docker0-style bridge, pings between them and out through NAT, publishes a
# port and fetches a page through it, lets a sidecar join a container's network and a host-mode
# container ask for host ports, and detaches everything again. Nothing touches this machine's own
# network, and nothing is left behind.
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/lib.sh

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

if [ "${BERTH_DEMO_STAGE:-}" != inside ]; then
  berth_require_root
  work=$(mktemp -d /tmp/berth-demo.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  say "Building Berth's plugins (release, static Swift runtime) into $work/bin"
  Scripts/install.sh --bin-dir "$work/bin" --prefix "$work/netctl"
  say "Entering a sandbox: a new network namespace plays the host, so this machine's network is never touched"
  BERTH_DEMO_STAGE=inside BERTH_DEMO_DIR="$work" berth_sandbox "$PWD/Scripts/demo.sh"
  say "Done. The sandbox is gone with everything in it, and $work is removed."
  exit 0
fi

# ---- inside the sandbox -------------------------------------------------------------------
work=$BERTH_DEMO_DIR
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  for ns in c1 c2 outside; do ip netns del "$ns" 2>/dev/null || true; done
}
trap cleanup EXIT

say "The host gets an uplink (192.0.2.1) to an 'outside' namespace (192.0.2.2), its default route"
ip netns add outside
ip link add up0 type veth peer name out0 netns outside
ip addr add 192.0.2.1/24 dev up0 && ip link set up0 up
ip -n outside addr add 192.0.2.2/24 dev out0 && ip -n outside link set out0 up && ip -n outside link set lo up
ip route add default via 192.0.2.2
show ip -br addr show up0

say "Two containers: c1 and c2, network namespaces with nothing but lo"
ip netns add c1 && ip netns add c2
show ip -n c1 -br link

# The network: Conf/10-berth.conflist, with its state and leases kept in the scratch directory.
network=$(jq -c --arg state "$work/state" --arg leases "$work/leases" \
  '.plugins[0] + {cniVersion, name, stateDir: $state} | .ipam.dataDir = $leases' Conf/10-berth.conflist)
cni() {  # cni COMMAND CONTAINER [CONFIG]
  CNI_COMMAND=$1 CNI_CONTAINERID=demo-$2 CNI_NETNS=/run/netns/$2 CNI_IFNAME=eth0 CNI_PATH="$work/bin" \
    "$work/bin/berth-bridge" <<<"${3:-$network}"
}

say "ADD c1, publishing host port 8080 to its port 80 (what 'docker run -p 8080:80' asks for)"
with_port=$(jq -c '. + {runtimeConfig: {portMappings: [{hostPort: 8080, containerPort: 80, protocol: "tcp"}]}}' <<<"$network")
cni ADD c1 "$with_port" | tee "$work/c1.json" | jq -c '{interfaces: [.interfaces[].name], ips: [.ips[].address]}'

say "ADD c2"
cni ADD c2 | jq -c '{interfaces: [.interfaces[].name], ips: [.ips[].address]}'

say "What Berth made: a bridge with the gateway address, one veth per container, eth0 in each"
show ip -br addr show berth0
show ip -br link show master berth0
show ip -n c1 -br addr show eth0
show ip -n c2 -br addr show eth0
show ip -n c1 route

c2_address=$(ip -n c2 -j addr show eth0 | jq -r '.[0].addr_info[] | select(.family == "inet") | .local')
say "c1 pings c2 ($c2_address) across the bridge, and the gateway"
show ip netns exec c1 ping -c 2 -W 1 "$c2_address"
show ip netns exec c1 ping -c 1 -W 1 10.88.0.1

say "c1 pings the outside (192.0.2.2): masquerade makes it come from the host's address"
ip netns exec outside nft add table ip watch
ip netns exec outside nft add chain ip watch in '{ type filter hook input priority 0; }'
ip netns exec outside nft add rule ip watch in ip saddr 192.0.2.1 counter comment '"from the host"'
ip netns exec outside nft add rule ip watch in ip saddr 10.88.0.0/16 counter comment '"from a container address"'
show ip netns exec c1 ping -c 2 -W 1 192.0.2.2
echo "packets the outside counted by source:"
ip netns exec outside nft list chain ip watch in | grep counter

say "A web server in c1 on port 80; the outside fetches it through the host's port 8080"
mkdir -p "$work/www" && echo "Hello from c1, through Berth's published port" >"$work/www/index.html"
ip netns exec c1 python3 -m http.server 80 --bind 0.0.0.0 --directory "$work/www" >/dev/null 2>&1 &
server=$!
for _ in $(seq 200); do
  [ -n "$(ip netns exec c1 ss -Hltn 'sport = :80')" ] && break
  sleep 0.05
done
show ip netns exec outside curl -s --max-time 5 http://192.0.2.1:8080/
echo "and from c2, through the same host port (hairpin):"
show ip netns exec c2 curl -s --max-time 5 http://192.0.2.1:8080/

say "The firewall behind it: one nftables table, static rules, containers as map elements"
show nft list table inet berth

say "CHECK c1: everything its attachment record lists is in place"
cni CHECK c1 "$with_port" && echo "CHECK c1: ok"

netctl() { "$work/netctl/bin/netctl" "$@" --state-dir "$work/state" --data-dir "$work/leases"; }
say "What netctl sees: Berth's attachments (and any problem), and c1 traced from its record to the kernel"
show netctl ps
show netctl inspect demo-c1

# The other two Docker modes: berth-container and berth-host create nothing, they record and report.
mode() {  # mode PLUGIN COMMAND ID NETNS CONFIG [CNI_ARGS]
  CNI_COMMAND=$2 CNI_CONTAINERID=demo-$3 CNI_NETNS=$4 CNI_IFNAME=eth0 CNI_PATH="$work/bin" CNI_ARGS=${6:-} \
    "$work/bin/$1" <<<"$5"
}
joined=$(jq -c --arg state "$work/state" '.plugins[0] + {cniVersion, name, stateDir: $state}' Conf/60-berth-container.conflist)
say "A sidecar joins c1's network ('docker run --network container:c1'): berth-container reports c1's interface"
mode berth-container ADD sidecar /run/netns/c1 "$joined" "BERTH_JOIN=demo-c1" | jq -c '{interfaces: [.interfaces[].name], ips: [.ips[].address]}'
echo "a process of the sidecar reaches c1's server on localhost, as in one pod:"
show ip netns exec c1 curl -s --max-time 5 http://127.0.0.1:80/

hostmode=$(jq -c --arg state "$work/state" '.plugins[0] + {cniVersion, name, stateDir: $state}' Conf/50-berth-host.conflist)
say "A host-mode container ('docker run --network host') asking for host port 8080: refused, c1 publishes it"
mode berth-host ADD web-host "/proc/$$/ns/net" "$(jq -c '. + {runtimeConfig: {portMappings: [{hostPort: 8080, containerPort: 8080}]}}' <<<"$hostmode")" | jq -c '{code, msg}' || true
say "Asking for 9090 instead: berth-host reports the host's own network"
mode berth-host ADD web-host "/proc/$$/ns/net" "$(jq -c '. + {runtimeConfig: {portMappings: [{hostPort: 9090, containerPort: 9090}]}}' <<<"$hostmode")" | jq -c '{interfaces: [.interfaces[].name], ips: [.ips[].address], routes}'

say "DEL the sidecar and the host-mode container (records only: c1 and the host keep everything), then c1 and c2"
mode berth-container DEL sidecar /run/netns/c1 "$joined" && mode berth-host DEL web-host "" "$hostmode"
show ip -n c1 -br addr show eth0
kill "$server" && wait "$server" 2>/dev/null || true
server=""
cni DEL c1 && cni DEL c2
show ip -br link show master berth0
echo "nftables after the last container left: '$(nft list ruleset)' (empty)"
echo "attachment records: $(find "$work/state" -name '*.json' | wc -l), leases: $(ls "$work/leases/berth" | grep -c '^10\.' || true)"
