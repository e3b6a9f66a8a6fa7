#!/usr/bin/env bash
# Integration test of a running lab (`scripts/lab.sh up`; `scripts/lab.sh test` does it
# all): pods a1 (kernel flannel node) and b1, b2 (twill node) reach each other in every
# direction by ping, TCP (10 MiB, sha256 compared) and UDP (content compared); the twill
# node answers ARP for the pods' gateways; the underlay carries VXLAN VNI 1 to port 8472
# both ways with valid checksums. Prints `ok - ...` / `FAIL - ...` per check and
# `N passed, M failed` at the end; exits non-zero if anything failed.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PY=/usr/bin/python3
UDP_PY="$LAB_REPO/tests/lab/udp.py"
TCP_BYTES=$((10 << 20))

passed=0 failed=0
tmp=$(mktemp -d)

# Stops the background jobs of this script that are still running (only those: a PID
# that was already waited for may belong to someone else by now).
cleanup() {
  local pids
  pids=$(jobs -pr)
  if [[ -n $pids ]]; then
    # shellcheck disable=SC2086
    kill $pids 2>/dev/null || true
    wait 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ok() { passed=$((passed + 1)); printf 'ok - %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf 'FAIL - %s\n' "$*"; }

pairs=(a1:b1 b1:a1 a1:b2 b2:a1 b1:b2 b2:b1)

# ---------------------------------------------------------------------------- preconditions
for ns in "${LAB_NAMESPACES[@]}"; do
  if ! ip netns list | awk '{print $1}' | grep -qxF "$ns"; then
    echo "Bail out! namespace $ns missing: run scripts/lab.sh up (or scripts/lab.sh test)"
    exit 2
  fi
done
if pid=$(twilld_pid); then
  ok "twilld is running (pid $pid)"
else
  fail "twilld is running (no live process from $LAB_PIDFILE)"
fi

# ---------------------------------------------------------------------------- underlay capture
# Started before any traffic; the first frames are the pings of both directions.
ip netns exec "$NS_SW" timeout 300 tcpdump -i sw-b -nn -U -c 400 -w "$tmp/underlay.pcap" 'udp port 8472' \
  2>"$tmp/underlay.err" &
cap_pid=$!
for ((i = 0; i < 50; i++)); do
  grep -q 'listening on' "$tmp/underlay.err" && break
  sleep 0.1
done

# ---------------------------------------------------------------------------- ping
for pair in "${pairs[@]}"; do
  s=${pair%:*} d=${pair#*:}
  out=$(nsx "${POD_NS[$s]}" timeout 15 ping -c 3 -i 0.2 -W 2 "${POD_IP[$d]}" 2>&1) || true
  rx=$(sed -n 's/.* \([0-9]\+\) received.*/\1/p' <<<"$out")
  if [[ ${rx:-0} == 3 ]]; then
    ok "ping $s -> $d (${POD_IP[$d]}): 3/3 replies"
  else
    fail "ping $s -> $d (${POD_IP[$d]}): ${rx:-0}/3 replies"
  fi
done

# ---------------------------------------------------------------------------- gateways (ARP)
# b1 (Calico style) resolves 169.254.1.1, b2 (on-link /24) resolves 172.25.2.1; twilld
# must answer both on the pod ports.
check_neigh() {
  local ns=$1 pod=$2 ip=$3 line
  line=$(ip -n "$ns" neigh show "$ip" dev eth0)
  if grep -qE 'lladdr [0-9a-f:]{17} (REACHABLE|STALE|DELAY|PROBE|PERMANENT)' <<<"$line"; then
    ok "gateway $ip answered ARP for $pod ($line)"
  else
    fail "gateway $ip answered ARP for $pod (neighbour entry: '${line:-none}')"
  fi
}
check_neigh "$NS_B1" b1 169.254.1.1
check_neigh "$NS_B2" b2 172.25.2.1

# ---------------------------------------------------------------------------- TCP
head -c "$TCP_BYTES" /dev/urandom >"$tmp/payload"
want=$(sha256sum <"$tmp/payload" | cut -d' ' -f1)
port=5100
for pair in "${pairs[@]}"; do
  s=${pair%:*} d=${pair#*:}
  port=$((port + 1))
  out="$tmp/tcp-$s-$d"
  desc="tcp $s -> $d (${POD_IP[$d]}:$port), 10 MiB, sha256"
  ip netns exec "${POD_NS[$d]}" timeout 60 socat -u "TCP-LISTEN:$port,reuseaddr" "OPEN:$out,creat,trunc" \
    2>"$tmp/tcp-listen.err" &
  lpid=$!
  if ! wait_tcp_listen "${POD_NS[$d]}" "$port"; then
    fail "$desc: no listener in ${POD_NS[$d]}"
    kill "$lpid" 2>/dev/null || true
    wait "$lpid" 2>/dev/null || true
    continue
  fi
  t0=$(date +%s.%N)
  if ! nsx "${POD_NS[$s]}" timeout 60 socat -u "OPEN:$tmp/payload,rdonly" \
    "TCP:${POD_IP[$d]}:$port,connect-timeout=5" 2>"$tmp/tcp-send.err"; then
    fail "$desc: sender failed: $(tr '\n' ' ' <"$tmp/tcp-send.err")"
    kill "$lpid" 2>/dev/null || true
    wait "$lpid" 2>/dev/null || true
    continue
  fi
  if ! wait "$lpid"; then
    fail "$desc: receiver failed: $(tr '\n' ' ' <"$tmp/tcp-listen.err")"
    continue
  fi
  t1=$(date +%s.%N)
  got=$(sha256sum <"$out" | cut -d' ' -f1)
  size=$(stat -c %s "$out")
  rate=$(awk -v a="$t0" -v b="$t1" -v n="$size" 'BEGIN { printf "%.2f s, %.0f Mbit/s", b - a, n * 8 / 1e6 / (b - a) }')
  if [[ $got == "$want" ]]; then
    ok "$desc match ($rate)"
  else
    fail "$desc differ (received $size of $TCP_BYTES bytes)"
  fi
  rm -f "$out"
done

# ---------------------------------------------------------------------------- UDP
port=5200
for pair in "${pairs[@]}"; do
  s=${pair%:*} d=${pair#*:}
  port=$((port + 1))
  tag="$s-$d-$port"
  desc="udp $s -> $d (${POD_IP[$d]}:$port), 3 datagrams up to 1422 B, content"
  ip netns exec "${POD_NS[$d]}" timeout 10 "$PY" "$UDP_PY" recv "$port" "$tag" "${POD_IP[$s]}" 5 \
    2>"$tmp/udp.err" &
  rpid=$!
  if ! wait_udp_bound "${POD_NS[$d]}" "$port"; then
    fail "$desc: no receiver in ${POD_NS[$d]}"
    kill "$rpid" 2>/dev/null || true
    wait "$rpid" 2>/dev/null || true
    continue
  fi
  nsx "${POD_NS[$s]}" timeout 10 "$PY" "$UDP_PY" send "${POD_IP[$d]}" "$port" "$tag" || true
  if wait "$rpid"; then
    ok "$desc: $(<"$tmp/udp.err")"
  else
    fail "$desc: $(<"$tmp/udp.err")"
  fi
done

# ---------------------------------------------------------------------------- underlay
kill "$cap_pid" 2>/dev/null || true
wait "$cap_pid" 2>/dev/null || true
dump=$(tcpdump -nn -vv -T vxlan -r "$tmp/underlay.pcap" 2>/dev/null) || true
nframes=$(pcap_count "$tmp/underlay.pcap")
for dir in "$A_UL_IP:$B_UL_IP:kernel-a -> twill-b" "$B_UL_IP:$A_UL_IP:twill-b -> kernel-a"; do
  src=${dir%%:*} rest=${dir#*:} dst=${rest%%:*} name=${rest#*:}
  n=$(grep -cE "^ +${src//./\\.}\.[0-9]+ > ${dst//./\\.}\.8472: (\[[^]]*\] )?VXLAN, flags \[I\] \(0x08\), vni 1$" <<<"$dump") || n=0
  if ((n > 0)); then
    ok "underlay: $name is VXLAN vni 1 to port 8472 ($n of $nframes captured frames)"
  else
    fail "underlay: $name is VXLAN vni 1 to port 8472 (none among $nframes captured frames)"
  fi
done
# Only the outer lines (underlay addresses): -T vxlan also decodes inner UDP as VXLAN.
outer_re="^ +198\\.18\\.[0-9.]+ > 198\\.18\\.[0-9.]+: "
other=$(grep -E "$outer_re" <<<"$dump" | grep -cvE '8472: (\[[^]]*\] )?VXLAN, flags \[I\] \(0x08\), vni 1$') || other=0
if ((other == 0)); then
  ok "underlay: no VXLAN frame with other flags or VNI"
else
  fail "underlay: $other VXLAN frames with other flags or VNI"
fi
# Checksums: tcpdump's default decoding of UDP 8472 (it calls it OTV) verifies the outer
# UDP checksum ("[udp sum ok]") and the inner headers; -T vxlan does not.
sums=$(tcpdump -nn -vv -r "$tmp/underlay.pcap" 2>/dev/null) || true
sum_ok=$(grep -cE '\.8472: \[udp sum ok\]' <<<"$sums") || sum_ok=0
bad_re='bad (udp |tcp )?cksum|wrong icmp cksum|incorrect|no cksum'
bad=$(grep -ciE "$bad_re" <<<"$sums") || bad=0
if ((nframes > 0 && sum_ok == nframes && bad == 0)); then
  ok "underlay: outer UDP checksums ($sum_ok/$nframes ok) and inner checksums valid"
else
  fail "underlay: outer UDP checksum ok in $sum_ok/$nframes frames, $bad bad or missing checksums"
  grep -iE -m 6 -B1 "$bad_re" <<<"$sums" | sed 's/^/  | /' || true
fi

# ---------------------------------------------------------------------------- path MTU
# b1 with a 1500-byte MTU sends a 1500-byte DF ping across the overlay: twilld answers
# "fragmentation needed" with the overlay MTU, as flannel.1's 1450 makes the kernel do,
# and b1's kernel then sends 1450-byte packets that pass.
ip -n "$NS_B" link set pb1 mtu 1500
ip -n "$NS_B1" link set eth0 mtu 1500
# First without DF: twilld fragments, as the kernel does before flannel.1, and a1's
# stack reassembles (before any DF ping teaches b1 the path MTU).
if nsx "$NS_B1" timeout 10 ping -M dont -s 1472 -c 2 -W 2 "${POD_IP[a1]}" >/dev/null 2>&1; then
  ok "fragmentation: 1500-byte pings without DF from b1 to a1 are answered"
else
  fail "fragmentation: 1500-byte pings without DF from b1 to a1 are answered"
fi
out=$(nsx "$NS_B1" timeout 10 ping -M "do" -s 1472 -c 2 -W 1 "${POD_IP[a1]}" 2>&1) || true
if grep -qE 'mtu ?= ?1450' <<<"$out"; then
  ok "path MTU: a 1500-byte DF ping from b1 to a1 learns mtu 1450 from twilld"
else
  fail "path MTU: a 1500-byte DF ping from b1 to a1 learns mtu 1450 from twilld"
  printf '  | %s\n' "$out"
fi
if nsx "$NS_B1" timeout 10 ping -M "do" -s 1422 -c 2 -W 1 "${POD_IP[a1]}" >/dev/null 2>&1; then
  ok "path MTU: 1450-byte DF pings from b1 to a1 pass"
else
  fail "path MTU: 1450-byte DF pings from b1 to a1 pass"
fi
ip -n "$NS_B1" link set eth0 mtu 1450
ip -n "$NS_B" link set pb1 mtu 1450

# ---------------------------------------------------------------------------- TTL expiry
# "Time exceeded" from twill-b's flannel address: to a local pod directly, and to a pod
# on the kernel node through VXLAN (a1's TTL 2 is 1 after kernel-a's hop).
ttl_expiry() {  # ttl_expiry NS TTL DST (ping itself fails: no echo reply comes)
  local out
  out=$(nsx "$1" timeout 10 ping -t "$2" -c 1 -W 2 "$3" 2>&1) || true
  grep -q 'From 172.25.2.0 .*Time to live exceeded' <<<"$out"
}
if ttl_expiry "$NS_B1" 1 "${POD_IP[a1]}"; then
  ok "TTL 1 from b1 towards a1: time exceeded from 172.25.2.0"
else
  fail "TTL 1 from b1 towards a1: time exceeded from 172.25.2.0"
fi
if ttl_expiry "$NS_A1" 2 "${POD_IP[b1]}"; then
  ok "TTL 2 from a1 towards b1: time exceeded from 172.25.2.0, back through VXLAN"
else
  fail "TTL 2 from a1 towards b1: time exceeded from 172.25.2.0, back through VXLAN"
fi

# ---------------------------------------------------------------------------- counters
if counters=$(twilld_counters 5); then
  ok "twilld counter block on SIGUSR1"
  while IFS= read -r line; do printf '  %s\n' "$line"; done <<<"$counters"
else
  fail "twilld counter block on SIGUSR1"
fi
if twilld_pid >/dev/null; then
  ok "twilld still running after the traffic"
else
  fail "twilld still running after the traffic"
  echo "  last lines of $LAB_LOG:"
  tail -n 20 "$LAB_LOG" 2>/dev/null | sed 's/^/  | /' || true
fi

echo "$passed passed, $failed failed"
((failed == 0))
