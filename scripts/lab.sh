#!/usr/bin/env bash
# The twill lab: a kernel flannel node and a twill node joined by an underlay switch, all
# in network namespaces this script creates and removes. Nothing is configured in, or
# sent from, the root namespace.
#
#   scripts/lab.sh up [--no-twilld]   build the lab (removing leftovers), start twilld
#   scripts/lab.sh test               up, run tests/lab/integration.sh, down
#   scripts/lab.sh demo               up, a short traffic run and report, down
#   scripts/lab.sh down               stop twilld, remove the lab's namespaces
#   scripts/lab.sh capture-golden     record tests/data/kernel_{encap,pod_tx}.pcap
#
# Environment: TWILL_LAB_PREFIX (namespace prefix, default "twl"), TWILLD (binary,
# default build/control/twilld, relative to the repository root), TWILL_LAB_CONFIG
# (default config/lab-twill.yaml). twilld's output goes to .lab/twilld.log.
# To check the lab and its tests without twilld, let the kernel stand in for it:
#   TWILLD=tests/lab/kernel-twilld.sh scripts/lab.sh test
#
# Topology ($P = prefix):
#   $P-a1 eth0 -- cali-a1 [$P-a  kernel-a: flannel.1, eth0 198.18.0.1] eth0 -- sw-a
#                                                                    [$P-sw br0]
#   $P-b1 eth0 -- pb1  [$P-b  twill-b: twilld on ul0, pb1, pb2]   ul0 -- sw-b
#   $P-b2 eth0 -- pb2
#   pods: a1 172.25.1.2/32 (Calico), b1 172.25.2.2/32 (Calico), b2 172.25.2.3/24 (on-link)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../tests/lab/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/lab/lib.sh"

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

# ---------------------------------------------------------------------------- helpers

ns_exists() { ip netns list | awk '{print $1}' | grep -qxF "$1"; }

lab_leftovers() {
  local ns
  for ns in "${LAB_NAMESPACES[@]}"; do
    if ns_exists "$ns"; then return 0; fi
  done
  [[ -f $LAB_PIDFILE ]]
}

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

# ---------------------------------------------------------------------------- up/down

lab_build() {
  local ns
  for ns in "${LAB_NAMESPACES[@]}"; do new_ns "$ns"; done

  # Underlay switch.
  ip -n "$NS_SW" link add br0 type bridge stp_state 0 forward_delay 0
  ip -n "$NS_SW" link set br0 up
  ip -n "$NS_SW" link add sw-a mtu 1500 type veth peer name eth0 address "$A_UL_MAC" mtu 1500 netns "$NS_A"
  ip -n "$NS_SW" link add sw-b mtu 1500 type veth peer name ul0 address "$B_UL_MAC" mtu 1500 netns "$NS_B"
  for ns in sw-a sw-b; do
    no_offloads "$NS_SW" "$ns"
    ip -n "$NS_SW" link set "$ns" master br0
    ip -n "$NS_SW" link set "$ns" up
  done

  # kernel-a: a Linux flannel node, programmed the way flanneld programs it.
  no_offloads "$NS_A" eth0
  ip -n "$NS_A" addr add "$A_UL_IP/24" dev eth0
  ip -n "$NS_A" link set eth0 up
  nsx "$NS_A" sysctl -qw net.ipv4.ip_forward=1
  ip -n "$NS_A" link add flannel.1 address "$A_VTEP_MAC" type vxlan id 1 local "$A_UL_IP" \
    dev eth0 dstport 8472 nolearning
  ip -n "$NS_A" link set flannel.1 mtu 1450
  no_offloads "$NS_A" flannel.1
  ip -n "$NS_A" addr add 172.25.1.0/32 dev flannel.1
  ip -n "$NS_A" link set flannel.1 up
  # the subnet lease of twill-b
  ip -n "$NS_A" neigh replace 172.25.2.0 lladdr "$B_VTEP_MAC" dev flannel.1 nud permanent
  nsx "$NS_A" bridge fdb append "$B_VTEP_MAC" dev flannel.1 dst "$B_UL_IP" self permanent
  ip -n "$NS_A" route replace 172.25.2.0/24 via 172.25.2.0 dev flannel.1 onlink
  # Calico pod a1. Proxy ARP answers for 169.254.1.1 only if it is routed out of another
  # interface; a real node has a default route, this namespace gets a /32.
  new_pod_veth "$NS_A1" "$NS_A" cali-a1 "$A1_MAC" "$CALI_MAC"
  nsx "$NS_A" sysctl -qw net.ipv4.conf.cali-a1.proxy_arp=1
  ip -n "$NS_A" route add "$A1_IP/32" dev cali-a1
  ip -n "$NS_A" route add 169.254.1.1/32 dev eth0
  ip -n "$NS_A1" addr add "$A1_IP/32" dev eth0
  ip -n "$NS_A1" route add 169.254.1.1 dev eth0 scope link
  ip -n "$NS_A1" route add default via 169.254.1.1 dev eth0

  # twill-b: no IP address on any of its interfaces (twilld owns them).
  no_offloads "$NS_B" ul0
  ip -n "$NS_B" link set ul0 up
  new_pod_veth "$NS_B1" "$NS_B" pb1 "$B1_MAC" "$PB1_MAC"
  new_pod_veth "$NS_B2" "$NS_B" pb2 "$B2_MAC" "$PB2_MAC"
  # b1: Calico style
  ip -n "$NS_B1" addr add "$B1_IP/32" dev eth0
  ip -n "$NS_B1" route add 169.254.1.1 dev eth0 scope link
  ip -n "$NS_B1" route add default via 169.254.1.1 dev eth0
  # b2: on-link style
  ip -n "$NS_B2" addr add "$B2_IP/24" dev eth0
  ip -n "$NS_B2" route add default via 172.25.2.1 dev eth0
}

start_twilld() {
  if [[ ! -x $TWILLD ]]; then
    lab_err "twilld not found at $TWILLD (build it, set TWILLD, or use --no-twilld)"
    return 1
  fi
  if [[ ! -f $LAB_CONFIG ]]; then
    lab_err "config $LAB_CONFIG not found"
    return 1
  fi
  mkdir -p "$LAB_STATE"
  : >"$LAB_LOG"
  # `ip netns exec` and setsid exec in place: $! is twilld's PID.
  setsid ip netns exec "$NS_B" "$TWILLD" --config "$LAB_CONFIG" --socket "$LAB_SOCKET" \
    </dev/null >>"$LAB_LOG" 2>&1 &
  local pid=$!
  echo "$pid" >"$LAB_PIDFILE"
  lab_say "twilld started in $NS_B (pid $pid, log ${LAB_LOG#"$LAB_REPO"/})"
  local deadline=$((SECONDS + 30))
  while ! grep -q 'twilld: running' "$LAB_LOG"; do
    # kill -0, not twilld_pid: while setsid and ip exec into twilld, /proc/PID/cmdline
    # can read empty for a moment, which looked like an early exit.
    if ! kill -0 "$pid" 2>/dev/null; then
      lab_err "twilld exited before it was running; its log:"
      sed 's/^/  | /' "$LAB_LOG" >&2
      rm -f "$LAB_PIDFILE"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      lab_err "twilld did not report 'twilld: running' within 30 s; its log:"
      sed 's/^/  | /' "$LAB_LOG" >&2
      stop_twilld
      return 1
    fi
    sleep 0.2
  done
  lab_say "twilld running"
}

pid_alive() {
  local pid=$1 state
  [[ -r /proc/$pid/stat ]] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z ]]
}

stop_twilld() {
  local pid
  if pid=$(twilld_pid); then
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 100; i++)); do
      pid_alive "$pid" || break
      sleep 0.1
    done
    if pid_alive "$pid"; then
      lab_err "twilld (pid $pid) still running 10 s after SIGTERM: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    fi
    wait "$pid" 2>/dev/null || true  # reap it if it is our child
    lab_say "twilld stopped (pid $pid)"
  fi
  rm -f "$LAB_PIDFILE"
}

lab_down() {
  stop_twilld || true
  local ns pids pid
  for ns in "${LAB_NAMESPACES[@]}"; do
    ns_exists "$ns" || continue
    # Anything still running inside a lab namespace was started by the lab or its tests.
    pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ') || pids=
    if [[ -n ${pids// /} ]]; then
      lab_err "stopping processes left in $ns: $pids"
      for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
      sleep 0.5
      for pid in $pids; do
        if pid_alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
      done
    fi
    ip netns del "$ns" 2>/dev/null || lab_err "could not delete namespace $ns"
  done
  return 0
}

lab_up() {
  local with_twilld=$1
  if lab_leftovers; then
    lab_say "removing leftovers of an earlier lab"
    lab_down
  fi
  lab_build
  lab_say "topology up: ${LAB_NAMESPACES[*]}"
  if [[ $with_twilld == yes ]]; then start_twilld; fi
}

# ---------------------------------------------------------------------------- commands

cmd_up() {
  local with_twilld=yes
  while (($#)); do
    case $1 in
      --no-twilld) with_twilld=no ;;
      *) lab_err "up: unknown option $1"; return 2 ;;
    esac
    shift
  done
  if ! lab_up "$with_twilld"; then
    lab_down
    return 1
  fi
}

cmd_test() {
  trap 'lab_down' EXIT
  trap 'exit 130' INT TERM
  lab_up yes
  local rc=0
  bash "$LAB_REPO/tests/lab/integration.sh" || rc=$?
  return "$rc"
}

# A short run: ping every pair, one TCP transfer per kind of path, then a report.
cmd_demo() {
  trap 'lab_down >/dev/null' EXIT
  trap 'exit 130' INT TERM
  lab_up yes >/dev/null
  local tmp
  tmp=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'; lab_down >/dev/null" EXIT

  local -A label=([a1]="a1 (kernel-a)" [b1]="b1 (twill-b)" [b2]="b2 (twill-b)")
  local s d bad=0
  echo
  echo "twill lab demo: kernel flannel node kernel-a (198.18.0.1) <-> twill node twill-b (198.18.0.2)"
  echo "  pods: a1 ${POD_IP[a1]} on kernel-a; b1 ${POD_IP[b1]} (Calico /32), b2 ${POD_IP[b2]} (/24) on twill-b"
  echo
  echo "ping (2 packets), from row to column:"
  printf '  %-15s' ""
  for d in a1 b1 b2; do printf '%-8s' "$d"; done
  echo
  for s in a1 b1 b2; do
    printf '  %-15s' "${label[$s]}"
    for d in a1 b1 b2; do
      if [[ $s == "$d" ]]; then
        printf '%-8s' "-"
      elif nsx "${POD_NS[$s]}" timeout 10 ping -q -c 2 -i 0.2 -W 2 "${POD_IP[$d]}" >/dev/null 2>&1; then
        printf '%-8s' "ok"
      else
        printf '%-8s' "FAIL"
        bad=1
      fi
    done
    echo
  done

  echo
  echo "TCP, 4 MiB of random data, sha256 compared:"
  head -c $((4 << 20)) /dev/urandom >"$tmp/payload"
  local want port=6000 t0 t1 got res
  want=$(sha256sum <"$tmp/payload" | cut -d' ' -f1)
  for pair in a1:b1 b1:a1 b1:b2 b2:a1; do
    s=${pair%:*} d=${pair#*:}
    port=$((port + 1))
    rm -f "$tmp/out"
    ip netns exec "${POD_NS[$d]}" timeout 30 socat -u "TCP-LISTEN:$port,reuseaddr" "OPEN:$tmp/out,creat,trunc" 2>/dev/null &
    local lpid=$!
    res=FAIL
    if wait_tcp_listen "${POD_NS[$d]}" "$port" && t0=$(date +%s.%N) &&
      nsx "${POD_NS[$s]}" timeout 30 socat -u "OPEN:$tmp/payload,rdonly" \
        "TCP:${POD_IP[$d]}:$port,connect-timeout=5" 2>/dev/null; then
      wait "$lpid" 2>/dev/null || true
      t1=$(date +%s.%N)
      got=$(sha256sum <"$tmp/out" | cut -d' ' -f1)
      if [[ $got == "$want" ]]; then
        res=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "ok  (%.2f s, %.0f Mbit/s)", b - a, 4 * 8 * 1.048576 / (b - a) }')
      fi
    else
      kill "$lpid" 2>/dev/null || true
      wait "$lpid" 2>/dev/null || true
    fi
    [[ $res == FAIL ]] && bad=1
    printf '  %-4s -> %-4s %s\n' "$s" "$d" "$res"
  done

  echo
  echo "twilld counters (SIGUSR1):"
  if ! twilld_counters 5 | sed 's/^/  /'; then
    echo "  (no counter block)"
    bad=1
  fi
  echo
  if ((bad)); then
    echo "demo: some paths FAILED (twilld log: ${LAB_LOG#"$LAB_REPO"/}, kept until the next lab run)"
  else
    echo "demo: all paths ok"
  fi
  return "$bad"
}

# Records what the kernel puts on the wire for pod a1 -> twill pod 172.25.2.2:
# tests/data/kernel_pod_tx.pcap (the inner frames as the pod sent them, on cali-a1) and
# tests/data/kernel_encap.pcap (the same frames as kernel-a's flannel.1 encapsulated
# them, on the underlay switch port sw-a). Without twilld nobody answers kernel-a's ARP
# for 198.18.0.2, so kernel-a gets a permanent neighbour entry with ul0's MAC instead.
cmd_capture_golden() {
  trap 'lab_down' EXIT
  trap 'exit 130' INT TERM
  lab_up no
  local tmp
  tmp=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'; lab_down" EXIT
  ip -n "$NS_A" neigh replace "$B_UL_IP" lladdr "$B_UL_MAC" dev eth0 nud permanent

  ip netns exec "$NS_SW" timeout 20 tcpdump -i sw-a -nn -U -c 3 -w "$tmp/encap.pcap" 'udp port 8472' \
    2>"$tmp/encap.err" &
  local p1=$!
  ip netns exec "$NS_A" timeout 20 tcpdump -i cali-a1 -nn -U -c 3 -w "$tmp/pod_tx.pcap" \
    'ip and dst host 172.25.2.2' 2>"$tmp/pod_tx.err" &
  local p2=$!
  local i
  for ((i = 0; i < 50; i++)); do
    grep -q 'listening on' "$tmp/encap.err" && grep -q 'listening on' "$tmp/pod_tx.err" && break
    sleep 0.1
  done

  # 1. ICMP echo request (no reply: nobody serves 172.25.2.2)
  nsx "$NS_A1" ping -c 1 -W 1 "$B1_IP" >/dev/null 2>&1 || true
  # 2. one UDP datagram
  printf 'twill golden udp\n' |
    nsx "$NS_A1" timeout 5 socat -u STDIN "UDP-SENDTO:$B1_IP:5000" || true
  sleep 0.2
  # 3. one TCP SYN (connect attempt; gives up before the kernel retransmits)
  nsx "$NS_A1" timeout 2 socat -u /dev/null "TCP:$B1_IP:5001,connect-timeout=0.5" \
    >/dev/null 2>&1 || true

  local rc=0
  wait "$p1" || rc=$?
  wait "$p2" || rc=$?
  if ((rc != 0)); then
    lab_err "a capture did not get its 3 frames (rc $rc)"
    cat "$tmp/encap.err" "$tmp/pod_tx.err" >&2
    return 1
  fi

  local n1 n2 v
  n1=$(pcap_count "$tmp/encap.pcap")
  n2=$(pcap_count "$tmp/pod_tx.pcap")
  v=$(tcpdump -nn -v -T vxlan -r "$tmp/encap.pcap" 2>/dev/null)
  if [[ $n1 != 3 || $n2 != 3 ]]; then
    lab_err "expected 3 frames each, got encap=$n1 pod_tx=$n2"
    return 1
  fi
  if [[ $(grep -c 'VXLAN, flags \[I\] (0x08), vni 1$' <<<"$v") != 3 ||
    $(grep -cE "^ +$A_UL_IP\.[0-9]+ > $B_UL_IP\.8472: " <<<"$v") != 3 ]]; then
    lab_err "outer frames are not VXLAN VNI 1 from $A_UL_IP to $B_UL_IP port 8472:"
    printf '%s\n' "$v" >&2
    return 1
  fi
  mkdir -p "$LAB_REPO/tests/data"
  cp "$tmp/encap.pcap" "$LAB_REPO/tests/data/kernel_encap.pcap"
  cp "$tmp/pod_tx.pcap" "$LAB_REPO/tests/data/kernel_pod_tx.pcap"
  lab_say "wrote tests/data/kernel_encap.pcap (tcpdump decodes UDP 8472 as OTV: instance 1 = VNI 1):"
  tcpdump -nn -e -vv -r "$LAB_REPO/tests/data/kernel_encap.pcap" 2>/dev/null | sed 's/^/  /'
  lab_say "wrote tests/data/kernel_pod_tx.pcap:"
  tcpdump -nn -e -vv -r "$LAB_REPO/tests/data/kernel_pod_tx.pcap" 2>/dev/null | sed 's/^/  /'
}

main() {
  if [[ $(id -u) -ne 0 ]]; then
    lab_err "needs root (network namespaces)"
    exit 1
  fi
  local cmd=${1:-}
  (($#)) && shift
  case $cmd in
    up) cmd_up "$@" ;;
    down) lab_down; lab_say "down" ;;
    test) cmd_test ;;
    demo) cmd_demo ;;
    capture-golden) cmd_capture_golden ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
