#!/usr/bin/env bash
# The node's own kernel next to twilld: with `ports.host` a tap (twill0) into twl-b's
# kernel, set up the way an operator would (the node's underlay address and flannel
# address on twill0, the cluster routed through it, as through flannel.1), the kernel
# reaches local and remote pods and pods reach the node; the kernel flannel node reaches
# the twill node's own address (ping, and a TCP service standing in for SSH) although
# DPDK owns the underlay port. twilld runs with --watch, and a rewritten config file is
# applied without a signal. Runs its own lab; removes everything it made.
# Prints "ok - ..."/"FAIL - ..." and one "N passed, M failed" line.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cfg="$LAB_STATE/host.yaml"
passed=0 failed=0

server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; fi
  TWILL_LAB_CONFIG="$cfg" "$LAB_REPO/scripts/lab.sh" down >/dev/null 2>&1 || true
  rm -f "$cfg"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$LAB_STATE"
# Services whose endpoint is the node itself (a hostNetwork pod's port, 2222).
sed 's|^  underlay: net_af_packet0,iface=ul0.*|&\n  host: net_tap0,iface=twill0|' \
  "$LAB_REPO/config/lab-twill.yaml" | awk '/^nodes:/ && !done {
    print "services:"
    print "  - {name: node-ssh, type: NodePort, clusterIP: 10.96.0.22,"
    print "     ports: [{port: 22, targetPort: 2222, nodePort: 30022}], endpoints: [{ip: 198.18.0.2}]}"
    done = 1 } { print }' >"$cfg"
grep -q 'host: net_tap0' "$cfg"
TWILLD_ARGS=--watch TWILL_LAB_CONFIG="$cfg" "$LAB_REPO/scripts/lab.sh" up >/dev/null
pid=$(cat "$LAB_PIDFILE")

# What an operator sets on the node. In the lab the kernel also still sees ul0, the
# af_packet port's interface, which a NIC bound to DPDK would hide: strict reverse-path
# filtering drops what arrives there (every route leads through twill0) and ARP on it
# is never answered.
for ((i = 0; i < 50; i++)); do ip -n "$NS_B" link show twill0 >/dev/null 2>&1 && break; sleep 0.1; done
nsx "$NS_B" sysctl -qw net.ipv4.conf.ul0.rp_filter=1 net.ipv4.conf.ul0.arp_ignore=8
nsx "$NS_B" sysctl -qw net.ipv4.ip_forward=1   # a Kubernetes node routes
ip -n "$NS_B" link set twill0 mtu 1500 up
ip -n "$NS_B" addr add 198.18.0.2/24 dev twill0
ip -n "$NS_B" addr add 172.25.2.0/32 dev twill0
ip -n "$NS_B" route add 172.25.0.0/16 dev twill0 src 172.25.2.0

check "twill0 carries the underlay port's MAC" \
  test "$(ip -n "$NS_B" -o link show twill0 | grep -o 'link/ether [0-9a-f:]*')" == \
       "$(ip -n "$NS_B" -o link show ul0 | grep -o 'link/ether [0-9a-f:]*')"
check "kernel -> local pod b1 (ping)" ping_some "$NS_B" "${POD_IP[b1]}"
check "kernel -> local pod b2 (ping)" ping_ok "$NS_B" "${POD_IP[b2]}"
check "kernel -> remote pod a1 (ping, through VXLAN)" ping_some "$NS_B" "${POD_IP[a1]}"
check "pod b1 -> node address 198.18.0.2" ping_ok "$NS_B1" 198.18.0.2
check "pod b1 -> node flannel address 172.25.2.0" ping_ok "$NS_B1" 172.25.2.0
check "remote pod a1 -> node flannel address 172.25.2.0 (through VXLAN)" ping_ok "$NS_A1" 172.25.2.0
check "kernel-a -> twill-b's underlay address 198.18.0.2" ping_some "$NS_A" 198.18.0.2
check "pod b1 -> another node's host address 198.18.0.1 (routed by the node's kernel)" \
  ping_some "$NS_B1" 198.18.0.1

# TCP both ways: a one-line server echoes what it gets.
serve() {  # serve NS ADDR PORT: accepts one connection, echoes one line
  ip netns exec "$1" timeout 20 python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1)
c, _ = s.accept(); c.sendall(c.recv(100)); c.close()' "$2" "$3" &
  server_pid=$!
  sleep 0.5
}
ask() {  # ask NS ADDR PORT: sends a line, prints the echo
  ip netns exec "$1" timeout 10 python3 -c '
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
c.sendall(b"twill-host-path\n"); print(c.recv(100).decode().strip())' "$2" "$3"
}
serve "$NS_B" 198.18.0.2 2222
check "kernel-a -> twill-b 198.18.0.2:2222 TCP (SSH-like, to the node's kernel)" \
  bash -c "$(declare -f ask); ask '$NS_A' 198.18.0.2 2222 | grep -qx twill-host-path"
wait "$server_pid" 2>/dev/null || true
serve "$NS_B1" "${POD_IP[b1]}" 8080
check "kernel -> pod b1 TCP 8080" bash -c "$(declare -f ask); ask '$NS_B' '${POD_IP[b1]}' 8080 | grep -qx twill-host-path"
wait "$server_pid" 2>/dev/null || true
serve "$NS_B" 198.18.0.2 2222
check "NodePort with a hostNetwork endpoint: kernel-a -> 198.18.0.2:30022 -> the node's :2222" \
  bash -c "$(declare -f ask); ask '$NS_A' 198.18.0.2 30022 | grep -qx twill-host-path"
wait "$server_pid" 2>/dev/null || true
serve "$NS_B" 198.18.0.2 2222
check "ClusterIP with a hostNetwork endpoint: pod b1 -> 10.96.0.22:22 -> the node's :2222" \
  bash -c "$(declare -f ask); ask '$NS_B1' 10.96.0.22 22 | grep -qx twill-host-path"
wait "$server_pid" 2>/dev/null || true
serve "$NS_B" 172.25.2.0 8081
check "remote pod a1 -> node 172.25.2.0:8081 TCP" bash -c "$(declare -f ask); ask '$NS_A1' 172.25.2.0 8081 | grep -qx twill-host-path"
wait "$server_pid" 2>/dev/null || true
server_pid=

check "pods still reach each other: a1 -> b1" ping_ok "$NS_A1" "${POD_IP[b1]}"
check "pods still reach each other: b2 -> a1" ping_ok "$NS_B2" "${POD_IP[a1]}"
counters=$(twilld_counters 5 || true)
check "counters: traffic to and from the host port" \
  bash -c "grep -qE 'to_host [1-9]' <<<'$counters' && grep -qE 'from_host [1-9]' <<<'$counters' && grep -qE 'host_to_underlay [1-9]' <<<'$counters'"
# The kernel's copies from ul0 were dropped, so what worked went through twilld.
rpf=$(nsx "$NS_B" nstat -az TcpExtIPReversePathFilter | awk '/IPReversePathFilter/ {print $2}')
check "the kernel's own copies from ul0 dropped ($rpf by rp_filter): the above went through twilld" \
  test "${rpf:-0}" -gt 0
# --watch: the file rewritten, no signal sent; the change is applied.
echo '  - {name: pod-w, ip: 172.25.9.7}' >>"$cfg"
for ((i = 0; i < 30; i++)); do grep -q 'reload of .* applied' "$LAB_LOG" && break; sleep 0.1; done
check "--watch: a rewritten config file is applied without SIGHUP" \
  bash -c "grep -q 'changed on disk' '$LAB_LOG' && '$LAB_REPO/build/control/twillctl' --socket '$LAB_SOCKET' get pods | grep -q pod-w"
check "twilld still running" kill -0 "$pid"

echo "$passed passed, $failed failed"
((failed == 0))
