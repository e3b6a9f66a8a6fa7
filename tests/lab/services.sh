#!/usr/bin/env bash
# Services (kube-proxy's job) in the lab: twilld runs config/lab-services.yaml, whose
# services have backends on the twill node (pod b2, later b1) and on the kernel flannel
# node kernel-a (pod a1). A client pod behind twill (b1) and a client on the underlay
# ($NS_U, 198.18.0.9) connect; every backend answers with its name and the address the
# connection came from, so the spread of new connections, affinity, masquerading and
# client-address keeping are counted, not guessed. Endpoints are scaled and terminated
# with `twillctl apply` while a long connection runs. kernel-a also plays kube-proxy's
# nftables mode (these kernels have no IPVS) in front of a twill pod. Runs its own lab;
# removes everything it made. Prints "ok - ..."/"FAIL - ..." and "N passed, M failed".
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

passed=0 failed=0
svc="$LAB_REPO/tests/lab/svc.py"
ctl() { "$LAB_REPO/build/control/twillctl" --socket "$LAB_SOCKET" "$@"; }
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  TWILL_LAB_CONFIG="$LAB_REPO/config/lab-services.yaml" "$LAB_REPO/scripts/lab.sh" down >/dev/null 2>&1 || true
  rm -f "$LAB_STATE"/svc-*.yaml "$LAB_STATE"/svc-*.out
}
trap cleanup EXIT
trap 'exit 130' INT TERM

TWILL_LAB_CONFIG="$LAB_REPO/config/lab-services.yaml" "$LAB_REPO/scripts/lab.sh" up >/dev/null
pid=$(cat "$LAB_PIDFILE")

# The underlay client: a host on the nodes' segment.
new_ns "$NS_U"
switch_port sw-u "$NS_U" eth0 "$U_MAC"
no_offloads "$NS_U" eth0
ip -n "$NS_U" addr add "$U_IP/24" dev eth0
ip -n "$NS_U" link set eth0 up

backend() {  # backend NS NAME: TCP and UDP 8080, bounded to 150 s
  ip netns exec "$1" timeout 150 python3 "$svc" serve "$2" 8080 145 &
  pids+=($!)
}
backend "$NS_B2" b2
backend "$NS_A1" a1
backend "$NS_B1" b1
for ns in "$NS_B2" "$NS_A1" "$NS_B1"; do wait_tcp_listen "$ns" 8080; done
# Warm up: MACs of both pods and of kernel-a learned before anything is counted.
ping_some "$NS_B1" "$B2_IP" >/dev/null || true
ping_some "$NS_B1" "$A1_IP" >/dev/null || true

spread() {  # spread NS ADDR PORT N: "name peer" lines of N connections
  ip netns exec "$1" timeout 60 python3 "$svc" spread "$2" "$3" "$4"
}
count() {  # count NAME < lines
  grep -c "^$1 " || true
}
out="$LAB_STATE/svc-spread.out"

spread "$NS_B1" 10.96.0.10 80 20 >"$out" || true
check "rr: 20 connections from pod b1, 10 to the twill pod b2" test "$(count b2 <"$out")" -eq 10
check "rr: ... and 10 to kernel-a's pod a1 (through VXLAN)" test "$(count a1 <"$out")" -eq 10
check "rr: backends see the client pod's own address" test "$(grep -vc " $B1_IP\$" "$out")" -eq 0

spread "$NS_B1" 10.96.0.11 80 20 >"$out" || true
check "wrr 3:1: 15 of 20 connections to b2, 5 to a1" \
  test "$(count b2 <"$out"),$(count a1 <"$out")" == "15,5"

spread "$NS_B1" 10.96.0.12 80 12 >"$out" || true
check "sh: every connection of one client to one backend" test "$(cut -d' ' -f1 "$out" | sort -u | wc -l),$(wc -l <"$out")" == "1,12"

spread "$NS_B1" 10.96.0.13 80 60 >"$out" || true
check "mh: 60 connections (source ports differ) reach both backends, each 15+" \
  test "$(count b2 <"$out")" -ge 15 -a "$(count a1 <"$out")" -ge 15 -a "$(wc -l <"$out")" -eq 60

spread "$NS_B1" 10.96.0.14 80 12 >"$out" || true
check "sessionAffinity ClientIP: 12 connections, one backend" \
  test "$(cut -d' ' -f1 "$out" | sort -u | wc -l),$(wc -l <"$out")" == "1,12"

check "no endpoints: TCP connection refused (reset from the VIP)" \
  ip netns exec "$NS_B1" timeout 10 python3 "$svc" refused 10.96.0.16 80 tcp
check "no endpoints: UDP port unreachable" \
  ip netns exec "$NS_B1" timeout 10 python3 "$svc" refused 10.96.0.16 53 udp
check "UDP service: a datagram to kernel-a's pod and its answer from the VIP" \
  bash -c "ip netns exec '$NS_B1' timeout 5 python3 -c '
import socket; u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(3)
u.connect((\"10.96.0.18\", 53)); u.send(b\"q\"); print(u.recv(100).decode())' | grep -qx 'a1 $B1_IP'"

spread "$NS_B2" 10.96.0.17 80 3 >"$out" || true
check "hairpin: pod b2 reaches itself through its service, masqueraded to 172.25.2.0" \
  test "$(grep -c '^b2 172.25.2.0$' "$out")" -eq 3

# Node ports from the underlay.
spread "$NS_U" "$B_UL_IP" 30080 10 >"$out" || true
check "NodePort (Cluster) from the underlay: 10 connections, both backends" \
  test "$(count b2 <"$out")" -ge 1 -a "$(count a1 <"$out")" -ge 1 -a "$(wc -l <"$out")" -eq 10
check "NodePort (Cluster): backends see the node's overlay address 172.25.2.0" \
  test "$(grep -c ' 172.25.2.0$' "$out")" -eq 10
spread "$NS_U" "$B_UL_IP" 30081 6 >"$out" || true
check "NodePort (Local): only the local endpoint b2, which sees the client 198.18.0.9" \
  test "$(grep -c "^b2 $U_IP\$" "$out")" -eq 6

check "get services reads like ipvsadm -Ln" \
  bash -c "$(declare -f ctl); LAB_REPO='$LAB_REPO' LAB_SOCKET='$LAB_SOCKET'; ctl get services |
    grep -A2 -E '^TCP  10.96.0.10:80 +rr' | grep -qE -- '-> 172.25.1.2:8080 +Masq +1 '"
check "get conntrack lists b1's connections to 10.96.0.10:80" \
  bash -c "$(declare -f ctl); LAB_REPO='$LAB_REPO' LAB_SOCKET='$LAB_SOCKET';
    ctl get conntrack --service 10.96.0.10:80 --client $B1_IP -o json | grep -q '\"total\": [1-9]'"

# Scaling and termination under a long connection: web-long starts with a1 only.
svc_file() {  # svc_file NAME ENDPOINTS...: a one-service apply file
  local f="$LAB_STATE/svc-$1.yaml" name=$1; shift
  {
    echo "services:"
    echo "  - name: $name"
    echo "    clusterIP: 10.96.0.20"
    echo "    ports: [{port: 80, targetPort: 8080}]"
    echo "    endpoints:"
    local e
    for e in "$@"; do echo "      - $e"; done
  } >"$f"
  echo "$f"
}
# Waits (at most ~5 s) until b1 has an established connection to web-long's backend $1.
wait_conn() {
  local i
  for ((i = 0; i < 50; i++)); do
    ctl get conntrack --service 10.96.0.20:80 --backend "$1" | grep -q ESTABLISHED && return 0
    sleep 0.1
  done
  return 1
}
check "apply: web-long with endpoint a1" ctl apply -f "$(svc_file web-long '{ip: 172.25.1.2}')"
hold_out="$LAB_STATE/svc-hold.out"
ip netns exec "$NS_B1" timeout 30 python3 "$svc" hold 10.96.0.20 80 6 >"$hold_out" 2>&1 &
hold_pid=$!
pids+=("$hold_pid")
check "a long connection to web-long is established (backend a1)" wait_conn 172.25.1.2:8080
check "scale up: apply adds b2 and b1 (b1 behind itself: hairpin)" \
  ctl apply -f "$(svc_file web-long '{ip: 172.25.1.2}' '{ip: 172.25.2.3}' '{ip: 172.25.2.2}')"
spread "$NS_B1" 10.96.0.20 80 9 >"$out" || true
check "scale up: 9 new connections, 3 to each of a1, b2, b1" \
  test "$(count a1 <"$out"),$(count b2 <"$out"),$(count b1 <"$out")" == "3,3,3"
check "graceful termination: a1 terminating" \
  ctl apply -f "$(svc_file web-long '{ip: 172.25.1.2, terminating: true}' '{ip: 172.25.2.3}' '{ip: 172.25.2.2}')"
spread "$NS_B1" 10.96.0.20 80 6 >"$out" || true
check "graceful termination: new connections avoid a1" \
  test "$(count a1 <"$out"),$(wc -l <"$out")" == "0,6"
wait "$hold_pid" && hold_rc=0 || hold_rc=$?
check "the long connection kept its backend a1 through scaling and termination" \
  bash -c "test $hold_rc -eq 0 && grep -qE '^a1 [0-9]+$' '$hold_out'"
check "scale down: apply keeps only b2" ctl apply -f "$(svc_file web-long '{ip: 172.25.2.3}')"
spread "$NS_B1" 10.96.0.20 80 4 >"$out" || true
check "scale down: every new connection to b2" test "$(count b2 <"$out")" -eq 4

# A removed endpoint's connection ends: a long connection to b2, then b2 removed.
ip netns exec "$NS_B1" timeout 30 python3 "$svc" hold 10.96.0.20 80 5 >"$hold_out" 2>&1 &
hold_pid=$!
pids+=("$hold_pid")
check "a long connection to web-long is established (backend b2)" wait_conn 172.25.2.3:8080
ctl apply -f "$(svc_file web-long '{ip: 172.25.1.2}')" >/dev/null
wait "$hold_pid" && hold_rc=0 || hold_rc=$?
check "removal: the removed endpoint's connection ends" test "$hold_rc" -ne 0

# kube-proxy's nftables mode on kernel-a, in front of twill's pod b2: twill pods are
# ordinary backends to the kernel's NAT.
kube_proxy_nft() {
  nsx "$NS_A" nft -f - <<'EOF'
table ip kube-proxy {
  map service-ips {
    type ipv4_addr . inet_proto . inet_service : verdict
    elements = { 10.96.0.30 . tcp . 80 : goto service-2KDRQDKY-default/kweb/tcp/http }
  }
  chain services {
    ip daddr . meta l4proto . th dport vmap @service-ips
  }
  chain nat-prerouting {
    type nat hook prerouting priority -100; policy accept;
    jump services
  }
  chain nat-output {
    type nat hook output priority -100; policy accept;
    jump services
  }
  chain nat-postrouting {
    type nat hook postrouting priority 100; policy accept;
    jump masquerading
  }
  chain mark-for-masquerade {
    meta mark set meta mark or 0x4000
  }
  chain masquerading {
    meta mark & 0x4000 == 0 return
    meta mark set meta mark ^ 0x4000
    masquerade fully-random
  }
  chain service-2KDRQDKY-default/kweb/tcp/http {
    ip daddr 10.96.0.30 tcp dport 80 ip saddr != 172.25.0.0/16 jump mark-for-masquerade
    numgen random mod 1 vmap { 0 : goto endpoint-5TPGNJF2-default/kweb/tcp/http__172.25.2.3/8080 }
  }
  chain endpoint-5TPGNJF2-default/kweb/tcp/http__172.25.2.3/8080 {
    ip saddr 172.25.2.3 jump mark-for-masquerade
    meta l4proto tcp dnat to 172.25.2.3:8080
  }
}
EOF
}
check "kernel-a: kube-proxy's nftables ruleset (one service, endpoint twill pod b2) loads" kube_proxy_nft
spread "$NS_A1" 10.96.0.30 80 3 >"$out" || true
check "kernel-a's nftables service (kube-proxy style) reaches twill pod b2, replies un-NATed" \
  test "$(grep -c "^b2 $A1_IP\$" "$out")" -eq 3

check "twilld still running (same pid)" test "$(twilld_pid)" == "$pid"
counters=$(twilld_counters) || counters=
check "twilld counted tracked connections" grep -qE 'ct_created +[1-9]' <<<"$counters"
check_workers_spread "$counters" conntrack

echo "$passed passed, $failed failed"
((failed == 0))
