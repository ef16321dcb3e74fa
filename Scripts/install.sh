#!/usr/bin/env bash
# Installs Berth: the plugins (release builds with the static Swift runtime) into the CNI binary
# directory, and netctl with its man page and shell completions under a prefix; optionally an
# example network configuration from Conf/.
#
#   Scripts/install.sh [--bin-dir DIR] [--prefix DIR] [--conf NAME.conflist] [--conf-dir DIR]
#
#   --bin-dir DIR     where the plugins go (default /opt/cni/bin)
#   --prefix DIR      netctl in DIR/bin, its man page in DIR/share/man/man1, completions for
#                     bash, zsh and fish under DIR/share (default /usr/local)
#   --conf NAME       also install Conf/NAME (e.g. 10-berth.conflist)
#   --conf-dir DIR    where --conf goes (default /etc/cni/net.d)
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/lib.sh

bin_dir=/opt/cni/bin
prefix=/usr/local
conf_dir=/etc/cni/net.d
conf=""
while (($#)); do
  case "$1" in
    --bin-dir) bin_dir=$2; shift 2 ;;
    --prefix) prefix=$2; shift 2 ;;
    --conf) conf=$2; shift 2 ;;
    --conf-dir) conf_dir=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -n "$conf" ] && [ ! -f "Conf/$conf" ]; then
  echo "install.sh: no Conf/$conf; choose one of: $(cd Conf && ls *.conflist | tr '\n' ' ')" >&2
  exit 2
fi

berth_install_dependencies
for product in "${BERTH_PLUGINS[@]}" netctl; do
  echo "==> building $product (release, static Swift runtime)"
  swift build "${BERTH_RELEASE_BUILD[@]}" --product "$product" >/dev/null
done
# The man page comes from netctl's own parser (swift-argument-parser's generate-manual plugin).
# It runs the debug build, which the release build above does not invalidate.
echo "==> generating netctl's man page"
swift package --allow-writing-to-package-directory generate-manual --configuration debug >/dev/null

mkdir -p "$bin_dir"
for product in "${BERTH_PLUGINS[@]}"; do
  install -m 0755 ".build/release/$product" "$bin_dir/$product"
  echo "installed $bin_dir/$product"
done
install -D -m 0755 .build/release/netctl "$prefix/bin/netctl"
install -D -m 0644 .build/plugins/GenerateManual/outputs/netctl/netctl.1 "$prefix/share/man/man1/netctl.1"
install -d "$prefix/share/bash-completion/completions" "$prefix/share/zsh/site-functions" "$prefix/share/fish/vendor_completions.d"
"$prefix/bin/netctl" --generate-completion-script bash >"$prefix/share/bash-completion/completions/netctl"
"$prefix/bin/netctl" --generate-completion-script zsh >"$prefix/share/zsh/site-functions/_netctl"
"$prefix/bin/netctl" --generate-completion-script fish >"$prefix/share/fish/vendor_completions.d/netctl.fish"
echo "installed $prefix/bin/netctl, its man page and completions (bash, zsh, fish)"
if [ -n "$conf" ]; then
  mkdir -p "$conf_dir"
  install -m 0644 "Conf/$conf" "$conf_dir/$conf"
  echo "installed $conf_dir/$conf"
fi
