#!/usr/bin/env python3
"""A stand-in for twill's policy datapath, to check the policy lab itself (its topology,
servers, probers, case flow and timing) before twill enforces anything:
`TWILL_POLICY_STANDIN=1 tests/lab/policy.sh` runs this instead of twillctl.

It answers the twillctl commands policy.sh uses (`--socket S apply -f FILE`, `delete
networkpolicy NS/NAME`, `get policies`) and enforces the applied policies the way the
lab expects twill to: with nftables inside the namespace of each pod on the twill node
(egress in its output hook, ingress in its input hook), stateless except that replies
to a connection the pod's peer started pass; so a tightened policy cuts established
connections on their next packet, like twill's policy.cutEstablished. What each pod may
reach comes from netpol_oracle on the lab's ports (80, 81): this checks the plumbing,
not the oracle. Kernel-a's pods get nothing, as in the lab's enforcement model.

Environment: NETPOL_STANDIN_CONFIG (the full config/lab-policy.yaml), TWILL_LAB_PREFIX.
State: the applied policies, in S.standin.json beside the socket path.
"""
import json
import os
import subprocess
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netpol_oracle as oracle  # noqa: E402

PORTS = (80, 81)
PROTOS = ("tcp", "udp", "sctp")


def load(state):
    """{"policies": [...], "rulesets": {pod: nft text loaded}}"""
    try:
        with open(state) as f:
            return json.load(f)
    except FileNotFoundError:
        return {"policies": [], "rulesets": {}}


def ruleset(cluster, policies, pod):
    """The nft table for one twill pod."""
    def chain(name, hook, egress):
        allow = []
        for peer in cluster.pods:
            if peer is pod:
                continue
            for proto in PROTOS:
                for port in PORTS:
                    if oracle.direction_allows(cluster, policies, pod, peer.ip, proto.upper(), port, egress):
                        allow.append(f"{peer.ip} . {proto} . {port}")
        addr, lo = ("daddr", 'oif "lo"') if egress else ("saddr", 'iif "lo"')
        lines = [f"  chain {name} {{", f"    type filter hook {hook} priority 0; policy accept;",
                 "    ct direction reply accept", f"    {lo} accept"]
        if allow:
            lines.append(f"    ip {addr} . meta l4proto . th dport {{ {', '.join(allow)} }} accept")
        lines += ["    ip protocol { tcp, udp, sctp } drop", "  }"]
        return lines

    body = ["table ip netpol {}", "delete table ip netpol", "table ip netpol {"]
    body += chain("pod_egress", "output", True) + chain("pod_ingress", "input", False) + ["}"]
    return "\n".join(body) + "\n"


def enforce(policies, loaded):
    """Loads each twill pod's table where it changed; `loaded` is updated."""
    with open(os.environ["NETPOL_STANDIN_CONFIG"]) as f:
        cluster = oracle.Cluster.from_node_file(yaml.safe_load(f))
    prefix = os.environ.get("TWILL_LAB_PREFIX", "twl")
    for pod in cluster.pods:
        text = ruleset(cluster, policies, pod)
        if not pod.local or loaded.get(pod.key) == text:
            continue
        r = subprocess.run(["ip", "netns", "exec", f"{prefix}-{pod.ns}{pod.name}", "nft", "-f", "-"],
                           input=text, text=True, capture_output=True)
        if r.returncode != 0:
            print(f"nft in {pod.key}: {r.stderr.strip()}", file=sys.stderr)
            loaded.pop(pod.key, None)
            return 1
        loaded[pod.key] = text
    return 0


def main(argv):
    if len(argv) < 4 or argv[1] != "--socket":
        print("usage: netpol_standin.py --socket S apply -f FILE | delete networkpolicy NS/NAME "
              "| get policies", file=sys.stderr)
        return 2
    state, words = argv[2] + ".standin.json", argv[3:]
    saved = load(state)
    policies = saved["policies"]

    def key(p):
        return (oracle.policy_ns(p), p["metadata"]["name"])

    if words[:2] == ["apply", "-f"]:
        with open(words[2]) as f:
            doc = yaml.safe_load(f)
        new = doc.get("networkPolicies") or doc.get("items") or []
        for p in new:
            oracle.check_manifest(p)
        keys = {key(p) for p in new}
        policies = [p for p in policies if key(p) not in keys] + new
        print(f"applied: {len(new)} network policies")
    elif words[:2] == ["delete", "networkpolicy"]:
        ns, _, name = words[2].rpartition("/")
        left = [p for p in policies if key(p) != (ns or "default", name)]
        if len(left) == len(policies):
            print(f"networkpolicy {words[2]} not found", file=sys.stderr)
            return 1
        policies = left
        print(f"networkpolicy {name} deleted")
    elif words == ["get", "policies"]:
        for p in policies:
            print("%s/%s" % key(p))
        return 0
    else:
        print(f"stand-in: unsupported command {' '.join(words)}", file=sys.stderr)
        return 2
    rc = enforce(policies, saved["rulesets"])
    saved["policies"] = policies
    with open(state, "w") as f:
        json.dump(saved, f)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
