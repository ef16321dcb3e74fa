#!/usr/bin/env bash
# Installs Berth's plugins: release builds with the static Swift runtime, copied into the CNI
# binary directory; optionally an example network configuration from Conf/.
#
#   Scripts/install.sh [--bin-dir DIR] [--conf NAME.conflist] [--conf-dir DIR]
#
#   --bin-dir DIR     where the plugins go (default /opt/cni/bin)
#   --conf NAME       also install Conf/NAME (e.g. 10-berth.conflist)
#   --conf-dir DIR    where --conf goes (default /etc/cni/net.d)
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/lib.sh

bin_dir=/opt/cni/bin
conf_dir=/etc/cni/net.d
conf=""
while (($#)); do
  case "$1" in
    --bin-dir) bin_dir=$2; shift 2 ;;
    --conf) conf=$2; shift 2 ;;
    --conf-dir) conf_dir=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -n "$conf" ] && [ ! -f "Conf/$conf" ]; then
  echo "install.sh: no Conf/$conf; choose one of: $(cd Conf && ls *.conflist | tr '\n' ' ')" >&2
  exit 2
fi

berth_install_dependencies
for product in "${BERTH_PLUGINS[@]}"; do
  echo "==> building $product (release, static Swift runtime)"
  swift build -c release --static-swift-stdlib --product "$product" >/dev/null
done
mkdir -p "$bin_dir"
for product in "${BERTH_PLUGINS[@]}"; do
  install -m 0755 ".build/release/$product" "$bin_dir/$product"
  echo "installed $bin_dir/$product"
done
if [ -n "$conf" ]; then
  mkdir -p "$conf_dir"
  install -m 0644 "Conf/$conf" "$conf_dir/$conf"
  echo "installed $conf_dir/$conf"
fi
