"""Kubernetes NetworkPolicy (networking.k8s.io/v1) semantics, written from the API
reference and independent of twill's compiler: the oracle that says which connections
a set of policies allows. Pure functions over plain dicts (manifests as YAML loads them).

What it implements:
- label selectors: matchLabels AND matchExpressions (In, NotIn, Exists, DoesNotExist; a
  NotIn or DoesNotExist requirement holds when the key is absent); an empty selector
  selects everything. Namespaces carry `kubernetes.io/metadata.name` as the API server
  sets it.
- policyTypes: as written; when absent Ingress, plus Egress when `egress` is non-empty
  (the API server's defaulting).
- isolation per direction: a pod is isolated for ingress (egress) once some policy of its
  namespace selects it with that type; policies are additive (union of their rules); a
  policy with no rules of that type allows nothing.
- a rule allows a peer when its from/to list is empty or any peer matches, and a port
  when its ports list is empty or any port matches. A peer: ipBlock (cidr minus except,
  for any address, pod addresses included) or podSelector and/or namespaceSelector
  (podSelector alone: pods of the policy's namespace; namespaceSelector alone: every pod
  of the selected namespaces; both: AND).
- ports: protocol (TCP when absent); no port = every port of that protocol; a number,
  with endPort a range; a name, resolved against the destination pod's containerPorts
  of that name and protocol (for ingress the selected pod, for egress the peer; an
  address that is no pod has no named ports).
- a pod to itself is always allowed.
"""
import ipaddress

PROTOCOLS = ("TCP", "UDP", "SCTP")


class Pod:
    def __init__(self, ns, name, ip, labels, container_ports, local):
        self.ns = ns
        self.name = name
        self.ip = ipaddress.ip_address(ip)
        self.labels = {k: str(v) for k, v in (labels or {}).items()}
        # (name, protocol) -> number
        self.named_ports = {(p["name"], p.get("protocol", "TCP")): int(p["containerPort"])
                            for p in (container_ports or []) if p.get("name")}
        self.local = local  # on the enforcing (twill) node

    @property
    def key(self):
        return f"{self.ns}/{self.name}"

    def __repr__(self):
        return self.key


class Cluster:
    """Pods and namespace labels: the selectors' input."""

    def __init__(self, pods, namespaces):
        self.pods = list(pods)
        self.ns_labels = {}
        for name, labels in namespaces.items():
            self.ns_labels[name] = {k: str(v) for k, v in (labels or {}).items()}
        for p in self.pods:
            self.ns_labels.setdefault(p.ns, {})
        for name, labels in self.ns_labels.items():
            labels["kubernetes.io/metadata.name"] = name
        self.by_key = {p.key: p for p in self.pods}

    @classmethod
    def from_node_file(cls, doc):
        """From a twill node file (config/lab-policy.yaml loaded): pods with a `port` are
        local to the twill node."""
        pods = [Pod(p.get("namespace", "default"), p["name"], p["ip"], p.get("labels"),
                    p.get("containerPorts"), bool(p.get("port")))
                for p in doc.get("pods") or []]
        namespaces = {n["name"]: n.get("labels") for n in doc.get("namespaces") or []}
        return cls(pods, namespaces)

    def pod_at(self, ip):
        ip = ipaddress.ip_address(ip)
        for p in self.pods:
            if p.ip == ip:
                return p
        return None


def selects(selector, labels):
    """A LabelSelector (dict) against a label map."""
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != str(v):
            return False
    for e in selector.get("matchExpressions") or []:
        op, key = e["operator"], e["key"]
        values = [str(v) for v in e.get("values") or []]
        if op == "In":
            ok = key in labels and labels[key] in values
        elif op == "NotIn":
            ok = key not in labels or labels[key] not in values
        elif op == "Exists":
            ok = key in labels
        elif op == "DoesNotExist":
            ok = key not in labels
        else:
            raise ValueError(f"unknown matchExpressions operator {op!r}")
        if not ok:
            return False
    return True


def policy_types(spec):
    types = spec.get("policyTypes")
    if types:
        return set(types)
    return {"Ingress", "Egress"} if spec.get("egress") else {"Ingress"}


def policy_ns(policy):
    return (policy.get("metadata") or {}).get("namespace", "default")


def check_manifest(policy):
    if policy.get("apiVersion") != "networking.k8s.io/v1" or policy.get("kind") != "NetworkPolicy":
        raise ValueError(f"not a networking.k8s.io/v1 NetworkPolicy: {policy.get('kind')}")
    if "podSelector" not in (policy.get("spec") or {}):
        raise ValueError(f"{policy['metadata']['name']}: spec.podSelector is required")


def peer_matches(cluster, peer, ns, ip, pod):
    """One from/to entry of a policy in namespace ns against the peer address ip (pod =
    the pod at ip, or None)."""
    block = peer.get("ipBlock")
    if block is not None:
        if ip not in ipaddress.ip_network(block["cidr"]):
            return False
        return not any(ip in ipaddress.ip_network(e) for e in block.get("except") or [])
    ns_sel, pod_sel = peer.get("namespaceSelector"), peer.get("podSelector")
    if ns_sel is None and pod_sel is None:
        raise ValueError(f"a peer needs ipBlock, podSelector or namespaceSelector: {peer}")
    if pod is None:
        return False
    if ns_sel is None:
        in_ns = pod.ns == ns
    else:
        in_ns = selects(ns_sel, cluster.ns_labels.get(pod.ns, {}))
    return in_ns and (pod_sel is None or selects(pod_sel, pod.labels))


def port_matches(spec, proto, port, dst_pod):
    if spec.get("protocol", "TCP") != proto:
        return False
    want = spec.get("port")
    if want is None:
        return True
    if isinstance(want, str):
        if dst_pod is None:
            return False
        number = dst_pod.named_ports.get((want, proto))
        return number is not None and number == port
    end = spec.get("endPort")
    return want <= port <= end if end is not None else port == want


def rule_allows(cluster, rule, ns, peer_key, peer_ip, peer_pod, proto, port, dst_pod):
    peers = rule.get(peer_key) or []
    if peers and not any(peer_matches(cluster, p, ns, peer_ip, peer_pod) for p in peers):
        return False
    ports = rule.get("ports") or []
    return not ports or any(port_matches(p, proto, port, dst_pod) for p in ports)


def direction_allows(cluster, policies, pod, peer_ip, proto, port, egress):
    """Whether `pod` may send to (egress) or receive from (ingress) the address peer_ip,
    counting only the policies that select `pod`. True when none isolates it."""
    kind = "Egress" if egress else "Ingress"
    field, peer_key = ("egress", "to") if egress else ("ingress", "from")
    peer_pod = cluster.pod_at(peer_ip)
    dst_pod = peer_pod if egress else pod
    isolated = False
    for pol in policies:
        spec = pol.get("spec") or {}
        if policy_ns(pol) != pod.ns or kind not in policy_types(spec):
            continue
        if not selects(spec.get("podSelector") or {}, pod.labels):
            continue
        isolated = True
        for rule in spec.get(field) or []:
            if rule_allows(cluster, rule or {}, pod.ns, peer_key, ipaddress.ip_address(peer_ip),
                           peer_pod, proto, port, dst_pod):
                return True
    return not isolated


def allowed(cluster, policies, src, dst, proto, port, model="lab"):
    """Whether a new connection from pod src to pod dst on proto/port is allowed.
    model "k8s": every pod's own policies apply (a conformant cluster). model "lab":
    egress is enforced only for a src on the twill node and ingress only for a dst on it;
    the kernel node enforces nothing."""
    if src is dst:
        return True
    enforce_src = model == "k8s" or src.local
    enforce_dst = model == "k8s" or dst.local
    if enforce_src and not direction_allows(cluster, policies, src, dst.ip, proto, port, True):
        return False
    if enforce_dst and not direction_allows(cluster, policies, dst, src.ip, proto, port, False):
        return False
    return True


def matrix(cluster, policies, proto, port, model="lab"):
    """{(src_key, dst_key): bool} over every pair of the cluster's pods."""
    for p in policies:
        check_manifest(p)
    return {(s.key, d.key): allowed(cluster, policies, s, d, proto, port, model)
            for s in cluster.pods for d in cluster.pods}
