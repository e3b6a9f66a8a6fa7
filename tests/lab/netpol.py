#!/usr/bin/env python3
"""NetworkPolicy truth tables in the lab (tests/lab/policy.sh), in the style of the
Kubernetes e2e netpol suite.

  netpol.py serve [--seconds S] [--sctp]       in a pod namespace: TCP and UDP (and SCTP)
                                               servers on ports 80 and 81; TCP echoes lines
  netpol.py agent --src NS/POD NS/POD=IP ...   in a pod namespace, for the whole run: on
                                               commands from stdin, probes every destination
                                               and protocol/port at once, or opens and asks
                                               long TCP connections (see agent())
  netpol.py probe --src NS/POD [--protos tcp/80,udp/81,...] NS/POD=IP ...
                                               one probe of every destination, by hand:
                                               "SRC DST PROTO/PORT ok|timeout|refused|..."
  netpol.py run --config FILE --prefix P --twillctl PATH --socket PATH --pods SPEC
                                               the truth table: every case applied, probed
                                               from all nine pods, compared with the oracle
  netpol.py expect [CASE ...] [--config FILE]  print the oracle's matrices, no lab needed
  netpol.py selftest                           the oracle against hand-computed answers

The lab's enforcement model, for the expected matrices: twill enforces egress where the
SOURCE pod is on the twill node and ingress where the DESTINATION pod is on it; the
kernel flannel node enforces nothing. So expected(src, dst) = (src on twill ? egress
allowed : true) and (dst on twill ? ingress allowed : true), and a pod always reaches
itself. Every call is bounded in time.
"""
import argparse
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

PORTS = (80, 81)
TCP_TIMEOUT = 1.0      # seconds for a TCP (or SCTP) connect
UDP_TIMEOUT = 0.5      # seconds per UDP attempt; two attempts
ATTEMPTS = 3           # probe rounds per case until the matrix matches
ROUND_PAUSE = 0.5      # seconds between them
SCTP = getattr(socket, "IPPROTO_SCTP", 132)


# ---------------------------------------------------------------------------- pod side

def serve(seconds, sctp):
    deadline = time.time() + seconds

    def echo(c):
        try:
            c.settimeout(max(0.1, deadline - time.time()))
            f = c.makefile("rb")
            for line in f:
                c.sendall(line)
        except OSError:
            pass
        finally:
            c.close()

    def stream(port, proto):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, proto)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
        s.listen(256)
        s.settimeout(0.5)
        while time.time() < deadline:
            try:
                c, _ = s.accept()
            except socket.timeout:
                continue
            except OSError:
                continue
            threading.Thread(target=echo, args=(c,), daemon=True).start()

    def dgram(port):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("0.0.0.0", port))
        u.settimeout(0.5)
        while time.time() < deadline:
            try:
                data, peer = u.recvfrom(2048)
                u.sendto(data, peer)
            except OSError:
                continue

    workers = []
    for port in PORTS:
        workers.append(threading.Thread(target=stream, args=(port, 0), daemon=True))
        workers.append(threading.Thread(target=dgram, args=(port,), daemon=True))
        if sctp:
            workers.append(threading.Thread(target=stream, args=(port, SCTP), daemon=True))
    for w in workers:
        w.start()
    print("serving", flush=True)
    while time.time() < deadline:
        time.sleep(0.5)


def _err(e):
    if isinstance(e, socket.timeout):
        return "timeout"
    if isinstance(e, ConnectionRefusedError):
        return "refused"
    if isinstance(e, ConnectionResetError):
        return "reset"
    return e.__class__.__name__ if not getattr(e, "errno", None) else os.strerror(e.errno).replace(" ", "_")


def probe_stream(ip, port, proto, timeout):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, proto)
    s.settimeout(timeout)
    try:
        s.connect((ip, port))
        return "ok"
    except OSError as e:
        return _err(e)
    finally:
        s.close()


def probe_udp(ip, port, timeout, tries=2):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(timeout)
    try:
        u.connect((ip, port))
        payload = f"netpol {time.time()}".encode()
        for _ in range(tries):
            u.send(payload)
            try:
                while True:  # a late answer to an earlier try is fine too
                    if u.recv(2048).startswith(b"netpol "):
                        return "ok"
            except socket.timeout:
                continue
        return "timeout"
    except OSError as e:
        return _err(e)
    finally:
        u.close()


def probe_one(ip, proto, port, timeout):
    if proto == "tcp":
        return probe_stream(ip, port, 0, timeout)
    if proto == "sctp":
        return probe_stream(ip, port, SCTP, timeout)
    return probe_udp(ip, port, UDP_TIMEOUT)


def probe_all(protos, timeout, targets):
    """{(dst, proto/port): result} for every target and protocol, all at once."""
    results = {}

    def run(dst, ip, pp):
        proto, port = pp.split("/")
        results[(dst, pp)] = probe_one(ip, proto, int(port), timeout)

    threads = [threading.Thread(target=run, args=(dst, ip, pp), daemon=True)
               for dst, ip in targets for pp in protos]
    for t in threads:
        t.start()
    end = time.time() + timeout + 2 * UDP_TIMEOUT + 2
    for t in threads:
        t.join(max(0.0, end - time.time()))
    return {(dst, pp): results.get((dst, pp), "unfinished") for dst, _ in targets for pp in protos}


def parallel(fn, items, seconds):
    ts = [threading.Thread(target=fn, args=a, daemon=True) for a in items]
    for t in ts:
        t.start()
    end = time.time() + seconds
    for t in ts:
        t.join(max(0.0, end - time.time()))


class Held:
    """Long TCP connections from this pod, one per destination."""

    def __init__(self, src, targets, timeout):
        self.src, self.targets, self.timeout = src, targets, timeout
        self.conns = {}

    def open(self, port):
        def connect(dst, ip):
            s = socket.socket()
            s.settimeout(self.timeout)
            try:
                s.connect((ip, port))
                self.conns[dst] = s
            except OSError:
                s.close()

        parallel(connect, [(d, ip) for d, ip in self.targets if d != self.src], self.timeout + 1)
        return {d: "ok" if d in self.conns else "failed" for d, _ in self.targets if d != self.src}

    def ask(self):
        """Each connection is asked for an echo: ok, cut (no answer: closed with a reset,
        so it does not linger) or gone (cut earlier, or never opened)."""
        answers = {}

        def one(dst, s):
            try:
                s.settimeout(self.timeout)
                s.sendall(b"still there\n")
                got = b""
                while not got.endswith(b"\n"):
                    chunk = s.recv(64)
                    if not chunk:
                        raise ConnectionResetError()
                    got += chunk
                answers[dst] = "ok"
            except OSError:
                answers[dst] = "cut"

        parallel(one, list(self.conns.items()), self.timeout + 1)
        out = {}
        for d, _ in self.targets:
            if d == self.src:
                continue
            out[d] = answers.get(d, "gone") if d in self.conns else "gone"
            if out[d] != "ok" and d in self.conns:
                s = self.conns.pop(d)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.close()
        return out


def agent(src, timeout, targets):
    """Commands on stdin, one per line; answers on stdout, each block ending "end N":
      probe N PROTO/PORT,...   every target and protocol at once: "N DST PROTO/PORT RESULT"
      open N PORT              a long TCP connection to every other pod: "N DST ok|failed"
      held N                   each long connection asked for an echo: "N DST ok|cut|gone"
      quit
    """
    held = Held(src, targets, timeout)
    print("ready", flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        cmd, n = words[0], words[1]
        if cmd == "probe":
            for (dst, pp), res in probe_all(words[2].split(","), timeout, targets).items():
                print(n, dst, pp, res)
        elif cmd == "open":
            for dst, res in held.open(int(words[2])).items():
                print(n, dst, res)
        elif cmd == "held":
            for dst, res in held.ask().items():
                print(n, dst, res)
        print("end", n, flush=True)


def parse_targets(items):
    out = []
    for t in items:
        key, ip = t.split("=")
        out.append((key, ip))
    return out


# ---------------------------------------------------------------------------- main

def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--seconds", type=float, default=180)
    s.add_argument("--sctp", action="store_true")
    p = sub.add_parser("probe")
    p.add_argument("--src", required=True)
    p.add_argument("--protos", default="tcp/80,tcp/81,udp/80,udp/81")
    p.add_argument("--timeout", type=float, default=TCP_TIMEOUT)
    p.add_argument("targets", nargs="+")
    g = sub.add_parser("agent")
    g.add_argument("--src", required=True)
    g.add_argument("--timeout", type=float, default=TCP_TIMEOUT)
    g.add_argument("targets", nargs="+")
    r = sub.add_parser("run")
    r.add_argument("--config", required=True)
    r.add_argument("--prefix", required=True)
    r.add_argument("--twillctl", required=True)
    r.add_argument("--socket", required=True)
    r.add_argument("--pods", required=True, help="POLICY_PODS of tests/lab/lib.sh")
    r.add_argument("--sctp", action="store_true", help="the pods serve SCTP: probe it")
    r.add_argument("--baseline-only", action="store_true",
                   help="no policies: check the topology only (a datapath without policy)")
    r.add_argument("--apply-form", choices=("key", "list"), default="key",
                   help="apply files as networkPolicies: [...] (key) or a kind: List")
    r.add_argument("--only", default="", help="comma-separated case names")
    r.add_argument("--workdir", required=True)
    r.add_argument("--seconds", type=float, default=300, help="the agents' lifetime")
    e = sub.add_parser("expect")
    e.add_argument("--config", default=os.path.join(os.path.dirname(__file__),
                                                    "../../config/lab-policy.yaml"))
    e.add_argument("cases", nargs="*")
    sub.add_parser("selftest")
    a = ap.parse_args(argv[1:])

    if a.cmd == "serve":
        serve(a.seconds, a.sctp)
        return 0
    if a.cmd == "probe":
        for (dst, pp), res in probe_all(a.protos.split(","), a.timeout, parse_targets(a.targets)).items():
            print(a.src, dst, pp, res)
        return 0
    if a.cmd == "agent":
        agent(a.src, a.timeout, parse_targets(a.targets))
        return 0
    import netpol_run  # the root-namespace side needs PyYAML; the pod side does not
    if a.cmd == "run":
        return netpol_run.run(a, __file__)
    if a.cmd == "expect":
        return netpol_run.expect(a.config, a.cases)
    import netpol_selftest
    return netpol_selftest.selftest()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
