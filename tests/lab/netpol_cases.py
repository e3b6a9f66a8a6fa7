"""The policy lab's cases (tests/lab/policy.sh): each a set of verbatim
networking.k8s.io/v1 NetworkPolicy manifests, as `kubectl apply -f` takes them and
`kubectl get -o yaml` prints them, for the nine pods of config/lab-policy.yaml:
namespaces x, y, z (labels ns: x|y|z), pods a, b, c (labels pod: a|b|c), ports named
serve-80-tcp, serve-81-udp, ... . Twill pods: x/a x/b y/a y/c z/b; kernel-a pods: x/c y/b
z/a z/c. The oracle (netpol_oracle.py) computes each case's expected matrix from the
same text.

CASES: (name, what it shows, manifests separated by ---). UPDATE: the policies of the
update-while-connected case, tightened and loosened again.
"""


def _np(ns, name, spec):
    """A manifest as kubectl would take it; spec is YAML text indented by two."""
    return (f"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n"
            f"  name: {name}\n  namespace: {ns}\nspec:\n{spec}")


def _deny(ns, name, types):
    return _np(ns, name, "  podSelector: {}\n  policyTypes:\n" +
               "".join(f"  - {t}\n" for t in types))


CASES = [
    ("deny-ingress-x", "default deny ingress in x: x's twill pods unreachable, x/c (kernel) not",
     _deny("x", "default-deny-ingress", ["Ingress"])),

    ("deny-egress-all", "default deny egress in x, y and z: twill pods reach only themselves",
     "---\n".join(_deny(ns, "default-deny-egress", ["Egress"]) for ns in "xyz")),

    ("deny-all-both", "default deny ingress and egress in every namespace",
     "---\n".join(_deny(ns, "default-deny-all", ["Ingress", "Egress"]) for ns in "xyz")),

    ("allow-from-ns-y", "x accepts ingress only from namespace y (namespaceSelector)",
     _np("x", "allow-from-y", """\
  podSelector: {}
  policyTypes:
  - Ingress
  ingress:
  - from:
    - namespaceSelector:
        matchLabels:
          ns: y
""")),

    ("pod-and-ns-one-peer", "x/a from pods b of namespace y: one peer, selectors ANDed",
     _np("x", "allow-yb", """\
  podSelector:
    matchLabels:
      pod: a
  policyTypes:
  - Ingress
  ingress:
  - from:
    - namespaceSelector:
        matchLabels:
          ns: y
      podSelector:
        matchLabels:
          pod: b
""")),

    ("pod-or-ns-two-peers", "x/a from namespace y or from pods b of x: two peers, ORed",
     _np("x", "allow-y-or-b", """\
  podSelector:
    matchLabels:
      pod: a
  policyTypes:
  - Ingress
  ingress:
  - from:
    - namespaceSelector:
        matchLabels:
          ns: y
    - podSelector:
        matchLabels:
          pod: b
""")),

    ("pod-selector-own-ns", "y from pods c: a podSelector alone is y's pods only, x/c and z/c denied",
     _np("y", "allow-c", """\
  podSelector: {}
  policyTypes:
  - Ingress
  ingress:
  - from:
    - podSelector:
        matchLabels:
          pod: c
""")),

    ("expr-in-notin", "z from pods In [a, b] of namespaces NotIn [z]",
     _np("z", "allow-ab-elsewhere", """\
  podSelector: {}
  policyTypes:
  - Ingress
  ingress:
  - from:
    - namespaceSelector:
        matchExpressions:
        - key: ns
          operator: NotIn
          values:
          - z
      podSelector:
        matchExpressions:
        - key: pod
          operator: In
          values:
          - a
          - b
""")),

    ("expr-exists", "x's pods (pod Exists) from z (metadata.name In [z]); a peer of pods without "
     "a pod label (DoesNotExist) matches nobody",
     _np("x", "allow-z-exists", """\
  podSelector:
    matchExpressions:
    - key: pod
      operator: Exists
  policyTypes:
  - Ingress
  ingress:
  - from:
    - namespaceSelector:
        matchExpressions:
        - key: kubernetes.io/metadata.name
          operator: In
          values:
          - z
      podSelector:
        matchExpressions:
        - key: pod
          operator: Exists
    - namespaceSelector: {}
      podSelector:
        matchExpressions:
        - key: pod
          operator: DoesNotExist
""")),

    ("expr-absent-key", "y from pods NotIn [a] in any namespace: NotIn and DoesNotExist hold "
     "for keys nobody has (app, team)",
     _np("y", "allow-not-a", """\
  podSelector: {}
  policyTypes:
  - Ingress
  ingress:
  - from:
    - namespaceSelector:
        matchExpressions:
        - key: team
          operator: DoesNotExist
      podSelector:
        matchExpressions:
        - key: app
          operator: NotIn
          values:
          - web
        - key: pod
          operator: NotIn
          values:
          - a
""")),

    ("ipblock-except-slice", "x from 172.25.0.0/16 except kernel-a's slice 172.25.1.0/24",
     _np("x", "allow-cluster-but-kernel-a", """\
  podSelector: {}
  policyTypes:
  - Ingress
  ingress:
  - from:
    - ipBlock:
        cidr: 172.25.0.0/16
        except:
        - 172.25.1.0/24
""")),

    ("ipblock-except-pod-egress", "y's egress to 172.25.0.0/16 except x/b's /32",
     _np("y", "egress-all-but-xb", """\
  podSelector: {}
  policyTypes:
  - Egress
  egress:
  - to:
    - ipBlock:
        cidr: 172.25.0.0/16
        except:
        - 172.25.2.12/32
""")),

    ("ipblock-one-pod", "z from 172.25.1.22/32 only (y/b, on kernel-a)",
     _np("z", "allow-yb-address", """\
  podSelector: {}
  policyTypes:
  - Ingress
  ingress:
  - from:
    - ipBlock:
        cidr: 172.25.1.22/32
""")),

    ("egress-except-kernel-slice", "z's egress to 0.0.0.0/0 except kernel-a's slice",
     _np("z", "egress-not-kernel-a", """\
  podSelector: {}
  policyTypes:
  - Egress
  egress:
  - to:
    - ipBlock:
        cidr: 0.0.0.0/0
        except:
        - 172.25.1.0/24
""")),

    ("named-port-ingress", "x from anyone on port serve-80-tcp (protocol left to default TCP)",
     _np("x", "allow-serve-80-tcp", """\
  podSelector: {}
  policyTypes:
  - Ingress
  ingress:
  - ports:
    - port: serve-80-tcp
""")),

    ("named-port-egress", "z's egress only to the destination's serve-81-udp",
     _np("z", "egress-serve-81-udp", """\
  podSelector: {}
  policyTypes:
  - Egress
  egress:
  - ports:
    - protocol: UDP
      port: serve-81-udp
""")),

    ("named-port-protocol", "x from anyone on TCP port serve-81-udp: the name exists only for UDP, "
     "so nothing is allowed",
     _np("x", "allow-tcp-serve-81-udp", """\
  podSelector: {}
  policyTypes:
  - Ingress
  ingress:
  - ports:
    - protocol: TCP
      port: serve-81-udp
""")),

    ("endport-80-81", "y from anyone on TCP 80-81 (endPort)",
     _np("y", "allow-tcp-80-81", """\
  podSelector: {}
  policyTypes:
  - Ingress
  ingress:
  - ports:
    - protocol: TCP
      port: 80
      endPort: 81
""")),

    ("endport-81-only", "y from anyone on TCP 81-81 and UDP 60-80",
     _np("y", "allow-tcp-81-udp-60-80", """\
  podSelector: {}
  policyTypes:
  - Ingress
  ingress:
  - ports:
    - protocol: TCP
      port: 81
      endPort: 81
    - protocol: UDP
      port: 60
      endPort: 80
""")),

    ("egress-only", "x's egress only to namespace z (policyTypes [Egress]); ingress untouched",
     _np("x", "egress-to-z", """\
  podSelector: {}
  policyTypes:
  - Egress
  egress:
  - to:
    - namespaceSelector:
        matchLabels:
          ns: z
""")),

    ("ingress-and-egress", "y/a from namespace x and to namespace z (both types)",
     _np("y", "ya-both", """\
  podSelector:
    matchLabels:
      pod: a
  policyTypes:
  - Ingress
  - Egress
  ingress:
  - from:
    - namespaceSelector:
        matchLabels:
          ns: x
  egress:
  - to:
    - namespaceSelector:
        matchLabels:
          ns: z
""")),

    ("policy-types-default", "x/b with egress rules and no policyTypes: Ingress and Egress, "
     "no ingress rules so no ingress; egress to y",
     _np("x", "xb-egress-to-y", """\
  podSelector:
    matchLabels:
      pod: b
  egress:
  - to:
    - namespaceSelector:
        matchLabels:
          ns: y
""")),

    ("udp-only", "z from anyone on UDP, every port",
     _np("z", "allow-udp", """\
  podSelector: {}
  policyTypes:
  - Ingress
  ingress:
  - ports:
    - protocol: UDP
""")),

    ("sctp-only", "x from anyone on SCTP 80 only: TCP and UDP denied",
     _np("x", "allow-sctp-80", """\
  podSelector: {}
  policyTypes:
  - Ingress
  ingress:
  - ports:
    - protocol: SCTP
      port: 80
""")),

    ("allow-all-after-deny", "x: default deny ingress plus an allow-all rule ({}): all allowed",
     _deny("x", "default-deny-ingress", ["Ingress"]) + "---\n" + _np("x", "allow-all", """\
  podSelector: {}
  policyTypes:
  - Ingress
  ingress:
  - {}
""")),

    ("additive", "x/a: one policy from y on TCP 80, another from z on UDP 81: the union",
     _np("x", "xa-from-y-tcp-80", """\
  podSelector:
    matchLabels:
      pod: a
  policyTypes:
  - Ingress
  ingress:
  - from:
    - namespaceSelector:
        matchLabels:
          ns: y
    ports:
    - protocol: TCP
      port: 80
""") + "---\n" + _np("x", "xa-from-z-udp-81", """\
  podSelector:
    matchLabels:
      pod: a
  policyTypes:
  - Ingress
  ingress:
  - from:
    - namespaceSelector:
        matchLabels:
          ns: z
    ports:
    - protocol: UDP
      port: 81
""")),

    ("select-kernel-pod", "deny ingress to pods b of y and z: z/b isolated, y/b (kernel-a, "
     "nobody enforces) still open",
     _np("y", "deny-b", """\
  podSelector:
    matchLabels:
      pod: b
  policyTypes:
  - Ingress
""") + "---\n" + _np("z", "deny-b", """\
  podSelector:
    matchLabels:
      pod: b
  policyTypes:
  - Ingress
""")),
]

# Update while connected (TCP 81 held open from every pod to every other): TIGHTEN is
# applied, then LOOSEN replaces x's policy by an allow-all one of the same name and
# UPDATE_DELETE removes y's.
UPDATE_TIGHTEN = _np("x", "update-x", """\
  podSelector: {}
  policyTypes:
  - Ingress
""") + "---\n" + _np("y", "update-y", """\
  podSelector: {}
  policyTypes:
  - Egress
  egress:
  - to:
    - namespaceSelector:
        matchLabels:
          ns: y
""")
UPDATE_LOOSEN = _np("x", "update-x", """\
  podSelector: {}
  policyTypes:
  - Ingress
  ingress:
  - {}
""")
UPDATE_DELETE = [("y", "update-y")]
