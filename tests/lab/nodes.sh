#!/usr/bin/env bash
# Nodes and pods come and go through twillctl while traffic flows. With pings running
# between pods that stay (a1 -> b1 and b2 -> a1 across kernel-a <-> twill-b, b2 -> b1
# inside twill-b): a second kernel flannel node kernel-c with its pod c1 joins the
# underlay (scripts/lab.sh add-kernel-c), is unreachable from twill's pods, becomes
# reachable both ways after `twillctl apply -f`, and unreachable again after `twillctl
# delete node`; a twill pod b3 is added with `twillctl apply -f` (its DPDK port attached
# at run time), reached from a1 and b1, and deleted; applies with several errors are
# rejected with every error listed and nothing changed. At the end every echo request of
# the background pings was answered and twilld is the same process as at the start.
# Runs its own lab (scripts/lab.sh up/down) and removes everything it made.
# Prints "ok - ..."/"FAIL - ..." and one "N passed, M failed" line.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CTL="$LAB_REPO/build/control/twillctl"
FLOW_INTERVAL=0.05   # seconds between echo requests of a background flow
FLOW_MAX=150         # seconds: a flow stops by itself after this (the test takes ~30 s)
B3_IP=172.25.2.4 B3_MAC=0a:00:00:00:02:04 PB3_MAC=02:00:00:00:02:83

tmp=$(mktemp -d)
cfg="$tmp/twill.yaml"
passed=0 failed=0
declare -A flow_pid=()

cleanup() {
  local name
  for name in "${!flow_pid[@]}"; do
    kill -INT "${flow_pid[$name]}" 2>/dev/null || true
    wait "${flow_pid[$name]}" 2>/dev/null || true
  done
  TWILL_LAB_CONFIG="$cfg" "$LAB_REPO/scripts/lab.sh" down >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# check DESCRIPTION COMMAND...: on failure the command's output follows, as "# " lines.
check() {
  local what=$1 out
  shift
  if out=$("$@" 2>&1); then
    echo "ok - $what"
    passed=$((passed + 1))
  else
    echo "FAIL - $what"
    failed=$((failed + 1))
    [[ -z $out ]] || head -n 20 <<<"$out" | sed 's/^/  # /'
  fi
}
ok() { echo "ok - $*"; passed=$((passed + 1)); }
fail() { echo "FAIL - $*"; failed=$((failed + 1)); }

ctl() { "$CTL" --socket "$LAB_SOCKET" "$@"; }
# ctl_rc WANT ARGS...: twillctl exits with WANT; its output is printed for check.
ctl_rc() {
  local want=$1 rc=0
  shift
  ctl "$@" || rc=$?
  echo "exit code $rc (want $want)"
  ((rc == want))
}
# Output of a twillctl command matches an extended regex (printed for check).
ctl_has() {
  local re=$1 out
  shift
  out=$(ctl "$@") || return 1
  printf '%s\n' "$out"
  grep -qE "$re" <<<"$out"
}
ctl_lacks() {
  local re=$1 out
  shift
  out=$(ctl "$@") || return 1
  printf '%s\n' "$out"
  ! grep -qE "$re" <<<"$out"
}

# Steps, time-stamped, to tell which change a lost echo request fell into.
steps="$tmp/steps"
: >"$steps"
step() { printf '%s %s\n' "$(date +%s.%N)" "$*" >>"$steps"; }

# A background flow: ping with timestamps (-D), one echo request every FLOW_INTERVAL,
# bounded in count and time. Stopped with SIGINT, when ping prints its summary.
flow_start() {  # flow_start NAME SRC_POD DST_POD
  local name=$1 s=$2 d=$3
  ip netns exec "${POD_NS[$s]}" ping -D -n -i "$FLOW_INTERVAL" -W 1 -w "$FLOW_MAX" \
    -c "$(awk -v m="$FLOW_MAX" -v i="$FLOW_INTERVAL" 'BEGIN { print int(m / i) }')" \
    "${POD_IP[$d]}" >"$tmp/flow-$name" 2>&1 &
  flow_pid[$name]=$!
}

# Stops flow NAME and checks that every echo request it sent was answered, once. The
# request sent just before SIGINT may still be in flight: when only the last one is
# missing, it is not counted as lost. Otherwise the lost sequence numbers are listed with
# the step that was running when they went.
flow_check() {
  local name=$1 desc=$2
  local out="$tmp/flow-$name" tx missing dups
  kill -INT "${flow_pid[$name]}" 2>/dev/null || true
  wait "${flow_pid[$name]}" 2>/dev/null || true
  unset "flow_pid[$name]"
  tx=$(sed -n 's/^\([0-9]\+\) packets transmitted.*/\1/p' "$out")
  if [[ -z $tx ]]; then
    fail "$desc: no ping summary"
    sed 's/^/  # /' "$out" | tail -n 5
    return
  fi
  missing=$(awk -v tx="$tx" '
      match($0, /icmp_seq=[0-9]+/) { got[substr($0, RSTART + 9, RLENGTH - 9) + 0] = 1 }
      END { for (i = 1; i <= tx; i++) if (!(i in got)) printf "%d ", i }' "$out")
  missing=${missing% }
  dups=$(grep -c 'DUP!' "$out" || true)
  local inflight=""
  if [[ $missing == "$tx" ]]; then
    missing="" inflight=", the last one in flight when stopped"
  fi
  if [[ -z $missing && $tx -ge 100 && $dups == 0 ]]; then
    ok "$desc: all $tx echo requests answered$inflight"
    return
  fi
  local n=0
  [[ -z $missing ]] || n=$(wc -w <<<"$missing")
  fail "$desc: $n of $tx echo requests lost, $dups duplicate replies"
  # When they went: each run of lost ones between two replies, and the steps that were
  # running in between.
  awk -v missing="$missing" -v steps="$steps" '
      BEGIN {
        while ((getline l < steps) > 0) {
          k = index(l, " "); n++; st[n] = substr(l, 1, k - 1) + 0; sn[n] = substr(l, k + 1)
        }
        m = split(missing, lost, " ")
      }
      match($0, /icmp_seq=[0-9]+/) {
        seq[++r] = substr($0, RSTART + 9, RLENGTH - 9) + 0; t[r] = substr($0, 2, index($0, "]") - 2) + 0
      }
      function report(a, b,   t0, t1, what, i) {
        t0 = 0; t1 = 0
        for (i = 1; i <= r; i++) {
          if (seq[i] < a) t0 = t[i]
          if (seq[i] > b && !t1) t1 = t[i]
        }
        if (!t1) t1 = 1e12
        what = ""
        for (i = 1; i <= n; i++)
          if (st[i] <= t1 && (i == n || st[i + 1] > t0)) what = what (what == "" ? "" : "; ") sn[i]
        printf "  # lost icmp_seq %d..%d (%d), between the replies at %.3f and %.3f, during: %s\n",
          a, b, b - a + 1, t0, t1, (what == "" ? "no step" : what)
      }
      END {
        for (j = 1; j <= m; j++) {
          if (j == 1 || lost[j] != lost[j - 1] + 1) { if (j > 1) report(a, lost[j - 1]); a = lost[j] }
        }
        if (m) report(a, lost[m])
      }' "$out" | head -n 20
}

# ---------------------------------------------------------------------------- lab up
mkdir -p "$LAB_STATE"
cp "$LAB_REPO/config/lab-twill.yaml" "$cfg"
TWILL_LAB_CONFIG="$cfg" "$LAB_REPO/scripts/lab.sh" up >/dev/null
pid=$(<"$LAB_PIDFILE")
nodes_at_start=$(ctl get nodes -o json)
pods_at_start=$(ctl get pods -o json | grep -vE '"(mac|macSource)"')

# Resolve every next hop and pod MAC of the flows first: their first packets must not be
# the ones ARP costs.
check "before the flows: a1 -> b1" ping_some "$NS_A1" "$B1_IP"
check "before the flows: b2 -> a1" ping_some "$NS_B2" "$A1_IP"
check "before the flows: b2 -> b1" ping_some "$NS_B2" "$B1_IP"
step "flows started"
flow_start a1-b1 a1 b1
flow_start b2-a1 b2 a1
flow_start b2-b1 b2 b1
sleep 1

# ---------------------------------------------------------------------------- kernel-c
step "add-kernel-c (namespaces only)"
"$LAB_REPO/scripts/lab.sh" add-kernel-c >/dev/null
check "kernel-c joined the underlay: c1 -> a1 (kernel to kernel, no twilld)" ping_some "$NS_C1" "$A1_IP"
check "before the apply: b1 -> c1 fails" ping_fails "$NS_B1" "$C1_IP"
check "before the apply: c1 -> b1 fails" ping_fails "$NS_C1" "$B1_IP"
check "before the apply: get nodes has no kernel-c" ctl_lacks '^kernel-c ' get nodes

cat >"$tmp/kernel-c.yaml" <<YAML
nodes:
  - {name: kernel-c, ip: $C_UL_IP, podCIDR: 172.25.3.0/24, vtepMAC: "$C_VTEP_MAC"}
pods:
  - {name: pod-c1, ip: $C1_IP}
YAML
step "apply kernel-c"
check "twillctl apply -f kernel-c.yaml (node kernel-c, pod pod-c1): exit 0" \
  ctl_has '^applied: 1 nodes, 1 pods, 0 services, 0 endpoint slices, 0 namespaces, 0 network policies$' apply -f "$tmp/kernel-c.yaml"
check "after the apply: b1 -> c1, the first packet too (held for ARP)" ping_all "$NS_B1" "$C1_IP"
check "after the apply: c1 -> b1" ping_ok "$NS_C1" "$B1_IP"
check "after the apply: b2 -> c1 (on-link pod)" ping_ok "$NS_B2" "$C1_IP"
check "get nodes lists kernel-c" \
  ctl_has "^kernel-c +${C_UL_IP//./\\.} +172\\.25\\.3\\.0/24 +$C_VTEP_MAC +false$" get nodes
check "get neighbours: kernel-c resolved" \
  ctl_has "^${C_UL_IP//./\\.} +kernel-c +$C_UL_MAC +reachable$" get neighbours
check "get pods lists pod-c1 (remote)" ctl_has '^default +pod-c1 +172\.25\.3\.2 +false ' get pods
check "status: 2 remote nodes" ctl_has 'running, 2 remote nodes, 2 local pods' status

step "delete node kernel-c"
check "twillctl delete node kernel-c: exit 0" ctl_has '^node kernel-c deleted$' delete node kernel-c
check "after the delete: b1 -> c1 fails" ping_fails "$NS_B1" "$C1_IP"
check "after the delete: c1 -> b1 fails" ping_fails "$NS_C1" "$B1_IP"
check "after the delete: get nodes has no kernel-c" ctl_lacks '^kernel-c ' get nodes
check "after the delete: get neighbours has no kernel-c" ctl_lacks 'kernel-c' get neighbours
check "after the delete: c1 -> a1 still works (kernel to kernel)" ping_ok "$NS_C1" "$A1_IP"

step "apply kernel-c again"
check "twillctl apply -f kernel-c.yaml again: exit 0" \
  ctl_has '^applied: 1 nodes, 1 pods, 0 services, 0 endpoint slices, 0 namespaces, 0 network policies$' apply -f "$tmp/kernel-c.yaml"
check "after the second apply: b1 -> c1, the first packet too" ping_all "$NS_B1" "$C1_IP"
step "delete kernel-c and pod-c1"
check "twillctl delete node kernel-c again: exit 0" ctl delete node kernel-c
check "twillctl delete pod pod-c1: exit 0" ctl_has '^pod pod-c1 deleted$' delete pod pod-c1
check "after the deletes: b1 -> c1 fails" ping_fails "$NS_B1" "$C1_IP"
check "twillctl delete node kernel-c a third time: exit 1 (not found)" ctl_rc 1 delete node kernel-c

# ---------------------------------------------------------------------------- twill pod b3
step "pod b3 veth created"
# Calico style, on a veth twilld does not know yet.
new_ns "$NS_B3"
new_pod_veth "$NS_B3" "$NS_B" pb3 "$B3_MAC" "$PB3_MAC"
ip -n "$NS_B3" addr add "$B3_IP/32" dev eth0
ip -n "$NS_B3" route add 169.254.1.1 dev eth0 scope link
ip -n "$NS_B3" route add default via 169.254.1.1 dev eth0
check "before the apply: b1 -> b3 fails" ping_fails "$NS_B1" "$B3_IP"

printf 'pods:\n  - {name: pod-b3, ip: %s, port: "net_af_packet3,iface=pb3"}\n' "$B3_IP" >"$tmp/pod-b3.yaml"
step "apply pod-b3"
check "twillctl apply -f pod-b3.yaml (port net_af_packet3,iface=pb3): exit 0" \
  ctl_has '^applied: 0 nodes, 1 pods, 0 services, 0 endpoint slices, 0 namespaces, 0 network policies$' apply -f "$tmp/pod-b3.yaml"
check "after the apply: a1 -> b3 (kernel node to the new pod), the first packet too" ping_all "$NS_A1" "$B3_IP"
check "after the apply: b1 -> b3" ping_ok "$NS_B1" "$B3_IP"
check "after the apply: b3 -> a1" ping_ok "$NS_B3" "$A1_IP"
check "get pods: pod-b3 local, its MAC learned" \
  ctl_has "^default +pod-b3 +${B3_IP//./\\.} +true +[0-9]+ +$B3_MAC +learned$" get pods
check "get stats: pod-b3's port" ctl_has 'pod default/pod-b3 +net_af_packet3 ' get stats
check "status: 3 local pods" ctl_has 'running, 1 remote nodes, 3 local pods' status

step "delete pod pod-b3"
check "twillctl delete pod pod-b3: exit 0" ctl_has '^pod pod-b3 deleted$' delete pod pod-b3
check "after the delete: a1 -> b3 fails" ping_fails "$NS_A1" "$B3_IP"
check "after the delete: b1 -> b3 fails" ping_fails "$NS_B1" "$B3_IP"
check "after the delete: get pods has no pod-b3" ctl_lacks 'pod-b3' get pods
check "after the delete: its port is detached (get stats)" ctl_lacks 'net_af_packet3' get stats

# ---------------------------------------------------------------------------- rejected applies
step "rejected applies"
before=$(ctl get nodes -o json)
pods_before=$(ctl get pods -o json)
# Four errors, each only against the state it would join.
cat >"$tmp/bad.yaml" <<YAML
nodes:
  - {name: kernel-x, ip: 198.18.0.9, podCIDR: 172.25.1.0/25, vtepMAC: "$A_VTEP_MAC"}
pods:
  - {name: pod-x, ip: 172.25.9.2, port: "net_af_packet1,iface=pb1"}
YAML
bad_apply() {  # bad_apply FILE REGEX...: exit 1 and every REGEX among the errors
  local file=$1 out rc=0 re missing=0
  shift
  out=$(ctl apply -f "$file" 2>&1) || rc=$?
  printf 'exit code %s\n%s\n' "$rc" "$out"
  for re in "$@"; do
    if ! grep -qE "$re" <<<"$out"; then echo "missing: $re"; missing=1; fi
  done
  ((rc == 1 && missing == 0))
}
check "apply of an overlapping node and 3 more errors: exit 1, every error with file:line:col" \
  bad_apply "$tmp/bad.yaml" \
  '^  nodes\[0\]\.podCIDR: 172\.25\.1\.0/25 overlaps .*kernel-a.*bad\.yaml:2:[0-9]+\)$' \
  '^  nodes\[0\]\.vtepMAC: duplicate MAC .*bad\.yaml:2:[0-9]+\)$' \
  '^  pods\[0\]\.ip: 172\.25\.9\.2 is outside node\.podCIDR .*bad\.yaml:4:[0-9]+\)$' \
  '^  pods\[0\]\.port: duplicate port .*bad\.yaml:4:[0-9]+\)$'
check "after the rejected apply: get nodes -o json unchanged" test "$(ctl get nodes -o json)" == "$before"
check "after the rejected apply: get pods -o json unchanged" test "$(ctl get pods -o json)" == "$pods_before"

# An object that fails its own check, beside the same overlap.
cat >"$tmp/bad2.yaml" <<YAML
nodes:
  - {name: kernel-x, ip: 198.18.0.9, podCIDR: 172.25.1.0/25, vtepMAC: "0e:00:00:00:09:00"}
pods:
  - {name: pod-x, ip: 172.25.2.999}
YAML
check "apply of a malformed pod address beside an overlapping node: exit 1, both errors listed" \
  bad_apply "$tmp/bad2.yaml" "^  pods\\[0\\]\\.ip: '172\\.25\\.2\\.999' is not an IPv4 address .*bad2\\.yaml:4:[0-9]+\\)$" \
  '^  nodes\[0\]\.podCIDR: 172\.25\.1\.0/25 overlaps .*kernel-a.*bad2\.yaml:2:[0-9]+\)$'
check "after the second rejected apply: get nodes -o json unchanged" test "$(ctl get nodes -o json)" == "$before"
check "after the second rejected apply: get pods -o json unchanged" test "$(ctl get pods -o json)" == "$pods_before"

# ---------------------------------------------------------------------------- the flows, twilld
step "flows stopped"
flow_check a1-b1 "flow a1 -> b1 (kernel-a <-> twill-b) through every change"
flow_check b2-a1 "flow b2 -> a1 (twill-b <-> kernel-a) through every change"
flow_check b2-b1 "flow b2 -> b1 (inside twill-b) through every change"

check "get nodes at the end: as at the start" test "$(ctl get nodes -o json)" == "$nodes_at_start"
check "get pods at the end: as at the start" \
  test "$(ctl get pods -o json | grep -vE '"(mac|macSource)"')" == "$pods_at_start"
check "twilld is the same process (pid $pid), never restarted" \
  bash -c "[ \"\$(cat '$LAB_PIDFILE')\" = $pid ] && kill -0 $pid && [ \"\$(grep -c 'twilld: running' '$LAB_LOG')\" = 1 ]"

echo "$passed passed, $failed failed"
((failed == 0))
