#!/usr/bin/env bash
# A jumbo underlay (MTU 9000, overlay 8950) between the kernel flannel node and twilld.
# twill's ports are af_packet with 10 KB frames; af_packet cannot receive into chained
# mbufs, so twilld receives into its jumbo pool's mbufs, and sends chains where the
# pipeline makes them (ICMP, encapsulated 2 KB-mbuf packets). Checked: 8950-byte pings
# without fragmentation both ways between kernel-a's pod and twill's pods and between
# twill's pods, TCP transfers with jumbo segments (sha256 compared), 9014-byte VXLAN
# frames from twill-b on the underlay with valid outer checksums, and no packet dropped
# as split or truncated. Runs its own lab; removes everything it made.
# Prints "ok - ..."/"FAIL - ..." and one "N passed, M failed" line.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cfg="$LAB_STATE/jumbo.yaml"
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
frames=blocksz=20480,framesz=10240,framecnt=512
sed -e 's|^    mtu: 1450 .*|    mtu: 8950|' \
    -e "s|^  underlay: net_af_packet0,iface=ul0.*|  underlay: net_af_packet0,iface=ul0,$frames|" \
    -e "s|port: net_af_packet1,iface=pb1.*|port: \"net_af_packet1,iface=pb1,$frames\"|" \
    -e "s|port: net_af_packet2,iface=pb2.*|port: \"net_af_packet2,iface=pb2,$frames\"|" \
    "$LAB_REPO/config/lab-twill.yaml" >"$cfg"
grep -q 'mtu: 8950' "$cfg" && grep -q "iface=pb2,$frames" "$cfg"
TWILL_LAB_CONFIG="$cfg" "$LAB_REPO/scripts/lab.sh" up >/dev/null
pid=$(cat "$LAB_PIDFILE")

# Jumbo MTUs everywhere: the switch, the kernel node and its pod, twill-b's veths and
# its pods.
for dev in sw-a sw-b br0; do ip -n "$NS_SW" link set "$dev" mtu 9000; done
ip -n "$NS_A" link set eth0 mtu 9000
ip -n "$NS_A" link set flannel.1 mtu 8950
ip -n "$NS_A" link set cali-a1 mtu 8950
ip -n "$NS_A1" link set eth0 mtu 8950
ip -n "$NS_B" link set ul0 mtu 9000
for p in pb1 pb2; do ip -n "$NS_B" link set "$p" mtu 8950; done
ip -n "$NS_B1" link set eth0 mtu 8950
ip -n "$NS_B2" link set eth0 mtu 8950


# 8922 bytes of ICMP data: an 8950-byte IPv4 packet, DF set (-M do): no fragmentation
# anywhere on the way.
jping() { timeout 15 ip netns exec "$1" ping -M do -s 8922 -c 3 -i 0.3 -W 2 "$2" | grep -qE ' [23] received'; }
check "jumbo ping a1 -> b1 (8950 bytes, DF, through VXLAN)" jping "$NS_A1" "${POD_IP[b1]}"
check "jumbo ping b1 -> a1" jping "$NS_B1" "${POD_IP[a1]}"
check "jumbo ping b2 -> a1" jping "$NS_B2" "${POD_IP[a1]}"
check "jumbo ping b1 -> b2 (local)" jping "$NS_B1" "${POD_IP[b2]}"
check "one byte too many is refused at the pod (MTU 8950, DF)" \
  bash -c "! timeout 5 ip netns exec '$NS_B1' ping -M do -s 8923 -c 1 -W 1 '${POD_IP[a1]}'"

# A TCP transfer kernel pod -> twill pod: 8910-byte segments through VXLAN, captured on
# the underlay for the frame sizes and checksums.
head -c 4000000 /dev/urandom >"$tmp/payload"
ip netns exec "$NS_SW" timeout 30 tcpdump -i sw-b -nn -vv -c 40 -w "$tmp/ul.pcap" \
  'udp dst port 8472 and src host 198.18.0.2 and greater 9000' >/dev/null 2>&1 &
cap=$!
pids+=("$cap")
sleep 0.5
check "TCP 4 MB a1 -> b1 with jumbo segments, sha256 matches" tcp_transfer_ok "$NS_A1" "$NS_B1" "${POD_IP[b1]}" "$tmp/payload"
check "TCP 4 MB b2 -> a1 with jumbo segments, sha256 matches" tcp_transfer_ok "$NS_B2" "$NS_A1" "${POD_IP[a1]}" "$tmp/payload"
wait "$cap" 2>/dev/null || true
tcpdump -nn -vv -r "$tmp/ul.pcap" 2>/dev/null >"$tmp/ul.txt" || true
from_twill=$(grep -c '198.18.0.2.[0-9]* > 198.18.0.1.8472' "$tmp/ul.txt" || true)
echo "# underlay capture: $(pcap_count "$tmp/ul.pcap") VXLAN frames over 9000 bytes, $from_twill from twill-b"
check "twill-b sent jumbo VXLAN frames (9014 bytes) onto the underlay" test "${from_twill:-0}" -gt 0
check "... every one with a correct outer IPv4 and UDP checksum (none flagged bad)" \
  bash -c "grep -A1 '198.18.0.2.[0-9]* > 198.18.0.1.8472' '$tmp/ul.txt' | grep -q 'udp sum ok' &&
           ! grep -qiE 'bad (udp )?cksum|incorrect' '$tmp/ul.txt'"
counters=$(twilld_counters) || counters=
check "twilld dropped no jumbo packet as split or truncated" \
  bash -c "! grep -qE 'segment_split|ip_truncated|inner_truncated' <<<'$counters'"
check "twilld still running (same pid)" test "$(twilld_pid)" == "$pid"
check_workers_spread "$counters"

echo "$passed passed, $failed failed"
((failed == 0))
