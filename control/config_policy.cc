// Namespaces, labels and NetworkPolicies: YAML -> structs, each key on its own, with the
// rules Kubernetes' API validation applies to one object (label syntax, selector
// operators, peers, ipBlock excepts, port ranges). A NetworkPolicy is always a verbatim
// networking.k8s.io/v1 manifest, as `kubectl get networkpolicy -o yaml` prints it.
// Rules between objects (unique names) are in config_validate_policies.cc.
#include <map>
#include <utility>

#include "control/config_parser.h"
#include "control/policy_rules.h"
#include "control/service_rules.h"

namespace twill::config::detail {

namespace {

std::optional<uint16_t> u16(std::optional<int64_t> v) {
    return v ? std::optional<uint16_t>(uint16_t(*v)) : std::nullopt;
}

// In the order of label_requirement::op.
const key_list operator_names = {"In", "NotIn", "Exists", "DoesNotExist"};

// A selector written as `null` is an absent one, as the API server reads it.
const field* present(const field* f) {
    return f != nullptr && !f->value.IsNull() ? f : nullptr;
}

}  // namespace

label_map parser::parse_labels(const field& f, const std::string& path) {
    label_map out;
    std::optional<map_view> m = read_map(f, path, {}, true);
    if (!m) {
        return out;
    }
    for (const auto& [key, fl] : m->fields) {
        const std::string key_path = child(path, key);
        bool ok = true;
        if (std::string problem = label_key_problem(key); !problem.empty()) {
            fail(key_path, fl.key, std::move(problem));
            ok = false;
        }
        if (!fl.value.IsScalar()) {
            fail(key_path, fl.where, fmt::format("expected a string, got {}", kind_name(fl.value)));
            continue;
        }
        if (std::string problem = label_value_problem(fl.value.Scalar()); !problem.empty()) {
            fail(key_path, fl.where, std::move(problem));
            ok = false;
        }
        if (ok) {
            out.emplace(key, fl.value.Scalar());
        }
    }
    return out;
}

void parser::parse_pod_policy_keys(const map_view& m, pod& p) {
    if (const field* l = find(m, "labels", false)) {
        p.labels = parse_labels(*l, child(m.path, "labels"));
    }
    // A policy names a port by name and protocol, so that pair is unique.
    std::map<std::pair<std::string, uint8_t>, std::string> names;
    for_each_item(m, "containerPorts", [&](const field& item, const std::string& path) {
        p.container_ports.emplace_back();
        container_port& cp = p.container_ports.back();
        std::optional<map_view> pm = read_map(item, path, {"name", "containerPort", "protocol"});
        if (!pm) {
            return;
        }
        cp.protocol = get_protocol(*pm);
        if (find(*pm, "containerPort", true) != nullptr) {
            set(cp.port, u16(get_int(*pm, "containerPort", 1, 65535)));
        }
        std::optional<std::string> name = get_string(*pm, "name", false);
        if (!name || name->empty()) {
            return;
        }
        const std::string name_path = child(path, "name");
        if (std::string problem = port_name_problem(*name); !problem.empty()) {
            fail(name_path, at(*pm, "name"), std::move(problem));
            return;
        }
        cp.name = *name;
        if (auto [first, fresh] = names.try_emplace(std::pair(*name, cp.protocol), name_path);
            !fresh) {
            fail(name_path, at(*pm, "name"),
                 fmt::format("duplicate port name '{}' for {} (also {})", *name,
                             protocol_name(cp.protocol), first->second));
        }
    });
}

void parser::parse_policy_settings(const field& f) {
    if (std::optional<map_view> m = read_map(f, "policy", {"cutEstablished"})) {
        set(out_.cfg.cut_denied_connections, get_bool(*m, "cutEstablished"));
    }
}

void parser::parse_namespace(const field& f, const std::string& path) {
    const bool manifest = has_key(f.value, "apiVersion") || has_key(f.value, "kind");
    out_.cfg.namespaces.emplace_back();
    out_.cfg.namespace_origins.push_back({path, manifest});
    namespace_def& ns = out_.cfg.namespaces.back();
    std::optional<map_view> owner;  // the map holding name and labels
    if (manifest) {
        // spec (finalizers) and status are the API server's business.
        std::optional<map_view> m =
            read_map(f, path, {"apiVersion", "kind", "metadata", "spec", "status"});
        if (!m) {
            return;
        }
        check_type(*m, "v1", "Namespace");
        std::string unused;  // a namespace is in no namespace
        owner = parse_metadata(*m, ns.name, unused, false);
    } else {
        owner = read_map(f, path, {"name", "labels"});
        if (owner) {
            set(ns.name, get_name(*owner, "name", true, false));
        }
    }
    const field* l = owner ? find(*owner, "labels", false) : nullptr;
    if (l == nullptr) {
        return;
    }
    const std::string labels_path = child(owner->path, "labels");
    ns.labels = parse_labels(*l, labels_path);
    // The API server sets this label to the name; kubectl prints it, so it may be written,
    // but only with that value.
    auto it = ns.labels.find(std::string(namespace_name_label));
    if (it == ns.labels.end()) {
        return;
    }
    if (it->second != ns.name && !ns.name.empty()) {
        for (auto k = l->value.begin(); k != l->value.end(); ++k) {
            if (k->first.Scalar() == namespace_name_label) {
                fail(child(labels_path, namespace_name_label), k->second,
                     fmt::format("'{}' is not the namespace's name '{}': this label is always "
                                 "set to the name",
                                 it->second, ns.name));
            }
        }
    }
    ns.labels.erase(it);
}

void parser::parse_policy(const field& f, const std::string& path) {
    out_.cfg.network_policies.emplace_back();
    out_.cfg.policy_origins.push_back({path, true});
    network_policy& np = out_.cfg.network_policies.back();
    std::optional<map_view> m =
        read_map(f, path, {"apiVersion", "kind", "metadata", "spec", "status"});
    if (!m) {
        return;
    }
    check_type(*m, "networking.k8s.io/v1", "NetworkPolicy");
    parse_metadata(*m, np.name, np.ns, true);
    const field* spec = find(*m, "spec", true);
    if (spec == nullptr) {
        return;
    }
    std::optional<map_view> sm =
        read_map(*spec, child(path, "spec"), {"podSelector", "policyTypes", "ingress", "egress"});
    if (!sm) {
        return;
    }
    if (const field* ps = present(find(*sm, "podSelector", false))) {
        np.pod_selector = parse_selector(*ps, child(sm->path, "podSelector"));
    }
    for_each_item(*sm, "ingress", [&](const field& item, const std::string& item_path) {
        np.ingress_rules.emplace_back();
        parse_rule(item, item_path, false, np.ingress_rules.back());
    });
    for_each_item(*sm, "egress", [&](const field& item, const std::string& item_path) {
        np.egress_rules.emplace_back();
        parse_rule(item, item_path, true, np.egress_rules.back());
    });

    // Kubernetes' defaults when policyTypes is absent or empty: Ingress, and Egress when
    // there are egress rules.
    bool listed = false, ingress = false, egress = false;
    for_each_item(*sm, "policyTypes", [&](const field& item, const std::string& item_path) {
        listed = true;
        if (!item.value.IsScalar()) {
            fail(item_path, item.where,
                 fmt::format("expected a string, got {}", kind_name(item.value)));
            return;
        }
        const std::string& t = item.value.Scalar();
        bool* flag = t == "Ingress" ? &ingress : t == "Egress" ? &egress : nullptr;
        if (flag == nullptr) {
            std::string_view hint = t == "ingress"  ? "; did you mean 'Ingress'?"
                                    : t == "egress" ? "; did you mean 'Egress'?"
                                                    : "";
            fail(item_path, item.where,
                 fmt::format("'{}' is not one of: Ingress, Egress{}", t, hint));
            return;
        }
        if (*flag) {
            fail(item_path, item.where, fmt::format("duplicate policy type '{}'", t));
        }
        *flag = true;
    });
    np.ingress = listed ? ingress : true;
    np.egress = listed ? egress : !np.egress_rules.empty();
}

label_selector parser::parse_selector(const field& f, const std::string& path) {
    label_selector s;
    std::optional<map_view> m = read_map(f, path, {"matchLabels", "matchExpressions"});
    if (!m) {
        return s;
    }
    if (const field* ml = present(find(*m, "matchLabels", false))) {
        s.match_labels = parse_labels(*ml, child(path, "matchLabels"));
    }
    for_each_item(*m, "matchExpressions", [&](const field& item, const std::string& item_path) {
        s.match_expressions.emplace_back();
        label_requirement& req = s.match_expressions.back();
        std::optional<map_view> em = read_map(item, item_path, {"key", "operator", "values"});
        if (!em) {
            return;
        }
        if (std::optional<std::string> key = get_string(*em, "key", true)) {
            if (std::string problem = label_key_problem(*key); !problem.empty()) {
                fail(child(item_path, "key"), at(*em, "key"), std::move(problem));
            }
            req.key = *key;
        }
        std::optional<size_t> op;
        if (find(*em, "operator", true) != nullptr) {
            op = get_choice(*em, "operator", operator_names);
        }
        if (op) {
            req.oper = label_requirement::op(*op);
        }
        for_each_item(*em, "values", [&](const field& v, const std::string& v_path) {
            if (!v.value.IsScalar()) {
                fail(v_path, v.where, fmt::format("expected a string, got {}", kind_name(v.value)));
                return;
            }
            if (std::string problem = label_value_problem(v.value.Scalar()); !problem.empty()) {
                fail(v_path, v.where, std::move(problem));
            }
            req.values.push_back(v.value.Scalar());
        });
        const field* vf = find(*em, "values", false);
        if (!op || (vf != nullptr && !vf->value.IsNull() && !vf->value.IsSequence())) {
            return;  // reported
        }
        const std::string_view name = operator_names.begin()[*op];
        const bool wants_values =
            req.oper == label_requirement::op::in || req.oper == label_requirement::op::not_in;
        const size_t n = vf != nullptr && vf->value.IsSequence() ? vf->value.size() : 0;
        if (wants_values && n == 0) {
            fail(child(item_path, "values"), vf != nullptr ? vf->where : em->node,
                 fmt::format("operator {} needs at least one value", name));
        } else if (!wants_values && n > 0) {
            fail(child(item_path, "values"), vf->where,
                 fmt::format("operator {} takes no values", name));
        }
    });
    return s;
}

void parser::parse_rule(const field& f, const std::string& path, bool egress, policy_rule& r) {
    std::optional<map_view> m =
        egress ? read_map(f, path, {"to", "ports"}) : read_map(f, path, {"from", "ports"});
    if (!m) {
        return;
    }
    for_each_item(*m, egress ? "to" : "from", [&](const field& item, const std::string& item_path) {
        r.peers.emplace_back();
        parse_peer(item, item_path, r.peers.back());
    });
    for_each_item(*m, "ports", [&](const field& item, const std::string& item_path) {
        r.ports.emplace_back();
        parse_policy_port(item, item_path, r.ports.back());
    });
}

void parser::parse_peer(const field& f, const std::string& path, policy_peer& p) {
    std::optional<map_view> m = read_map(f, path, {"podSelector", "namespaceSelector", "ipBlock"});
    if (!m) {
        return;
    }
    const field* pods = present(find(*m, "podSelector", false));
    const field* namespaces = present(find(*m, "namespaceSelector", false));
    const field* block = present(find(*m, "ipBlock", false));
    if (pods == nullptr && namespaces == nullptr && block == nullptr) {
        if (m->fields.size() == f.value.size()) {  // else an unknown key was reported
            fail(path, f.where,
                 "a peer needs podSelector, namespaceSelector or ipBlock; to allow every "
                 "address, leave the whole from/to list out or empty");
        }
        return;
    }
    if (pods != nullptr) {
        p.pod_selector = parse_selector(*pods, child(path, "podSelector"));
    }
    if (namespaces != nullptr) {
        p.namespace_selector = parse_selector(*namespaces, child(path, "namespaceSelector"));
    }
    if (block != nullptr) {
        if (pods != nullptr || namespaces != nullptr) {
            fail(child(path, "ipBlock"), block->key,
                 "ipBlock cannot be combined with podSelector or namespaceSelector in one peer: "
                 "make them separate peers");
        }
        p.block.emplace();
        parse_ip_block(*block, child(path, "ipBlock"), *p.block);
    }
}

void parser::parse_ip_block(const field& f, const std::string& path, ip_block& b) {
    std::optional<map_view> m = read_map(f, path, {"cidr", "except"});
    if (!m) {
        return;
    }
    std::optional<ip4_prefix> cidr = get_cidr(*m, "cidr", true);
    if (cidr) {
        b.cidr = *cidr;
    }
    for_each_item(*m, "except", [&](const field& item, const std::string& item_path) {
        std::optional<ip4_prefix> e = item_cidr(item, item_path);
        if (!e) {
            return;
        }
        if (cidr && !cidr->contains(*e)) {
            fail(item_path, item.where,
                 fmt::format("{} is outside cidr {}: an except must lie strictly inside it",
                             format_prefix(*e), format_prefix(*cidr)));
        } else if (cidr && e->len == cidr->len) {
            fail(item_path, item.where,
                 fmt::format("{} is cidr itself: an except must lie strictly inside it",
                             format_prefix(*e)));
        }
        b.except.push_back(*e);
    });
}

void parser::parse_policy_port(const field& f, const std::string& path, policy_port& p) {
    std::optional<map_view> m = read_map(f, path, {"protocol", "port", "endPort"});
    if (!m) {
        return;
    }
    p.protocol = get_protocol(*m);
    std::optional<std::string> port = get_string(*m, "port", false);
    const bool named = port && !parse_int(*port);
    if (port && !named) {
        p.port = u16(get_int(*m, "port", 1, 65535));
    } else if (named) {
        if (std::string problem = port_name_problem(*port); !problem.empty()) {
            fail(child(path, "port"), at(*m, "port"), std::move(problem));
        } else {
            p.name = *port;
        }
    }
    if (!m->fields.contains("endPort")) {
        return;
    }
    std::optional<int64_t> end = get_int(*m, "endPort", 1, 65535);
    const std::string end_path = child(path, "endPort");
    const YAML::Node& where = at(*m, "endPort");
    if (!m->fields.contains("port")) {
        fail(end_path, where, "endPort without port: give the range's first port in port");
    } else if (named) {
        fail(end_path, where,
             fmt::format("endPort with a named port ('{}'): a range needs a numeric port", *port));
    } else if (end && p.port && *end < *p.port) {
        fail(end_path, where, fmt::format("endPort {} is below port {}", *end, *p.port));
    } else if (end) {
        p.end_port = uint16_t(*end);
    }
}

}  // namespace twill::config::detail
