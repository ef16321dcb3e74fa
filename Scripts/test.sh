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
swift build "${BERTH_RELEASE_BUILD[@]}"
# install.sh into a scratch prefix: the plugins, netctl, its man page and completions.
echo "==> Scripts/install.sh into a scratch directory"
install_check=$(mktemp -d /tmp/berth-install.XXXXXX)
trap 'rm -rf "$install_check"' EXIT
Scripts/install.sh --bin-dir "$install_check/cni" --prefix "$install_check/usr" >/dev/null
for file in cni/berth-bridge cni/berth-ipam cni/berth-host cni/berth-container usr/bin/netctl usr/share/man/man1/netctl.1 \
            usr/share/bash-completion/completions/netctl usr/share/zsh/site-functions/_netctl usr/share/fish/vendor_completions.d/netctl.fish; do
  [ -s "$install_check/$file" ] || { echo "install.sh did not install $file" >&2; exit 1; }
done
grep -q '^\.Nm netctl' "$install_check/usr/share/man/man1/netctl.1" || { echo "netctl.1 is not a man page" >&2; exit 1; }
berth_build_interop_drivers

echo "==> swift test in a network sandbox"
# Kernel tests must run here, never be skipped: they fail loudly if the sandbox lacks a capability.
export BERTH_REQUIRE_KERNEL_TESTS=1
berth_sandbox swift test --skip-build "$@"

# The reliability run's short form (Berth only): kills, concurrency, sloppy DELs, fuzzing,
# isolation and input limits against the release plugins built above.
if [ "$#" -eq 0 ]; then
  echo "==> Scripts/reliability.sh --short"
  BERTH_RELIABILITY_PREBUILT=1 Scripts/reliability.sh --short
  # The cluster demo checks each of its claims: it runs here so that it keeps working.
  echo "==> Scripts/cluster-demo.sh"
  Scripts/cluster-demo.sh >"$install_check/cluster-demo.log" 2>&1 || { tail -40 "$install_check/cluster-demo.log"; exit 1; }
  grep -a "every claim held" "$install_check/cluster-demo.log"
fi
