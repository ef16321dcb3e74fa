#!/usr/bin/env bash
# Berth's benchmarks: release build with the static Swift runtime, run inside a network sandbox
# (nothing touches this machine's own network). Prints a table; the last line is
# `RESULT <benchmark> key=value …`.
#
#   Scripts/bench.sh netlink [iterations]   veth born in the netns + container side vs create-and-move
#   Scripts/bench.sh ipam [iterations]      berth-ipam vs host-local ADD/DEL, empty store vs 10 000 leases
#   Scripts/bench.sh nft [iterations]       one container's port elements with 10 / 1 000 / 10 000 published
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/lib.sh

case "${1:-}" in
  netlink|ipam|nft) ;;
  *) echo "usage: $0 netlink|ipam|nft [iterations]" >&2; exit 2 ;;
esac

berth_require_root
berth_install_dependencies
for product in berth-bench berth-ipam; do
  swift build -c release --static-swift-stdlib --product "$product" >&2
done
BERTH_BENCH_DIR=$(mktemp -d /tmp/berth-bench.XXXXXX)
export BERTH_BENCH_DIR
trap 'rm -rf "$BERTH_BENCH_DIR"' EXIT
berth_sandbox .build/release/berth-bench "$@"
