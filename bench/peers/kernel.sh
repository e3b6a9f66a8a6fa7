#!/usr/bin/env bash
# The Linux kernel as a peer dataplane: what a flannel (Canal) node does in its kernel
# with the vxlan backend, between two veth links whose far ends sit in a generator
# namespace, where a DPDK generator drives them with net_af_packet.
#
#   P-gen [g-pod] ==veth== [k-pod] P-node [k-ul] ==veth== [g-ul] P-gen
#          pod side       172.25.0.1/24   198.18.0.1/24        underlay
#                                 flannel.1 (VNI 1, 8472, 172.25.0.0/32)
#
#   bench/peers/kernel.sh start --prefix P --cpu N [--gen-cpu M] [--services N]
#   bench/peers/kernel.sh stop --prefix P
#   bench/peers/kernel.sh cpu-busy --cpu N [--all]
#
# Address plan (the generator builds its frames with it):
#   this node: k-ul 02:74:00:00:01:01 198.18.0.1/24; flannel.1 02:74:00:00:00:01 MTU 1450,
#     172.25.0.0/32; k-pod ee:ee:ee:ee:ee:ee (the pods' gateway MAC, as
#     Calico's host-side veths have) 172.25.0.1/24; local pod 172.25.0.10 at
#     02:74:00:00:02:0a (permanent neighbour on k-pod).
#   remote node: 198.18.0.2 at 02:74:00:00:01:02 (permanent neighbour on k-ul), VTEP MAC
#     02:74:00:00:00:02, pods 172.25.1.0/24 routed via 172.25.1.0 dev flannel.1 onlink,
#     neighbour and fdb entry as flannel programs them.
#   --services N: the N services of bench/service_flows.h (10.96.0.1 + s, UDP 53, 10
#     endpoints each on the remote slice), programmed as kube-proxy's nftables mode does
#     (its NAT part, bench/kube_proxy_nft.sh, as bench/kernel_nat.sh); conntrack is on
#     only then (the NAT hooks bring it in).
#   g-pod 02:74:00:00:0f:01 and g-ul 02:74:00:00:0f:02 are deliberately not the MACs the
#   node sends to, so P-gen's own stack drops every frame at once (PACKET_OTHERHOST);
#   af_packet sees them all anyway. No addresses and no IPv6 in either namespace (no
#   stray router solicitations or MLD on the links).
#
# Offloads: rx/tx checksumming, TSO, GSO and GRO off on the four veths: af_packet sees
# finished frames with real checksums, and nothing is merged or split, so one frame in is
# one frame out on both sides. flannel.1 is left as flannel leaves it.
#
# CPU accounting: a frame the generator sends into g-pod/g-ul would be forwarded on the
# sender's CPU inside its sendto(). RPS on k-pod and k-ul (rps_cpus = --cpu) moves their
# receive, and so everything after it (netfilter, routing, VXLAN encap/decap, the
# transmit into the peer veth), into the NET_RX softirq of CPU --cpu. RPS on g-pod and
# g-ul (= --gen-cpu, default 0) moves the generator's own receive (the af_packet copy)
# to its CPU, so CPU --cpu does only the node's work. That work is softirq time, with
# some irq (RPS IPIs) and system time; `cpu-busy` prints, in ns, system + irq + softirq
# of that CPU from /proc/stat (fields 3, 6, 7 after the cpuN label; --all adds user,
# nice and steal: everything but idle and iowait). Packets over the difference of two
# readings is the kernel's packets per busy second. The kernel here accounts by tick
# sampling (HZ 250, reported in USER_HZ units): read across a few seconds at least, and
# keep CPU --cpu otherwise idle.
set -euo pipefail

usage() {
  sed -n '10,12p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

cmd=${1:-}
(($#)) && shift
prefix='' cpu='' gen_cpu=0 services=0 all=0
while (($#)); do
  case $1 in
    --prefix) prefix=${2:-}; shift 2 || usage ;;
    --cpu) cpu=${2:-}; shift 2 || usage ;;
    --gen-cpu) gen_cpu=${2:-}; shift 2 || usage ;;
    --services) services=${2:-}; shift 2 || usage
      [[ $services =~ ^[0-9]+$ ]] || usage ;;
    --all) all=1; shift ;;
    *) usage ;;
  esac
done

die() { echo "kernel.sh: $*" >&2; exit 1; }

ncpu=$(nproc --all)
check_cpu() {
  if ! [[ $1 =~ ^[0-9]+$ ]] || (($1 >= ncpu || $1 >= 64)); then
    die "bad CPU '$1' (0..$((ncpu - 1)))"
  fi
}
check_prefix() {
  [[ $prefix =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,40}$ ]] || die "--prefix: letters, digits, _ . - (got '$prefix')"
}

ns_exists() { ip netns list | awk '{ print $1 }' | grep -qxF "$1"; }

# System + irq + softirq (or every busy column with --all) of one CPU, in ns.
cpu_busy() {
  local hz
  hz=$(getconf CLK_TCK)
  awk -v c="cpu$1" -v hz="$hz" -v all="$all" '$1 == c {
      j = $4 + $7 + $8
      if (all) j += $2 + $3 + $9
      printf "%.0f\n", j * 1e9 / hz; found = 1 }
    END { exit !found }' /proc/stat || die "no cpu$1 in /proc/stat"
}

# shellcheck source=bench/kube_proxy_nft.sh
source "$(dirname "${BASH_SOURCE[0]}")/../kube_proxy_nft.sh"

do_stop() {
  local ns
  for ns in "$prefix-gen" "$prefix-node"; do
    if ns_exists "$ns"; then ip netns del "$ns"; fi
  done
}

do_start() {
  local GEN="$prefix-gen" NODE="$prefix-node" ns dev mask
  if ns_exists "$GEN" || ns_exists "$NODE"; then
    die "$GEN or $NODE exists: stop --prefix $prefix first"
  fi
  trap 'do_stop' ERR
  for ns in "$GEN" "$NODE"; do
    ip netns add "$ns"
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
      net.ipv6.conf.default.disable_ipv6=1
    ip -n "$ns" link set lo up
  done
  ip -n "$NODE" link add k-pod address ee:ee:ee:ee:ee:ee type veth \
    peer name g-pod netns "$GEN" address 02:74:00:00:0f:01
  ip -n "$NODE" link add k-ul address 02:74:00:00:01:01 type veth \
    peer name g-ul netns "$GEN" address 02:74:00:00:0f:02
  for dev in "$NODE:k-pod" "$NODE:k-ul" "$GEN:g-pod" "$GEN:g-ul"; do
    ip netns exec "${dev%%:*}" ethtool -K "${dev#*:}" rx off tx off tso off gso off gro off >/dev/null
  done

  # The node, as flannel's vxlan backend and the bridge CNI's gateway leave it.
  ip netns exec "$NODE" sysctl -qw net.ipv4.ip_forward=1 \
    net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
  ip -n "$NODE" addr add 198.18.0.1/24 dev k-ul
  ip -n "$NODE" addr add 172.25.0.1/24 dev k-pod
  ip -n "$NODE" link add flannel.1 address 02:74:00:00:00:01 mtu 1450 type vxlan id 1 \
    local 198.18.0.1 dev k-ul dstport 8472 nolearning
  ip -n "$NODE" addr add 172.25.0.0/32 dev flannel.1
  for dev in k-pod k-ul flannel.1; do
    ip netns exec "$NODE" sysctl -qw "net.ipv4.conf.${dev/./\/}.rp_filter=0"
    ip -n "$NODE" link set "$dev" up
  done
  ip -n "$GEN" link set g-pod up
  ip -n "$GEN" link set g-ul up
  ip -n "$NODE" neigh replace 172.25.0.10 lladdr 02:74:00:00:02:0a dev k-pod nud permanent
  ip -n "$NODE" neigh replace 198.18.0.2 lladdr 02:74:00:00:01:02 dev k-ul nud permanent
  # The remote node's lease: route, ARP and FDB entries for its VTEP.
  ip -n "$NODE" neigh replace 172.25.1.0 lladdr 02:74:00:00:00:02 dev flannel.1 nud permanent
  ip netns exec "$NODE" bridge fdb append 02:74:00:00:00:02 dev flannel.1 dst 198.18.0.2
  ip -n "$NODE" route add 172.25.1.0/24 via 172.25.1.0 dev flannel.1 onlink

  # The node's receive on CPU --cpu; the generator's receive on its own CPU.
  mask=$(printf '%x' $((1 << cpu)))
  for dev in k-pod k-ul; do
    ip netns exec "$NODE" sh -c "echo $mask > /sys/class/net/$dev/queues/rx-0/rps_cpus"
  done
  mask=$(printf '%x' $((1 << gen_cpu)))
  for dev in g-pod g-ul; do
    ip netns exec "$GEN" sh -c "echo $mask > /sys/class/net/$dev/queues/rx-0/rps_cpus"
  done

  if ((services)); then
    { ruleset "$services" chains; ruleset "$services" rules 0 "$services"; } |
      ip netns exec "$NODE" nft -f -
  fi
  trap - ERR
  echo "kernel.sh: $GEN (g-pod 02:74:00:00:0f:01, g-ul 02:74:00:00:0f:02) <-> $NODE," \
    "forwarding on CPU $cpu$( ((services)) && echo ", $services services")"
}

case $cmd in
  start)
    [[ $(id -u) == 0 ]] || die "needs root"
    check_prefix
    [[ -n $cpu ]] || usage
    check_cpu "$cpu"
    check_cpu "$gen_cpu"
    ((cpu != gen_cpu)) || echo "kernel.sh: warning: --cpu equals --gen-cpu ($cpu)" >&2
    do_start
    ;;
  stop)
    [[ $(id -u) == 0 ]] || die "needs root"
    check_prefix
    do_stop
    ;;
  cpu-busy)
    [[ -n $cpu ]] || usage
    check_cpu "$cpu"
    cpu_busy "$cpu"
    ;;
  *) usage ;;
esac
