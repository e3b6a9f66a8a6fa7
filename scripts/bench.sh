#!/usr/bin/env bash
# The benchmark harness in one command: installs what it needs (DPDK, Open vSwitch with
# DPDK, gnuplot), builds twilld and twill-gen, and runs the suite: every scenario through
# twilld and through the peers that can do the same work (testpmd io forwarding as the
# ceiling, Open vSwitch with DPDK, the Linux kernel as flannel and kube-proxy set it up),
# one generator process on CPU 0 and the device under test on CPU 1 (bench/README.md).
#
#   scripts/bench.sh [--suite default|quick|full] [--scenarios a,b] [--duts twill,...]
#                    [--reps N] [--trial-seconds S] [--huge] [--out DIR]
#
# Prints a Markdown table; bench/out/ (or --out) gets run.json (every trial), table.md,
# throughput.png and latency.png. --huge reserves 2 MB hugepages for the run and gives
# them back; the default runs with --no-huge. Needs root and 2 CPUs or more.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=bench/hugepages.sh
source bench/hugepages.sh

huge=0
for a in "$@"; do
  [[ $a == --huge ]] && huge=1
  [[ $a == -h || $a == --help ]] && { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0; }
done

bash scripts/install-deps.sh --bench >&2
[[ -f build/build.ninja ]] || meson setup build >&2
ninja -C build control/twilld control/twillctl bench/twill-gen bench/twill-soak >&2

if ((huge)); then
  # twilld 2 GB, the generator, testpmd and Open vSwitch 512 MB to 1 GB each.
  reserve_hugepages 2048
fi

/usr/bin/python3 bench/harness.py "$@"
