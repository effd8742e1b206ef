#!/usr/bin/env bash
# Host tuning for xdp-ts (deploy/README.md, "Tune the host" explains each step and why).
#
#   bash deploy/tune-host.sh check IFACE...
#       Reports what matters for each interface and the host: driver and its XDP / AF_XDP zero-copy
#       support, queues, RSS and ntuple, IRQs and their CPUs, isolated cores, hugepages, busy-poll
#       knobs, irqbalance. Changes nothing.
#   bash deploy/tune-host.sh check --probe IFACE...
#       Also attaches the xdp_steer program in native (driver) mode for a moment and detaches it:
#       proof that the driver runs XDP natively. Some drivers reset their rings on attach, so a
#       live interface may lose a few packets.
#   bash deploy/tune-host.sh apply [--dry-run] --iface IFACE [--iface IFACE...] --queues N
#       --worker-cpus LIST [--busy-poll] [--ntuple] [--hugepages N]
#       Sets N queues (ethtool -L) and spreads RSS over them (ethtool -X equal N), moves the
#       interfaces' IRQs to the CPUs that are not worker CPUs, and optionally sets the busy-poll
#       knobs (napi_defer_hard_irqs, gro_flush_timeout), turns on ntuple filtering and reserves
#       N 2 MiB hugepages. Prints every command; --dry-run prints them without running them.
#       Settings do not survive a reboot: run it from a unit before xdp-ts (deploy/README.md).
#
# N (queues) must equal workers.count in the xdp-ts config (worker q serves queue q of every
# port) and LIST (the worker CPUs, e.g. 2,3 or 2-3) the config's workers.cpus.
# Needs root for apply and --probe; ethtool and iproute2.
# Checked by test/unit/deploy.test.ts: shellcheck, and check/apply on a veth pair in a namespace.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
STEER_OBJECT="${XDP_TS_STEER_OBJECT:-$here/../build/bpf/xdp_steer.o}"
BUSY_POLL_DEFER=2            # napi_defer_hard_irqs: empty polls before the IRQ is re-enabled
BUSY_POLL_TIMEOUT=200000     # gro_flush_timeout, ns: the timer that re-polls meanwhile

# Drivers with native XDP, and those among them with AF_XDP zero-copy, in recent kernels. A
# hint only: `check --probe` proves native XDP; zero-copy shows in xdp-ts's port_up log line and
# in xdpts_port_info{zero_copy="true"} once the daemon runs with zeroCopy: auto.
NATIVE_XDP="i40e ice ixgbe ixgbevf igb igc mlx4_en mlx5_core bnxt_en qede nfp ena gve virtio_net veth tun hv_netvsc sfc stmmac mvneta mvpp2 enetc fec dpaa2-eth thunder-nicvf idpf"
ZERO_COPY="i40e ice ixgbe igc igb mlx5_core stmmac gve idpf virtio_net"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 2; }
say() { printf '%s\n' "$*"; }
has_word() { case " $2 " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

dry_run=0
# Runs a command, or only prints it under --dry-run. Writes to sysfs/procfs go through put.
run() { say "+ $*"; [ "$dry_run" = 1 ] || "$@"; }
put() { say "+ echo $2 > $1"; [ "$dry_run" = 1 ] || printf '%s\n' "$2" > "$1"; }

# Expands a CPU list such as 2,4-6 into "2 4 5 6".
expand_cpus() {
  local part out=() a b i
  IFS=, read -r -a parts <<< "$1"
  for part in "${parts[@]}"; do
    if [[ "$part" =~ ^([0-9]+)-([0-9]+)$ ]]; then
      a="${BASH_REMATCH[1]}"; b="${BASH_REMATCH[2]}"
      for ((i = a; i <= b; i++)); do out+=("$i"); done
    elif [[ "$part" =~ ^[0-9]+$ ]]; then
      out+=("$part")
    else
      say "tune-host: bad CPU list $1" >&2; exit 2
    fi
  done
  printf '%s\n' "${out[*]}"
}

online_cpus() { expand_cpus "$(cat /sys/devices/system/cpu/online)"; }

driver_of() {
  local link="/sys/class/net/$1/device/driver"
  if [ -L "$link" ]; then basename "$(readlink -f "$link")"
  else ethtool -i "$1" 2>/dev/null | sed -n 's/^driver: //p'
  fi
}

# IRQ numbers of an interface: its PCI device's MSI vectors, else lines of /proc/interrupts that
# name it (e.g. "eth1-TxRx-0"). Virtual devices (veth) have none.
irqs_of() {
  local dir="/sys/class/net/$1/device/msi_irqs"
  if [ -d "$dir" ]; then ls "$dir"
  else awk -v ifc="$1" '$NF ~ "^"ifc"([-_@]|$)" { sub(":", "", $1); print $1 }' /proc/interrupts
  fi
}

# "combined N" where the driver has combined channels, else "rx N tx N" (veth, some NICs).
channel_args() {
  local n="$2" combined_max
  combined_max="$(ethtool -l "$1" 2>/dev/null | awk '/^Pre-set maximums/ { p = 1 } p && /^Combined:/ { print $2; exit }')"
  if [ -n "$combined_max" ] && [ "$combined_max" != "n/a" ] && [ "$combined_max" != 0 ]; then
    printf 'combined %s\n' "$n"
  else
    printf 'rx %s tx %s\n' "$n" "$n"
  fi
}

# The current channel counts in channel_args' form.
current_channels() {
  local kind
  kind="$(channel_args "$1" 1 | cut -d' ' -f1)"
  ethtool -l "$1" 2>/dev/null | awk -v kind="$kind" '
    /^Current hardware/ { c = 1 }
    c && /^RX:/ { rx = $2 } c && /^TX:/ { tx = $2 } c && /^Combined:/ { comb = $2 }
    END { if (kind == "combined") print "combined " comb; else print "rx " rx " tx " tx }'
}

check_iface() {
  local ifc="$1" probe="$2" drv mtu
  say "== $ifc"
  if [ ! -e "/sys/class/net/$ifc" ]; then say "  no such interface"; return 1; fi
  drv="$(driver_of "$ifc")"
  mtu="$(cat "/sys/class/net/$ifc/mtu")"
  say "  driver: ${drv:-unknown}, MTU $mtu"
  if has_word "$drv" "$NATIVE_XDP"; then
    say "  native XDP: yes (driver $drv); use xdpMode: native"
  else
    say "  native XDP: not known for driver ${drv:-unknown}; xdpMode: generic works (slower), --probe tells"
  fi
  if has_word "$drv" "$ZERO_COPY"; then
    say "  AF_XDP zero-copy: supported by $drv in recent kernels; zeroCopy: auto uses it (see xdpts_port_info)"
  else
    say "  AF_XDP zero-copy: not known for ${drv:-unknown}; copy mode is used (zeroCopy: auto)"
  fi
  if [ "$mtu" -gt 3000 ]; then say "  warning: native XDP usually needs MTU <= 3000 with 4096-byte frames (umem.frameSize)"; fi
  say "  queues: $(ethtool -l "$ifc" 2>/dev/null | awk '/^Current hardware/ { c = 1 } c && /^(RX|TX|Combined):/ { printf "%s %s ", $1, $2 }' || true)"
  say "  ntuple: $(ethtool -k "$ifc" 2>/dev/null | sed -n 's/^ntuple-filters: //p')"
  if ethtool -x "$ifc" >/dev/null 2>&1; then
    say "  RSS: $(ethtool -x "$ifc" | sed -n 's/^RX flow hash indirection table for .* with \([0-9]*\) RX ring.*/indirection over \1 rx rings/p')"
  else
    say "  RSS: not reported by the driver"
  fi
  local irqs irq list=""
  irqs="$(irqs_of "$ifc" | tr '\n' ' ')"
  if [ -z "${irqs// /}" ]; then
    say "  IRQs: none (a virtual device: its receive work runs on the sender's CPU)"
  else
    for irq in $irqs; do list+="$irq->$(cat "/proc/irq/$irq/smp_affinity_list" 2>/dev/null || echo '?') "; done
    say "  IRQs (irq->CPUs): $list"
  fi
  say "  busy poll: napi_defer_hard_irqs=$(cat "/sys/class/net/$ifc/napi_defer_hard_irqs" 2>/dev/null || echo n/a)" \
      "gro_flush_timeout=$(cat "/sys/class/net/$ifc/gro_flush_timeout" 2>/dev/null || echo n/a)"
  if [ "$probe" = 1 ]; then
    if [ ! -f "$STEER_OBJECT" ]; then say "  probe: $STEER_OBJECT not built (npm run build:bpf)"; return 1; fi
    if ip link set dev "$ifc" xdpdrv obj "$STEER_OBJECT" sec xdp 2>/dev/null; then
      ip link set dev "$ifc" xdpdrv off
      say "  probe: native XDP attach and detach worked"
    else
      say "  probe: native XDP attach failed (driver without XDP, MTU too large, or a program already attached)"
      return 1
    fi
  fi
}

check_host() {
  say "== host"
  say "  kernel: $(uname -r) (xdp-ts needs >= 5.10)"
  local isolated nohz
  isolated="$(cat /sys/devices/system/cpu/isolated 2>/dev/null || true)"
  nohz="$(cat /sys/devices/system/cpu/nohz_full 2>/dev/null || true)"
  say "  CPUs online: $(cat /sys/devices/system/cpu/online), isolated: ${isolated:-none}, nohz_full: ${nohz:-none}"
  local hp=/sys/kernel/mm/hugepages/hugepages-2048kB
  if [ -d "$hp" ]; then say "  2 MiB hugepages: $(cat "$hp/nr_hugepages") reserved, $(cat "$hp/free_hugepages") free"; fi
  if mountpoint -q /sys/fs/bpf 2>/dev/null; then say "  bpffs: mounted on /sys/fs/bpf"; else say "  bpffs: not mounted (mount -t bpf bpf /sys/fs/bpf)"; fi
  if command -v systemctl >/dev/null && systemctl is-active --quiet irqbalance 2>/dev/null; then
    say "  irqbalance: active (it moves IRQs back onto worker CPUs: systemctl disable --now irqbalance, or IRQBALANCE_BANNED_CPULIST)"
  else
    say "  irqbalance: not active"
  fi
}

apply() {
  local ifaces=() queues="" worker_cpus="" busy=0 ntuple=0 hugepages=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --dry-run) dry_run=1 ;;
      --iface) ifaces+=("${2:?--iface needs a name}"); shift ;;
      --queues) queues="${2:?--queues needs a number}"; shift ;;
      --worker-cpus) worker_cpus="${2:?--worker-cpus needs a CPU list}"; shift ;;
      --busy-poll) busy=1 ;;
      --ntuple) ntuple=1 ;;
      --hugepages) hugepages="${2:?--hugepages needs a number}"; shift ;;
      *) usage ;;
    esac
    shift
  done
  if [ ${#ifaces[@]} -eq 0 ] || ! [[ "$queues" =~ ^[1-9][0-9]*$ ]] || [ -z "$worker_cpus" ]; then usage; fi
  local workers housekeeping=() cpu
  workers="$(expand_cpus "$worker_cpus")"
  for cpu in $(online_cpus); do has_word "$cpu" "$workers" || housekeeping+=("$cpu"); done
  if [ ${#housekeeping[@]} -eq 0 ]; then say "tune-host: every CPU is a worker CPU; leave at least one for IRQs and the system" >&2; exit 2; fi
  say "worker CPUs: $workers; IRQs and housekeeping on: ${housekeeping[*]}"

  local ifc irqs irq i=0
  for ifc in "${ifaces[@]}"; do
    [ -e "/sys/class/net/$ifc" ] || { say "tune-host: no interface $ifc" >&2; exit 1; }
    # One queue per worker: worker q serves queue q of every port. (Some ethtool versions fail
    # when nothing would change, so an interface that has them already is left alone.)
    if [ "$(current_channels "$ifc")" = "$(channel_args "$ifc" "$queues")" ]; then
      say "$ifc: already $queues queues"
    else
      # shellcheck disable=SC2046  # channel_args prints words meant to split
      run ethtool -L "$ifc" $(channel_args "$ifc" "$queues")
    fi
    if ethtool -x "$ifc" >/dev/null 2>&1; then run ethtool -X "$ifc" equal "$queues"; fi
    if [ "$ntuple" = 1 ]; then run ethtool -K "$ifc" ntuple on; fi
    irqs="$(irqs_of "$ifc")"
    if [ -z "$irqs" ]; then say "$ifc: no IRQs to move (virtual device)"; fi
    for irq in $irqs; do
      # Round-robin over the housekeeping CPUs, never a worker CPU.
      put "/proc/irq/$irq/smp_affinity_list" "${housekeeping[$((i % ${#housekeeping[@]}))]}"
      i=$((i + 1))
    done
    if [ "$busy" = 1 ]; then
      put "/sys/class/net/$ifc/napi_defer_hard_irqs" "$BUSY_POLL_DEFER"
      put "/sys/class/net/$ifc/gro_flush_timeout" "$BUSY_POLL_TIMEOUT"
    fi
  done
  if [ -n "$hugepages" ]; then
    put /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages "$hugepages"
  fi
  local isolated
  isolated="$(cat /sys/devices/system/cpu/isolated 2>/dev/null || true)"
  if [ -z "$isolated" ]; then
    say "note: no isolated CPUs. For the lowest jitter add to the kernel command line (GRUB_CMDLINE_LINUX"
    say "      in /etc/default/grub, then update-grub and reboot):"
    say "      isolcpus=managed_irq,domain,$worker_cpus nohz_full=$worker_cpus rcu_nocbs=$worker_cpus"
  fi
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  check)
    probe=0
    if [ "${1:-}" = --probe ]; then probe=1; shift; fi
    [ $# -gt 0 ] || usage
    status=0
    check_host
    for ifc in "$@"; do check_iface "$ifc" "$probe" || status=1; done
    exit "$status"
    ;;
  apply) apply "$@" ;;
  *) usage ;;
esac
