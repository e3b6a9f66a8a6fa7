"""The root-namespace side of netpol.py: runs the cases against the lab (starting probes
and long connections inside the pod namespaces with `ip netns exec`, applying and
deleting policies with twillctl) and prints e2e-netpol-style matrices. Sends nothing
itself. See netpol.py for the commands and the lab's enforcement model."""
import os
import queue
import subprocess
import sys
import threading
import time

import yaml

import netpol_cases as cases
import netpol_oracle as oracle
from netpol import ATTEMPTS, ROUND_PAUSE, TCP_TIMEOUT

BASE_PROBES = [("TCP", 80), ("TCP", 81), ("UDP", 80), ("UDP", 81)]
NODE_MARK = {True: "T", False: "K"}  # twill-b, kernel-a


def load_cluster(path):
    with open(path) as f:
        return oracle.Cluster.from_node_file(yaml.safe_load(f))


def expected_matrices(cluster, manifests, probes):
    return {pp: oracle.matrix(cluster, manifests, pp[0], pp[1]) for pp in probes}


def apply_file(text, form):
    """Manifests separated by --- as one file for `twillctl apply -f`, which takes one
    YAML document: `networkPolicies: [...]` (form "key") or a `kind: List` ("list"), each
    manifest's text kept as written."""
    body = "apiVersion: v1\nkind: List\nitems:\n" if form == "list" else "networkPolicies:\n"
    for doc in (d for d in text.split("---\n") if d.strip()):
        lines = doc.rstrip("\n").split("\n")
        body += "- " + lines[0] + "\n" + "".join(f"  {ln}\n" for ln in lines[1:])
    return body


def render(cluster, title, exp, obs):
    """Expected, observed and where they differ, side by side: rows from, columns to."""
    pods = cluster.pods
    cols = " ".join(f"{p.ns}{p.name}" for p in pods)
    marks = " ".join(f"{NODE_MARK[p.local]} " for p in pods)
    gap = "   "
    lines = [f"{title:<9}{'expected':<27}{gap}{'observed':<27}{gap}differs",
             f"{'':<9}{cols}{gap}{cols}{gap}{cols}",
             f"{'':<9}{marks}{gap}{marks}{gap}{marks}"]
    for s in pods:
        cells = [[], [], []]
        for d in pods:
            e, o = exp[(s.key, d.key)], obs.get((s.key, d.key))
            cells[0].append("." if e else "X")
            cells[1].append("?" if o is None else "." if o else "X")
            cells[2].append("." if e == o else "X")
        row = gap.join(" ".join(f"{c:<2}" for c in block) for block in cells)
        lines.append(f"{s.key} {NODE_MARK[s.local]}    {row}")
    return lines


def say(line=""):
    print(line, flush=True)


class Agent:
    """One `netpol.py agent` in a pod namespace for the whole run, driven over its
    stdin and stdout."""

    def __init__(self, lab, src, seconds):
        self.src = src
        self.lines = queue.Queue()
        self.proc = subprocess.Popen(
            lab.pod_cmd(src, seconds, "agent", "--src", src.key, *lab.targets()),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.split())
        self.lines.put(None)

    def send(self, line):
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except OSError:
            pass

    def collect(self, last, seconds):
        """The lines before the one that is `last` (a list of words); those so far when
        `seconds` pass or the agent ends first."""
        got, end = [], time.time() + seconds
        while True:
            try:
                words = self.lines.get(timeout=max(0.0, end - time.time()))
            except queue.Empty:
                return got
            if words is None or words == last:
                return got
            got.append(words)

    def close(self):
        self.send("quit")
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(5)


class Lab:
    def __init__(self, args, script):
        self.args = args
        self.script = os.path.abspath(script)
        self.cluster = load_cluster(args.config)
        self.probes = BASE_PROBES + ([("SCTP", 80)] if args.sctp else [])
        self.passed = 0
        self.failed = 0
        self.rounds = 0
        self.serial = 0
        self.probe_time = 0.0   # seconds in probe rounds and long-connection rounds
        self.ctl_calls = 0
        self.ctl_time = 0.0
        self.agents = []
        os.makedirs(args.workdir, exist_ok=True)

    def start_agents(self, seconds):
        self.agents = [Agent(self, s, seconds) for s in self.cluster.pods]
        for a in self.agents:
            a.collect(["ready"], 10)

    def stop_agents(self):
        for a in self.agents:
            a.close()

    def command(self, words, seconds):
        """Sends `words` with a fresh serial to every agent: {src_key: [answer words]}."""
        self.serial += 1
        n = str(self.serial)
        t0 = time.time()
        for a in self.agents:
            a.send(" ".join([words[0], n] + words[1:]))
        answers = {a.src.key: [w[1:] for w in a.collect(["end", n], seconds) if w[0] == n]
                   for a in self.agents}
        self.probe_time += time.time() - t0
        return answers

    # ------------------------------------------------------------------ plumbing
    def ns(self, pod):
        return f"{self.args.prefix}-{pod.ns}{pod.name}"

    def targets(self):
        return [f"{p.key}={p.ip}" for p in self.cluster.pods]

    def pod_cmd(self, pod, seconds, *words):
        return ["ip", "netns", "exec", self.ns(pod), "timeout", str(seconds),
                sys.executable, self.script, *words]

    def ctl(self, *words):
        t0 = time.time()
        self.ctl_calls += 1
        try:
            r = subprocess.run([self.args.twillctl, "--socket", self.args.socket, *words],
                               capture_output=True, text=True, timeout=30)
            return r.returncode, (r.stdout + r.stderr).strip()
        except (OSError, subprocess.TimeoutExpired) as e:
            return 255, str(e)
        finally:
            self.ctl_time += time.time() - t0

    def ok(self, what):
        self.passed += 1
        say(f"ok - {what}")

    def fail(self, what, details=()):
        self.failed += 1
        say(f"FAIL - {what}")
        for line in details:
            say(f"  # {line}")

    # ------------------------------------------------------------------ probing
    def probe_round(self):
        """One probe of every (src, dst, proto/port), all sources at once."""
        self.rounds += 1
        protos = ",".join(f"{p.lower()}/{n}" for p, n in self.probes)
        answers = self.command(["probe", protos], TCP_TIMEOUT + 10)
        obs = {pp: {} for pp in self.probes}
        why = {}
        for src, lines in answers.items():
            for dst, pp, res in lines:
                proto, port = pp.split("/")
                pp = (proto.upper(), int(port))
                if pp in obs:
                    obs[pp][(src, dst)] = res == "ok"
                    why[(pp, src, dst)] = res
        return obs, why

    def poll(self, expected):
        """Probes until the matrices match, at most ATTEMPTS rounds."""
        for i in range(ATTEMPTS):
            obs, why = self.probe_round()
            if obs == expected:
                return obs, why, i + 1
            if i + 1 < ATTEMPTS:
                time.sleep(ROUND_PAUSE)
        return obs, why, ATTEMPTS

    def differences(self, expected, obs, why):
        lines = ["rows from, columns to; '.' allowed, 'X' denied; T on twill-b, K on kernel-a"]
        wrong = []
        groups = []  # protocols whose expected and observed matrices are the same: one table
        for pp in self.probes:
            if obs[pp] == expected[pp]:
                continue
            for g in groups:
                if (g[1], g[2]) == (expected[pp], obs[pp]):
                    g[0].append(f"{pp[0]}/{pp[1]}")
                    break
            else:
                groups.append([[f"{pp[0]}/{pp[1]}"], expected[pp], obs[pp]])
            for (s, d), e in sorted(expected[pp].items()):
                if obs[pp].get((s, d)) != e:
                    wrong.append(f"{s} -> {d} {pp[0]}/{pp[1]}: expected "
                                 f"{'allowed' if e else 'denied'}, got {why.get((pp, s, d), 'no answer')}")
        for names, exp, got in groups:
            if len(names) > 1:
                lines.append(" ".join(names) + ":")
            lines += render(self.cluster, names[0] if len(names) == 1 else "", exp, got)
        lines += wrong[:16] + ([f"... and {len(wrong) - 16} more"] if len(wrong) > 16 else [])
        return lines

    def policies_view(self):
        rc, out = self.ctl("get", "policies")
        return [f"twillctl get policies (exit {rc}):"] + out.splitlines()[:30]

    # ------------------------------------------------------------------ applying
    def apply(self, name, text):
        path = os.path.join(self.args.workdir, f"{name}.yaml")
        with open(path, "w") as f:
            f.write(apply_file(text, self.args.apply_form))
        return self.ctl("apply", "-f", path)

    def delete(self, manifests):
        errors = []
        for m in manifests:
            meta = m["metadata"]
            rc, out = self.ctl("delete", "networkpolicy", f"{meta.get('namespace', 'default')}/{meta['name']}")
            if rc != 0:
                errors.append(f"twillctl delete networkpolicy {meta['name']}: exit {rc}: {out}")
        return errors

    # ------------------------------------------------------------------ cases
    def check_topology(self):
        want = {}
        for spec in self.args.pods.split():
            key, node, ip = spec.split(":")
            want[key] = (node == "b", ip)
        have = {p.key: (p.local, str(p.ip)) for p in self.cluster.pods}
        if want != have:
            self.fail("config and lib.sh's POLICY_PODS describe the same pods",
                      [f"lib.sh: {sorted(want.items())}", f"config: {sorted(have.items())}"])
            return False
        self.ok(f"config lists the nine pods of POLICY_PODS "
                f"({sum(p.local for p in self.cluster.pods)} on twill-b, the rest on kernel-a)")
        return True

    def case(self, n, name, desc, text):
        manifests = list(yaml.safe_load_all(text))
        expected = expected_matrices(self.cluster, manifests, self.probes)
        title = f"case {n} {name}: {desc}"
        rc, out = self.apply(name, text)
        if rc != 0:
            self.fail(f"{title} (twillctl apply: exit {rc})", out.splitlines()[:10])
            return
        obs, why, tries = self.poll(expected)
        errors = self.delete(manifests)
        denied = sum(not v for m in expected.values() for v in m.values())
        total = sum(len(m) for m in expected.values())
        if obs == expected and not errors:
            self.ok(f"{title} ({denied} of {total} denied; {tries} probe round{'s' * (tries > 1)})")
            return
        self.fail(title, self.differences(expected, obs, why) + errors +
                  (self.policies_view() if obs != expected else []))

    def baseline(self, what):
        expected = expected_matrices(self.cluster, [], self.probes)
        obs, why, tries = self.poll(expected)
        if obs == expected:
            self.ok(f"{what}: all {sum(len(m) for m in expected.values())} probes allowed "
                    f"({tries} probe round{'s' * (tries > 1)})")
        else:
            self.fail(what, self.differences(expected, obs, why))

    def held(self):
        """Every long connection asked once: {(src, dst): answered}, a pod to itself True."""
        m = {(s.key, s.key): True for s in self.cluster.pods}
        for src, lines in self.command(["held"], 3 * TCP_TIMEOUT + 5).items():
            for dst, res in lines:
                m[(src, dst)] = res == "ok"
        return m

    def update_case(self, open_only=False):
        """Long TCP 81 connections from every pod to every other while policies tighten
        and loosen again (open_only: only opened and asked, no policy)."""
        pods = self.cluster.pods
        tight = list(yaml.safe_load_all(cases.UPDATE_TIGHTEN))
        all_ok = {(s.key, d.key): True for s in pods for d in pods}
        pairs = len(pods) * (len(pods) - 1)
        try:
            opened = self.command(["open", "81"], TCP_TIMEOUT + 5)
            ready = sum(res == "ok" for lines in opened.values() for _, res in lines)
            first = self.held()
            if first == all_ok and ready == pairs:
                self.ok(f"update: {pairs} long TCP 81 connections, every pod to every other, "
                        f"established and answering (no policy)")
            else:
                self.fail(f"update: long TCP 81 connections established ({ready} of {pairs}) "
                          "and answering", render(self.cluster, "held", all_ok, first))
            if open_only:
                return

            rc, out = self.apply("update-tighten", cases.UPDATE_TIGHTEN)
            exp_t = expected_matrices(self.cluster, tight, self.probes)
            if rc != 0:
                self.fail(f"update: twillctl apply (tighten): exit {rc}", out.splitlines()[:10])
                return
            for i in range(ATTEMPTS):
                after = self.held()
                if after == exp_t[("TCP", 81)]:
                    break
                time.sleep(ROUND_PAUSE)
            cut = sum(not v for v in exp_t[("TCP", 81)].values())
            if after == exp_t[("TCP", 81)]:
                self.ok(f"update: tightening (x denies ingress, y egress only to y) cut exactly the "
                        f"{cut} long connections it no longer allows; the others answer")
            else:
                self.fail("update: tightening cuts exactly the long connections it no longer allows",
                          render(self.cluster, "held", exp_t[("TCP", 81)], after) +
                          self.policies_view())
            obs, why, tries = self.poll(exp_t)
            if obs == exp_t:
                self.ok("update: new connections under the tightened policies match the oracle")
            else:
                self.fail("update: new connections under the tightened policies",
                          self.differences(exp_t, obs, why))

            rc, out = self.apply("update-loosen", cases.UPDATE_LOOSEN)
            errors = [] if rc == 0 else [f"twillctl apply (loosen): exit {rc}: {out}"]
            errors += self.delete([{"metadata": {"namespace": ns, "name": nm}}
                                   for ns, nm in cases.UPDATE_DELETE])
            loose = list(yaml.safe_load_all(cases.UPDATE_LOOSEN))
            exp_l = expected_matrices(self.cluster, loose, self.probes)
            obs, why, tries = self.poll(exp_l)
            survivors = self.held()
            if obs == exp_l and survivors == exp_t[("TCP", 81)] and not errors:
                self.ok("update: loosened again (x's policy replaced by allow-all, y's deleted): "
                        "new connections all allowed, the surviving long connections still answer")
            else:
                self.fail("update: loosened again: new connections allowed, survivors answer",
                          errors + self.differences(exp_l, obs, why) +
                          (render(self.cluster, "held", exp_t[("TCP", 81)], survivors)
                           if survivors != exp_t[("TCP", 81)] else []))
        finally:
            if not open_only:
                self.ctl("delete", "networkpolicy", "x/update-x")
                self.ctl("delete", "networkpolicy", "y/update-y")


def run(args, script):
    lab = Lab(args, script)
    only = set(filter(None, args.only.split(",")))
    started = time.time()
    if not lab.check_topology():
        say(f"netpol: {lab.passed} passed, {lab.failed} failed")
        return 1
    lab.start_agents(args.seconds)
    try:
        lab.probe_round()  # warm-up: every neighbour resolved before anything counts
        lab.baseline("baseline: no policy, every pod reaches every pod")
        for n, (name, desc, text) in enumerate(cases.CASES, 1):
            if only and name not in only:
                continue
            if args.baseline_only:
                say(f"SKIP - case {n} {name} (baseline only)")
                continue
            lab.case(n, name, desc, text)
        if not only or "update" in only:
            lab.update_case(open_only=args.baseline_only)
        if args.baseline_only:
            say("SKIP - update while connected: tightening and loosening (baseline only)")
        if not args.baseline_only and not only:
            lab.baseline("after every case: no policy left, every pod reaches every pod")
    finally:
        lab.stop_agents()
    say(f"netpol: {time.time() - started:.0f} s: {lab.rounds} probe rounds and the long connections' "
        f"rounds {lab.probe_time:.0f} s, {lab.ctl_calls} twillctl calls {lab.ctl_time:.0f} s")
    say(f"netpol: {lab.passed} passed, {lab.failed} failed")
    return 0 if lab.failed == 0 else 1


def expect(config, names):
    cluster = load_cluster(config)
    probes = BASE_PROBES + [("SCTP", 80)]
    todo = [(n, c) for n, c in enumerate(cases.CASES, 1) if not names or c[0] in names]
    if not names or "update" in names:
        todo.append(("u", ("update", "tightened", cases.UPDATE_TIGHTEN)))
    for n, (name, desc, text) in todo:
        manifests = list(yaml.safe_load_all(text))
        say(f"case {n} {name}: {desc}")
        groups = []  # [protocol/port names, matrix]: equal matrices printed once
        for pp in probes:
            m = oracle.matrix(cluster, manifests, pp[0], pp[1])
            for g in groups:
                if g[1] == m:
                    g[0].append(f"{pp[0]}/{pp[1]}")
                    break
            else:
                groups.append([[f"{pp[0]}/{pp[1]}"], m])
        for names, m in groups:
            say("  " + " ".join(names))
            for line in _one(cluster, m):
                say("  " + line)
    return 0


def _one(cluster, m):
    pods = cluster.pods
    lines = [f"{'':<9}" + " ".join(f"{p.ns}{p.name}" for p in pods),
             f"{'':<9}" + " ".join(f"{NODE_MARK[p.local]} " for p in pods)]
    for s in pods:
        lines.append(f"{s.key} {NODE_MARK[s.local]}    " +
                     " ".join(("." if m[(s.key, d.key)] else "X").ljust(2) for d in pods))
    return lines
