#!/usr/bin/env bash
# NetworkPolicy truth tables, in the style of Kubernetes' e2e netpol suite. Three
# namespaces x, y, z (labels ns: x|y|z) with pods a, b, c each (labels pod: a|b|c), nine
# pods spread over the twill node twill-b (x/a x/b y/a y/c z/b) and the kernel flannel
# node kernel-a (x/c y/b z/a z/c), so every namespace has pods on both
# (`scripts/lab.sh up --policy-pods`, config/lab-policy.yaml; addresses in lib.sh's
# POLICY_PODS). Every pod serves TCP and UDP on ports 80 and 81 (and SCTP 80 when the
# kernel has SCTP), named serve-80-tcp, serve-81-udp, ... in twill's config.
#
# Each case (tests/lab/netpol_cases.py: deny all, allow from a namespace, pod and
# namespace selectors ANDed in one peer vs ORed in two, matchExpressions, ipBlock with
# except, named ports, endPort ranges, egress-only, both types, policyTypes defaults, UDP
# only, SCTP only, additive policies, ...) is a set of verbatim networking.k8s.io/v1
# NetworkPolicy manifests: applied with `twillctl apply -f`, probed from every pod to every
# pod over TCP/80, TCP/81, UDP/80, UDP/81 (and SCTP/80) at once (tests/lab/netpol.py, one
# prober per source pod, in parallel), compared with the matrix an independent oracle
# (tests/lab/netpol_oracle.py) computes from the same manifests, then removed with
# `twillctl delete networkpolicy NS/NAME`. A case is re-probed up to 3 times while its
# matrix differs (the policy taking effect); when it still differs, the expected and
# observed matrices are printed (rows from, columns to, '.' allowed, 'X' denied) with
# the differing cells marked. One check per case. Then an update case: long TCP 81
# connections from every pod to every other while policies tighten (connections no
# longer allowed are cut: twill's default policy.cutEstablished) and loosen again.
#
# Enforcement model of the lab (what the oracle's expected matrices assume): twill
# enforces EGRESS only where the SOURCE pod is on twill-b and INGRESS only where the
# DESTINATION pod is on twill-b; the kernel node enforces nothing. So
#   expected(src, dst) = (src on twill ? egress allowed : true)
#                    and (dst on twill ? ingress allowed : true),
# and a pod always reaches itself. Kernel-to-kernel pairs are therefore always allowed.
#
# Environment: TWILL_LAB_PREFIX (use twp when another lab may run), TWILL_POLICY_CASES
# (comma-separated case names, "update" for the update case: only those),
# TWILL_POLICY_APPLY_FORM (key: apply files are `networkPolicies: [...]`, the default;
# list: a `kind: List` of the manifests), TWILL_POLICY_BASELINE_ONLY=1 (for a twilld
# without policy support: the config without namespaces, labels, containerPorts and
# networkPolicies, and only the no-policy baseline; the cases print SKIP),
# TWILL_POLICY_STANDIN=1 (to check this test itself: twilld on that same reduced config,
# the policies enforced by tests/lab/netpol_standin.py, nftables in the twill pods'
# namespaces, instead of twill).
# Runs its own lab and removes everything it made. Prints "ok - ..."/"FAIL - ..." lines
# and one "N passed, M failed" line.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PY=/usr/bin/python3
NETPOL="$LAB_REPO/tests/lab/netpol.py"
CTL="$LAB_REPO/build/control/twillctl"
RUN_SECONDS=300     # the truth table (about a minute of probes) is stopped after this

tmp=$(mktemp -d)
cfg="$LAB_REPO/config/lab-policy.yaml"   # the pods, namespaces and labels the oracle reads
twilld_cfg=$cfg                           # what twilld runs
passed=0 failed=0
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  TWILL_LAB_CONFIG="$twilld_cfg" "$LAB_REPO/scripts/lab.sh" down >/dev/null 2>&1 || true
  rm -rf "$tmp" "$LAB_SOCKET.standin.json"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
started=$SECONDS

baseline_only=${TWILL_POLICY_BASELINE_ONLY:-0}
if [[ ${TWILL_POLICY_STANDIN:-0} == 1 ]]; then
  CTL="$LAB_REPO/tests/lab/netpol_standin.py"
  RUN_SECONDS=600   # its applies take seconds each
  export NETPOL_STANDIN_CONFIG="$cfg" TWILL_LAB_PREFIX="$LAB_P"
  rm -f "$LAB_SOCKET.standin.json"
  echo "# TWILL_POLICY_STANDIN=1: policies enforced by nftables in the twill pods (netpol_standin.py), not by twill"
fi
if [[ $baseline_only == 1 || ${TWILL_POLICY_STANDIN:-0} == 1 ]]; then
  # twilld before the policy parser: the same file without the policy keys.
  "$PY" - "$cfg" "$tmp/lab-policy-baseline.yaml" <<'EOF'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
for key in ("namespaces", "networkPolicies", "policy"):
    doc.pop(key, None)
for pod in doc.get("pods") or []:
    pod.pop("labels", None)
    pod.pop("containerPorts", None)
yaml.safe_dump(doc, open(sys.argv[2], "w"), sort_keys=False)
EOF
  twilld_cfg="$tmp/lab-policy-baseline.yaml"
  echo "# twilld runs config/lab-policy.yaml without namespaces, labels, containerPorts, networkPolicies"
fi

check "oracle self-test: hand-computed NetworkPolicy answers (netpol.py selftest)" \
  "$PY" "$NETPOL" selftest

if ! TWILL_LAB_CONFIG="$twilld_cfg" "$LAB_REPO/scripts/lab.sh" up --policy-pods >"$tmp/up.log" 2>&1; then
  echo "FAIL - lab up: twilld on ${twilld_cfg#"$LAB_REPO"/} with the nine pods (its namespaces, labels, containerPorts and networkPolicies must parse)"
  tail -n 20 "$tmp/up.log" | sed 's/^/  # /'
  failed=$((failed + 1))
  echo "$passed passed, $failed failed"
  exit 1
fi
pid=$(<"$LAB_PIDFILE")

# SCTP: only when this kernel has it (a module, or built in).
sctp=()
modprobe -q sctp 2>/dev/null || true
first_ns=$(policy_pod_ns "${POLICY_PODS[0]%%:*}")
if nsx "$first_ns" "$PY" -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP)' \
  2>/dev/null; then
  sctp=(--sctp)
  echo "# SCTP available: SCTP/80 probed too"
else
  echo "SKIP - SCTP probes: this kernel has no SCTP (modprobe sctp failed, socket(IPPROTO_SCTP): protocol not supported); SCTP rules are still applied and checked over TCP and UDP"
fi

# Servers in every pod, bounded in time.
SERVE_SECONDS=$((RUN_SECONDS + 60))
for spec in "${POLICY_PODS[@]}"; do
  ns=$(policy_pod_ns "${spec%%:*}")
  ip netns exec "$ns" timeout "$SERVE_SECONDS" "$PY" "$NETPOL" serve --seconds "$SERVE_SECONDS" \
    "${sctp[@]}" >/dev/null 2>&1 &
  pids+=($!)
done
servers_up() {
  local spec ns port
  for spec in "${POLICY_PODS[@]}"; do
    ns=$(policy_pod_ns "${spec%%:*}")
    for port in 80 81; do
      wait_tcp_listen "$ns" "$port" || { echo "no TCP listener on $port in $ns"; return 1; }
      wait_udp_bound "$ns" "$port" || { echo "no UDP socket on $port in $ns"; return 1; }
    done
  done
}
check "servers on TCP and UDP 80 and 81 in all nine pods" servers_up

run_args=(--config "$cfg" --prefix "$LAB_P" --twillctl "$CTL" --socket "$LAB_SOCKET"
  --pods "${POLICY_PODS[*]}" --workdir "$tmp/apply" --apply-form "${TWILL_POLICY_APPLY_FORM:-key}"
  --only "${TWILL_POLICY_CASES:-}" --seconds "$RUN_SECONDS" "${sctp[@]}")
[[ $baseline_only == 1 ]] && run_args+=(--baseline-only)
timeout "$RUN_SECONDS" "$PY" "$NETPOL" run "${run_args[@]}" | tee "$tmp/run.out" || true
if [[ $(tail -n 1 "$tmp/run.out") =~ ^netpol:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
  passed=$((passed + BASH_REMATCH[1]))
  failed=$((failed + BASH_REMATCH[2]))
else
  echo "FAIL - the truth table ran to its end (netpol.py run stopped early)"
  failed=$((failed + 1))
fi

# Path MTU discovery into an isolated pod, against the kernel's own ICMP: x/a (twill-b)
# isolated for ingress sends 200 kB to x/c on kernel-a, whose host-side veth takes only
# 1300 bytes. kernel-a answers the 1450-byte segments with "fragmentation needed" from
# its flannel.1 address, which no rule allows: twill lets it in as related to x/a's
# connection (a conntrack-first firewall's RELATED), x/a lowers its path MTU and the
# transfer completes. Without that, the connection black-holes.
pmtu_case() {
  local xa xc mtu out related server
  xa=$(policy_pod_ns x/a)
  xc=$(policy_pod_ns x/c)
  cat >"$tmp/pmtu-policy.yaml" <<'YAML'
networkPolicies:
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: pmtu-deny-ingress, namespace: x}
    spec: {podSelector: {}, policyTypes: [Ingress]}
YAML
  "$CTL" --socket "$LAB_SOCKET" apply -f "$tmp/pmtu-policy.yaml" >/dev/null || return 1
  mtu=$(ip -n "$NS_A" -o link show cali-xc | sed -n 's/.* mtu \([0-9]*\) .*/\1/p')
  ip -n "$NS_A" link set cali-xc mtu 1300 || return 1
  ip netns exec "$xc" timeout 30 "$PY" -c '
import socket
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", 8090)); l.listen(1); l.settimeout(25)
c, _ = l.accept(); c.settimeout(20); n = 0
while True:
    d = c.recv(65536)
    if not d:
        break
    n += len(d)
c.sendall(str(n).encode())
' &
  server=$!
  pids+=("$server")
  wait_tcp_listen "$xc" 8090 || return 1
  out=$(ip netns exec "$xa" timeout 20 "$PY" -c '
import socket
s = socket.create_connection(("172.25.1.13", 8090), timeout=15)
s.sendall(b"x" * 200000)
s.shutdown(socket.SHUT_WR)
print(s.recv(100).decode())
' 2>&1) || true
  wait "$server" 2>/dev/null || true
  related=$("$CTL" --socket "$LAB_SOCKET" get stats -o json |
    "$PY" -c 'import json,sys; print(json.load(sys.stdin)["stats"]["policy"]["relatedIcmp"])' 2>/dev/null) ||
    related=0
  ip -n "$NS_A" link set cali-xc mtu "${mtu:-1450}"
  "$CTL" --socket "$LAB_SOCKET" delete networkpolicy x/pmtu-deny-ingress >/dev/null || return 1
  echo "# pmtu: x/c's answer (the bytes it received): ${out:-nothing}; twilld let ${related:-0} related ICMP errors through"
  [[ $out == 200000 ]] && ((related > 0))
}
if [[ $baseline_only == 1 || ${TWILL_POLICY_STANDIN:-0} == 1 ]]; then
  echo "SKIP - path MTU discovery into an isolated pod (twill's own policy only)"
elif pmtu_case; then
  echo "ok - path MTU discovery into an isolated pod: kernel-a's fragmentation-needed let in as related, 200 kB delivered through a 1300-byte hop"
  passed=$((passed + 1))
else
  echo "FAIL - path MTU discovery into an isolated pod (see the pmtu line above)"
  failed=$((failed + 1))
fi

check "twilld still running (same pid)" test "$(twilld_pid)" == "$pid"
if [[ ${TWILL_POLICY_STANDIN:-0} != 1 ]]; then
  counters=$(twilld_counters) || counters=
  check_workers_spread "$counters" conntrack
fi
echo "# policy.sh took $((SECONDS - started)) s"
echo "$passed passed, $failed failed"
((failed == 0))
