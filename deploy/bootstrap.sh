#!/usr/bin/env bash
# One-step set-up and run, idempotent: installs what is missing, builds, then runs the named job.
#   bash deploy/bootstrap.sh demo    # the veth-rig demo (default)
#   bash deploy/bootstrap.sh test    # the test suite (XDP_TS_REQUIRE_KERNEL=1: rig tests fail, not skip)
#   bash deploy/bootstrap.sh bench [ARGS]  # the benchmark, bench/run.js (ARGS: its options, e.g. --quick)
#                                    # XDP_TS_BENCH_OVS=1 also installs Open vSwitch for the ovs-afxdp peer
#   bash deploy/bootstrap.sh build   # set-up and build only
# Needs root (or sudo) for Debian packages, bpffs and the rig.
set -euo pipefail
cd "$(dirname "$0")/.."
job="${1:-demo}"
shift || true
case "$job" in demo|test|bench|build) ;; *) echo "usage: bash deploy/bootstrap.sh [demo|test|bench|build]" >&2; exit 2 ;; esac

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Build and run: clang ... util-linux. Host tuning (deploy/tune-host.sh): ethtool. Checkers the tests
# of deploy/ need (test/unit/deploy.test.ts): systemd (systemd-analyze, systemd-sysusers), shellcheck.
# fonts-dejavu-core: the labels of the benchmark's PNG plots.
packages=(clang llvm libbpf-dev libelf-dev zlib1g-dev iproute2 make g++ python3 util-linux ethtool systemd shellcheck fonts-dejavu-core)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# promtool (checks deploy/prometheus.yml and the alert rules) comes from Debian's prometheus package,
# but installing that package would also start a Prometheus server: take promtool out of the .deb
# into build/tools instead (the tests look there after PATH).
if ! command -v promtool >/dev/null && [ ! -x build/tools/promtool ]; then
  echo "bootstrap: extracting promtool from Debian's prometheus package into build/tools"
  deb_dir="$(mktemp -d)"
  # (the sandbox user _apt could not write to a root-owned temporary directory)
  get_deb() { (cd "$deb_dir" && apt-get download -qq -o APT::Sandbox::User=root prometheus); }
  get_deb 2>/dev/null || { as_root apt-get update -qq; get_deb; }
  dpkg-deb --fsys-tarfile "$deb_dir"/prometheus_*.deb | tar -x -C "$deb_dir" ./usr/bin/promtool
  mkdir -p build/tools && mv "$deb_dir/usr/bin/promtool" build/tools/promtool
  rm -rf "$deb_dir"
fi

node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$node_major" -lt 20 ]; then echo "bootstrap: Node.js >= 20 is required (found ${node_major})" >&2; exit 1; fi

if ! mountpoint -q /sys/fs/bpf; then as_root mount -t bpf bpf /sys/fs/bpf; fi

# npm ci when the lock file changed since the last install (it runs the build through `prepare`);
# otherwise an incremental build.
lock_sum="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -f node_modules/.xdp-ts-lock ] || [ "$(cat node_modules/.xdp-ts-lock)" != "$lock_sum" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_sum" > node_modules/.xdp-ts-lock
else
  npm run --silent build
fi

case "$job" in
  demo) exec node dist/src/cli.js demo ;;
  test) exec npm test --silent ;;
  bench)
    # The ovs-afxdp peer needs Debian's Open vSwitch (built with AF_XDP). The benchmark starts its own
    # ovsdb-server and ovs-vswitchd with a private run directory: the system service is not used.
    if ! command -v ovs-vswitchd >/dev/null 2>&1; then
      if [ "${XDP_TS_BENCH_OVS:-0}" = 1 ]; then
        echo "bootstrap: installing openvswitch-switch for the ovs-afxdp peer"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openvswitch-switch >/dev/null
      else
        echo "bootstrap: Open vSwitch is not installed: the ovs-afxdp peer will be skipped." >&2
        echo "bootstrap: to compare with it: XDP_TS_BENCH_OVS=1 bash deploy/bootstrap.sh bench (or apt-get install openvswitch-switch)" >&2
      fi
    fi
    exec node dist/bench/run.js "$@" ;;
  build) echo "bootstrap: built" ;;
esac
