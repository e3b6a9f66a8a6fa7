#!/usr/bin/env bash
# Open vSwitch with DPDK (Debian openvswitch-switch-dpdk 3.1, DPDK 22.11) as a peer
# dataplane for the benchmark generator: flannel-style VXLAN encap/decap between two
# DPDK net_memif links, OVS being the memif CLIENT on both sockets (the generator is the
# SERVER, so it must have created both sockets before `start`).
#
#   pod link (memif, POD_SOCK id 0)                  underlay link (memif, UL_SOCK id 0)
#   [pod] br-int (netdev) [vxlan0 VNI 1, 8472]  ->  br-phy (netdev, 198.18.0.1/24) [ul]
#
#   encap: pod in, IPv4 dst 172.25.1.0/24 -> dec_ttl, inner MACs 02:74:00:00:00:01 ->
#          02:74:00:00:00:02, VXLAN VNI 1 198.18.0.1 -> 198.18.0.2:8472, out ul with
#          outer MACs 02:74:00:00:01:01 -> 02:74:00:00:01:02 (userspace tunnelling:
#          ovs/route + a static tnl/arp entry, no ARP on the wire).
#   decap: VXLAN 198.18.0.2 -> 198.18.0.1:8472 VNI 1 on ul, inner dst 172.25.0.0/24 ->
#          MACs ee:ee:ee:ee:ee:ee -> 02:74:00:00:02:0a, dec_ttl, out pod.
#   Explicit OpenFlow flows only (fail-mode=secure, no NORMAL): nothing floods or learns.
#
# Usage:
#   bench/peers/ovs.sh start --pod-sock PATH --ul-sock PATH --pmd-cpu N --main-cpu M
#                            --dir RUNDIR [--rsize LOG2] [--huge]
#   (--rsize: log2 of the memif ring slots, as the memif client sets them; default 10)
#   bench/peers/ovs.sh stop --dir RUNDIR
#
# start runs a private ovsdb-server and ovs-vswitchd (never the system service; every
# pidfile, socket, db and log lives in RUNDIR) inside network namespace twbo-ovs, EAL
# `--no-huge --legacy-mem -m 512 --no-pci --file-prefix twbo-ovs` (--huge: 512 MB of
# free 2 MB hugepages, --socket-mem 512; OVS then adds --in-memory, so no hugetlbfs mount
# is needed), one PMD thread on CPU N, every other thread on CPU M. It returns once both
# DPDK ports are configured and their memif links are up (else it cleans up and fails),
# and prints the ovs-vswitchd PID on stdout. stop kills what start started (pidfiles),
# deletes the namespace, /var/run/dpdk/twbo-ovs and RUNDIR (logs included).
#
# The generator's memif SERVER ports must:
#   - use socket-abstract=no (22.11 defaults to abstract sockets, which are per network
#     namespace: OVS in twbo-ovs would not see them);
#   - accept >= 2 rx queues: OVS opens one tx queue per thread that may send (its PMD and
#     its main thread), and a server with fewer rx queues refuses the client's extra ring
#     (the link stays down; start fails after 30 s); OVS's PMD transmits on queue 1, so
#     poll every rx queue;
#   - exist before start; OVS does not reconnect if the server goes away.
# Installs openvswitch-switch-dpdk if missing, without starting the system service.
# One instance at a time (fixed namespace and file prefix). Needs root.
set -Eeuo pipefail

NS=twbo-ovs
PREFIX=twbo-ovs
VSWITCHD=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk
SCHEMA=/usr/share/openvswitch/vswitch.ovsschema

usage() { sed -n '2,41p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
die() { echo "ovs.sh: $*" >&2; exit 1; }

cmd=${1:-}; (($#)) && shift
pod_sock= ul_sock= pmd_cpu= main_cpu= dir= huge=0 rsize=10
while (($#)); do
  case $1 in
    --pod-sock) pod_sock=$2; shift 2 ;;
    --ul-sock) ul_sock=$2; shift 2 ;;
    --pmd-cpu) pmd_cpu=$2; shift 2 ;;
    --rsize) rsize=$2; shift 2 ;;
    --main-cpu) main_cpu=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --huge) huge=1; shift ;;
    *) usage ;;
  esac
done
[[ $cmd == start || $cmd == stop ]] || usage
[[ -n $dir ]] || usage
((EUID == 0)) || die "needs root"
dir=$(realpath -m "$dir")

# Everything OVS looks up by default (db.sock, <bridge>.mgmt, *.ctl, conf.db, logs) in RUNDIR.
export OVS_RUNDIR=$dir OVS_LOGDIR=$dir OVS_DBDIR=$dir OVS_SYSCONFDIR=$dir
DB_SOCK=unix:$dir/db.sock
vsctl() { ovs-vsctl --db="$DB_SOCK" "$@"; }
appctl() { ovs-appctl -t "$dir/ovs-vswitchd.ctl" --timeout=10 "$@"; }
ofctl() { ovs-ofctl -O OpenFlow13 "$@"; }
in_ns() { ip netns exec "$NS" "$@"; }

pid_alive() { [[ -n $1 ]] && kill -0 "$1" 2>/dev/null; }

# Stops one daemon by pidfile: its own exit command, then TERM, then KILL (bounded).
stop_daemon() {
  local name=$1 pidfile=$dir/$1.pid pid i
  [[ -f $pidfile ]] || return 0
  pid=$(cat "$pidfile" 2>/dev/null || true)
  [[ $pid =~ ^[0-9]+$ ]] || { rm -f "$pidfile"; return 0; }
  if pid_alive "$pid"; then
    ovs-appctl -t "$dir/$name.ctl" --timeout=5 exit >/dev/null 2>&1 || true
    for ((i = 0; i < 50; i++)); do pid_alive "$pid" || break; sleep 0.1; done
    pid_alive "$pid" && kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do pid_alive "$pid" || break; sleep 0.1; done
    pid_alive "$pid" && { kill -KILL "$pid" 2>/dev/null || true; sleep 0.2; }
  fi
  rm -f "$pidfile"
}

do_stop() {
  stop_daemon ovs-vswitchd
  stop_daemon ovsdb-server
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "/var/run/dpdk/$PREFIX"
  # RUNDIR state: only what start made (it refuses a RUNDIR that holds anything else).
  if [[ -d $dir ]]; then
    rm -f "$dir"/conf.db "$dir"/.conf.db.~lock~ "$dir"/*.ctl "$dir"/*.mgmt "$dir"/*.snoop \
      "$dir"/db.sock "$dir"/*.log "$dir"/*.pid "$dir"/.twbo-ovs
    rmdir "$dir" 2>/dev/null || true
  fi
}

if [[ $cmd == stop ]]; then
  do_stop
  exit 0
fi

# ---- start ----
[[ -n $pod_sock && -n $ul_sock && -n $pmd_cpu && -n $main_cpu ]] || usage
[[ $pmd_cpu =~ ^[0-9]+$ && $main_cpu =~ ^[0-9]+$ ]] || die "--pmd-cpu/--main-cpu: CPU numbers"
((pmd_cpu != main_cpu)) || die "--pmd-cpu and --main-cpu must differ"
[[ $rsize =~ ^[0-9]+$ ]] && ((rsize >= 8 && rsize <= 14)) || die "--rsize: 8..14"
for s in "$pod_sock" "$ul_sock"; do
  [[ -S $s ]] || die "$s: no memif socket (start the generator, the memif server, first)"
done
pod_sock=$(realpath "$pod_sock"); ul_sock=$(realpath "$ul_sock")

if [[ ! -x $VSWITCHD ]] || ! command -v ovsdb-server >/dev/null; then
  die "Open vSwitch with DPDK is missing: scripts/install-deps.sh --bench"
fi

ip netns list | awk '{print $1}' | grep -qx "$NS" && die "namespace $NS exists: another instance? (ovs.sh stop --dir ...)"
if [[ -d $dir && -n $(ls -A "$dir") ]]; then
  die "$dir is not empty"
fi
mkdir -p "$dir"
: >"$dir/.twbo-ovs"

if ((huge)); then
  free_kb=$(awk '/^HugePages_Free/ {f = $2} /^Hugepagesize/ {s = $2} END {print f * s}' /proc/meminfo)
  ((free_kb >= 512 * 1024)) || die "--huge: less than 512 MB of free hugepages"
  eal_extra="--no-pci --file-prefix $PREFIX"
  socket_mem=(other_config:dpdk-socket-mem=512)
else
  # OVS adds --in-memory unless --legacy-mem is given, and --no-huge (legacy memory
  # anyway) refuses --in-memory.
  eal_extra="--no-huge --legacy-mem -m 512 --no-pci --file-prefix $PREFIX"
  socket_mem=()
fi

fail() {
  trap - ERR
  echo "ovs.sh: start failed: $*" >&2
  for f in ovs-vswitchd.log ovsdb-server.log; do
    [[ -f $dir/$f ]] && { echo "--- $f (tail)" >&2; tail -n 25 "$dir/$f" >&2; }
  done
  do_stop
  exit 1
}
trap 'fail "line $LINENO"' ERR

ip netns add "$NS"
in_ns ip link set lo up
# No IPv6 (no router solicitations or DAD from the bridges' tap devices).
in_ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1

ovsdb-tool create "$dir/conf.db" "$SCHEMA"
in_ns taskset -c "$main_cpu" ovsdb-server "$dir/conf.db" \
  --remote="p$DB_SOCK" --pidfile="$dir/ovsdb-server.pid" --unixctl="$dir/ovsdb-server.ctl" \
  --log-file="$dir/ovsdb-server.log" --detach --no-chdir -vconsole:off
vsctl --no-wait init
# per-port-memory: mempools sized to each port's queues, not the big shared pool OVS
# otherwise sizes for 256K mbufs and halves until it fits in the 512 MB.
vsctl --no-wait set Open_vSwitch . \
  other_config:dpdk-init=true \
  other_config:dpdk-lcore-mask="$(printf 0x%x $((1 << main_cpu)))" \
  other_config:pmd-cpu-mask="$(printf 0x%x $((1 << pmd_cpu)))" \
  other_config:dpdk-extra="$eal_extra" \
  other_config:per-port-memory=true \
  "${socket_mem[@]}"

# Under taskset: the EAL puts its control threads (interrupt, telemetry, mp) on the CPUs
# of the process's affinity outside the lcore mask, which would be the PMD's CPU. The main
# thread (and the threads it starts) stays on the lcore mask; the PMD thread pins itself
# to pmd-cpu-mask, outside the inherited affinity.
in_ns taskset -c "$main_cpu" "$VSWITCHD" "$DB_SOCK" --pidfile="$dir/ovs-vswitchd.pid" \
  --unixctl="$dir/ovs-vswitchd.ctl" --log-file="$dir/ovs-vswitchd.log" \
  --detach --no-chdir -vconsole:off
vsctl --timeout=60 wait-until Open_vSwitch . dpdk_initialized=true

# Bridges and ports; ovs-vsctl (without --no-wait) returns once vswitchd has applied it.
vsctl --timeout=60 \
  -- add-br br-int -- set Bridge br-int datapath_type=netdev fail-mode=secure \
       other_config:disable-in-band=true \
  -- add-port br-int pod -- set Interface pod type=dpdk ofport_request=1 \
       "options:dpdk-devargs=net_memif0,role=client,socket=$pod_sock,socket-abstract=no,id=0,rsize=$rsize" \
  -- add-port br-int vxlan0 -- set Interface vxlan0 type=vxlan ofport_request=2 \
       options:remote_ip=198.18.0.2 options:local_ip=198.18.0.1 options:key=1 \
       options:dst_port=8472 \
  -- add-br br-phy -- set Bridge br-phy datapath_type=netdev fail-mode=secure \
       other_config:disable-in-band=true other_config:hwaddr=02:74:00:00:01:01 \
  -- add-port br-phy ul -- set Interface ul type=dpdk ofport_request=1 \
       "options:dpdk-devargs=net_memif1,role=client,socket=$ul_sock,socket-abstract=no,id=0,rsize=$rsize"

for port in pod ul; do
  err=$(vsctl get Interface "$port" error 2>/dev/null || true)
  [[ -z $err || $err == '[]' ]] || fail "port $port: $err"
  ofport=$(vsctl get Interface "$port" ofport)
  ((ofport > 0)) || fail "port $port: ofport $ofport"
done
vsctl --timeout=30 wait-until Interface pod link_state=up ||
  fail "pod memif link not up"
vsctl --timeout=30 wait-until Interface ul link_state=up ||
  fail "underlay memif link not up"

# The underlay address (br-phy's tap in this namespace), its route, and the remote VTEP's
# MAC (static neighbour: no ARP).
in_ns ip addr add 198.18.0.1/24 dev br-phy
in_ns ip link set br-phy up
appctl ovs/route/add 198.18.0.2/32 br-phy >/dev/null
appctl tnl/arp/set br-phy 198.18.0.2 02:74:00:00:01:02 >/dev/null

ofctl del-flows br-int
ofctl add-flows br-int - <<'EOF'
table=0,priority=100,in_port=pod,ip,dl_dst=ee:ee:ee:ee:ee:ee,nw_dst=172.25.1.0/24,actions=dec_ttl,set_field:02:74:00:00:00:01->eth_src,set_field:02:74:00:00:00:02->eth_dst,output:vxlan0
table=0,priority=100,in_port=vxlan0,tun_id=1,tun_src=198.18.0.2,ip,nw_dst=172.25.0.0/24,actions=dec_ttl,set_field:ee:ee:ee:ee:ee:ee->eth_src,set_field:02:74:00:00:02:0a->eth_dst,output:pod
table=0,priority=0,actions=drop
EOF
ofctl del-flows br-phy
# ul -> LOCAL is where the userspace datapath recognises VXLAN for 198.18.0.1 (dst MAC =
# br-phy's) and pops it; LOCAL -> ul carries what vxlan0 pushes (and nothing the
# namespace's kernel might send from the br-phy tap).
ofctl add-flows br-phy - <<'EOF'
table=0,priority=100,in_port=ul,udp,nw_dst=198.18.0.1,tp_dst=8472,actions=LOCAL
table=0,priority=100,in_port=LOCAL,udp,tp_dst=8472,actions=output:ul
table=0,priority=0,actions=drop
EOF

trap - ERR
cat "$dir/ovs-vswitchd.pid"
