"""`netpol.py selftest`: the oracle against answers worked out by hand from the
NetworkPolicy API reference, on a three-pod cluster:

  n1/a  10.0.1.1  local (twill)  app=web          http=TCP 80, dns=UDP 53
  n1/b  10.0.1.2  remote         app=db           http=TCP 8080
  n2/a  10.0.2.1  local (twill)  app=web, tier=x  http=TCP 8081
  namespaces n1 (team=red), n2 (team=blue)
"""
import yaml

import netpol_oracle as oracle


def cluster():
    pods = [
        oracle.Pod("n1", "a", "10.0.1.1", {"app": "web"},
                   [{"name": "http", "containerPort": 80},
                    {"name": "dns", "containerPort": 53, "protocol": "UDP"}], True),
        oracle.Pod("n1", "b", "10.0.1.2", {"app": "db"},
                   [{"name": "http", "containerPort": 8080, "protocol": "TCP"}], False),
        oracle.Pod("n2", "a", "10.0.2.1", {"app": "web", "tier": "x"},
                   [{"name": "http", "containerPort": 8081}], True),
    ]
    return oracle.Cluster(pods, {"n1": {"team": "red"}, "n2": {"team": "blue"}})


def np(ns, spec):
    return (f"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
            f"metadata: {{name: p, namespace: {ns}}}\nspec: {spec}\n")


DENY_N1 = np("n1", "{podSelector: {}, policyTypes: [Ingress]}")
WEB_N1 = "podSelector: {matchLabels: {app: web}}, policyTypes: [Ingress]"

# (what, policies, src, dst, protocol, port, model, expected)
TABLE = [
    ("no policy: allowed", "", "n2/a", "n1/a", "TCP", 80, "k8s", True),
    ("deny ingress n1: n2/a -> n1/a denied", DENY_N1, "n2/a", "n1/a", "TCP", 80, "k8s", False),
    ("deny ingress n1: same namespace denied too", DENY_N1, "n1/b", "n1/a", "UDP", 53, "k8s", False),
    ("deny ingress n1: a pod to itself allowed", DENY_N1, "n1/a", "n1/a", "TCP", 80, "k8s", True),
    ("deny ingress n1: egress from n1 untouched", DENY_N1, "n1/a", "n2/a", "TCP", 80, "k8s", True),
    ("deny ingress n1: n1/b denied in k8s", DENY_N1, "n2/a", "n1/b", "TCP", 80, "k8s", False),
    ("deny ingress n1: n1/b is remote, nobody enforces in the lab", DENY_N1, "n2/a", "n1/b",
     "TCP", 80, "lab", True),
    ("AND peer: n2's web pods", np("n1", f"{{{WEB_N1}, ingress: [{{from: [{{namespaceSelector: "
                                   "{matchLabels: {team: blue}}, podSelector: {matchLabels: {app: web}}}]}]}"),
     "n2/a", "n1/a", "TCP", 80, "k8s", True),
    ("AND peer: n1/b is in neither", np("n1", f"{{{WEB_N1}, ingress: [{{from: [{{namespaceSelector: "
                                        "{matchLabels: {team: blue}}, podSelector: {matchLabels: {app: db}}}]}]}"),
     "n1/b", "n1/a", "TCP", 80, "k8s", False),
    ("OR peers: db pods of n1 allowed", np("n1", f"{{{WEB_N1}, ingress: [{{from: [{{namespaceSelector: "
                                           "{matchLabels: {team: blue}}}, {podSelector: {matchLabels: {app: db}}}]}]}"),
     "n1/b", "n1/a", "TCP", 80, "k8s", True),
    ("podSelector alone: other namespaces' pods not selected",
     np("n1", f"{{{WEB_N1}, ingress: [{{from: [{{podSelector: {{matchLabels: {{app: web}}}}}}]}}]}}"),
     "n2/a", "n1/a", "TCP", 80, "k8s", False),
    ("NotIn: a pod without the key matches",
     np("n1", "{podSelector: {}, ingress: [{from: [{namespaceSelector: {}, podSelector: "
              "{matchExpressions: [{key: tier, operator: NotIn, values: [x]}]}}]}]}"),
     "n1/b", "n1/a", "TCP", 80, "k8s", True),
    ("NotIn: tier=x excluded",
     np("n1", "{podSelector: {}, ingress: [{from: [{namespaceSelector: {}, podSelector: "
              "{matchExpressions: [{key: tier, operator: NotIn, values: [x]}]}}]}]}"),
     "n2/a", "n1/a", "TCP", 80, "k8s", False),
    ("In: a pod without the key does not match",
     np("n1", "{podSelector: {}, ingress: [{from: [{namespaceSelector: {}, podSelector: "
              "{matchExpressions: [{key: tier, operator: In, values: [x]}]}}]}]}"),
     "n1/b", "n1/a", "TCP", 80, "k8s", False),
    ("Exists: tier", np("n1", "{podSelector: {}, ingress: [{from: [{namespaceSelector: {}, podSelector: "
                              "{matchExpressions: [{key: tier, operator: Exists}]}}]}]}"),
     "n2/a", "n1/a", "TCP", 80, "k8s", True),
    ("DoesNotExist: tier", np("n1", "{podSelector: {}, ingress: [{from: [{namespaceSelector: {}, "
                                    "podSelector: {matchExpressions: [{key: tier, operator: DoesNotExist}]}}]}]}"),
     "n2/a", "n1/a", "TCP", 80, "k8s", False),
    ("namespaceSelector on the automatic metadata.name label",
     np("n1", "{podSelector: {}, ingress: [{from: [{namespaceSelector: {matchLabels: "
              "{kubernetes.io/metadata.name: n2}}}]}]}"),
     "n2/a", "n1/a", "TCP", 80, "k8s", True),
    ("ipBlock except: source in the except", np("n1", "{podSelector: {}, ingress: [{from: [{ipBlock: "
                                                      "{cidr: 10.0.0.0/8, except: [10.0.2.0/24]}}]}]}"),
     "n2/a", "n1/a", "TCP", 80, "k8s", False),
    ("ipBlock except: source in the cidr only", np("n1", "{podSelector: {}, ingress: [{from: [{ipBlock: "
                                                         "{cidr: 10.0.0.0/8, except: [10.0.2.0/24]}}]}]}"),
     "n1/b", "n1/a", "TCP", 80, "k8s", True),
    ("named port ingress: http is 80 on n1/a", np("n1", "{podSelector: {}, ingress: [{ports: [{port: http}]}]}"),
     "n2/a", "n1/a", "TCP", 80, "k8s", True),
    ("named port ingress: 8080 is not n1/a's http", np("n1", "{podSelector: {}, ingress: [{ports: [{port: http}]}]}"),
     "n2/a", "n1/a", "TCP", 8080, "k8s", False),
    ("named port ingress: resolved per pod, n1/b's http is 8080",
     np("n1", "{podSelector: {}, ingress: [{ports: [{port: http}]}]}"),
     "n2/a", "n1/b", "TCP", 8080, "k8s", True),
    ("named port with another protocol: no match",
     np("n1", "{podSelector: {}, ingress: [{ports: [{protocol: UDP, port: http}]}]}"),
     "n2/a", "n1/a", "UDP", 80, "k8s", False),
    ("named UDP port", np("n1", "{podSelector: {}, ingress: [{ports: [{protocol: UDP, port: dns}]}]}"),
     "n2/a", "n1/a", "UDP", 53, "k8s", True),
    ("named port egress: resolved on the destination n1/b (8080)",
     np("n2", "{podSelector: {}, policyTypes: [Egress], egress: [{ports: [{port: http}]}]}"),
     "n2/a", "n1/b", "TCP", 8080, "k8s", True),
    ("named port egress: n2/a's own http (8081) is not n1/a's",
     np("n2", "{podSelector: {}, policyTypes: [Egress], egress: [{ports: [{port: http}]}]}"),
     "n2/a", "n1/a", "TCP", 8081, "k8s", False),
    ("endPort: 85 in 80-90", np("n1", "{podSelector: {}, ingress: [{ports: [{port: 80, endPort: 90}]}]}"),
     "n2/a", "n1/a", "TCP", 85, "k8s", True),
    ("endPort: 91 outside 80-90", np("n1", "{podSelector: {}, ingress: [{ports: [{port: 80, endPort: 90}]}]}"),
     "n2/a", "n1/a", "TCP", 91, "k8s", False),
    ("endPort: UDP 85 is not TCP", np("n1", "{podSelector: {}, ingress: [{ports: [{port: 80, endPort: 90}]}]}"),
     "n2/a", "n1/a", "UDP", 85, "k8s", False),
    ("policyTypes default: egress rules make it Egress too, allowed to team=red",
     np("n2", "{podSelector: {}, egress: [{to: [{namespaceSelector: {matchLabels: {team: red}}}]}]}"),
     "n2/a", "n1/a", "TCP", 80, "k8s", True),
    ("policyTypes default: ... and Ingress with no rules: denied",
     np("n2", "{podSelector: {}, egress: [{to: [{namespaceSelector: {matchLabels: {team: red}}}]}]}"),
     "n1/a", "n2/a", "TCP", 80, "k8s", False),
    ("policyTypes default: egress: [] is not Egress",
     np("n2", "{podSelector: {}, egress: []}"), "n2/a", "n1/a", "TCP", 80, "k8s", True),
    ("Egress only: ingress untouched",
     np("n2", "{podSelector: {}, policyTypes: [Egress]}"), "n1/a", "n2/a", "TCP", 80, "k8s", True),
    ("Egress only: egress denied",
     np("n2", "{podSelector: {}, policyTypes: [Egress]}"), "n2/a", "n1/a", "TCP", 80, "k8s", False),
    ("Egress denied at a remote source: nobody enforces in the lab",
     np("n1", "{podSelector: {matchLabels: {app: db}}, policyTypes: [Egress]}"),
     "n1/b", "n2/a", "TCP", 80, "lab", True),
    ("additive: deny plus allow from team=blue", DENY_N1 + "---\n" +
     np("n1", "{podSelector: {}, ingress: [{from: [{namespaceSelector: {matchLabels: {team: blue}}}]}]}"),
     "n2/a", "n1/a", "TCP", 80, "k8s", True),
    ("additive: ... n1/b still denied", DENY_N1 + "---\n" +
     np("n1", "{podSelector: {}, ingress: [{from: [{namespaceSelector: {matchLabels: {team: blue}}}]}]}"),
     "n1/b", "n1/a", "TCP", 80, "k8s", False),
    ("an empty rule allows everything", np("n1", "{podSelector: {}, ingress: [{}]}"),
     "n2/a", "n1/a", "SCTP", 9, "k8s", True),
    ("a rule with ports but no from: any source",
     np("n1", "{podSelector: {}, ingress: [{ports: [{protocol: SCTP}]}]}"),
     "n2/a", "n1/a", "SCTP", 9, "k8s", True),
    ("a policy selecting other pods does not isolate",
     np("n1", "{podSelector: {matchLabels: {app: db}}, policyTypes: [Ingress]}"),
     "n2/a", "n1/a", "TCP", 80, "k8s", True),
]


def check_cases():
    """Every case is a list of NetworkPolicy manifests with distinct names, and survives
    the wrapping into an apply file unchanged. Returns the problems."""
    import netpol_cases as cases
    from netpol_run import apply_file
    problems = []
    names = [c[0] for c in cases.CASES]
    if len(set(names)) != len(names):
        problems.append("case names repeat")
    for name, _, text in cases.CASES + [("update-tighten", "", cases.UPDATE_TIGHTEN),
                                        ("update-loosen", "", cases.UPDATE_LOOSEN)]:
        docs = list(yaml.safe_load_all(text))
        try:
            for d in docs:
                oracle.check_manifest(d)
        except (ValueError, KeyError, TypeError) as e:
            problems.append(f"{name}: {e}")
            continue
        keys = [(oracle.policy_ns(d), d["metadata"]["name"]) for d in docs]
        if len(set(keys)) != len(keys):
            problems.append(f"{name}: two policies with one name")
        for form, field in (("key", "networkPolicies"), ("list", "items")):
            if yaml.safe_load(apply_file(text, form)).get(field) != docs:
                problems.append(f"{name}: the {form} apply file differs from the manifests")
    return problems


def selftest():
    c = cluster()
    failed = 0
    problems = check_cases()
    if problems:
        failed += 1
        print("FAIL - the cases: " + "; ".join(problems))
    else:
        print("ok - the cases are NetworkPolicy manifests with distinct names; apply files keep them")
    for what, text, s, d, proto, port, model, want in TABLE:
        policies = [p for p in yaml.safe_load_all(text) if p] if text else []
        got = oracle.allowed(c, policies, c.by_key[s], c.by_key[d], proto, port, model)
        if got == want:
            print(f"ok - {what}")
        else:
            failed += 1
            print(f"FAIL - {what}: {s} -> {d} {proto}/{port} ({model}): "
                  f"expected {'allowed' if want else 'denied'}, oracle says {'allowed' if got else 'denied'}")
    print(f"{len(TABLE) + 1 - failed} passed, {failed} failed")
    return 1 if failed else 0
