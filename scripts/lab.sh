#!/usr/bin/env bash
# The twill lab: a kernel flannel node and a twill node joined by an underlay switch, all
# in network namespaces this script creates and removes. Nothing is configured in, or
# sent from, the root namespace.
#
#   scripts/lab.sh up [--no-twilld] [--policy-pods]
#                                     build the lab (removing leftovers), start twilld;
#                                     --policy-pods adds the policy lab's nine pods
#                                     (tests/lab/policy.sh) before twilld starts
#   scripts/lab.sh test               up, run tests/lab/integration.sh, down
#   scripts/lab.sh demo               up, a short traffic run and report, down
#   scripts/lab.sh down               stop twilld, remove the lab's namespaces
#   scripts/lab.sh add-kernel-c       join a second kernel flannel node to a running lab
#   scripts/lab.sh capture-golden     record tests/data/kernel_{encap,pod_tx}.pcap
#
# Environment: TWILLD_ARGS (extra twilld arguments, e.g. --watch),
# TWILL_LAB_PREFIX (namespace prefix, default "twl"), TWILLD (binary,
# default build/control/twilld, relative to the repository root), TWILL_LAB_CONFIG
# (default config/lab-twill.yaml), TWILL_LAB_WORKERS (run twilld with that many workers:
# its config's dpdk.workers, and as many af_packet queue pairs on the underlay port).
# twilld's output goes to .lab/twilld.log.
# To check the lab and its tests without twilld, let the kernel stand in for it:
#   TWILLD=tests/lab/kernel-twilld.sh scripts/lab.sh test
#
# Topology ($P = prefix):
#   $P-a1 eth0 -- cali-a1 [$P-a  kernel-a: flannel.1, eth0 198.18.0.1] eth0 -- sw-a
#                                                                    [$P-sw br0]
#   $P-b1 eth0 -- pb1  [$P-b  twill-b: twilld on ul0, pb1, pb2]   ul0 -- sw-b
#   $P-b2 eth0 -- pb2
#   pods: a1 172.25.1.2/32 (Calico), b1 172.25.2.2/32 (Calico), b2 172.25.2.3/24 (on-link)
# and, after add-kernel-c:
#   $P-c1 eth0 -- cali-c1 [$P-c  kernel-c: flannel.1, eth0 198.18.0.3] eth0 -- sw-c
#   pod c1 172.25.3.2/32 (Calico), slice 172.25.3.0/24
# and, with --policy-pods (use TWILL_LAB_CONFIG=config/lab-policy.yaml):
#   $P-xa $P-xb $P-ya $P-yc $P-zb on twill-b (veths pxa ...), $P-xc $P-yb $P-za $P-zc on
#   kernel-a (cali-xc ...); addresses in tests/lab/lib.sh (POLICY_PODS)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../tests/lab/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/lab/lib.sh"

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

# ---------------------------------------------------------------------------- helpers

lab_leftovers() {
  local ns
  for ns in "${LAB_NAMESPACES[@]}" "${LAB_EXTRA_NAMESPACES[@]}"; do
    if ns_exists "$ns"; then return 0; fi
  done
  [[ -f $LAB_PIDFILE ]]
}

# ---------------------------------------------------------------------------- up/down

lab_build() {
  local ns
  for ns in "${LAB_NAMESPACES[@]}"; do new_ns "$ns"; done

  # Underlay switch.
  ip -n "$NS_SW" link add br0 type bridge stp_state 0 forward_delay 0
  ip -n "$NS_SW" link set br0 up
  switch_port sw-a "$NS_A" eth0 "$A_UL_MAC"
  switch_port sw-b "$NS_B" ul0 "$B_UL_MAC"

  # kernel-a: a Linux flannel node, programmed the way flanneld programs it.
  flannel_node "$NS_A" "$A_UL_IP" "$A_VTEP_MAC" 172.25.1.0
  # the subnet lease of twill-b
  flannel_peer "$NS_A" 172.25.2.0/24 "$B_VTEP_MAC" "$B_UL_IP"
  # Calico pod a1
  calico_pod "$NS_A" "$NS_A1" cali-a1 "$A1_IP" "$A1_MAC"

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
  local config=$LAB_CONFIG workers=${TWILL_LAB_WORKERS:-}
  if [[ -n $workers && $workers != 1 ]]; then
    # The same node with N workers; af_packet gives a port N queues by its qpairs devarg
    # (its fanout spreads flows over them as RSS would).
    # A test's own copy (in .lab, which it rewrites and reloads) changes in place; a
    # config of the repository is copied first.
    [[ $LAB_CONFIG == "$LAB_STATE"/* ]] || config="$LAB_STATE/twilld-$workers-workers.yaml"
    sed -e "s/^\(  workers:\) *[0-9]*/\1 $workers/" \
        -e "/qpairs=/!s/^\(  underlay: net_af_packet[^ ]*\)/\1,qpairs=$workers/" \
        "$LAB_CONFIG" >"$LAB_STATE/.workers.yaml"
    mv "$LAB_STATE/.workers.yaml" "$config"
    if ! grep -q "^  workers: $workers" "$config" ||
       { grep -q '^  underlay: net_af_packet' "$config" && ! grep -q "qpairs=$workers" "$config"; }; then
      lab_err "TWILL_LAB_WORKERS=$workers: $LAB_CONFIG has no 'workers:' line, or its af_packet underlay no queues"
      return 1
    fi
    lab_say "twilld with $workers workers ($config)"
  fi
  # `ip netns exec` and setsid exec in place: $! is twilld's PID.
  # shellcheck disable=SC2086  # TWILLD_ARGS: extra arguments, split on spaces
  setsid ip netns exec "$NS_B" "$TWILLD" --config "$config" --socket "$LAB_SOCKET" ${TWILLD_ARGS:-} \
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
  for ns in "${LAB_EXTRA_NAMESPACES[@]}" "${LAB_NAMESPACES[@]}"; do
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
  local with_twilld=$1 policy_pods=${2:-no}
  if lab_leftovers; then
    lab_say "removing leftovers of an earlier lab"
    lab_down
  fi
  lab_build
  lab_say "topology up: ${LAB_NAMESPACES[*]}"
  if [[ $policy_pods == yes ]]; then
    policy_pods_up
    lab_say "policy pods up: ${POLICY_NAMESPACES[*]}"
  fi
  if [[ $with_twilld == yes ]]; then start_twilld; fi
}

# kernel-c: a second kernel flannel node joined to a running lab (198.18.0.3, slice
# 172.25.3.0/24, Calico pod c1 172.25.3.2), programmed like kernel-a. It holds the
# leases of kernel-a and twill-b, and kernel-a gets its lease, as flanneld would do on
# both; twilld is not told (twillctl apply does that).
lab_add_kernel_c() {
  if ! ns_exists "$NS_SW" || ! ns_exists "$NS_A"; then
    lab_err "add-kernel-c: the lab is not up (scripts/lab.sh up)"
    return 1
  fi
  if ns_exists "$NS_C" || ns_exists "$NS_C1"; then
    lab_err "add-kernel-c: $NS_C or $NS_C1 exists already"
    return 1
  fi
  new_ns "$NS_C"
  new_ns "$NS_C1"
  switch_port sw-c "$NS_C" eth0 "$C_UL_MAC"
  flannel_node "$NS_C" "$C_UL_IP" "$C_VTEP_MAC" 172.25.3.0
  flannel_peer "$NS_C" 172.25.1.0/24 "$A_VTEP_MAC" "$A_UL_IP"
  flannel_peer "$NS_C" 172.25.2.0/24 "$B_VTEP_MAC" "$B_UL_IP"
  flannel_peer "$NS_A" 172.25.3.0/24 "$C_VTEP_MAC" "$C_UL_IP"
  calico_pod "$NS_C" "$NS_C1" cali-c1 "$C1_IP" "$C1_MAC"
  lab_say "kernel-c up: $NS_C ($C_UL_IP, 172.25.3.0/24), pod $NS_C1 ($C1_IP)"
}

# ---------------------------------------------------------------------------- commands

cmd_up() {
  local with_twilld=yes policy_pods=no
  while (($#)); do
    case $1 in
      --no-twilld) with_twilld=no ;;
      --policy-pods) policy_pods=yes ;;
      *) lab_err "up: unknown option $1"; return 2 ;;
    esac
    shift
  done
  if ! lab_up "$with_twilld" "$policy_pods"; then
    lab_down
    return 1
  fi
}

cmd_test() {
  trap 'lab_down' EXIT
  trap 'exit 130' INT TERM
  lab_up yes
  local rc=0 out passed=0 failed=0
  out=$(mktemp)
  bash "$LAB_REPO/tests/lab/integration.sh" | tee "$out" || rc=$?
  if [[ $(tail -n 1 "$out") =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    passed=${BASH_REMATCH[1]} failed=${BASH_REMATCH[2]}
  fi
  rm -f "$out"
  # twilld stops on SIGTERM without a fault, every mbuf back in its pool.
  stop_twilld >/dev/null
  if grep -q '^twilld: mbufs still in use after stop: 0$' "$LAB_LOG" && grep -q '^twilld: stopped$' "$LAB_LOG"; then
    echo "ok - twilld stopped cleanly on SIGTERM, no mbuf left in use"
    passed=$((passed + 1))
  else
    echo "FAIL - twilld did not stop cleanly (its log ends: $(tail -n 2 "$LAB_LOG" | tr '\n' ' '))"
    failed=$((failed + 1))
    rc=1
  fi
  echo "$passed passed, $failed failed"
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
    add-kernel-c) lab_add_kernel_c ;;
    down) lab_down; lab_say "down" ;;
    test) cmd_test ;;
    demo) cmd_demo ;;
    capture-golden) cmd_capture_golden ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
