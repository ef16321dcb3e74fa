#!/usr/bin/env bash
# Berth's benchmarks: release build with the static Swift runtime, run inside a network sandbox
# (nothing touches this machine's own network). Prints a table; the last line is
# `RESULT <benchmark> key=value …`.
#
#   Scripts/bench.sh netlink [iterations]   veth born in the netns + container side vs create-and-move
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/lib.sh

case "${1:-}" in
  netlink) ;;
  *) echo "usage: $0 netlink [iterations]" >&2; exit 2 ;;
esac

berth_require_root
berth_install_dependencies
swift build -c release --static-swift-stdlib --product berth-bench >&2
berth_sandbox .build/release/berth-bench "$@"
