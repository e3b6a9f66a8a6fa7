#!/usr/bin/env bash
# twill's underlay port on a tap (net_tap), which offers the outer IPv4 and UDP checksum
# offloads: twilld hands the port the pseudo-header's sum and the port finishes the
# checksums. The tap is bridged in twl-b to the lab's underlay veth, so kernel-a, a real
# flannel node whose kernel checks every UDP checksum it receives, is the judge: pings
# and TCP transfers (sha256 compared) both ways between its pod and twill's, and on an
# underlay capture every VXLAN frame from twill-b with a valid outer IPv4 and UDP
# checksum. Runs its own lab; removes everything it made.
# Prints "ok - ..."/"FAIL - ..." and one "N passed, M failed" line.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cfg="$LAB_STATE/offload.yaml"
tmp=$(mktemp -d)
passed=0 failed=0
pids=()

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  TWILL_LAB_CONFIG="$cfg" "$LAB_REPO/scripts/lab.sh" down >/dev/null 2>&1 || true
  rm -f "$cfg"
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$LAB_STATE"
# The tap's DPDK side takes ul0's MAC (kernel-a's neighbour entry for twill-b).
sed -e "s|^  underlay: net_af_packet0,iface=ul0.*|  underlay: net_tap0,iface=tul0,mac=$B_UL_MAC|" \
  "$LAB_REPO/config/lab-twill.yaml" >"$cfg"
grep -q 'iface=tul0' "$cfg"
TWILL_LAB_CONFIG="$cfg" "$LAB_REPO/scripts/lab.sh" up >/dev/null
pid=$(cat "$LAB_PIDFILE")

# Bridge the tap's kernel side and ul0; neither keeps twill-b's MAC, which is the DPDK
# side's now (a bridge delivers frames for its ports' own MACs to itself).
for ((i = 0; i < 50; i++)); do ip -n "$NS_B" link show tul0 >/dev/null 2>&1 && break; sleep 0.1; done
ip -n "$NS_B" link set ul0 address 02:00:00:00:02:f1
ip -n "$NS_B" link set tul0 address 02:00:00:00:02:f2
ip -n "$NS_B" link add brul address 02:00:00:00:02:f3 type bridge stp_state 0 forward_delay 0
for dev in tul0 ul0; do ip -n "$NS_B" link set "$dev" master brul up; done
no_offloads "$NS_B" tul0
ip -n "$NS_B" link set brul up

check "twilld offloads the outer checksums to the tap (its log says so)" \
  grep -q 'outer checksums offloaded' "$LAB_LOG"

ip netns exec "$NS_SW" timeout 30 tcpdump -i sw-b -nn -vv -c 200 -w "$tmp/ul.pcap" \
  'udp dst port 8472 and src host 198.18.0.2' >/dev/null 2>&1 &
cap=$!
pids+=("$cap")
sleep 0.5
check "ping a1 -> b1 (through VXLAN)" ping_some "$NS_A1" "${POD_IP[b1]}"
check "ping b2 -> a1" ping_ok "$NS_B2" "${POD_IP[a1]}"
head -c 4000000 /dev/urandom >"$tmp/payload"
check "TCP 4 MB b1 -> a1, sha256 matches (kernel-a accepted every segment's checksums)" \
  tcp_transfer_ok "$NS_B1" "$NS_A1" "${POD_IP[a1]}" "$tmp/payload"
check "TCP 4 MB a1 -> b2, sha256 matches" tcp_transfer_ok "$NS_A1" "$NS_B2" "${POD_IP[b2]}" "$tmp/payload"
kill "$cap" 2>/dev/null || true
wait "$cap" 2>/dev/null || true
tcpdump -nn -vv -r "$tmp/ul.pcap" 2>/dev/null >"$tmp/ul.txt" || true
frames=$(grep -c '198.18.0.2.[0-9]* > 198.18.0.1.8472' "$tmp/ul.txt" || true)
ok_sums=$(grep -c '198.18.0.2.[0-9]* > 198.18.0.1.8472: \[udp sum ok\]' "$tmp/ul.txt" || true)
echo "# underlay capture: $frames VXLAN frames from twill-b, $ok_sums with 'udp sum ok'"
check "twill-b's VXLAN frames on the underlay: every one with a valid UDP checksum" \
  test "${frames:-0}" -gt 0 -a "${frames:-0}" -eq "${ok_sums:-0}"
check "... and none with a bad IPv4 header checksum" \
  bash -c "! grep -qiE 'bad cksum|incorrect' '$tmp/ul.txt'"
check "kernel-a counted no UDP checksum errors" \
  test "$(nsx "$NS_A" awk '/^Udp:/ { n++ } n == 2 && /^Udp:/ { print $8; exit }' /proc/net/snmp)" -eq 0
counters=$(twilld_counters) || counters=
check "twilld still running (same pid)" test "$(twilld_pid)" == "$pid"
check_workers_spread "$counters"

echo "$passed passed, $failed failed"
((failed == 0))
