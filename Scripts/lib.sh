# Shared by Berth's scripts (source it): dependencies and the network sandbox.

# The plugin executables a user installs.
BERTH_PLUGINS=(berth-bridge berth-ipam berth-host berth-container)

# How the shipped executables are built: release, the Swift runtime linked in statically, and no
# $ORIGIN run path (SwiftPM's default, for libraries beside the executable: the plugins load only
# system libraries, and with it the loader first probes the plugin directory's glibc-hwcaps/,
# tls/ and x86_64/ subdirectories for each of them on every start: ≈ 0.1 ms of the ≈ 2 ms).
BERTH_RELEASE_BUILD=(-c release --static-swift-stdlib --disable-local-rpath)

# Debian packages the build, the tests, the demo and the benchmarks need. One list, so a clean
# machine gets everything from whichever script runs first.
BERTH_PACKAGES=(
  pkg-config libmnl-dev libnftnl-dev   # build: system-library targets
  util-linux iproute2 nftables         # sandbox (unshare), independent kernel observers (ip -j, nft -j)
  iputils-ping netcat-openbsd jq curl  # data-plane checks (ping, TCP connects, the demo's page) and JSON
  containernetworking-plugins          # the reference plugins (/usr/lib/cni): interop tests, benchmarks
  iptables                             # the reference portmap plugin needs it (interop tests)
  golang-go golang-github-appc-cni-dev # libcni, the runtimes' Go library, driving the plugins in tests
  golang-github-containerd-go-cni-dev  # containerd's CNI library (its CRI plugin attaches pods with it)
  golang-google-grpc-dev golang-google-protobuf-dev  # a CRI client talking to containerd (tests)
  containerd                           # containerd with its CRI plugin, run in the sandbox (tests)
  podman runc busybox-static           # podman's CNI backend running containers on Berth (tests)
)

# Builds the Go programs under Tests/Interop (libcni-driver, gocni-driver, cri-client: the
# runtimes' own libraries, compiled offline against Debian's Go sources) into .build/.
berth_build_interop_drivers() {
  local driver
  for driver in Tests/Interop/*/; do
    GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$PWD/.build/gocache" \
      go build -o ".build/$(basename "$driver")" "./$driver"
  done
}

# Installs the Debian packages given that are missing.
berth_install_packages() {
  local missing=() package
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
  done
  if ((${#missing[@]})); then
    echo "==> installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

berth_install_dependencies() {
  berth_install_packages "${BERTH_PACKAGES[@]}"
  if ! command -v swift >/dev/null && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="$PATH:/opt/swift/usr/bin"
  fi
  command -v swift >/dev/null || { echo "swift is not installed (expected /opt/swift)" >&2; return 1; }
}

berth_require_root() {
  [ "$(id -u)" -eq 0 ] || { echo "$0: run as root: it creates network namespaces" >&2; exit 1; }
}

# Runs "$@" in a fresh network and mount namespace with lo up, so that nothing it does (links,
# addresses, routes, sysctls, nftables, named namespaces) reaches this machine's own network.
# The runtime state directories container tools write to (named namespaces, libcni's result
# cache, podman's state and caches, containerd's shim sockets and runc state) are private tmpfs mounts there too. Everything in the sandbox
# disappears with its last process.
berth_sandbox() {
  unshare --net --mount --propagation private -- bash -euc '
    ip link set lo up
    for directory in /run/netns /var/lib/cni /var/lib/containers /run/containers /run/libpod /run/containerd; do
      mkdir -p "$directory"
      mount -t tmpfs -o mode=0755 berth-sandbox "$directory"
    done
    exec "$@"
  ' berth-sandbox "$@"
}
