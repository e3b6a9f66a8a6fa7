#!/usr/bin/env bash
# Installs every Debian 12 package that twill's build, tests, lab and benchmarks need.
# Idempotent: packages already present are skipped, apt is only asked when needed.
# --bench adds what only the benchmark harness (scripts/bench.sh) uses: Open vSwitch with
# DPDK (a peer it measures) and gnuplot (its plots). The packages' services are not
# started: the harness runs its own Open vSwitch in a namespace (bench/peers/ovs.sh).
set -euo pipefail

bench=0
case ${1:-} in
  --bench) bench=1 ;;
  '') ;;
  *) echo "usage: scripts/install-deps.sh [--bench]" >&2; exit 2 ;;
esac

packages=(
  # build
  build-essential pkg-config meson ninja-build
  dpdk dpdk-dev libdpdk-dev libnuma-dev libpcap-dev
  libyaml-cpp-dev libfmt-dev libboost-dev catch2 nlohmann-json3-dev
  # lab and tests
  iproute2 iputils-ping tcpdump socat ethtool python3-scapy python3-yaml procps kmod nftables
  # sanitizers (libasan/libubsan come with gcc)
)
if ((bench)); then
  packages+=(openvswitch-switch-dpdk gnuplot-nox)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing packages (${missing[*]}); run as root" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# A policy-rc.d answering 101 keeps invoke-rc.d from starting the packages' services
# (openvswitch-switch, uuidd); one already there (containers ship one) is left alone.
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d

  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
