#!/usr/bin/env bash
# Live changes without a restart: with the lab up on a copy of the config, a twill pod is
# added (its veth created, the pod appended to the file, SIGHUP), reached, removed again,
# and a broken file is rejected with nothing changed; pods that were there keep working.
# Then twillctl on the control socket: status, get, errors, and deletes that take effect.
# Runs its own lab (scripts/lab.sh up/down) and removes everything it made.
# Prints "ok - ..."/"FAIL - ..." and one "N passed, M failed" line.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cfg="$LAB_STATE/live.yaml"
ns_b3="$LAB_P-b3"
passed=0 failed=0
log_has() { tail -n 20 "$LAB_LOG" | grep -qF "$1"; }

cleanup() {
  ip netns del "$ns_b3" 2>/dev/null || true
  TWILL_LAB_CONFIG="$cfg" "$LAB_REPO/scripts/lab.sh" down >/dev/null 2>&1 || true
  rm -f "$cfg"
}
trap cleanup EXIT

mkdir -p "$LAB_STATE"
cp "$LAB_REPO/config/lab-twill.yaml" "$cfg"
TWILL_LAB_CONFIG="$cfg" "$LAB_REPO/scripts/lab.sh" up >/dev/null
pid=$(cat "$LAB_PIDFILE")
reload() { kill -HUP "$pid"; sleep 1; }

# A third pod behind twill, Calico style, on a veth end twilld does not know yet.
ip netns add "$ns_b3"
nsx "$ns_b3" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip -n "$NS_B" link add pb3 type veth peer name eth0 netns "$ns_b3"
ip -n "$NS_B" link set pb3 up
ip -n "$ns_b3" link set lo up
ip -n "$ns_b3" link set eth0 mtu 1450 up
ip -n "$ns_b3" addr add 172.25.2.4/32 dev eth0
ip -n "$ns_b3" route add 169.254.1.1 dev eth0 scope link
ip -n "$ns_b3" route add default via 169.254.1.1
nsx "$NS_B" ethtool -K pb3 tx off rx off tso off gso off gro off >/dev/null
nsx "$ns_b3" ethtool -K eth0 tx off rx off tso off gso off gro off >/dev/null

check "before: pod b3 is not reachable" ping_fails "$NS_B1" 172.25.2.4
echo '  - {name: pod-b3, ip: 172.25.2.4, port: "net_af_packet3,iface=pb3"}' >>"$cfg"
reload
check "SIGHUP with pod-b3 added: applied" log_has "applied (1 remote nodes, 3 local pods)"
check "b3 -> a1 (kernel node) after the hot-plug" ping_ok "$ns_b3" 172.25.1.2
check "a1 -> b3" ping_ok "$NS_A1" 172.25.2.4
check "b1 -> b3" ping_ok "$NS_B1" 172.25.2.4

echo '  - {name: broken, ip: 172.25.2.999}' >>"$cfg"
reload
check "SIGHUP with a broken file: rejected, nothing changed" log_has "rejected, nothing changed"
check "... with the key path, the message and file:line:col" \
  bash -c "tail -n 5 '$LAB_LOG' | grep -qE \"pods\\[4\\]\\.ip: '172.25.2.999' is not an IPv4 address .*live.yaml:[0-9]+:[0-9]+\\)\""
check "after the rejected reload: b3 -> a1 still works" ping_ok "$ns_b3" 172.25.1.2

sed -i '$d' "$cfg"  # the broken line
sed -i '$d' "$cfg"  # pod-b3
reload
check "SIGHUP with pod-b3 removed: applied" log_has "applied (1 remote nodes, 2 local pods)"
check "after the removal: b3 -> a1 fails" ping_fails "$ns_b3" 172.25.1.2
check "after the removal: b1 -> a1 still works" ping_ok "$NS_B1" 172.25.1.2
check "after the removal: b2 -> b1 still works" ping_ok "$NS_B2" 172.25.2.2
# The same through the control socket with twillctl.
ctl() { "$LAB_REPO/build/control/twillctl" --socket "$LAB_SOCKET" "$@"; }
check "twillctl status" bash -c "$(declare -f ctl); LAB_REPO='$LAB_REPO' LAB_SOCKET='$LAB_SOCKET' ctl status | grep -q 'node twill-b: running, 1 remote nodes, 2 local pods'"
check "twillctl get neighbours: kernel-a resolved" \
  bash -c "'$LAB_REPO/build/control/twillctl' --socket '$LAB_SOCKET' get neighbours | grep -qE '^198\.18\.0\.1 +kernel-a +02:00:00:00:01:01 +reachable'"
check "twillctl get pods -o json: pod-b1's MAC learned" \
  bash -c "'$LAB_REPO/build/control/twillctl' --socket '$LAB_SOCKET' get pods -o json | grep -q '\"macSource\": \"learned\"'"
check "twillctl get bogus: exit 1" bash -c "ctl_rc=0; '$LAB_REPO/build/control/twillctl' --socket '$LAB_SOCKET' get bogus || ctl_rc=\$?; [ \$ctl_rc = 1 ]"
check "twillctl with no daemon at the socket: exit 3" \
  bash -c "ctl_rc=0; '$LAB_REPO/build/control/twillctl' --socket /nonexistent/twilld.sock status || ctl_rc=\$?; [ \$ctl_rc = 3 ]"
check "twillctl delete node kernel-a" ctl delete node kernel-a
check "after deleting kernel-a: b1 -> a1 fails" ping_fails "$NS_B1" 172.25.1.2
check "after deleting kernel-a: b1 -> b2 still works" ping_ok "$NS_B1" 172.25.2.3
check "twillctl delete pod pod-b2" bash -c "'$LAB_REPO/build/control/twillctl' --socket '$LAB_SOCKET' delete pod pod-b2 || { echo delete pod failed >&2; exit 1; }"
check "after deleting pod-b2: b1 -> b2 fails" ping_fails "$NS_B1" 172.25.2.3
objs="$LAB_STATE/objs.yaml"
cat >"$objs" <<'YAML'
nodes:
  - {name: kernel-a, ip: 198.18.0.1, podCIDR: 172.25.1.0/24, vtepMAC: "0e:00:00:00:01:00"}
pods:
  - {name: pod-b2, ip: 172.25.2.3, port: "net_af_packet2,iface=pb2", mac: "0a:00:00:00:02:03"}
YAML
check "twillctl apply -f: kernel-a and pod-b2 back" ctl apply -f "$objs"
check "after the apply: b1 -> a1 works again, the first packet too (held for ARP)" ping_all "$NS_B1" 172.25.1.2
check "after the apply: b2 -> a1 works again (port re-attached)" ping_some "$NS_B2" 172.25.1.2
printf 'nodes:\n  - {name: kernel-x, ip: 198.18.0.9, podCIDR: 172.25.2.0/25, vtepMAC: "0e:00:00:00:09:00"}\n' >"$objs"
check "twillctl apply of an overlapping slice: exit 1 with file:line:col, nothing changed" \
  bash -c "out=\$('$LAB_REPO/build/control/twillctl' --socket '$LAB_SOCKET' apply -f '$objs' 2>&1); rc=\$?; [ \$rc = 1 ] && grep -qE 'nodes\\[0\\]\\.podCIDR: .*overlaps.*objs.yaml:2:[0-9]+' <<<\"\$out\""
check "after the rejected apply: b1 -> a1 still works" ping_ok "$NS_B1" 172.25.1.2
rm -f "$objs"
check "twilld still running" kill -0 "$pid"

echo "$passed passed, $failed failed"
((failed == 0))
