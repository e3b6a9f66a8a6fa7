#!/usr/bin/python3
"""twill's benchmark harness: scenarios through twilld and through the peers people would
run instead, measured in one run by one generator (twill-gen) in its own process.

Each run of a scenario on a device under test (DUT):
  - twill-gen (bench/gen.cc) on CPU 0 owns two links: the pod link and the underlay
    link. For the DPDK DUTs they are net_memif sockets it serves; for the kernel they
    are veths into the kernel node's namespace (net_af_packet).
  - the DUT forwards on CPU 1: twilld (one worker), dpdk-testpmd io forwarding (the
    ceiling: no work per packet), Open vSwitch with DPDK (bench/peers/ovs.sh, the same
    VXLAN encap/decap, one PMD thread), or the Linux kernel configured as flannel and
    kube-proxy do it (bench/peers/kernel.sh, receive work steered to CPU 1 by RPS).
  - twill-gen finds NDR and PDR by binary search (reps x trials of fixed duration) and
    latency at 10/50/90% of the NDR; the harness adds what the DUT counted.

Writes OUT/run.json (everything, every trial), OUT/table.md, OUT/throughput.png and
OUT/latency.png (gnuplot). Usage: scripts/bench.sh [--suite default|quick|full]
[--scenarios a,b] [--duts twill,testpmd,ovs,kernel] [--reps N] [--trial-seconds S]
[--huge] [--rsize LOG2] [--out DIR] [--build DIR]; or --compare RUN.json... for
several runs side by side. Run as root; everything lives in namespaces and files of its
own, removed at the end.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Scenario -> generator kind and parameters, what the twilld config needs, and which peers
# can do the same work. `sizes`: (table, entries) for the throughput vs table size plot.
SCENARIOS = {
    "encap": dict(kind="encap", desc="pod -> remote pod (VXLAN encap)",
                  peers=["testpmd", "ovs", "kernel"], sizes=[("nodes", 1)]),
    "decap": dict(kind="decap", desc="remote pod -> local pod (VXLAN decap)",
                  peers=["testpmd", "ovs", "kernel"]),
    "local": dict(kind="local", desc="pod -> local pod"),
    "svc-hit": dict(kind="svc-hit", services=10, flows=4096,
                    desc="pod -> ClusterIP -> remote backend (conntrack hit)",
                    peers=["kernel"], sizes=[("services", 10), ("connections", 4096)]),
    "svc-new": dict(kind="svc-new", services=1000,
                    desc="new connections through a service (each packet a new flow)",
                    peers=["kernel"], conntrack=dict(capacity=4194304, udpTimeout=1)),
    "policy-10k": dict(kind="encap", policy_rules=10000,
                       desc="pod -> remote pod, 10k NetworkPolicy egress rules"),
    "encap-imix": dict(kind="encap", frame="imix", desc="pod -> remote pod, IMIX frames",
                       peers=["testpmd", "ovs", "kernel"]),
    "svc-100k": dict(kind="svc-hit", services=100000, flows=4096, endpoints=1,
                     desc="conntrack hit, 100k services", sizes=[("services", 100000)]),
    "conn-1m": dict(kind="svc-hit", services=1000, flows=1000000, endpoints=1,
                    desc="conntrack hit over 1M connections",
                    conntrack=dict(capacity=2097152), sizes=[("connections", 1000000)]),
    "nodes-1k": dict(kind="nodes", nodes=1000, flows=4096,
                     desc="pod -> remote pods on 1k nodes", sizes=[("nodes", 1000)]),
    # More points for the plot (the full suite).
    "svc-1k": dict(kind="svc-hit", services=1000, flows=4096, endpoints=1,
                   desc="conntrack hit, 1k services", sizes=[("services", 1000)]),
    "svc-10k": dict(kind="svc-hit", services=10000, flows=4096, endpoints=1,
                    desc="conntrack hit, 10k services", sizes=[("services", 10000)]),
    "conn-100k": dict(kind="svc-hit", services=1000, flows=100000, endpoints=1,
                      desc="conntrack hit over 100k connections",
                      sizes=[("connections", 100000)]),
    "nodes-100": dict(kind="nodes", nodes=100, flows=4096,
                      desc="pod -> remote pods on 100 nodes", sizes=[("nodes", 100)]),
}
DEFAULT = ["encap", "decap", "local", "svc-hit", "svc-new", "policy-10k", "encap-imix",
           "svc-100k", "conn-1m", "nodes-1k"]
SUITES = {
    "default": DEFAULT,
    "quick": ["encap"],
    "full": list(SCENARIOS),
}
SERVICE_PORT = 53
POD_DPORT = 5000

GEN_CPU = 0
DUT_CPU = 1


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def sh(cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, text=True, **kw)


# ---- the twilld configuration of a scenario -------------------------------------------

def ip4(n):
    return ".".join(str((n >> s) & 255) for s in (24, 16, 8, 0))


def ip_int(a, b, c, d):
    return a << 24 | b << 16 | c << 8 | d


def service_vip(s):
    return ip4(ip_int(10, 96, 0, 1) + s)


def endpoint_ip(s, j):  # as bench/service_flows.h
    return ip4(ip_int(172, 25, 1, 10 + (s % 24) * 10 + j))


def target_port(s):
    return 1024 + s // 24


# log2 of the memif rings' slots (the client, the DUT, sets them), for every DPDK DUT
# alike: 16384, deeper than the driver's default of 1024, so that the few-millisecond
# stalls of this virtual machine's vCPUs are buffered rather than lost (bench/README.md).
RSIZE = 14


def memif(n, sock, mac=None):
    dev = f"net_memif{n},role=client,socket={sock},socket-abstract=no,id=0,rsize={RSIZE}"
    return dev + (f",mac={mac}" if mac else "")


def twilld_config(scen, run_dir, huge):
    """The YAML of the DUT node for scenario `scen` (a dict of SCENARIOS)."""
    pod_sock = os.path.join(run_dir, "pod.sock")
    ul_sock = os.path.join(run_dir, "ul.sock")
    eal = (["-m", "2048"] if huge else ["--no-huge", "-m", "2048"]) + [
        "--no-pci", f"--lcores=0@{GEN_CPU},1@{DUT_CPU}", "--log-level=error",
        f"--file-prefix=twb-dut-{os.getpid()}"]
    out = []
    w = out.append
    w("node: {name: dut, ip: 198.18.0.1, podCIDR: 172.25.0.0/24, vtepMAC: '02:74:00:00:00:01'}")
    w("cluster:")
    w("  clusterCIDR: 172.16.0.0/12")
    w("  serviceCIDR: 10.96.0.0/12")
    w("  vxlan: {vni: 1, port: 8472, mtu: 1450}")
    w("dpdk:")
    w("  eal: [" + ", ".join(json.dumps(a) for a in eal) + "]")
    w("  workers: 1")
    w("  workerLcores: [1]")
    ct = scen.get("conntrack")
    if ct:
        w("conntrack: {" + ", ".join(f"{k}: {v}" for k, v in ct.items()) + "}")
    w("ports:")
    if scen["kind"] == "local":
        w("  underlay: 'net_null0,no-rx=1'")
    else:
        w(f"  underlay: '{memif(1, ul_sock, '02:74:00:00:01:01')}'")
    w("nodes:")
    nodes = scen.get("nodes", 0) if scen["kind"] == "nodes" else 0
    if nodes:
        for k in range(nodes):
            w(f"  - {{name: n{k}, ip: {ip4(ip_int(198, 19, 0, 0) + k + 1)}, "
              f"podCIDR: {ip4(ip_int(172, 16, 0, 0) + (k << 8))}/24, "
              f"vtepMAC: '02:74:01:00:{k >> 8:02x}:{k & 255:02x}'}}")
    else:
        w("  - {name: peer, ip: 198.18.0.2, podCIDR: 172.25.1.0/24, vtepMAC: '02:74:00:00:00:02'}")
    w("pods:")
    w(f"  - {{name: pod-a, ip: 172.25.0.10, mac: '02:74:00:00:02:0a', labels: {{app: bench}}, "
      f"port: '{memif(0, pod_sock)}'}}")
    if scen["kind"] == "local":
        w(f"  - {{name: pod-b, ip: 172.25.0.11, mac: '02:74:00:00:02:0b', "
          f"port: '{memif(1, ul_sock)}'}}")
    services = scen.get("services", 0)
    if services:
        per = scen.get("endpoints", 10)
        w("services:")
        for s in range(services):
            eps = ", ".join(f"{{ip: {endpoint_ip(s, j)}}}" for j in range(per))
            w(f"  - {{name: s{s}, clusterIP: {service_vip(s)}, ports: [{{protocol: UDP, "
              f"port: {SERVICE_PORT}, targetPort: {target_port(s)}}}], endpoints: [{eps}]}}")
    rules = scen.get("policy_rules", 0)
    if rules:
        w("networkPolicies:")
        per_policy = 4
        for p in range(rules // per_policy):
            w(f"  - apiVersion: networking.k8s.io/v1")
            w(f"    kind: NetworkPolicy")
            w(f"    metadata: {{name: p{p}, namespace: default}}")
            w(f"    spec:")
            w(f"      podSelector: {{matchLabels: {{app: bench}}}}")
            w(f"      policyTypes: [Egress]")
            w(f"      egress:")
            for r in range(per_policy):
                i = p * per_policy + r
                last = i == rules - 1
                if last:  # the one that lets the measured traffic through
                    w("        - to: [{ipBlock: {cidr: 172.25.1.0/24}}]")
                    w(f"          ports: [{{protocol: UDP, port: {POD_DPORT}}}]")
                else:  # elsewhere in the cluster: addresses and ports the flows never use
                    net = ip_int(172, 17, 0, 0) + (i << 4)
                    w(f"        - to: [{{ipBlock: {{cidr: {ip4(net)}/28}}}}]")
                    w(f"          ports: [{{protocol: {'TCP' if i % 2 else 'UDP'}, "
                      f"port: {1 + i % 4000}}}]")
    return "\n".join(out) + "\n"


# ---- processes --------------------------------------------------------------------------

class Runner:
    def __init__(self, args):
        self.args = args
        self.build = os.path.join(ROOT, args.build)
        self.gen = os.path.join(self.build, "bench", "twill-gen")
        self.twilld = os.path.join(self.build, "control", "twilld")
        self.twillctl = os.path.join(self.build, "control", "twillctl")
        self.tag = f"twb{os.getpid() % 100000}"
        self.ns = f"{self.tag}-dut"
        self.run_dir = tempfile.mkdtemp(prefix="twill-bench-")
        self.procs = []
        self.gen_pids = []
        self.peer_up = None  # (script, args) to stop

    def __enter__(self):
        sh(["ip", "netns", "add", self.ns])
        sh(["ip", "netns", "exec", self.ns, "ip", "link", "set", "lo", "up"])
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            self.stop(p)
        self.stop_peer()
        sh(["ip", "netns", "del", self.ns], check=False)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        # EAL runtime files of a process that was stopped before it removed them.
        mine = [f"twb-dut-{os.getpid()}", f"twb-tpmd-{os.getpid()}"] + \
            [f"twb-gen-{pid}" for pid in self.gen_pids]
        for d in mine:
            shutil.rmtree(os.path.join("/var/run/dpdk", d), ignore_errors=True)

    def start(self, cmd, ns=None, **kw):
        full = (["ip", "netns", "exec", ns] if ns else []) + cmd
        p = subprocess.Popen(full, start_new_session=True, text=True, **kw)
        self.procs.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM, wait=20):
        if p.poll() is None:
            try:
                os.killpg(p.pid, sig)
                p.wait(timeout=wait)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        if p in self.procs:
            self.procs.remove(p)
        return p.returncode

    def stop_peer(self):
        if self.peer_up:
            script, args = self.peer_up
            sh(["bash", script, "stop"] + args, check=False, stdout=subprocess.DEVNULL)
            self.peer_up = None

    def gen_cmd(self, scen, pod_dev, ul_dev, queues=1):
        a = self.args
        cmd = [self.gen, "--pod", pod_dev, "--ul", ul_dev, "--kind", scen["kind"],
               "--frame", scen.get("frame", "64"), "--cpu", str(GEN_CPU),
               "--reps", str(a.reps), "--trial-seconds", str(a.trial_seconds),
               "--latency-seconds", str(a.trial_seconds), "--queues", str(queues)]
        for key in ("flows", "services", "nodes"):
            if key in scen:
                cmd += [f"--{key}", str(scen[key])]
        if a.huge:
            cmd.append("--huge")
        return cmd

    def run_gen(self, cmd, ns, start_dut, timeout, on_mark=None):
        """Starts the generator, then the DUT (once the generator's links exist); at each
        of the generator's marks calls on_mark(name). Returns (generator JSON or None, its
        stderr tail, the DUT's handle)."""
        errf = tempfile.TemporaryFile(mode="w+")
        g = self.start(cmd + ["--marks"], ns=ns, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                       stderr=errf, bufsize=1)
        deadline = time.time() + 20
        while time.time() < deadline:
            errf.seek(0)
            if "ready" in errf.read() or g.poll() is not None:
                break
            time.sleep(0.05)
        dut = start_dut() if g.poll() is None else None
        # A bound on the whole run: the generator is killed (its output then ends).
        def kill():
            try:
                os.killpg(g.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        killer = threading.Timer(timeout, kill)
        killer.start()
        last = ""
        try:
            for line in g.stdout:
                if line.startswith("mark "):
                    if on_mark:
                        on_mark(line.split()[1])
                    g.stdin.write("go\n")
                    g.stdin.flush()
                elif line.strip():
                    last = line
        finally:
            killer.cancel()
        try:
            g.wait(timeout=15)  # it cleans up its EAL files on the way out
        except subprocess.TimeoutExpired:
            pass
        self.gen_pids.append(g.pid)
        self.stop(g, wait=5)
        errf.seek(0)
        err = errf.read()[-2000:]
        try:
            return json.loads(last), err, dut
        except json.JSONDecodeError:
            return None, err, dut

    # -- the DUTs ------------------------------------------------------------------------

    def memif_servers(self):
        pod = os.path.join(self.run_dir, "pod.sock")
        ul = os.path.join(self.run_dir, "ul.sock")
        for s in (pod, ul):
            if os.path.exists(s):
                os.unlink(s)
        return (f"net_memif0,role=server,socket={pod},socket-abstract=no,id=0",
                f"net_memif1,role=server,socket={ul},socket-abstract=no,id=0", pod, ul)

    def run_twilld(self, name, scen):
        pod_dev, ul_dev, _, _ = self.memif_servers()
        cfg = os.path.join(self.run_dir, f"{name}.yaml")
        with open(cfg, "w") as f:
            f.write(twilld_config(scen, self.run_dir, self.args.huge))
        sock = os.path.join(self.run_dir, "twilld.sock")
        logf = open(os.path.join(self.run_dir, "twilld.log"), "w+")

        def start_dut():
            return self.start([self.twilld, "--config", cfg, "--socket", sock], ns=self.ns,
                              stdout=logf, stderr=subprocess.STDOUT)

        def stats():
            st = sh([self.twillctl, "--socket", sock, "get", "stats", "-o", "json"],
                    check=False, capture_output=True)
            try:
                return json.loads(st.stdout)["stats"]
            except (json.JSONDecodeError, KeyError):
                return None

        marks = {}

        def on_mark(mark):
            marks[mark] = stats()

        res, err, dut = self.run_gen(self.gen_cmd(scen, pod_dev, ul_dev), self.ns, start_dut,
                                     timeout=900, on_mark=on_mark)
        extra = {}
        a, b = marks.get("top-begin"), marks.get("top-end")
        if a and b:
            busy = b["workers"][0]["busyCycles"] - a["workers"][0]["busyCycles"]
            pkts = b["workers"][0]["rxPackets"] - a["workers"][0]["rxPackets"]
            if pkts > 0:
                extra["dut_cycles_per_packet"] = busy / pkts
                extra["dut_accounting"] = "twilld worker busy cycles / packets received"
        if dut is not None and dut.poll() is None:
            extra["dut_stats"] = stats()
            rc = self.stop(dut)
            extra["dut_exit"] = rc
        logf.seek(0)
        extra["dut_log_tail"] = logf.read()[-1500:]
        logf.close()
        return res, err, extra

    def run_testpmd(self, name, scen):
        pod_dev, ul_dev, pod, ul = self.memif_servers()
        mem = ["-m", "1024"] if self.args.huge else ["--no-huge", "-m", "1024"]
        cmd = ["stdbuf", "-oL", "dpdk-testpmd"] + mem + [
            "--no-pci", f"--file-prefix=twb-tpmd-{os.getpid()}",
            f"--lcores=0@{GEN_CPU},1@{DUT_CPU}", "--log-level=error",
            f"--vdev={memif(0, pod)}", f"--vdev={memif(1, ul)}", "--", "-i",
            "--forward-mode=io", "--total-num-mbufs=16384", "--nb-cores=1",
            "--record-core-cycles"]
        out = tempfile.NamedTemporaryFile(mode="w+", dir=self.run_dir, delete=False)
        state = {}

        def send(line):
            state["dut"].stdin.write(line + "\n")
            state["dut"].stdin.flush()

        def start_dut():
            state["dut"] = self.start(cmd, ns=self.ns, stdin=subprocess.PIPE, stdout=out,
                                      stderr=subprocess.STDOUT)
            send("start")
            return state["dut"]

        def on_mark(mark):
            # stop prints (and ends) the forwarding statistics, start begins them anew.
            n = open(out.name).read().count("CPU cycles/packet=")
            send("stop")
            end = time.time() + 5
            text = ""
            while time.time() < end:
                text = open(out.name).read()
                if text.count("CPU cycles/packet=") > n:
                    break
                time.sleep(0.05)
            if mark == "top-end":
                i = text.rfind("CPU cycles/packet=")
                if i >= 0:
                    state["cycles"] = float(text[i:].split("=")[1].split()[0])
            send("start")

        res, err, dut = self.run_gen(self.gen_cmd(scen, pod_dev, ul_dev), self.ns, start_dut,
                                     timeout=900, on_mark=on_mark)
        extra = {"dut_log_tail": open(out.name).read()[-3000:]}
        if "cycles" in state:
            extra["dut_cycles_per_packet"] = state["cycles"]
            extra["dut_accounting"] = "testpmd --record-core-cycles, the top trial"
        if dut is not None:
            try:
                send("stop")
                send("quit")
            except BrokenPipeError:
                pass
            self.stop(dut, wait=10)
        return res, err, extra

    def run_ovs(self, name, scen):
        pod_dev, ul_dev, pod, ul = self.memif_servers()
        script = os.path.join(ROOT, "bench", "peers", "ovs.sh")
        ovs_dir = os.path.join(self.run_dir, "ovs")
        stop_args = ["--dir", ovs_dir]
        extra = {}

        def start_dut():
            args = ["--pod-sock", pod, "--ul-sock", ul, "--rsize", str(RSIZE),
                    "--pmd-cpu", str(DUT_CPU), "--main-cpu", str(GEN_CPU), "--dir", ovs_dir]
            if self.args.huge:
                args.append("--huge")
            self.peer_up = (script, stop_args)
            r = sh(["bash", script, "start"] + args, check=False, capture_output=True)
            if r.returncode != 0:
                extra["dut_error"] = (r.stdout + r.stderr)[-1500:]
            return None

        ctl = os.path.join(ovs_dir, "ovs-vswitchd.ctl")

        def on_mark(mark):
            if mark == "top-begin":
                sh(["ovs-appctl", "-t", ctl, "dpif-netdev/pmd-stats-clear"], check=False,
                   capture_output=True)
            else:
                r = sh(["ovs-appctl", "-t", ctl, "dpif-netdev/pmd-stats-show"], check=False,
                       capture_output=True)
                for line in r.stdout.splitlines():
                    if "avg processing cycles per packet" in line:
                        extra["dut_cycles_per_packet"] = float(line.split(":")[1].split()[0])
                        extra["dut_accounting"] = ("ovs-appctl dpif-netdev/pmd-stats-show, avg "
                                                   "processing cycles per packet, the top trial")

        res, err, _ = self.run_gen(self.gen_cmd(scen, pod_dev, ul_dev, queues=2), self.ns,
                                   start_dut, timeout=900, on_mark=on_mark)
        self.stop_peer()
        return res, err, extra

    def run_kernel(self, name, scen):
        script = os.path.join(ROOT, "bench", "peers", "kernel.sh")
        prefix = f"{self.tag}k"
        args = ["--prefix", prefix]
        start = ["--cpu", str(DUT_CPU), "--gen-cpu", str(GEN_CPU)]
        if scen["kind"].startswith("svc"):
            start += ["--services", str(scen["services"])]
        r = sh(["bash", script, "start"] + args + start, check=False, capture_output=True)
        self.peer_up = (script, args)
        if r.returncode == 0 and scen.get("conntrack", {}).get("udpTimeout"):
            # As twilld's: new flows expire after this, so the table holds rate x timeout.
            r = sh(["ip", "netns", "exec", f"{prefix}-node", "sysctl", "-qw",
                    f"net.netfilter.nf_conntrack_udp_timeout={scen['conntrack']['udpTimeout']}"],
                   check=False, capture_output=True)
        if r.returncode != 0:
            self.stop_peer()
            return None, "", {"dut_error": (r.stdout + r.stderr)[-1500:]}
        # CPU time of the kernel's forwarding: an idle-priority soaker on the CPU (precise),
        # and /proc/stat's system + irq + softirq (tick-sampled, kept for comparison).
        soak = self.start([os.path.join(self.build, "bench", "twill-soak"), "--cpu",
                           str(DUT_CPU)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          bufsize=1)

        def soak_read():
            soak.stdin.write("\n")
            soak.stdin.flush()
            turns, ns = soak.stdout.readline().split()
            return int(turns), int(ns)

        soak_read()
        time.sleep(0.2)
        a = soak_read()
        time.sleep(1)
        b = soak_read()
        idle_rate = (b[0] - a[0]) / (b[1] - a[1])  # turns per ns with the CPU idle
        marks = {}

        def on_mark(mark):
            marks[mark] = (soak_read(), kernel_busy(script))

        res, err, _ = self.run_gen(
            self.gen_cmd(scen, "net_af_packet0,iface=g-pod,qpairs=1,qdisc_bypass=1",
                         "net_af_packet1,iface=g-ul,qpairs=1,qdisc_bypass=1"),
            f"{prefix}-gen", lambda: None, timeout=900, on_mark=on_mark)
        self.stop(soak)
        extra = {}
        if res and "max_trial" in res and len(marks) == 2 and idle_rate > 0:
            (t0, ns0), proc0 = marks["top-begin"]
            (t1, ns1), proc1 = marks["top-end"]
            busy_fraction = max(0.0, 1 - (t1 - t0) / (ns1 - ns0) / idle_rate)
            busy = busy_fraction * (ns1 - ns0) / 1e9
            got = res["max_trial"]["received"]
            if got > 0 and busy > 0:
                extra["dut_cycles_per_packet"] = busy * res["tsc_hz"] / got
                extra["dut_busy_fraction"] = busy_fraction
                extra["dut_busy_fraction_proc_stat"] = (proc1 - proc0) / ((ns1 - ns0) / 1e9)
                extra["dut_accounting"] = (
                    f"CPU {DUT_CPU}'s busy time (an idle-priority soaker's lost progress) over "
                    "packets forwarded, the top trial")
        self.stop_peer()
        return res, err, extra


def kernel_busy(script):
    """Busy seconds (system, irq, softirq) of the DUT CPU so far (kernel.sh cpu-busy)."""
    r = sh(["bash", script, "cpu-busy", "--cpu", str(DUT_CPU)], capture_output=True)
    return float(r.stdout.split()[0]) / 1e9


# ---- the report ------------------------------------------------------------------------

def fmt_rate(s):
    if not s:
        return "-"
    return f"{s['median'] / 1e6:.2f} ({s['min'] / 1e6:.2f}-{s['max'] / 1e6:.2f})"


def lat_cell(gen, load):
    for l in gen.get("latency", []):
        if abs(l["load"] - load) < 1e-6 and l["p50_ns"]:
            return (f"{l['p50_ns']['median'] / 1e3:.1f} / {l['p99_ns']['median'] / 1e3:.1f} / "
                    f"{l['p999_ns']['median'] / 1e3:.1f}")
    return "-"


def per_core(r):
    """Mpps one DUT core forwards, from the DUT's own accounting over the top trial."""
    c = r.get("dut_cycles_per_packet")
    g = r.get("gen") or {}
    return g["tsc_hz"] / c / 1e6 if c and g.get("tsc_hz") else None


def table(results):
    by = {(r["scenario"], r["dut"]): r for r in results}
    lines = ["| scenario | DUT | NDR Mpps, median (min-max) | PDR 0.5% Mpps | DUT cycles/pkt "
             "| Mpps per core | per core vs twill | latency µs p50 / p99 / p99.9 at 50% NDR "
             "| note |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        g = r.get("gen") or {}
        note = r.get("note", "")
        if g.get("generator_limited"):
            note = (note + "; " if note else "") + "NDR generator-limited"
        if not g.get("ndr_pps"):
            lines.append(f"| {r['scenario']} | {r['dut']} | failed | | | | | | "
                         f"{r.get('error', '')[:80]} |")
            continue
        cyc = r.get("dut_cycles_per_packet")
        pc = per_core(r)
        tw = by.get((r["scenario"], "twill"))
        ratio = "-"
        if r["dut"] != "twill" and tw and per_core(tw) and pc:
            ratio = f"{per_core(tw) / pc:.2f}x"
        lines.append(f"| {r['scenario']} | {r['dut']} | {fmt_rate(g['ndr_pps'])} | "
                     f"{fmt_rate(g.get('pdr_pps'))} | {f'{cyc:.0f}' if cyc else '-'} | "
                     f"{f'{pc:.2f}' if pc else '-'} | {ratio} | {lat_cell(g, 0.5)} | {note} |")
    return "\n".join(lines) + "\n"


def goals(results):
    def get(s, d):
        for r in results:
            if r["scenario"] == s and r["dut"] == d and (r.get("gen") or {}).get("ndr_pps"):
                return r
        return None

    def ndr(s, d):
        r = get(s, d)
        return r["gen"]["ndr_pps"]["median"] if r else None

    def core(s, d):
        r = get(s, d)
        return per_core(r) if r else None

    out = ["| goal | measured | met |", "|---|---|---|"]

    def row(text, a, b, want, note=""):
        if a is None or b is None or b == 0:
            out.append(f"| {text} | not measured | - |")
            return
        v = a / b
        out.append(f"| {text} | {v:.2f}{note} | {'yes' if v >= want else 'no'} |")

    gl = (get("encap", "testpmd") or {}).get("gen", {}).get("generator_limited")
    row("twill encap NDR / testpmd io NDR >= 0.60", ndr("encap", "twill"),
        ndr("encap", "testpmd"), 0.60, " (testpmd's NDR is the generator's limit)" if gl else "")
    row("twill encap per core / testpmd io per core >= 0.60", core("encap", "twill"),
        core("encap", "testpmd"), 0.60)
    for s in ("encap", "decap"):
        row(f"twill {s} / Open vSwitch {s}, per core >= 3", core(s, "twill"), core(s, "ovs"), 3)
    for s in ("encap", "decap"):
        row(f"twill {s} / kernel {s}, per core >= 10", core(s, "twill"), core(s, "kernel"), 10)
    for s in ("svc-hit", "policy-10k"):
        row(f"twill {s} NDR / encap NDR >= 0.75 (within 25%)", ndr(s, "twill"),
            ndr("encap", "twill"), 0.75)
        row(f"twill {s} / encap, per core >= 0.75", core(s, "twill"), core("encap", "twill"), 0.75)
    return "\n".join(out) + "\n"


def plots(results, out_dir):
    if not shutil.which("gnuplot"):
        log("gnuplot missing: no plots")
        return
    # Throughput vs table size: one line per table, the NDR and the per-core rate.
    series = {}
    for r in results:
        g = r.get("gen") or {}
        if r["dut"] != "twill" or not g.get("ndr_pps"):
            continue
        for table_name, n in SCENARIOS.get(r["scenario"], {}).get("sizes", []):
            series.setdefault(table_name, []).append(
                (n, g["ndr_pps"]["median"] / 1e6, g["ndr_pps"]["min"] / 1e6,
                 g["ndr_pps"]["max"] / 1e6, per_core(r) or 0))
    plot_lines = []
    for i, (name, pts) in enumerate(sorted(series.items())):
        path = os.path.join(out_dir, f"size-{name}.dat")
        with open(path, "w") as f:
            for p in sorted(pts):
                f.write("%d %f %f %f %f\n" % p)
        plot_lines.append(f"'{path}' using 1:2:3:4 with yerrorlines lc {i + 1} "
                          f"title '{name}: NDR'")
        plot_lines.append(f"'{path}' using 1:5 with linespoints dt 2 lc {i + 1} "
                          f"title '{name}: per core (own cycles)'")
    if plot_lines:
        script = (f"set terminal pngcairo size 900,550\nset output '{out_dir}/throughput.png'\n"
                  "set logscale x\nset xrange [0.5:3e6]\nset xlabel 'entries in the table'\n"
                  "set ylabel 'Mpps'\nset yrange [0:*]\nset offsets 0, 0, 3, 0\n"
                  "set title 'twill, 1 worker, 64-byte frames: NDR (median, range) and "
                  "per-core rate vs table size'\n"
                  "set key top right font ',9'\nplot " + ", ".join(plot_lines) + "\n")
        sh(["gnuplot"], input=script, check=False)
    # Latency CDF of encap: twill at each load, the peers at 50%.
    cdf_lines = []
    for r in results:
        if r["scenario"] != "encap":
            continue
        for l in (r.get("gen") or {}).get("latency", []):
            if r["dut"] != "twill" and abs(l["load"] - 0.5) > 1e-6:
                continue
            path = os.path.join(out_dir, f"cdf-{r['dut']}-{int(l['load'] * 100)}.dat")
            with open(path, "w") as f:
                for ns, frac in l["cdf"]:
                    f.write(f"{max(ns, 1) / 1e3} {frac}\n")
            cdf_lines.append(f"'{path}' using 1:2 with steps title "
                             f"'{r['dut']} at {int(l['load'] * 100)}% of its NDR'")
    if cdf_lines:
        script = (f"set terminal pngcairo size 800,500\nset output '{out_dir}/latency.png'\n"
                  "set logscale x\nset xlabel 'latency, µs (generator to generator)'\n"
                  "set ylabel 'fraction of packets'\nset yrange [0:1]\nset key bottom right\n"
                  "set title 'pod -> remote pod (encap): latency CDF'\n"
                  "plot " + ", ".join(cdf_lines) + "\n")
        sh(["gnuplot"], input=script, check=False)


def machine():
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpu": cpu, "cpus": os.cpu_count(), "kernel": platform.release(),
            "hostname": platform.node(),
            "hugepages": int(open("/proc/sys/vm/nr_hugepages").read())}


def compare(paths):
    """A table of several runs side by side: NDR and per-core Mpps per scenario and DUT."""
    runs = [json.load(open(p)) for p in paths]
    keys = []
    for run in runs:
        for r in run["results"]:
            if (r["scenario"], r["dut"]) not in keys:
                keys.append((r["scenario"], r["dut"]))
    head = " | ".join(f"run {i + 1} NDR | run {i + 1} per core" for i in range(len(runs)))
    lines = [f"| scenario | DUT | {head} |", "|---|---|" + "---|---|" * len(runs)]
    for scen, dut in keys:
        cells = []
        for run in runs:
            r = next((x for x in run["results"] if (x["scenario"], x["dut"]) == (scen, dut)),
                     None)
            g = (r or {}).get("gen") or {}
            ndr = f"{g['ndr_pps']['median'] / 1e6:.2f}" if g.get("ndr_pps") else "-"
            pc = per_core(r) if r else None
            cells.append(f"{ndr} | {pc:.2f}" if pc else f"{ndr} | -")
        lines.append(f"| {scen} | {dut} | " + " | ".join(cells) + " |")
    print("\n".join(lines))
    for i, (p, run) in enumerate(zip(paths, runs)):
        print(f"\nrun {i + 1}: {p} ({run['git']}, {run['started']})", end="")
    print()


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--compare":
        compare(sys.argv[2:])
        return 0
    ap = argparse.ArgumentParser(description="twill's benchmark harness")
    ap.add_argument("--suite", default="default", choices=sorted(SUITES))
    ap.add_argument("--scenarios", help="comma-separated, instead of the suite's")
    ap.add_argument("--duts", default="twill,testpmd,ovs,kernel")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--trial-seconds", type=float, default=0.2)
    ap.add_argument("--huge", action="store_true")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "out"))
    ap.add_argument("--build", default="build")
    ap.add_argument("--rsize", type=int, default=RSIZE, choices=range(8, 15),
                    help="log2 of the memif ring slots (default %(default)s: 1024)")
    args = ap.parse_args()
    globals()["RSIZE"] = args.rsize
    names = args.scenarios.split(",") if args.scenarios else SUITES[args.suite]
    for n in names:
        if n not in SCENARIOS:
            ap.error(f"unknown scenario {n} (known: {', '.join(SCENARIOS)})")
    duts = args.duts.split(",")
    for d in duts:
        if d not in ("twill", "testpmd", "ovs", "kernel"):
            ap.error(f"unknown DUT {d}")
    os.makedirs(args.out, exist_ok=True)
    started = time.time()
    doc = {"started": datetime.datetime.now(datetime.timezone.utc).isoformat(),
           "command": " ".join(["scripts/bench.sh"] + sys.argv[1:]),
           "machine": machine(), "generator_cpu": GEN_CPU, "dut_cpu": DUT_CPU,
           "reps": args.reps, "trial_seconds": args.trial_seconds, "huge": args.huge,
           "memif_ring_slots": 1 << args.rsize,
           "git": sh(["git", "-C", ROOT, "describe", "--always", "--dirty"], check=False,
                     capture_output=True).stdout.strip(),
           "results": []}
    with Runner(args) as run:
        for n in names:
            scen = SCENARIOS[n]
            for d in duts:
                if d != "twill" and d not in scen.get("peers", []):
                    continue
                t0 = time.time()
                log(f"{n} on {d} ...")
                fn = {"twill": run.run_twilld, "testpmd": run.run_testpmd,
                      "ovs": run.run_ovs, "kernel": run.run_kernel}[d]
                try:
                    res, err, extra = fn(n, scen)
                except Exception as e:  # keep the other runs
                    res, err, extra = None, repr(e), {}
                r = {"scenario": n, "dut": d, "desc": scen["desc"], "gen": res,
                     "seconds": round(time.time() - t0, 1)}
                r.update(extra)
                if d == "testpmd":
                    r["note"] = "io forwarding: the ceiling, no work per packet"
                if res is None or "error" in (res or {}):
                    r["error"] = ((res or {}).get("error", "") + " " + err.strip()).strip()
                    r["error"] += " " + extra.get("dut_error", "")
                    log(f"{n} on {d}: failed: {r['error'][:300]}")
                else:
                    log(f"{n} on {d}: NDR {fmt_rate(res.get('ndr_pps'))} Mpps, "
                        f"PDR {fmt_rate(res.get('pdr_pps'))} ({r['seconds']} s)")
                doc["results"].append(r)
    doc["seconds"] = round(time.time() - started, 1)
    with open(os.path.join(args.out, "run.json"), "w") as f:
        json.dump(doc, f, indent=1)
    md = (f"Command: `{doc['command']}` ({doc['git']}, {doc['started']}, "
          f"{doc['seconds']:.0f} s)\n\nMachine: {doc['machine']['cpu']}, "
          f"{doc['machine']['cpus']} CPUs, kernel {doc['machine']['kernel']}; generator on "
          f"CPU {GEN_CPU}, DUT on CPU {DUT_CPU}; {args.reps} searches per point, trials of "
          f"{args.trial_seconds} s; {'hugepages' if args.huge else '--no-huge'}\n\n"
          + table(doc["results"]) + "\n" + goals(doc["results"]))
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(md)
    plots(doc["results"], args.out)
    print(md)
    failed = [r for r in doc["results"] if r.get("error")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
