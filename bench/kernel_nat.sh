#!/usr/bin/env bash
# The kernel peer of twill-service-bench: the kernel's nftables NAT programmed as
# kube-proxy's nftables mode programs it (these kernels have no IPVS), with the same N
# services of 10 endpoints each and the same flows (bench/service_flows.h), forwarding UDP
# between namespaces:
#
#   twb-<pid>-snd [s0] ==veth== [r0] twb-<pid>-rtr [r1] ==veth== [d0] twb-<pid>-rcv
#   twill-pktgen                     ip_forward, the ruleset     counts what arrives
#   (net_af_packet on s0)                                        (frames for another MAC)
#
# One core does it all, as twill's worker does: twill-pktgen runs on CPU 1, and the kernel
# forwards each frame inside the sendto() that hands it over (the veth's receive runs in
# the softirq that follows on the same CPU). So the generator thread's CPU time (user +
# system) plus ksoftirqd/1's (when the kernel defers) over the packets that arrived is the
# whole per-packet cost on one core; other processes on the machine do not inflate it.
#
# Per N, in a fresh set of namespaces:
#   plain routing: the same frames routed without any ruleset (no conntrack): the base;
#   load the ruleset (timed);
#   hit: 4096 flows created once (paced), then re-sent as fast as possible;
#   new: every packet a new flow, the table emptied before each trial (twill-ct-flush)
#        and each trial bounded to 3/4 of nf_conntrack_max, so it never fills.
# NAT own cost = ns/pkt - plain routing's, by trial. Prints a Markdown table; --tsv FILE
# keeps one line per N and scenario (bench/services.sh reads it).
#
#   bench/kernel_nat.sh [--sizes "10 1000 10000"] [--trials N] [--seconds S]
#                       [--build DIR] [--one-batch] [--tsv FILE]
#
# --one-batch loads the ruleset in one transaction, as kube-proxy does; the default loads
# the chains first, then rules in batches of 1000 services, which is faster but still
# superlinear (every `nft -f` with rules lists the whole table first): 10k services load
# in about 30 s, 20k in 200 s (bench/RESULTS.md). Needs root; touches nothing outside its
# own namespaces, which it removes on exit.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

sizes="10 1000 10000"
trials=5
seconds=1
build="build-b"
one_batch=0
tsv=
while (($#)); do
  case $1 in
    --sizes) sizes=$2; shift 2 ;;
    --trials) trials=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --one-batch) one_batch=1; shift ;;
    --tsv) tsv=$2; shift 2 ;;
    *) sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
pktgen="$root/$build/bench/twill-pktgen"
ct_flush="$root/$build/bench/twill-ct-flush"
for tool in "$pktgen" "$ct_flush"; do
  [[ -x $tool ]] || { echo "kernel_nat: $tool missing: ninja -C $build" >&2; exit 1; }
done
((trials >= 1 && trials <= 20)) || { echo "kernel_nat: --trials 1..20" >&2; exit 2; }

hit_flows=4096
batch=1000  # services per rule transaction
gen_cpu=1
R0_MAC=02:00:00:00:0b:01
OTHER_MAC=02:00:00:00:0c:99  # the receiver gets frames for a MAC that is not d0's: dropped at once
SND="twb-$$-snd" RTR="twb-$$-rtr" RCV="twb-$$-rcv"
work=$(mktemp -d /tmp/twb-kernel-nat.XXXXXX)
ksoftirqd=$(ps -eo pid=,comm= | awk -v c="ksoftirqd/$gen_cpu" '$2 == c { print $1 }')
[[ -n $ksoftirqd ]] || { echo "kernel_nat: no ksoftirqd/$gen_cpu" >&2; exit 1; }
gen_pid=
shared_cpu=0

cleanup() {
  if [[ -n $gen_pid ]] && kill -0 "$gen_pid" 2>/dev/null; then
    kill "$gen_pid" 2>/dev/null || true
    wait "$gen_pid" 2>/dev/null || true
  fi
  local ns
  for ns in "$SND" "$RTR" "$RCV"; do
    if ip netns list | awk '{print $1}' | grep -qxF "$ns"; then ip netns del "$ns"; fi
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

topology_up() {
  local ns dev
  for ns in "$SND" "$RTR" "$RCV"; do
    ip netns add "$ns"
    in_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$ns" link set lo up
  done
  ip -n "$RTR" link add r0 address "$R0_MAC" type veth peer name s0 netns "$SND" address 02:00:00:00:0a:01
  ip -n "$RTR" link add r1 address 02:00:00:00:0b:02 type veth peer name d0 netns "$RCV" address 02:00:00:00:0c:01
  for dev in "$SND:s0" "$RTR:r0" "$RTR:r1" "$RCV:d0"; do
    ns=${dev%%:*}
    # af_packet must see finished frames, and the kernel must not merge them.
    in_ns "$ns" ethtool -K "${dev#*:}" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
    ip -n "$ns" link set "${dev#*:}" up
  done
  ip -n "$SND" addr add 198.18.1.2/24 dev s0
  ip -n "$RTR" addr add 198.18.1.1/24 dev r0
  ip -n "$RTR" addr add 198.18.2.1/24 dev r1
  ip -n "$RCV" addr add 198.18.2.2/24 dev d0
  in_ns "$RTR" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
    net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.r0.rp_filter=0 net.ipv4.conf.r1.rp_filter=0
  ip -n "$RTR" route add 172.25.1.0/24 via 198.18.2.2 dev r1
  ip -n "$RTR" route add 172.25.2.0/24 via 198.18.1.2 dev r0
  # Plain routing (no ruleset) takes the cluster IPs the same way.
  ip -n "$RTR" route add 10.96.0.0/12 via 198.18.2.2 dev r1
  ip -n "$RTR" neigh replace 198.18.2.2 lladdr "$OTHER_MAC" dev r1 nud permanent
  ip -n "$RTR" neigh replace 198.18.1.2 lladdr 02:00:00:00:0a:01 dev r0 nud permanent
}

topology_down() {
  local ns
  for ns in "$SND" "$RTR" "$RCV"; do ip netns del "$ns"; done
}

# shellcheck source=bench/kube_proxy_nft.sh
source "$root/bench/kube_proxy_nft.sh"

# Loads the ruleset for N services into the router; prints the seconds it took.
load_ruleset() {
  local n=$1 files=() f s t0 t1
  if ((one_batch)); then
    f="$work/all.nft"
    { ruleset "$n" chains; ruleset "$n" rules 0 "$n"; } >"$f"
    files=("$f")
  else
    ruleset "$n" chains >"$work/chains.nft"
    files=("$work/chains.nft")
    for ((s = 0; s < n; s += batch)); do
      f="$work/rules-$s.nft"
      ruleset "$n" rules "$s" $((s + batch)) >"$f"
      files+=("$f")
    done
  fi
  t0=$(date +%s%N)
  for f in "${files[@]}"; do in_ns "$RTR" nft -f "$f"; done
  t1=$(date +%s%N)
  rm -f "${files[@]}"
  awk -v d=$((t1 - t0)) 'BEGIN { printf "%.2f", d / 1e9 }'
}

ct_count() { in_ns "$RTR" cat /proc/sys/net/netfilter/nf_conntrack_count; }
ct_max() { in_ns "$RTR" cat /proc/sys/net/netfilter/nf_conntrack_max; }

# Counters read around a trial, one line: arrived ksoftirqd_ticks connections
# insert_failed drop early_drop (the router's conntrack table and statistics, the latter
# hex per CPU in the file).
snapshot() {
  local arrived ticks stats
  arrived=$(in_ns "$RCV" cat /sys/class/net/d0/statistics/rx_packets)
  ticks=$(awk '{ print $14 + $15 }' "/proc/$ksoftirqd/stat")
  stats=$(in_ns "$RTR" cat /proc/net/stat/nf_conntrack | tail -n +2 | while read -r -a c; do
    echo $((16#${c[9]})) $((16#${c[10]})) $((16#${c[11]}))
  done | awk '{ for (i = 1; i <= 3; i++) s[i] += $i } END { print s[1], s[2], s[3] }')
  echo "$arrived $ticks $(ct_count) $stats"
}

# Runs twill-pktgen in the sender namespace, reading the counters just before it sends
# and after it stops. Prints:
#   sent ns cpu_ns arrived ksoftirqd_ticks new_connections insert_failed drop early_drop
run_gen() {
  local line before after
  coproc in_ns "$SND" "$pktgen" --iface s0 --dst-mac "$R0_MAC" --lcore-cpu $gen_cpu --wait "$@"
  gen_pid=$COPROC_PID
  local out=${COPROC[0]} in=${COPROC[1]}
  if ! read -r -t 30 line <&"$out" || [[ $line != ready ]]; then
    echo "kernel_nat: twill-pktgen did not start ($line)" >&2
    exit 1
  fi
  before=$(snapshot)
  echo go >&"$in"
  if ! read -r -t 120 line <&"$out"; then
    echo "kernel_nat: twill-pktgen did not finish" >&2
    exit 1
  fi
  after=$(snapshot)
  wait "$gen_pid" || { echo "kernel_nat: twill-pktgen failed" >&2; exit 1; }
  gen_pid=
  awk -v g="$line" -v b="$before" -v a="$after" 'BEGIN {
    split(g, x, " "); nb = split(b, y, " "); split(a, z, " ")
    printf "%d %d %d", x[2], x[4], x[6]
    for (i = 1; i <= nb; i++) printf " %d", z[i] - y[i]
    print "" }'
}

# Trials of one scenario into $work/<name>: the fields of run_gen, then ns/pkt per core.
trials_of() {
  local name=$1 t
  shift
  : >"$work/$name"
  for ((t = 0; t < trials; t++)); do
    [[ $name != new ]] || in_ns "$RTR" "$ct_flush"
    run_gen "$@" | awk '{ print $0, ($3 + $5 * 1e7) / $4 }' >>"$work/$name"
  done
  # Every packet arrives, and the conntrack table never refuses or drops one.
  awk '$4 < $1 * 0.999 || $7 + $8 + $9 > 0 { bad = 1 } END { exit bad }' "$work/$name" || {
    echo "kernel_nat: packets lost or conntrack failures at N=$n ($name):" >&2
    cat "$work/$name" >&2
    exit 1
  }
}

# median min max of the numbers on stdin
summary() { sort -g | awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.0f %.0f %.0f", m, v[1], v[NR] }'; }

report() {
  local name=$1 label=$2 v
  # kpps, ns/pkt, own cost, new connections, CPU share: median min max each
  read -r -a v <<<"$(awk '{ print $4 / ($2 / 1e6) }' "$work/$name" | summary) \
    $(awk '{ print $10 }' "$work/$name" | summary) \
    $(paste -d ' ' "$work/$name" "$work/plain" | awk '{ print $10 - $20 }' | summary) \
    $(awk '{ print $6 }' "$work/$name" | summary) \
    $(awk '{ print 100 * ($3 + $5 * 1e7) / $2 }' "$work/$name" | summary)"
  local own="**${v[6]}** (${v[7]}-${v[8]})" ns="${v[3]} (${v[4]}-${v[5]})"
  if [[ $name == plain ]]; then
    own=-
    ns="**${v[3]}** (${v[4]}-${v[5]})"
  fi
  printf '| %s | %s | %s | %s (%s-%s) | %s | %s | %s | %s |\n' "$n" "${load_s:--}" "$label" \
    "${v[0]}" "${v[1]}" "${v[2]}" "$ns" "$own" "${v[12]}" "${v[9]}"
  [[ -z $tsv ]] || printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$name" "${load_s:--}" \
    "${v[@]:0:9}" >>"$tsv"
  # Another process on the CPU takes some of the softirq work's accounting with it.
  ((v[12] >= 95)) || shared_cpu=1
}

echo "kernel: $(uname -r), nft $(nft --version | awk '{print $2}'), CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; generator and forwarding on CPU $gen_cpu"
echo
echo "| services | ruleset load s | scenario | kpps | ns/pkt per core | NAT own cost ns/pkt (- plain routing) | CPU share % | new connections/trial |"
echo "|---|---|---|---|---|---|---|---|"
[[ -z $tsv ]] || : >"$tsv"

for n in $sizes; do
  topology_up
  load_s=
  trials_of plain --mode hit --services "$n" --flows $hit_flows --packets 100000000 --seconds "$seconds"
  report plain "plain routing (no ruleset)"

  load_s=$(load_ruleset "$n")
  # Create the flows at a pace the kernel keeps up with; then every packet hits.
  run_gen --mode hit --services "$n" --flows $hit_flows --packets $((3 * hit_flows)) --pps 100000 --seconds 10 >/dev/null
  created=$(ct_count)
  ((created == hit_flows)) || { echo "kernel_nat: $created connections tracked, not $hit_flows" >&2; exit 1; }
  trials_of hit --mode hit --services "$n" --flows $hit_flows --packets 100000000 --seconds "$seconds"
  awk '$6 != 0 { exit 1 }' "$work/hit" || { echo "kernel_nat: new connections during the hit trials at N=$n" >&2; exit 1; }
  report hit "conntrack hit"

  packets=$(($(ct_max) * 3 / 4))
  ((packets <= n * 64512)) || packets=$((n * 64512))
  trials_of new --mode new --services "$n" --packets $packets --seconds 10
  # Every packet that arrived was a connection of its own.
  awk '$6 != $4 { exit 1 }' "$work/new" || { echo "kernel_nat: connections != packets at N=$n" >&2; cat "$work/new" >&2; exit 1; }
  report new "new flow"
  topology_down
done
echo
echo "median (min-max) over $trials trials; hit and plain trials last ${seconds} s, new-flow trials $((packets / 1000))k flows;"
echo "ns/pkt per core = CPU time of the generator thread (its sendto() runs the kernel's forwarding) + ksoftirqd/$gen_cpu's, over packets arrived;"
echo "CPU share = that CPU time over the trial's wall time (below 100: CPU $gen_cpu was busy with something else too)"
if ((shared_cpu)); then
  echo "warning: CPU $gen_cpu was shared with other processes in some trials (CPU share < 95%): per-core figures are not reliable; rerun on a quiet machine" >&2
fi
