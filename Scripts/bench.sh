#!/usr/bin/env bash
# Berth's benchmarks: release build with the static Swift runtime, run inside a network sandbox
# (nothing touches this machine's own network). Prints a table; the last line is
# `RESULT <benchmark> key=value …`.
#
#   Scripts/bench.sh netlink [iterations]   veth born in the netns + container side vs create-and-move
#   Scripts/bench.sh ipam [iterations]      berth-ipam vs host-local ADD/DEL, empty store vs 10 000 leases
#   Scripts/bench.sh nft [iterations]       one container's port elements with 10 / 1 000 / 10 000 published
#   Scripts/bench.sh cni                    Berth vs the reference plugins (and podman: netavark vs CNI on Berth),
#                                           side by side; BERTH_BENCH_SIZES=50,200,1000 BERTH_BENCH_PARALLEL=1000
#                                           BERTH_BENCH_PODMAN_RUNS=20 (0: skip podman) shorten it;
#                                           BERTH_BENCH_DISK=1 keeps leases and records on disk, not tmpfs
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/lib.sh

case "${1:-}" in
  netlink|ipam|nft|cni) ;;
  *) echo "usage: $0 netlink|ipam|nft|cni [iterations]" >&2; exit 2 ;;
esac

berth_require_root
berth_install_dependencies
# netavark: podman's own network backend, the alternative `bench.sh cni` compares with.
if [ "$1" = cni ]; then berth_install_packages netavark; fi
for product in berth-bench berth-ipam berth-bridge; do
  swift build "${BERTH_RELEASE_BUILD[@]}" --product "$product" >&2
done
BERTH_BENCH_DIR=$(mktemp -d /tmp/berth-bench.XXXXXX)
export BERTH_BENCH_DIR
trap 'rm -rf "$BERTH_BENCH_DIR"' EXIT
if [ "$1" = cni ] && [ -z "${BERTH_BENCH_DISK:-}" ]; then
  # Both implementations keep their leases (and Berth its records) on a tmpfs: on this machine
  # kind's root file system (ext4 without a journal) creating files slows down for minutes after
  # a burst of deletions, whatever the network (README, Benchmarks). BERTH_BENCH_DISK=1: on disk.
  berth_sandbox bash -c 'mount -t tmpfs berth-bench "$BERTH_BENCH_DIR" && exec "$@"' berth-bench .build/release/berth-bench "$@"
else
  berth_sandbox .build/release/berth-bench "$@"
fi
