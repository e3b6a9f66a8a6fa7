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

# Addresses (fixed: config/lab-twill.yaml uses them).
A_UL_IP=198.18.0.1   A_UL_MAC=02:00:00:00:01:01   A_VTEP_MAC=0e:00:00:00:01:00
B_UL_IP=198.18.0.2   B_UL_MAC=02:00:00:00:02:01   B_VTEP_MAC=0e:00:00:00:02:00
A1_IP=172.25.1.2     A1_MAC=0a:00:00:00:01:02
B1_IP=172.25.2.2     B1_MAC=0a:00:00:00:02:02
B2_IP=172.25.2.3     B2_MAC=0a:00:00:00:02:03
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

# Waits until a UDP socket bound to $2 exists in namespace $1 (at most ~5 s).
wait_udp_bound() {
  local ns=$1 port=$2 i
  for ((i = 0; i < 50; i++)); do
    if nsx "$ns" ss -Hlun "sport = :$port" 2>/dev/null | grep -q .; then return 0; fi
    sleep 0.1
  done
  return 1
}
