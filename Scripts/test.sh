#!/usr/bin/env bash
# Berth's test command (README): installs what the tests need, builds, and runs the whole test
# suite inside a fresh network namespace sandbox as root. Extra arguments go to `swift test`
# (e.g. --filter EntryPointTests).
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/lib.sh

berth_require_root
berth_install_dependencies

echo "==> building (debug, with tests)"
swift build --build-tests
# What install.sh ships: the whole package must build as a static release, test support included.
echo "==> building (release, static Swift runtime)"
swift build -c release --static-swift-stdlib
berth_build_libcni_driver

echo "==> swift test in a network sandbox"
# Kernel tests must run here, never be skipped: they fail loudly if the sandbox lacks a capability.
export BERTH_REQUIRE_KERNEL_TESTS=1
berth_sandbox swift test --skip-build "$@"
