#!/usr/bin/env bash
# Installs every Debian 12 package that twill's build, tests, lab and benchmarks need.
# Idempotent: packages already present are skipped, apt is only asked when needed.
set -euo pipefail

packages=(
  # build
  build-essential pkg-config meson ninja-build
  dpdk dpdk-dev libdpdk-dev libnuma-dev libpcap-dev
  libyaml-cpp-dev libfmt-dev libboost-dev catch2 nlohmann-json3-dev
  # lab and tests
  iproute2 iputils-ping tcpdump socat ethtool python3-scapy python3-yaml procps kmod nftables
  # sanitizers (libasan/libubsan come with gcc)
)

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
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
