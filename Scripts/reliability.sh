#!/usr/bin/env bash
# Berth's reliability run: SIGKILL at random moments of ADD and DEL, parallel ADD/CHECK/DEL/GC,
# sloppy DELs, seeded fuzzing of every plugin, isolation from an attacker on the uplink, input
# limits — against Berth's release plugins and, side by side, the reference plugins. Everything
# runs inside a network sandbox. Prints a summary; the last line is
# `RESULT reliability kills=… leaks=… conc=… fuzz_cases=… crashes=… hangs=… bad_errors=…`.
#
#   Scripts/reliability.sh              the whole run (≈ 6 min on 2 vCPUs)
#   Scripts/reliability.sh --short      Berth only, fewer rounds (what Scripts/test.sh runs)
#   --seed N                            another deterministic run; --parts kills,fuzz,… a subset
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/lib.sh

berth_require_root
berth_install_dependencies
if [ -z "${BERTH_RELIABILITY_PREBUILT:-}" ]; then
  swift build "${BERTH_RELEASE_BUILD[@]}" >&2
  swift build --product berth-reliability >&2
fi
berth_sandbox .build/debug/berth-reliability --berth-bin .build/release "$@"
