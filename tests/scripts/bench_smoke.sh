#!/usr/bin/env bash
# The benchmark harness end to end, briefly: encap, decap and a service through twilld
# and every peer (testpmd, Open vSwitch with DPDK, the kernel), one short search each.
# Checks what it counts, never how fast: every run finished and forwarded; the frames came
# back in the form the scenario makes (VXLAN after encap and after a service's DNAT to a
# remote backend, plain after decap; testpmd passes them unchanged); nothing was
# duplicated; each DUT's own accounting was read; twilld dropped nothing but what the
# generator's full link refused, and stopped with no mbuf in use; the report and plots
# were written. Ends with "N passed, M failed".
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

bash "$root/scripts/install-deps.sh" --bench >/dev/null 2>&1 ||
  echo "bench_smoke: install-deps --bench failed" >&2
/usr/bin/python3 "$root/bench/harness.py" --scenarios encap,decap,svc-hit \
  --duts twill,testpmd,ovs,kernel --reps 1 --trial-seconds 0.05 --out "$out" \
  --build "${TWILL_BUILD:-build}" >"$out/stdout" 2>"$out/stderr"
rc=$?
sed 's/^/    /' "$out/stderr"

/usr/bin/python3 - "$out" "$rc" <<'EOF'
import json, os, sys

out, rc = sys.argv[1], int(sys.argv[2])
passed = failed = 0


def check(what, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok - {what}")
    else:
        failed += 1
        print(f"FAIL - {what} {detail}")


check("the harness exited 0", rc == 0, f"(exit {rc})")
try:
    doc = json.load(open(os.path.join(out, "run.json")))
except (OSError, json.JSONDecodeError) as e:
    check("run.json written", False, repr(e))
    print(f"{passed} passed, {failed} failed")
    sys.exit(1)
check("run.json names the machine, DPDK and the command",
      doc["machine"]["cpus"] >= 1 and doc["command"].startswith("scripts/bench.sh")
      and all((r.get("gen") or {}).get("dpdk", "").startswith("DPDK") for r in doc["results"]))

want = {("encap", d) for d in ("twill", "testpmd", "ovs", "kernel")} | \
       {("decap", d) for d in ("twill", "testpmd", "ovs", "kernel")} | \
       {("svc-hit", d) for d in ("twill", "kernel")}
got = {(r["scenario"], r["dut"]): r for r in doc["results"]}
check("every scenario ran on every DUT that can do it", set(got) == want,
      f"{sorted(set(got) ^ want)}")

for (scen, dut), r in sorted(got.items()):
    name = f"{scen} on {dut}"
    g = r.get("gen") or {}
    if not g.get("ndr_pps") or r.get("error"):
        check(f"{name}: ran", False, r.get("error", "")[:500])
        continue
    top = g["max_trial"]
    check(f"{name}: frames came through at full load ({top['received']})", top["received"] > 0)
    trials = [top, g["warmup"]] + [t for rep in g["reps"] for t in rep["trials"]]
    check(f"{name}: no trial received more than the link took",
          all(t["excess"] == 0 for t in trials))
    # Where the stamp was: inside VXLAN after encapsulation, at the plain offset after
    # decapsulation; testpmd forwards the frames as they were sent.
    encapsulated = scen in ("encap", "svc-hit")
    if dut == "testpmd":
        encapsulated = scen == "decap"
    vx = top["received_vxlan"]
    check(f"{name}: frames {'encapsulated' if encapsulated else 'plain'} as the scenario makes them",
          vx == top["received"] if encapsulated else vx == 0,
          f"({vx} of {top['received']} in VXLAN)")
    check(f"{name}: the DUT's own cost per packet was read",
          (r.get("dut_cycles_per_packet") or 0) > 0, str(r.get("dut_accounting")))
    lat = g.get("latency", [])
    check(f"{name}: latency at 10/50/90% of the NDR",
          [l["load"] for l in lat] == [0.1, 0.5, 0.9] and all(l["cdf"] for l in lat))
    if dut == "twill":
        st = r.get("dut_stats") or {}
        drops = {k: v for k, v in st.get("drops", {}).items() if v and k != "tx_failed"}
        check(f"{name}: twilld dropped nothing but what the full link refused", not drops,
              str(drops))
        if scen == "svc-hit":
            check(f"{name}: twilld translated by its connections",
                  st.get("conntrack", {}).get("hits", 0) > 0)
        check(f"{name}: twilld stopped cleanly, no mbuf in use",
              r.get("dut_exit") == 0 and "mbufs still in use after stop: 0" in r.get("dut_log_tail", ""),
              r.get("dut_log_tail", "")[-300:])

md = open(os.path.join(out, "table.md")).read() if os.path.exists(os.path.join(out, "table.md")) else ""
check("table.md has the results and the goals",
      "| encap | twill |" in md and "| goal | measured | met |" in md)
for png in ("latency.png", "throughput.png"):
    p = os.path.join(out, png)
    check(f"{png} written", os.path.exists(p) and open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
EOF
