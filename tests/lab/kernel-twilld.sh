#!/usr/bin/env bash
# A stand-in for twilld made of the Linux kernel, to check the lab and its tests
# themselves:   TWILLD=tests/lab/kernel-twilld.sh scripts/lab.sh test
# It follows twilld's contract (runs inside the twill node's namespace, prints
# "twilld: running", a counter block on SIGUSR1 and at exit, stops on SIGTERM), but
# forwards with the kernel: it programs ul0, pb1, pb2 and a flannel.1 like a kernel
# flannel node with Calico pods, and removes all of it again when it stops.
# Run only by scripts/lab.sh, inside the lab's twill-node namespace.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Refuse to run anywhere but in a lab namespace that has the twill node's interfaces.
here=$(ip netns identify "$$" 2>/dev/null || true)
if [[ $here != "$NS_B" ]] || ! ip link show ul0 >/dev/null 2>&1; then
  echo "kernel-twilld: must run inside $NS_B (started by scripts/lab.sh)" >&2
  exit 1
fi

counters() {
  echo "== twill counters (kernel stand-in: /proc/net/dev of $NS_B)"
  sed 's/:/ /' /proc/net/dev | awk 'NR > 2 && $1 != "lo" {
      printf "port %-10s rx %8d pkts %11d bytes  tx %8d pkts %11d bytes  drops rx %d tx %d\n",
             $1, $3, $2, $11, $10, $5, $13 }'
  echo "== end"
}

undo() {
  ip link del flannel.1 2>/dev/null || true
  ip addr flush dev ul0 2>/dev/null || true
  ip addr flush dev pb2 2>/dev/null || true
  ip route flush dev pb1 2>/dev/null || true
  sysctl -qw net.ipv4.ip_forward=0 || true
}

stop() {
  counters
  undo
  echo "kernel-twilld: stopped"
  exit 0
}
trap counters USR1
trap stop TERM INT

sysctl -qw net.ipv4.ip_forward=1
ip addr add "$B_UL_IP/24" dev ul0
ip link add flannel.1 address "$B_VTEP_MAC" type vxlan id 1 local "$B_UL_IP" dev ul0 \
  dstport 8472 nolearning
ip link set flannel.1 mtu 1450
ethtool -K flannel.1 tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
ip addr add 172.25.2.0/32 dev flannel.1
ip link set flannel.1 up
ip neigh replace 172.25.1.0 lladdr "$A_VTEP_MAC" dev flannel.1 nud permanent
bridge fdb append "$A_VTEP_MAC" dev flannel.1 dst "$A_UL_IP" self permanent
ip route replace 172.25.1.0/24 via 172.25.1.0 dev flannel.1 onlink
# b1: Calico style (proxy ARP for 169.254.1.1, routed out of another interface)
sysctl -qw net.ipv4.conf.pb1.proxy_arp=1
ip route add "$B1_IP/32" dev pb1
ip route add 169.254.1.1/32 dev ul0
# b2: on-link /24 with gateway 172.25.2.1; proxy ARP answers for b1 on the /24
ip addr add 172.25.2.1/32 dev pb2
ip route add "$B2_IP/32" dev pb2
sysctl -qw net.ipv4.conf.pb2.proxy_arp=1

echo "kernel-twilld: twilld: running (kernel stand-in)"
for ((i = 0; i < 36000; i++)); do  # at most an hour
  sleep 0.1 &
  wait $! || true
done
stop
