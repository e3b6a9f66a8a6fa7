#!/usr/bin/env bash
# Encap and decap cost side by side with the ceiling, in one run:
#   - twill-bench: twill's pipeline vs io forwarding through the same net_ring devices and
#     transmit path (in-process generator; cost = twill - io, paired per trial);
#   - dpdk-testpmd io forwarding on two net_ring loopback ports (--tx-first), the ceiling.
# Both forward on CPU 1, one lcore each. Prints a Markdown table; --json FILE keeps trials.
#
#   bench/run.sh [--trials N] [--packets N] [--frame BYTES] [--huge] [--json FILE]
#
# --huge reserves 2 MB hugepages for the run (and gives them back); default: --no-huge.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=bench/hugepages.sh
source bench/hugepages.sh

trials=7
args=()
huge=0
while (($#)); do
  case $1 in
    --trials) trials=$2; args+=("$1" "$2"); shift 2 ;;
    --packets|--frame|--json) args+=("$1" "$2"); shift 2 ;;
    --huge) huge=1; args+=("$1"); shift ;;
    *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done

bash scripts/install-deps.sh >/dev/null
[[ -f build/build.ninja ]] || meson setup build >/dev/null
ninja -C build bench/twill-bench >/dev/null

eal_mem=(--no-huge -m 512)
if ((huge)); then
  reserve_hugepages 512
  eal_mem=(-m 512)
fi

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
build/bench/twill-bench "${args[@]}"

# testpmd io forwarding: packets circulate between two ring loopbacks; each forwarded
# packet is counted once per port it is received on, so the sum over ports is the rate.
samples=$((trials + 2))
log=$(mktemp)
timeout -s INT $((samples + 8)) dpdk-testpmd "${eal_mem[@]}" --no-pci --file-prefix="tpmd-$$" \
  -l 0,1 --log-level=error --vdev=net_ring0 --vdev=net_ring1 -- \
  --forward-mode=io --tx-first --stats-period=1 --total-num-mbufs=8192 >"$log" 2>&1 || true
tsc_hz=$(awk '/^cpu MHz/ {print $4 * 1e6; exit}' /proc/cpuinfo)
mapfile -t pps < <(awk -v skip=2 -v trials="$trials" '
  /Rx-pps:/ { sum += $2; if (++ports == 2) { n++; if (n > skip && k < trials) { print sum; k++ } sum = 0; ports = 0 } }' "$log" | sort -n)
rm -f "$log"
rm -rf "/var/run/dpdk/tpmd-$$"  # testpmd leaves its runtime files behind
k=${#pps[@]}
if ((k == 0)); then echo "testpmd: no samples"; exit 1; fi
if ((k % 2)); then med=${pps[k / 2]}; else med=$(((pps[k / 2 - 1] + pps[k / 2]) / 2)); fi
awk -v hz="$tsc_hz" -v med="$med" -v lo="${pps[0]}" -v hi="${pps[k - 1]}" -v k="$k" 'BEGIN {
  printf "| testpmd io forwarding, net_ring x2 (ceiling) | - | %.1f (%.1f-%.1f) | %.2f (%.2f-%.2f) | - |\n",
    hz / med, hz / hi, hz / lo, med / 1e6, lo / 1e6, hi / 1e6
  printf "\n(testpmd: %d one-second samples; its cycles at the nominal %.2f GHz)\n", k, hz / 1e9 }'
