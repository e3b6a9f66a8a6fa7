#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test: unit tests (plain and under
# AddressSanitizer + UndefinedBehaviorSanitizer), config checks through twilld --check,
# and the lab tests against real kernel flannel nodes in namespaces.
# Ends with one line "tests: N passed, M failed" and exits non-zero on any failure.
#
#   scripts/test.sh            everything
#   scripts/test.sh --no-lab   skip the namespace lab (no root network needed)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

run_lab=1
[[ ${1:-} == --no-lab ]] && run_lab=0

bash scripts/install-deps.sh
jobs=$(nproc)

passed=0
failed=0
failures=()
note() { printf '\n== %s\n' "$*"; }
record() {  # record NAME PASSED FAILED
  passed=$((passed + $2))
  failed=$((failed + $3))
  if (($3 > 0)); then failures+=("$1"); fi
}

# Catch2's closing line: "All tests passed (N assertions in M test cases)" or
# "test cases: M | P passed | F failed".
catch_counts() {
  local log=$1 line
  line=$(grep -E '^(All tests passed|test cases:)' "$log" | tail -n 1 || true)
  if [[ $line =~ in\ ([0-9]+)\ test\ case ]]; then
    echo "${BASH_REMATCH[1]} 0"
  elif [[ $line =~ test\ cases:\ +([0-9]+)\ \|\ +([0-9]+)\ passed\ \|\ +([0-9]+)\ failed ]]; then
    echo "${BASH_REMATCH[2]} ${BASH_REMATCH[3]}"
  else
    echo "0 1"  # no summary: the runner crashed
  fi
}

run_unit() {  # run_unit NAME BUILD_DIR
  local name=$1 dir=$2 log
  log=$(mktemp)
  note "$name"
  set +e
  "$dir/tests/twill-unit" 2>&1 | tee "$log" | tail -n 30
  local rc=${PIPESTATUS[0]}
  set -e
  read -r p f < <(catch_counts "$log")
  if ((rc != 0 && f == 0)); then f=1; fi
  record "$name" "$p" "$f"
  rm -f "$log"
}

note "build (build/)"
[[ -f build/build.ninja ]] || meson setup build
ninja -C build -j "$jobs"
run_unit "unit tests" build

note "build with AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)"
[[ -f build-asan/build.ninja ]] ||
  meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
ninja -C build-asan -j "$jobs" tests/twill-unit
# LeakSanitizer on for heap leaks; mbuf leaks are checked through the mempool by every test.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
run_unit "unit tests (ASan+UBSan)" build-asan
unset ASAN_OPTIONS UBSAN_OPTIONS

note "twilld --check on the examples and the bad configs"
p=0 f=0
for cfg in config/*.yaml; do
  if build/control/twilld --check "$cfg" >/dev/null; then p=$((p + 1)); else
    echo "FAIL - $cfg should be valid"; f=$((f + 1)); fi
done
for cfg in tests/data/bad/*.yaml; do
  out=$(build/control/twilld --check "$cfg" 2>&1) && rc=0 || rc=$?
  if ((rc == 1)) && grep -qE ':[0-9]+:[0-9]+\)$' <<<"$out"; then p=$((p + 1)); else
    echo "FAIL - $cfg: want exit 1 with file:line:col errors, got $rc:"; echo "$out"; f=$((f + 1)); fi
done
echo "ok - $p config files checked"
record "twilld --check" "$p" "$f"

# A script that prints "N passed, M failed" as its last count.
run_counted() {  # run_counted NAME COMMAND...
  local name=$1 log line p f rc
  shift
  note "$name"
  log=$(mktemp)
  set +e
  "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1 || true)
  if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
    p=${BASH_REMATCH[1]} f=${BASH_REMATCH[2]}
  else
    p=0 f=1
  fi
  if ((rc != 0 && f == 0)); then f=1; fi
  record "$name" "$p" "$f"
  rm -f "$log"
}

run_counted "scripts/nic-setup.sh refusals and plans (dry runs, no NIC touched)" \
  tests/scripts/nic_setup.sh

if ((run_lab)); then
  # The labs run twilld with 2 workers where there are 2 CPUs (the main lcore shares
  # one); the services and policy labs run again with 1, and must pass both ways.
  lab_workers=1
  (($(nproc) >= 2)) && lab_workers=2
  export TWILL_LAB_WORKERS=${TWILL_LAB_WORKERS:-$lab_workers}
  echo "lab: twilld with $TWILL_LAB_WORKERS worker(s) (TWILL_LAB_WORKERS)"
  run_counted "lab integration test (kernel flannel node <-> twill node, in namespaces)" \
    scripts/lab.sh test
  run_counted "lab live changes (SIGHUP: pod hot-plug, rejected file)" tests/lab/live.sh
  run_counted "lab nodes and pods added and deleted with twillctl under traffic" tests/lab/nodes.sh
  run_counted "lab host port: the node's kernel, pods and the underlay" tests/lab/host.sh
  run_counted "lab jumbo underlay (MTU 9000, overlay 8950) with the kernel flannel node" \
    tests/lab/jumbo.sh
  run_counted "lab checksum offload: the underlay on a tap, kernel-a checks every checksum" \
    tests/lab/offload.sh
  run_counted "lab services: schedulers, affinity, node ports, scaling, kube-proxy nftables peer" \
    tests/lab/services.sh
  run_counted "lab NetworkPolicy truth table: 9 pods on twill and kernel nodes, every pair per case" \
    tests/lab/policy.sh
  if ((TWILL_LAB_WORKERS != 1)); then
    TWILL_LAB_WORKERS=1 run_counted "lab services again, twilld with 1 worker" tests/lab/services.sh
    TWILL_LAB_WORKERS=1 run_counted "lab NetworkPolicy truth table again, twilld with 1 worker" \
      tests/lab/policy.sh
  fi
  # Checks what the harness counts, never its timings.
  run_counted "benchmark harness end to end: twilld, testpmd, Open vSwitch, the kernel" \
    tests/scripts/bench_smoke.sh
fi

echo
if ((failed > 0)); then
  echo "failed stages: ${failures[*]}"
fi
echo "tests: $passed passed, $failed failed"
((failed == 0))
