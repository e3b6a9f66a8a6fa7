// Services, EndpointSlices and conntrack settings: YAML -> structs, each key on its own.
// A service is written in the compact form of the design or as a verbatim Kubernetes
// Service manifest (what `kubectl get svc -o yaml` prints); EndpointSlices are always
// manifests. Rules relating several keys or objects are in service_rules.cc.
#include <algorithm>
#include <cctype>

#include "control/config_parser.h"

namespace twill::config::detail {

namespace {

constexpr std::string_view scheduler_annotation = "twill.dev/scheduler";
constexpr std::string_view service_name_label = "kubernetes.io/service-name";

// Every field of a v1 ServiceSpec. Those from `selector` on are accepted and ignored: they
// select pods (which EndpointSlices did), concern load balancers (type LoadBalancer is
// refused) or are hints.
// clang-format off
const key_list service_spec_keys = {
    "type", "clusterIP", "clusterIPs", "externalIPs", "ports", "sessionAffinity",
    "sessionAffinityConfig", "externalTrafficPolicy", "internalTrafficPolicy", "ipFamilies",
    "ipFamilyPolicy", "selector", "publishNotReadyAddresses", "allocateLoadBalancerNodePorts",
    "healthCheckNodePort", "loadBalancerClass", "loadBalancerIP", "loadBalancerSourceRanges",
    "externalName", "trafficDistribution"};
// clang-format on

// In the order of config::scheduler.
const key_list scheduler_names = {"rr", "wrr", "lc", "sh", "mh"};

// ipvsadm's --set takes up to 30 days for each timeout.
constexpr int64_t max_timeout = 30 * 24 * 3600;

std::optional<uint16_t> u16(std::optional<int64_t> v) {
    return v ? std::optional<uint16_t>(uint16_t(*v)) : std::nullopt;
}

}  // namespace

void parser::parse_conntrack(const field& f) {
    std::optional<map_view> m =
        read_map(f, "conntrack", {"capacity", "tcpTimeout", "tcpFinTimeout", "udpTimeout"});
    if (!m) {
        return;
    }
    conntrack_config& c = out_.cfg.conntrack;
    if (auto v = get_int(*m, "capacity", 1024, 1 << 24)) {
        c.capacity = uint32_t(*v);
    }
    if (auto v = get_int(*m, "tcpTimeout", 1, max_timeout)) {
        c.tcp_timeout = uint32_t(*v);
    }
    if (auto v = get_int(*m, "tcpFinTimeout", 1, max_timeout)) {
        c.tcp_fin_timeout = uint32_t(*v);
    }
    if (auto v = get_int(*m, "udpTimeout", 1, max_timeout)) {
        c.udp_timeout = uint32_t(*v);
    }
}

uint8_t parser::get_protocol(const map_view& m) {
    constexpr uint8_t numbers[] = {proto_tcp, proto_udp, proto_sctp};
    std::optional<size_t> i = get_choice(m, "protocol", {"TCP", "UDP", "SCTP"});
    return i ? numbers[*i] : proto_tcp;
}

std::string parser::get_port_name(const map_view& m) {
    std::optional<std::string> s = get_string(m, "name", false);
    if (!s || s->empty()) {
        return "";
    }
    if (!is_dns_name(*s, 63, false)) {
        fail(child(m.path, "name"), at(m, "name"),
             fmt::format("'{}' is not a valid port name: use lowercase letters, digits and '-', "
                         "start and end with a letter or digit, at most 63 characters",
                         *s));
        return "";
    }
    return *s;
}

void parser::parse_service(const field& f, const std::string& path) {
    bool manifest = has_key(f.value, "apiVersion") || has_key(f.value, "kind");
    out_.cfg.services.emplace_back();
    out_.cfg.service_origins.push_back({path, manifest});
    service& s = out_.cfg.services.back();
    if (manifest) {
        parse_service_manifest(f, path, s);
    } else {
        parse_service_compact(f, path, s);
    }
}

void parser::parse_service_compact(const field& f, const std::string& path, service& s) {
    std::optional<map_view> m = read_map(
        f, path,
        {"name", "namespace", "type", "clusterIP", "externalIPs", "ports", "scheduler",
         "sessionAffinity", "sessionAffinityConfig", "externalTrafficPolicy", "endpoints"});
    if (!m) {
        return;
    }
    set(s.name, get_name(*m, "name", true, false));
    set(s.ns, get_name(*m, "namespace", false, false));
    parse_service_spec(*m, s, false);
    if (auto i = get_choice(*m, "scheduler", scheduler_names)) {
        s.sched = scheduler(*i);
    }
    for_each_item(*m, "endpoints", [&](const field& item, const std::string& item_path) {
        s.endpoints.emplace_back();
        parse_endpoint(item, item_path, s.endpoints.back());
    });
}

void parser::parse_service_manifest(const field& f, const std::string& path, service& s) {
    std::optional<map_view> m =
        read_map(f, path, {"apiVersion", "kind", "metadata", "spec", "status"});
    if (!m) {
        return;
    }
    check_type(*m, "v1", "Service");
    if (std::optional<map_view> meta = parse_metadata(*m, s.name, s.ns, false)) {
        if (const field* a = find(*meta, "annotations", false)) {
            if (auto notes = read_map(*a, child(meta->path, "annotations"), {}, true)) {
                if (auto i = get_choice(*notes, scheduler_annotation, scheduler_names)) {
                    s.sched = scheduler(*i);
                }
            }
        }
    }
    const field* spec = find(*m, "spec", true);
    if (spec == nullptr) {
        return;
    }
    std::optional<map_view> sm = read_map(*spec, child(path, "spec"), service_spec_keys);
    if (!sm) {
        return;
    }
    parse_service_spec(*sm, s, true);
    if (auto i = get_choice(*sm, "internalTrafficPolicy", {"Cluster", "Local"}); i == 1u) {
        fail(child(sm->path, "internalTrafficPolicy"), at(*sm, "internalTrafficPolicy"),
             "Local (only this node's endpoints for traffic from pods) is not supported in this "
             "version; use Cluster");
    }
    get_choice(*sm, "ipFamilyPolicy", {"SingleStack", "PreferDualStack", "RequireDualStack"});
    bool ipv4 = false, any_bad = false;
    for_each_item(*sm, "ipFamilies", [&](const field& item, const std::string& item_path) {
        std::string v = item.value.IsScalar() ? item.value.Scalar() : "";
        if (v == "IPv4" || v == "IPv6") {
            ipv4 |= v == "IPv4";
            return;
        }
        any_bad = true;
        fail(item_path, item.where,
             item.value.IsScalar()
                 ? fmt::format("'{}' is not one of: IPv4, IPv6", v)
                 : fmt::format("expected a string, got {}", kind_name(item.value)));
    });
    if (const field* fam = find(*sm, "ipFamilies", false);
        fam != nullptr && fam->value.IsSequence() && fam->value.size() > 0 && !ipv4 && !any_bad) {
        fail(child(sm->path, "ipFamilies"), fam->where,
             "an IPv6-only service is not supported: twill is IPv4-only");
    }
}

void parser::parse_service_spec(const map_view& m, service& s, bool manifest) {
    if (m.fields.contains("type")) {
        std::optional<std::string> type = get_string(m, "type", false);
        if (type == "LoadBalancer") {
            fail(child(m.path, "type"), at(m, "type"),
                 "type LoadBalancer is not supported: twill has no load balancer to program; use "
                 "NodePort, or externalIPs for addresses routed to the node");
        } else if (type == "ExternalName") {
            fail(child(m.path, "type"), at(m, "type"),
                 "type ExternalName is not supported: it is a DNS alias, which kube-proxy does "
                 "not implement either");
        } else if (type) {
            if (auto i = get_choice(m, "type", {"ClusterIP", "NodePort"})) {
                s.node_port = *i == 1;
            }
        }
    }

    // clusterIP: an address, or None for a headless service. A manifest may give it as the
    // first of clusterIPs, which must then agree.
    const std::string ip_path = child(m.path, "clusterIP");
    std::optional<std::string> ip_text;
    std::string text_path = ip_path;
    YAML::Node where = m.node;
    bool written = m.fields.contains("clusterIP");
    if (written) {
        ip_text = get_string(m, "clusterIP", false);
        where = at(m, "clusterIP");
    }
    if (manifest) {
        size_t i = 0;
        for_each_item(m, "clusterIPs", [&](const field& item, const std::string& item_path) {
            if (!item.value.IsScalar()) {
                fail(item_path, item.where,
                     fmt::format("expected a string, got {}", kind_name(item.value)));
            } else if (i == 0 && written) {
                if (ip_text && *ip_text != item.value.Scalar()) {
                    fail(item_path, item.where,
                         fmt::format("'{}' disagrees with clusterIP '{}': the first of clusterIPs "
                                     "is the clusterIP",
                                     item.value.Scalar(), *ip_text));
                }
            } else if (i == 0) {
                ip_text = item.value.Scalar();
                text_path = item_path;
                where = item.where;
                written = true;
                out_.cfg.positions[ip_path] = pos_of(where);
            } else if (item.value.Scalar().find(':') == std::string::npos) {
                fail(item_path, item.where,
                     fmt::format("'{}': a service has one IPv4 cluster IP; further clusterIPs "
                                 "may only be IPv6 ones (which twill ignores)",
                                 item.value.Scalar()));
            }
            ++i;
        });
    }
    auto bad_ip = [&](std::string message) {
        fail(text_path, where, std::move(message));
        unusable_.insert(ip_path);
    };
    if (!written) {
        fail(ip_path, m.node,
             "required key is missing: twill does not allocate cluster IPs; give one from "
             "cluster.serviceCIDR, or None for a headless service");
    } else if (!ip_text) {
        unusable_.insert(ip_path);  // not a string: reported
    } else if (*ip_text == "None") {
        s.cluster_ip.reset();
    } else if (ip_text->empty()) {
        bad_ip(
            "an empty clusterIP asks for one to be allocated, which twill does not do: give "
            "one from cluster.serviceCIDR, or None for a headless service");
    } else if (std::optional<ip4_addr> a = parse_ip4(*ip_text)) {
        s.cluster_ip = *a;
    } else {
        bad_ip(
            fmt::format("'{}' is not an IPv4 address (expected a.b.c.d, or None for a headless "
                        "service)",
                        *ip_text));
    }

    // Broken entries are kept (as 0.0.0.0 or an empty port) so that indexes hold.
    for_each_item(m, "externalIPs", [&](const field& item, const std::string& item_path) {
        s.external_ips.push_back(item_ip4(item, item_path).value_or(ip4_addr{}));
    });
    for_each_item(m, "ports", [&](const field& item, const std::string& item_path) {
        s.ports.emplace_back();
        parse_service_port(item, item_path, s.ports.back(), manifest);
    });

    std::optional<size_t> affinity = get_choice(m, "sessionAffinity", {"None", "ClientIP"});
    s.affinity_client_ip = affinity == 1u;
    if (const field* f = find(m, "sessionAffinityConfig", false)) {
        const std::string path = child(m.path, "sessionAffinityConfig");
        if (std::optional<map_view> config = read_map(*f, path, {"clientIP"})) {
            if (const field* c = find(*config, "clientIP", false)) {
                if (auto client = read_map(*c, child(path, "clientIP"), {"timeoutSeconds"})) {
                    if (auto t = get_int(*client, "timeoutSeconds", 1, 86400)) {
                        s.affinity_timeout = uint32_t(*t);
                    }
                }
            }
        }
        if (!s.affinity_client_ip && (!m.fields.contains("sessionAffinity") || affinity)) {
            fail(path, f->key, "only used with sessionAffinity: ClientIP");
        }
    }
    if (auto i = get_choice(m, "externalTrafficPolicy", {"Cluster", "Local"})) {
        s.local_traffic = *i == 1;
    }
}

void parser::parse_service_port(const field& f, const std::string& path, service_port& p,
                                bool manifest) {
    std::optional<map_view> m =
        manifest ? read_map(f, path,
                            {"name", "protocol", "port", "targetPort", "nodePort", "appProtocol"})
                 : read_map(f, path, {"name", "protocol", "port", "targetPort", "nodePort"});
    if (!m) {
        return;
    }
    p.name = get_port_name(*m);
    p.protocol = get_protocol(*m);
    if (find(*m, "port", true) != nullptr) {
        set(p.port, u16(get_int(*m, "port", 1, 65535)));
    }
    if (std::optional<std::string> t = get_string(*m, "targetPort", false)) {
        bool named = !parse_int(*t) && std::any_of(t->begin(), t->end(), [](char c) {
            return std::isalpha(static_cast<unsigned char>(c));
        });
        if (!named) {
            set(p.target_port, u16(get_int(*m, "targetPort", 1, 65535)));
        } else if (!manifest) {
            fail(child(path, "targetPort"), at(*m, "targetPort"),
                 fmt::format("named target ports ('{}') are not supported: give the pod's port "
                             "number",
                             *t));
        }
        // A manifest's named targetPort is resolved by its EndpointSlices, whose ports carry
        // the numbers; there are no other endpoints for it to apply to.
    }
    set(p.node_port, u16(get_int(*m, "nodePort", 30000, 32767)));
}

void parser::parse_endpoint(const field& f, const std::string& path, endpoint& e) {
    std::optional<map_view> m = read_map(f, path, {"ip", "port", "weight", "ready", "terminating"});
    if (!m) {
        return;
    }
    set(e.ip, get_ip4(*m, "ip"));
    set(e.port, u16(get_int(*m, "port", 1, 65535)));
    set(e.weight, u16(get_int(*m, "weight", 0, 65535)));
    set(e.ready, get_bool(*m, "ready"));
    set(e.terminating, get_bool(*m, "terminating"));
}

void parser::check_type(const map_view& m, std::string_view api_version, std::string_view kind) {
    if (auto v = get_string(m, "apiVersion", true); v && *v != api_version) {
        fail(
            child(m.path, "apiVersion"), at(m, "apiVersion"),
            fmt::format("'{}' is not the API version of a {}: expected {}", *v, kind, api_version));
    }
    if (auto k = get_string(m, "kind", true); k && *k != kind) {
        std::string_view hint = *k == "EndpointSlice"   ? "; EndpointSlices go in endpointSlices"
                                : *k == "Service"       ? "; Services go in services"
                                : *k == "NetworkPolicy" ? "; NetworkPolicies go in networkPolicies"
                                : *k == "Namespace"     ? "; Namespaces go in namespaces"
                                                        : "";
        fail(child(m.path, "kind"), at(m, "kind"),
             fmt::format("expected kind {}, got '{}'{}", kind, *k, hint));
    }
}

std::optional<map_view> parser::parse_metadata(const map_view& m, std::string& name,
                                               std::string& ns, bool dots) {
    const field* f = find(m, "metadata", true);
    if (f == nullptr) {
        return std::nullopt;
    }
    // Any other key (labels, uid, resourceVersion, managedFields, ...) is the API server's
    // business and is ignored.
    std::optional<map_view> meta = read_map(*f, child(m.path, "metadata"), {}, true);
    if (meta) {
        set(name, get_name(*meta, "name", true, dots));
        set(ns, get_name(*meta, "namespace", false, false));
    }
    return meta;
}

void parser::parse_slice(const field& f, const std::string& path) {
    out_.cfg.endpoint_slices.emplace_back();
    out_.cfg.slice_origins.push_back({path, true});
    endpoint_slice& s = out_.cfg.endpoint_slices.back();
    std::optional<map_view> m =
        read_map(f, path, {"apiVersion", "kind", "metadata", "addressType", "endpoints", "ports"});
    if (!m) {
        return;
    }
    check_type(*m, "discovery.k8s.io/v1", "EndpointSlice");
    if (std::optional<map_view> meta = parse_metadata(*m, s.name, s.ns, true)) {
        const std::string labels_path = child(meta->path, "labels");
        const field* l = find(*meta, "labels", false);
        std::optional<map_view> labels;
        if (l != nullptr) {
            labels = read_map(*l, labels_path, {}, true);
        }
        if (labels && labels->fields.contains(service_name_label)) {
            set(s.service, get_name(*labels, service_name_label, true, false));
        } else if (l == nullptr || labels) {
            fail(child(labels_path, service_name_label), l != nullptr ? l->where : meta->node,
                 "required label is missing: it names the service whose endpoints these are");
        }
    }
    if (auto t = get_string(*m, "addressType", true); t && *t != "IPv4") {
        fail(child(path, "addressType"), at(*m, "addressType"),
             *t == "IPv6" || *t == "FQDN"
                 ? fmt::format("{} slices are not supported: twill is IPv4-only", *t)
                 : fmt::format("'{}' is not one of: IPv4, IPv6, FQDN", *t));
    }
    for_each_item(*m, "ports", [&](const field& item, const std::string& item_path) {
        s.ports.emplace_back();
        std::optional<map_view> pm =
            read_map(item, item_path, {"name", "protocol", "port", "appProtocol"});
        if (!pm) {
            return;
        }
        slice_port& p = s.ports.back();
        p.name = get_port_name(*pm);
        p.protocol = get_protocol(*pm);
        if (find(*pm, "port", true) != nullptr) {
            set(p.port, u16(get_int(*pm, "port", 1, 65535)));
        }
    });
    for_each_item(*m, "endpoints", [&](const field& item, const std::string& item_path) {
        s.endpoints.emplace_back();
        parse_slice_endpoint(item, item_path, s.endpoints.back());
    });
}

void parser::parse_slice_endpoint(const field& f, const std::string& path, endpoint& e) {
    std::optional<map_view> m = read_map(f, path,
                                         {"addresses", "conditions", "hostname", "nodeName", "zone",
                                          "targetRef", "hints", "deprecatedTopology"});
    if (!m) {
        return;
    }
    if (const field* a = find(*m, "addresses", true)) {
        size_t n = 0;
        for_each_item(*m, "addresses", [&](const field& item, const std::string& item_path) {
            if (n++ == 0) {
                set(e.ip, item_ip4(item, item_path));
            }
        });
        if ((a->value.IsNull() || a->value.IsSequence()) && n != 1) {
            fail(child(path, "addresses"), a->where,
                 fmt::format("{} addresses; an IPv4 endpoint has exactly one", n));
        }
    }
    // Kubernetes: absent ready means ready. A terminating endpoint is never ready there;
    // serving says whether it still takes connections, which is what ready means here.
    if (const field* c = find(*m, "conditions", false)) {
        if (auto cm =
                read_map(*c, child(path, "conditions"), {"ready", "serving", "terminating"})) {
            std::optional<bool> ready = get_bool(*cm, "ready");
            std::optional<bool> serving = get_bool(*cm, "serving");
            std::optional<bool> terminating = get_bool(*cm, "terminating");
            e.terminating = terminating.value_or(false);
            e.ready = e.terminating && serving ? *serving : ready.value_or(true);
        }
    }
}

void parser::parse_manifest_file(const field& root) {
    if (has_key(root.value, "kind") && root.value["kind"].IsScalar() &&
        root.value["kind"].Scalar() == "List") {
        std::optional<map_view> m = read_map(root, "", {"apiVersion", "kind", "metadata", "items"});
        if (!m) {
            return;
        }
        check_type(*m, "v1", "List");
        for_each_item(*m, "items", [&](const field& item, const std::string& item_path) {
            parse_manifest_item(item, item_path);
        });
        return;
    }
    parse_manifest_item(root, "");
}

void parser::parse_manifest_item(const field& f, const std::string& path) {
    const YAML::Node& n = f.value;
    if (!n.IsMap()) {
        fail(path, f.where, fmt::format("expected a map, got {}", kind_name(n)));
        return;
    }
    out_.cfg.positions[path] = pos_of(f.where);
    const std::string kind_path = child(path, "kind");
    if (!has_key(n, "kind")) {
        fail(kind_path, n, "required key is missing");
        return;
    }
    const YAML::Node kind = n["kind"];
    if (!kind.IsScalar()) {
        fail(kind_path, kind, fmt::format("expected a string, got {}", kind_name(kind)));
    } else if (kind.Scalar() == "Service") {
        parse_service(f, path);
    } else if (kind.Scalar() == "EndpointSlice") {
        parse_slice(f, path);
    } else if (kind.Scalar() == "NetworkPolicy") {
        parse_policy(f, path);
    } else if (kind.Scalar() == "Namespace") {
        parse_namespace(f, path);
    } else {
        fail(kind_path, kind,
             fmt::format("kind '{}' cannot be applied: expected Service, EndpointSlice, "
                         "NetworkPolicy or Namespace{}",
                         kind.Scalar(), path.empty() ? ", or a List of them" : ""));
    }
}

}  // namespace twill::config::detail
