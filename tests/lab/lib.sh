# shellcheck shell=bash disable=SC2034
# Shared definitions for scripts/lab.sh and tests/lab/*.sh. Source it; it only defines
# names and functions and touches nothing.
#
# Every address and route of the lab lives inside namespaces named "$TWILL_LAB_PREFIX-*";
# nothing is configured in, or sent from, the root namespace.

LAB_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LAB_P=${TWILL_LAB_PREFIX:-twl}
LAB_STATE="$LAB_REPO/.lab"
LAB_LOG="$LAB_STATE/twilld.log"
LAB_PIDFILE="$LAB_STATE/twilld.pid"
LAB_SOCKET="$LAB_STATE/twilld.sock"   # twilld's control socket, for twillctl --socket
LAB_CONFIG=${TWILL_LAB_CONFIG:-$LAB_REPO/config/lab-twill.yaml}
TWILLD=${TWILLD:-build/control/twilld}
[[ $TWILLD == /* ]] || TWILLD="$LAB_REPO/$TWILLD"

NS_SW="$LAB_P-sw"   # underlay switch (bridge br0)
NS_A="$LAB_P-a"     # kernel flannel node kernel-a
NS_A1="$LAB_P-a1"   # pod on kernel-a (Calico style)
NS_B="$LAB_P-b"     # twill node twill-b (twilld runs here)
NS_B1="$LAB_P-b1"   # twill pod, Calico style
NS_B2="$LAB_P-b2"   # twill pod, on-link style
LAB_NAMESPACES=("$NS_SW" "$NS_A" "$NS_A1" "$NS_B" "$NS_B1" "$NS_B2")
# A second kernel flannel node, added to a running lab by `scripts/lab.sh add-kernel-c`
# (tests/lab/nodes.sh), and the namespace of the pod nodes.sh hot-plugs into twill-b.
NS_C="$LAB_P-c"     # kernel flannel node kernel-c
NS_C1="$LAB_P-c1"   # pod on kernel-c (Calico style)
NS_B3="$LAB_P-b3"   # twill pod added at run time
NS_U="$LAB_P-u"     # a client on the underlay (tests/lab/services.sh: node ports)
# The policy lab's nine pods (tests/lab/policy.sh, `scripts/lab.sh up --policy-pods`):
# namespaces x, y, z with pods a, b, c each, as in Kubernetes' e2e netpol suite, spread
# so that every namespace has pods on both nodes: NAMESPACE/POD:NODE:ADDRESS, node b =
# twill-b (Calico-style pod on an af_packet port), a = kernel-a (Calico-style pod). The
# last octet is 10 * namespace + pod (x = 1, a = 1). config/lab-policy.yaml lists the
# same pods; policy.sh checks that the two agree.
POLICY_PODS=(x/a:b:172.25.2.11 x/b:b:172.25.2.12 x/c:a:172.25.1.13
             y/a:b:172.25.2.21 y/b:a:172.25.1.22 y/c:b:172.25.2.23
             z/a:a:172.25.1.31 z/b:b:172.25.2.32 z/c:a:172.25.1.33)
policy_pod_ns() { printf '%s\n' "$LAB_P-${1/\//}"; }   # x/a -> $P-xa
POLICY_NAMESPACES=()
for _p in "${POLICY_PODS[@]}"; do _p=${_p%%:*}; POLICY_NAMESPACES+=("$LAB_P-${_p/\//}"); done
unset _p
# Removed by `scripts/lab.sh down` too, when they exist.
LAB_EXTRA_NAMESPACES=("$NS_C" "$NS_C1" "$NS_B3" "$NS_U" "${POLICY_NAMESPACES[@]}")

# Addresses (fixed: config/lab-twill.yaml uses them).
A_UL_IP=198.18.0.1   A_UL_MAC=02:00:00:00:01:01   A_VTEP_MAC=0e:00:00:00:01:00
B_UL_IP=198.18.0.2   B_UL_MAC=02:00:00:00:02:01   B_VTEP_MAC=0e:00:00:00:02:00
A1_IP=172.25.1.2     A1_MAC=0a:00:00:00:01:02
B1_IP=172.25.2.2     B1_MAC=0a:00:00:00:02:02
B2_IP=172.25.2.3     B2_MAC=0a:00:00:00:02:03
C_UL_IP=198.18.0.3   C_UL_MAC=02:00:00:00:03:01   C_VTEP_MAC=0e:00:00:00:03:00
C1_IP=172.25.3.2     C1_MAC=0a:00:00:00:03:02
U_IP=198.18.0.9      U_MAC=02:00:00:00:09:01
CALI_MAC=ee:ee:ee:ee:ee:ee   # Calico gives every host-side veth this MAC
PB1_MAC=02:00:00:00:02:81
PB2_MAC=02:00:00:00:02:82

# pod name -> namespace / IP
declare -A POD_NS=([a1]="$NS_A1" [b1]="$NS_B1" [b2]="$NS_B2")
declare -A POD_IP=([a1]="$A1_IP" [b1]="$B1_IP" [b2]="$B2_IP")

# Runs a command in a namespace. Not for `&`: the PID would be a subshell's, and killing
# it would leave the command running. Background `ip netns exec NS CMD &` directly.
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

lab_say() { printf '%s\n' "lab: $*"; }
lab_err() { printf '%s\n' "lab: $*" >&2; }

ns_exists() { ip netns list | awk '{print $1}' | grep -qxF "$1"; }

# Turns off checksum offload, TSO, GSO and GRO: af_packet would otherwise see frames
# with unfinished checksums and GSO super-frames.
no_offloads() {
  local ns=$1 dev=$2
  if ! nsx "$ns" ethtool -K "$dev" tx off rx off tso off gso off gro off >/dev/null 2>&1; then
    lab_err "warning: ethtool -K $dev (in $ns) failed"
  fi
}

new_ns() {
  local ns=$1
  ip netns add "$ns"
  # IPv6 off before any interface exists, so no ND/RS/MLD noise anywhere.
  nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n "$ns" link set lo up
}

# A pod namespace $1 whose eth0 is paired with host-side veth $3 in node namespace $2.
new_pod_veth() {
  local pod_ns=$1 node_ns=$2 host_if=$3 pod_mac=$4 host_mac=$5
  ip -n "$node_ns" link add "$host_if" address "$host_mac" mtu 1450 type veth \
    peer name eth0 address "$pod_mac" mtu 1450 netns "$pod_ns"
  no_offloads "$node_ns" "$host_if"
  no_offloads "$pod_ns" eth0
  ip -n "$node_ns" link set "$host_if" up
  ip -n "$pod_ns" link set eth0 up
}

# Joins namespace $2 to the underlay switch: its interface $3 (MAC $4) is paired with
# bridge port $1 of br0 in $NS_SW.
switch_port() {
  local sw_if=$1 ns=$2 dev=$3 mac=$4
  ip -n "$NS_SW" link add "$sw_if" mtu 1500 type veth peer name "$dev" address "$mac" mtu 1500 netns "$ns"
  no_offloads "$NS_SW" "$sw_if"
  ip -n "$NS_SW" link set "$sw_if" master br0
  ip -n "$NS_SW" link set "$sw_if" up
}

# Makes namespace $1 a Linux kernel flannel node the way flanneld's vxlan backend does:
# underlay address $2/24 on eth0, flannel.1 (vxlan id 1 dstport 8472 nolearning, MAC $3,
# MTU 1450) holding the network address $4 of the node's slice as a /32.
flannel_node() {
  local ns=$1 ul_ip=$2 vtep_mac=$3 slice_ip=$4
  no_offloads "$ns" eth0
  ip -n "$ns" addr add "$ul_ip/24" dev eth0
  ip -n "$ns" link set eth0 up
  nsx "$ns" sysctl -qw net.ipv4.ip_forward=1
  ip -n "$ns" link add flannel.1 address "$vtep_mac" type vxlan id 1 local "$ul_ip" \
    dev eth0 dstport 8472 nolearning
  ip -n "$ns" link set flannel.1 mtu 1450
  no_offloads "$ns" flannel.1
  ip -n "$ns" addr add "$slice_ip/32" dev flannel.1
  ip -n "$ns" link set flannel.1 up
}

# What flanneld programs on kernel node $1 for the subnet lease of another node: slice
# $2 (a.b.c.0/24) behind VTEP MAC $3 at underlay address $4.
flannel_peer() {
  local ns=$1 slice=$2 vtep_mac=$3 node_ip=$4
  local gw=${slice%/*}
  ip -n "$ns" neigh replace "$gw" lladdr "$vtep_mac" dev flannel.1 nud permanent
  nsx "$ns" bridge fdb append "$vtep_mac" dev flannel.1 dst "$node_ip" self permanent
  ip -n "$ns" route replace "$slice" via "$gw" dev flannel.1 onlink
}

# A Calico-style pod $2 (address $4/32, MAC $5) on kernel node $1, on host-side veth $3.
# Proxy ARP answers for 169.254.1.1 only if it is routed out of another interface; a
# real node has a default route, this namespace gets a /32.
calico_pod() {
  local node_ns=$1 pod_ns=$2 host_if=$3 pod_ip=$4 pod_mac=$5
  new_pod_veth "$pod_ns" "$node_ns" "$host_if" "$pod_mac" "$CALI_MAC"
  nsx "$node_ns" sysctl -qw "net.ipv4.conf.$host_if.proxy_arp=1"
  ip -n "$node_ns" route add "$pod_ip/32" dev "$host_if"
  ip -n "$node_ns" route replace 169.254.1.1/32 dev eth0
  ip -n "$pod_ns" addr add "$pod_ip/32" dev eth0
  ip -n "$pod_ns" route add 169.254.1.1 dev eth0 scope link
  ip -n "$pod_ns" route add default via 169.254.1.1 dev eth0
}

# A MAC made of prefix byte $1, 00 and the four bytes of IPv4 address $2.
mac_of_ip() {
  local a b c d
  IFS=. read -r a b c d <<<"$2"
  printf '%s:00:%02x:%02x:%02x:%02x\n' "$1" "$a" "$b" "$c" "$d"
}

# The policy lab's pods (POLICY_PODS), added to a lab built by lab_build before twilld
# starts: twill pods on veths p<ns><pod> (pxa, ...) in twill-b, kernel pods on
# cali-<ns><pod> in kernel-a.
policy_pods_up() {
  local spec pod node ip ns short
  for spec in "${POLICY_PODS[@]}"; do
    IFS=: read -r pod node ip <<<"$spec"
    ns=$(policy_pod_ns "$pod")
    short=${pod/\//}
    new_ns "$ns"
    if [[ $node == b ]]; then
      new_pod_veth "$ns" "$NS_B" "p$short" "$(mac_of_ip 0a "$ip")" "$(mac_of_ip 02 "$ip")"
      ip -n "$ns" addr add "$ip/32" dev eth0
      ip -n "$ns" route add 169.254.1.1 dev eth0 scope link
      ip -n "$ns" route add default via 169.254.1.1 dev eth0
    else
      calico_pod "$NS_A" "$ns" "cali-$short" "$ip" "$(mac_of_ip 0a "$ip")"
    fi
  done
}

# PID of the twilld this lab started, if it is still alive and is really twilld.
twilld_pid() {
  [[ -f $LAB_PIDFILE ]] || return 1
  local pid
  pid=$(<"$LAB_PIDFILE")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q twilld || return 1
  printf '%s\n' "$pid"
}

# Sends SIGUSR1 to twilld and prints the counter block it writes ("== twill counters"
# .. "== end"). Fails after $1 seconds (default 5) without a complete block.
twilld_counters() {
  local wait=${1:-5} pid start deadline
  pid=$(twilld_pid) || { lab_err "twilld is not running"; return 1; }
  start=$(stat -c %s "$LAB_LOG")
  kill -USR1 "$pid"
  deadline=$((SECONDS + wait))
  while ((SECONDS <= deadline)); do
    if tail -c +"$((start + 1))" "$LAB_LOG" | grep -q '^== end'; then
      tail -c +"$((start + 1))" "$LAB_LOG" | sed -n '/^== twill counters/,/^== end/p'
      return 0
    fi
    sleep 0.1
  done
  lab_err "no complete counter block from twilld (pid $pid) within ${wait}s"
  return 1
}

# With TWILL_LAB_WORKERS=N (N > 1), checks that the run spread over the workers: every
# worker received packets, and with $2 = conntrack, packets of connections met a worker
# other than the one that opened them (the two directions of a connection on different
# workers). $1: the counter block (twilld_counters).
check_workers_spread() {
  local counters=$1 n=${TWILL_LAB_WORKERS:-1}
  ((n > 1)) || return 0
  check "$n workers: each received packets" \
    grep -qE "^workers: $n rx_pkts( [1-9][0-9]*){$n} busy_cycles( [1-9][0-9]*){$n}$" <<<"$counters"
  if [[ ${2:-} == conntrack ]]; then
    check "$n workers: connections met on a worker other than their own (ct_other_worker > 0)" \
      grep -qE 'ct_other_worker [1-9]' <<<"$counters"
  fi
}

# Number of frames in pcap file $1 (tcpdump prints a VXLAN/OTV frame on two lines).
pcap_count() {
  tcpdump -nn -tt -r "$1" 2>/dev/null | grep -cE '^[0-9]+\.[0-9]+ ' || true
}

# Waits until a TCP listener on $2 exists in namespace $1 (at most ~5 s).
wait_tcp_listen() {
  local ns=$1 port=$2 i
  for ((i = 0; i < 50; i++)); do
    if nsx "$ns" ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then return 0; fi
    sleep 0.1
  done
  return 1
}

# Sends file $4 from namespace $1 to TCP port 5300 of $3 in namespace $2 (socat, at most
# 30 s); true when what arrived has the same sha256.
tcp_transfer_ok() {
  local from=$1 to=$2 ip=$3 file=$4 out lp ok=0
  out=$(mktemp)
  ip netns exec "$to" timeout 30 socat -u TCP-LISTEN:5300,reuseaddr "OPEN:$out,creat,trunc" &
  lp=$!
  if wait_tcp_listen "$to" 5300 &&
     nsx "$from" timeout 30 socat -u "OPEN:$file,rdonly" "TCP:$ip:5300,connect-timeout=5" &&
     wait "$lp" &&
     [[ $(sha256sum <"$out" | cut -d' ' -f1) == $(sha256sum <"$file" | cut -d' ' -f1) ]]; then
    ok=1
  fi
  kill "$lp" 2>/dev/null || true
  rm -f "$out"
  ((ok == 1))
}

# Waits until a UDP socket bound to $2 exists in namespace $1 (at most ~5 s).
wait_udp_bound() {
  local ns=$1 port=$2 i
  for ((i = 0; i < 50; i++)); do
    if nsx "$ns" ss -Hlun "sport = :$port" 2>/dev/null | grep -q .; then return 0; fi
    sleep 0.1
  done
  return 1
}

# ---------------------------------------------------------------------------- checks
# check DESCRIPTION COMMAND...: one "ok - ..." or "FAIL - ..." line, counted in the
# caller's $passed and $failed.
check() {
  local what=$1; shift
  if "$@" >/dev/null 2>&1; then echo "ok - $what"; passed=$((passed + 1))
  else echo "FAIL - $what"; failed=$((failed + 1)); fi
}
# Pings from namespace $1 to $2: every answer; at least one of three; all three with
# time for a MAC to be asked (twilld holds the first packet meanwhile); none.
ping_ok() { timeout 10 ip netns exec "$1" ping -c 2 -i 0.2 -W 1 "$2" | grep -q ' 0% packet loss'; }
ping_some() { timeout 10 ip netns exec "$1" ping -c 3 -i 0.2 -W 1 "$2" | grep -qE ' [123] received'; }
ping_all() { timeout 10 ip netns exec "$1" ping -c 3 -i 0.2 -W 2 "$2" | grep -q ' 3 received'; }
ping_fails() { ! timeout 10 ip netns exec "$1" ping -c 2 -i 0.2 -W 1 "$2"; }
