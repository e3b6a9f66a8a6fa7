// The desired state's namespaces and NetworkPolicies: recorded by name, diffed for a
// reload, checked for `twillctl apply` (unique names within the request; each object's
// own rules were checked by the parser), and whether a change concerns policy at all.
#include <fmt/format.h>

#include "control/desired.h"
#include "control/policy_compile.h"
#include "control/policy_rules.h"
#include "control/service_rules.h"

namespace twill {

std::vector<pod_key> desired_state::pods_in(const std::string& ns) const {
    std::vector<pod_key> out;
    for (auto it = pods_.lower_bound(pod_key(ns, "")); it != pods_.end() && it->first.first == ns;
         ++it) {
        out.push_back(it->first);
    }
    return out;
}

bool desired_state::policy_touched(const object_change& c, const std::set<pod_key>& enforced) const {
    if (!c.namespaces.empty() || !c.delete_namespaces.empty() || c.cut_denied_connections) {
        return true;
    }
    auto selects_local_pod = [&](const config::network_policy& np) {
        if (!np.ingress && !np.egress) {
            return false;
        }
        for (auto it = local_.lower_bound(pod_key(np.ns, "")); it != local_.end() && it->first.first == np.ns;
             ++it) {
            if (policy::selects(np.pod_selector, it->second.labels)) {
                return true;
            }
        }
        for (const config::pod& p : c.pods) {
            if (p.ns == np.ns && !p.port.empty() && policy::selects(np.pod_selector, p.labels)) {
                return true;
            }
        }
        return false;
    };
    for (const config::network_policy& np : c.network_policies) {
        if (enforced.contains(pod_key(np.ns, np.name)) || selects_local_pod(np)) {
            return true;
        }
    }
    for (const pod_key& key : c.delete_network_policies) {
        if (enforced.contains(key)) {
            return true;
        }
    }
    // From here on no policy that selects a local pod changes: the tables compile the
    // enforced ones, as they stand.
    std::vector<const config::network_policy*> peers_of;
    for (const pod_key& key : enforced) {
        if (auto it = policies_.find(key); it != policies_.end()) {
            peers_of.push_back(&it->second);
        }
    }
    auto ns_labels = [&](const std::string& ns) {
        auto it = namespaces_.find(ns);
        return policy::namespace_labels(ns, it == namespaces_.end() ? nullptr : &it->second.labels);
    };
    // What a pod is to the compiled policies: which policies isolate it (a local pod), which
    // peers of the enforced policies select it, which of their egress named ports it
    // resolves and to what. Two versions of a pod with the same signature, address and
    // (when isolated) container ports compile alike.
    struct signature {
        std::vector<uint32_t> marks;
        bool isolated = false;
        bool empty() const { return marks.empty(); }
    };
    auto sign = [&](const config::pod& p) {
        signature sig;
        uint32_t k = 0;
        for (auto it = policies_.lower_bound(pod_key(p.ns, "")); it != policies_.end() && it->first.first == p.ns;
             ++it, ++k) {
            const config::network_policy& np = it->second;
            if (!p.port.empty() && (np.ingress || np.egress) && policy::selects(np.pod_selector, p.labels)) {
                sig.marks.push_back(k);
                sig.isolated = true;
            }
        }
        const config::label_map labels = ns_labels(p.ns);
        for (const config::network_policy* np : peers_of) {
            for (bool egress : {false, true}) {
                if (!(egress ? np->egress : np->ingress)) {
                    continue;
                }
                for (const config::policy_rule& r : egress ? np->egress_rules : np->ingress_rules) {
                    for (const config::policy_peer& peer : r.peers) {
                        const bool match =
                            peer.namespace_selector
                                ? policy::selects(*peer.namespace_selector, labels) &&
                                      (!peer.pod_selector || policy::selects(*peer.pod_selector, p.labels))
                                : !peer.block && peer.pod_selector && p.ns == np->ns &&
                                      policy::selects(*peer.pod_selector, p.labels);
                        if (match) {
                            sig.marks.push_back(k);
                        }
                        ++k;
                    }
                    // Egress named ports resolve against the destination pod.
                    for (const config::policy_port& port : r.ports) {
                        if (!egress || port.name.empty()) {
                            continue;
                        }
                        ++k;
                        for (const config::container_port& cp : p.container_ports) {
                            if (cp.name == port.name && cp.protocol == port.protocol) {
                                sig.marks.push_back(k);
                                sig.marks.push_back(cp.port);
                                break;
                            }
                        }
                    }
                }
            }
        }
        return sig;
    };
    for (const config::pod& p : c.pods) {
        const signature now = sign(p);
        auto it = pods_.find(pod_key(p.ns, p.name));
        if (it == pods_.end()) {
            if (!now.empty()) {
                return true;
            }
            continue;
        }
        const config::pod& was = it->second;
        const signature before = sign(was);
        if (before.empty() && now.empty()) {
            continue;  // its address alone, before and after
        }
        if (before.marks != now.marks || was.ip != p.ip ||
            (now.isolated && was.container_ports != p.container_ports)) {
            return true;
        }
    }
    for (const pod_key& key : c.delete_pods) {
        if (auto it = pods_.find(key); it != pods_.end() && !sign(it->second).empty()) {
            return true;
        }
    }
    return false;
}

void desired_state::record_policies(const object_change& c) {
    for (const std::string& name : c.delete_namespaces) {
        namespaces_.erase(name);
    }
    for (const pod_key& key : c.delete_network_policies) {
        policies_.erase(key);
    }
    for (const config::namespace_def& ns : c.namespaces) {
        namespaces_.insert_or_assign(ns.name, ns);
    }
    for (const config::network_policy& np : c.network_policies) {
        policies_.insert_or_assign(pod_key(np.ns, np.name), np);
    }
    if (c.cut_denied_connections) {
        settings_.cut_denied_connections = *c.cut_denied_connections;
    }
}

void desired_state::diff_policies(const config::node_file& next, object_change& c) const {
    std::set<std::string> names;
    for (const config::namespace_def& ns : next.namespaces) {
        names.insert(ns.name);
        auto it = namespaces_.find(ns.name);
        if (it == namespaces_.end() || !(it->second == ns)) {
            c.namespaces.push_back(ns);
        }
    }
    for (const auto& [name, ns] : namespaces_) {
        if (!names.contains(name)) {
            c.delete_namespaces.push_back(name);
        }
    }
    std::set<pod_key> keys;
    for (const config::network_policy& np : next.network_policies) {
        pod_key key(np.ns, np.name);
        keys.insert(key);
        auto it = policies_.find(key);
        if (it == policies_.end() || !(it->second == np)) {
            c.network_policies.push_back(np);
        }
    }
    for (const auto& [key, np] : policies_) {
        if (!keys.contains(key)) {
            c.delete_network_policies.push_back(key);
        }
    }
    if (next.cut_denied_connections != settings_.cut_denied_connections) {
        c.cut_denied_connections = next.cut_denied_connections;
    }
}

void desired_state::check_policies(const config::node_file& objects,
                                   const std::set<std::string>& skip,
                                   std::vector<config::error>& errors) const {
    const std::set<std::string> none;  // objects with errors of their own are skipped whole
    config::rule_errors r(objects, none, errors);
    std::map<std::string, std::string> names;  // name -> path
    for (size_t i = 0; i < objects.namespaces.size(); ++i) {
        const config::object_origin& o = objects.namespace_origins[i];
        if (skip.contains(o.path)) {
            continue;
        }
        const std::string path = config::namespace_field(o, "name");
        const std::string& name = objects.namespaces[i].name;
        if (auto [first, fresh] = names.try_emplace(name, path); !fresh) {
            r.fail(path, fmt::format("duplicate namespace '{}' (also {})", name, first->second));
        }
    }
    std::map<pod_key, std::string> policies;
    for (size_t i = 0; i < objects.network_policies.size(); ++i) {
        const config::object_origin& o = objects.policy_origins[i];
        if (skip.contains(o.path)) {
            continue;
        }
        const std::string path = config::policy_field(o, "name");
        const config::network_policy& np = objects.network_policies[i];
        if (auto [first, fresh] = policies.try_emplace(pod_key(np.ns, np.name), path); !fresh) {
            r.fail(path, fmt::format("duplicate NetworkPolicy {}/{} (also {})", np.ns, np.name,
                                     first->second));
        }
    }
}

}  // namespace twill
