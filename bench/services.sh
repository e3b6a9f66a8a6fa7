#!/usr/bin/env bash
# Services side by side, in one run: twill-service-bench (twill's service path over
# net_ring devices, in-process generator) and bench/kernel_nat.sh (the kernel's nftables
# NAT as kube-proxy programs it, in namespaces, twill-pktgen on af_packet), each at N
# services of 10 endpoints with the same flows; then one table of both.
#
#   bench/services.sh [--trials N] [--packets N] [--sizes "10 1000 10000 100000"]
#                     [--kernel-sizes "10 1000 10000"] [--seconds S] [--build DIR]
#
# The kernel stops at 10k services by default: loading a 100k-service ruleset takes hours
# in this kernel (bench/RESULTS.md). Everything runs on CPU 1, one core, as a worker does.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

trials=5
packets=5000000
sizes="10 1000 10000 100000"
kernel_sizes="10 1000 10000"
seconds=1
build="build"
while (($#)); do
  case $1 in
    --trials) trials=$2; shift 2 ;;
    --packets) packets=$2; shift 2 ;;
    --sizes) sizes=$2; shift 2 ;;
    --kernel-sizes) kernel_sizes=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    *) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done

[[ -f $build/build.ninja ]] || meson setup "$build" >/dev/null
ninja -C "$build" -j1 bench/twill-service-bench bench/twill-pktgen bench/twill-ct-flush >/dev/null

work=$(mktemp -d /tmp/twb-services.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) vCPUs, $(uname -r)"
echo
echo "## twill"
"$build/bench/twill-service-bench" --trials "$trials" --packets "$packets" --sizes "${sizes// /,}" \
  --lcore-cpu 1 --json "$work/twill.json"
echo
echo "## kernel nftables NAT (kube-proxy nftables mode)"
bench/kernel_nat.sh --trials "$trials" --seconds "$seconds" --sizes "$kernel_sizes" --build "$build" \
  --tsv "$work/kernel.tsv"
echo
echo "## side by side (ns per packet on one core; median, min-max over $trials trials)"
python3 - "$work/twill.json" "$work/kernel.tsv" <<'EOF'
import json, statistics, sys

twill = json.load(open(sys.argv[1]))
ghz = twill["tsc_hz"] / 1e9
kernel = {}
for line in open(sys.argv[2]):
    f = line.split("\t")
    kernel[(int(f[0]), f[1])] = [float(x) for x in f[3:12]]  # kpps, ns, own: median min max


def ns(cycles):
    v = sorted(c / ghz for c in cycles)
    return f"{statistics.median(v):.0f} ({v[0]:.0f}-{v[-1]:.0f})"


def rate(cycles):  # millions per second on one core, generator included
    v = sorted(ghz * 1e3 / c for c in cycles)
    return f"{statistics.median(v):.2f}"


def k(n, scenario, what):
    if (n, scenario) not in kernel:
        return "-"
    v = kernel[(n, scenario)]
    i = {"ns": 3, "own": 6}[what]
    return f"{v[i]:.0f} ({v[i + 1]:.0f}-{v[i + 2]:.0f})"


def k_rate(n, scenario):
    return f"{1e3 / kernel[(n, scenario)][3]:.2f}" if (n, scenario) in kernel else "-"


bare = next(s for s in twill["sizes"] if s["services"] == 0)["plain"]["cost_cycles"]


def over_bare(cost):  # over plain encap on a node without services, paired per trial
    return ns([c - b for c, b in zip(cost, bare)])


print("| services | hit: twill own | twill over no-service node | kernel own "
      "| new flow: twill own | twill over no-service node | kernel own "
      "| new flows/s per core (M): twill | kernel |")
print("|---|---|---|---|---|---|---|---|---|")
for s in twill["sizes"]:
    n = s["services"]
    if n == 0:
        continue
    print(f"| {n} | **{ns(s['hit']['own_cycles'])}** | {over_bare(s['hit']['cost_cycles'])} "
          f"| {k(n, 'hit', 'own')} | **{ns(s['new']['own_cycles'])}** "
          f"| {over_bare(s['new']['cost_cycles'])} | {k(n, 'new', 'own')} "
          f"| {rate(s['new']['twill_cycles'])} | {k_rate(n, 'new')} |")
print()
print("own = ns per packet over the same path's plain forwarding: twill's over plain encap on the "
      "same node (io excluded; that plain packet already pays a conntrack and frontend miss), or "
      "over plain encap on a node without services; the kernel's over plain routing of the same "
      "frames without a ruleset (no conntrack). New flows/s per core: the whole loop on one core, "
      "each side's generator included (twill: in-process over net_ring; kernel: twill-pktgen's "
      "af_packet sendto, which also runs the kernel's forwarding).")
EOF
