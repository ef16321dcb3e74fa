#!/usr/bin/env bash
# Berth as each node's CNI in a simulated three-node Kubernetes-style cluster, inside a network
# sandbox that disappears afterwards. Needs root.
#
#   sudo Scripts/cluster-demo.sh
#
# Three "node" namespaces share an "underlay" bridge (192.168.50.11-13/24); a "world" namespace
# on it (192.168.50.254, the nodes' gateway, and 203.0.113.1) plays the internet. Every node
# runs Berth's release plugins with its own state and lease directories and
# Conf/70-berth-k8s-node.conflist with its own pod CIDR (10.244.N.0/24); static routes send each
# pod CIDR to its node (what a cloud's route table or a routing daemon does on a real cluster).
# Pods on nodes 1 and 3 exchange traffic with their pod IPs, a pod reaches the internet
# masqueraded, a hostPort on node 2 answers from node 1, and deleting every pod leaves every node
# clean. Each claim is checked: the script exits 1 if one does not hold.
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/lib.sh

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }
fail() { printf '\033[31mFAILED: %s\033[0m\n' "$*" >&2; exit 1; }

if [ "${BERTH_CLUSTER_STAGE:-}" != inside ]; then
  berth_require_root
  berth_install_dependencies
  work=$(mktemp -d /tmp/berth-cluster.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  say "Building Berth's plugins (release, static Swift runtime) into $work/bin"
  Scripts/install.sh --bin-dir "$work/bin" --prefix "$work/netctl" >/dev/null
  say "Entering a sandbox: nothing here touches this machine's own network"
  BERTH_CLUSTER_STAGE=inside BERTH_CLUSTER_DIR="$work" berth_sandbox "$PWD/Scripts/cluster-demo.sh"
  say "Done. The sandbox is gone with everything in it, and $work is removed."
  exit 0
fi

# ---- inside the sandbox -------------------------------------------------------------------
work=$BERTH_CLUSTER_DIR
nodes=(1 2 3)
pods=()
servers=()
cleanup() {
  for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  for ns in "${pods[@]}" node1 node2 node3 world underlay; do ip netns del "$ns" 2>/dev/null || true; done
}
trap cleanup EXIT

node_address() { echo "192.168.50.1$1"; }
pod_cidr() { echo "10.244.$1.0/24"; }

say "The underlay: a bridge joining three nodes and the 'world' (the nodes' default gateway)"
ip netns add underlay
ip -n underlay link add ul0 type bridge && ip -n underlay link set ul0 up
plug() {  # plug NAMESPACE ADDRESS PORT: eth0 in NAMESPACE, its peer on the underlay bridge
  ip -n underlay link add "$3" type veth peer name eth0 netns "$1"
  ip -n underlay link set "$3" master ul0 up
  ip -n "$1" addr add "$2" dev eth0 && ip -n "$1" link set eth0 up && ip -n "$1" link set lo up
}
ip netns add world
plug world 192.168.50.254/24 ulw
ip -n world addr add 203.0.113.1/32 dev eth0
for n in "${nodes[@]}"; do
  ip netns add "node$n"
  plug "node$n" "$(node_address "$n")/24" "uln$n"
  ip -n "node$n" route add default via 192.168.50.254
done

say "Routes between the pod CIDRs: each node sends another node's pod CIDR to that node"
for n in "${nodes[@]}"; do
  for m in "${nodes[@]}"; do
    [ "$n" = "$m" ] || ip -n "node$n" route add "$(pod_cidr "$m")" via "$(node_address "$m")"
  done
done
show ip -n node1 route

# Each node's network: Conf/70-berth-k8s-node.conflist with the node's pod CIDR, state and leases.
network() {  # network NODE
  jq -c --arg state "$work/node$1/state" --arg leases "$work/node$1/leases" --arg cidr "$(pod_cidr "$1")" \
    '.plugins[0] + {cniVersion, name, stateDir: $state} | .ipam.dataDir = $leases | .ipam.ranges = [[{subnet: $cidr}]]' \
    Conf/70-berth-k8s-node.conflist
}
cni() {  # cni COMMAND NODE POD [CONFIG]: the node's container runtime calling berth-bridge
  CNI_COMMAND=$1 CNI_CONTAINERID=$3 CNI_NETNS=/run/netns/$3 CNI_IFNAME=eth0 CNI_PATH="$work/bin" \
    ip netns exec "node$2" "$work/bin/berth-bridge" <<<"${4:-$(network "$2")}"
}
pod_ip() { ip -n "$1" -j addr show eth0 | jq -r '.[0].addr_info[] | select(.family == "inet") | .local'; }

say "Node 1's network: berth-bridge on cni0, pod CIDR 10.244.1.0/24, the cluster's ranges never masqueraded"
network 1 | jq .

say "A pod on node 1 and one on node 3 (ADD on each node, as the kubelet's runtime does)"
for spec in "1 pod-a" "3 pod-c"; do
  read -r n pod <<<"$spec"
  ip netns add "$pod" && pods+=("$pod")
  cni ADD "$n" "$pod" | jq -c --arg node "node$n" '{node: $node, ips: [.ips[].address]}'
done
[ "$(pod_ip pod-a)" = 10.244.1.2 ] && [ "$(pod_ip pod-c)" = 10.244.3.2 ] || fail "pod IPs are $(pod_ip pod-a) and $(pod_ip pod-c)"

say "pod-a (10.244.1.2, node 1) pings pod-c (10.244.3.2, node 3) across the underlay"
show ip netns exec pod-a ping -c 2 -W 1 10.244.3.2 || fail "pod-a cannot ping pod-c"

say "TCP from pod-a to pod-c: pod-c's server sees pod-a's pod IP, not node 1's address (no NAT)"
echo "hello from pod-c" >"$work/greeting"
ip netns exec pod-c nc -n -v -N -l 8080 <"$work/greeting" 2>"$work/server.log" &
servers+=($!)
for _ in $(seq 200); do [ -n "$(ip netns exec pod-c ss -Hltn 'sport = :8080')" ] && break; sleep 0.02; done
reply=$(ip netns exec pod-a nc -n -w 2 10.244.3.2 8080 </dev/null)
echo "pod-a received: $reply"
wait "${servers[-1]}" || true
echo "pod-c's server log: $(grep 'Connection received' "$work/server.log")"
[ "$reply" = "hello from pod-c" ] || fail "pod-a got '$reply'"
grep -q 'Connection received on 10.244.1.2 ' "$work/server.log" || fail "pod-c did not see 10.244.1.2"

say "pod-a reaches the internet (203.0.113.1): masqueraded to node 1's address"
ip netns exec world nft add table ip watch
ip netns exec world nft add chain ip watch in '{ type filter hook input priority 0; }'
ip netns exec world nft add rule ip watch in ip saddr 192.168.50.11 counter comment '"from node 1"'
ip netns exec world nft add rule ip watch in ip saddr 10.244.0.0/16 counter comment '"from a pod IP"'
show ip netns exec pod-a ping -c 2 -W 1 203.0.113.1 || fail "pod-a cannot reach the internet"
counters=$(ip netns exec world nft -j list chain ip watch in | jq -c '[.nftables[].rule? | select(.) | .expr[] | .counter? | select(.) | .packets]')
echo "packets the world counted [from node 1, from a pod IP]: $counters"
[ "$counters" = "[2,0]" ] || fail "the world counted $counters"

say "A pod on node 2 with hostPort 8080 (the portMappings capability); node 1 and pod-a connect to node 2's address"
ip netns add pod-b && pods+=("pod-b")
cni ADD 2 pod-b "$(network 2 | jq -c '. + {runtimeConfig: {portMappings: [{hostPort: 8080, containerPort: 80, protocol: "tcp"}]}}')" \
  | jq -c '{node: "node2", ips: [.ips[].address]}'
echo "hello from pod-b" >"$work/page"
ip netns exec pod-b sh -c "while nc -n -N -l 80 <'$work/page'; do :; done" >/dev/null 2>&1 &
servers+=($!)
for _ in $(seq 200); do [ -n "$(ip netns exec pod-b ss -Hltn 'sport = :80')" ] && break; sleep 0.02; done
from_node=$(ip netns exec node1 nc -n -w 2 192.168.50.12 8080 </dev/null)
from_pod=$(ip netns exec pod-a nc -n -w 2 192.168.50.12 8080 </dev/null)
echo "node 1 got: $from_node; pod-a got: $from_pod"
[ "$from_node" = "hello from pod-b" ] && [ "$from_pod" = "hello from pod-b" ] || fail "the hostPort did not answer"

say "Node 2's nftables: the network's chains, the never-masqueraded set, the hostPort as one map element"
show ip netns exec node2 nft list table inet berth

say "Deleting every pod leaves every node clean (bridges stay, as on any node)"
cni DEL 1 pod-a && cni DEL 2 pod-b && cni DEL 3 pod-c
for n in "${nodes[@]}"; do
  records=$(find "$work/node$n/state" -name '*.json' | wc -l)
  leases=$(find "$work/node$n/leases" -name '10.*' | wc -l)
  veths=$(ip -n "node$n" -j link show type veth | jq '[.[] | select(.ifname | startswith("veth"))] | length')
  table=$(ip netns exec "node$n" nft list ruleset)
  echo "node $n: records $records, leases $leases, veths $veths, nftables '${table}'"
  [ "$records$leases$veths" = 000 ] && [ -z "$table" ] || fail "node $n is not clean"
done
echo "every claim held"
