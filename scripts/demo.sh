#!/usr/bin/env bash
# The main job on the embedded default: installs what is needed, builds, and runs the lab
# demo: a Linux kernel flannel node and a twill node (DPDK, virtual devices, no NIC, no
# hugepages) in network namespaces, pods on both talking over VXLAN, then a report.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/install-deps.sh
[[ -f build/build.ninja ]] || meson setup build
ninja -C build control/twilld
exec scripts/lab.sh demo
