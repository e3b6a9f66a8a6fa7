// NetworkPolicy compiler, step 1: inputs in a stable order, rules and their peer terms,
// slots (see policy_compiler.h for the steps).
#include <algorithm>
#include <string>

#include "control/policy_compiler.h"

namespace twill::policy {
namespace detail {
namespace {

// A canonical text of a selector, so equal selectors written differently share a term.
void append_selector(std::string& out, const config::label_selector& s) {
    for (const auto& [k, v] : s.match_labels) {
        out.append(k).append(1, '\x1f').append(v).append(1, '\x1e');
    }
    out += '\x1d';
    std::vector<std::string> exprs;
    for (const auto& r : s.match_expressions) {
        std::string e = r.key + '\x1f' + char('0' + int(r.oper));
        auto values = r.values;
        std::sort(values.begin(), values.end());
        values.erase(std::unique(values.begin(), values.end()), values.end());
        for (const auto& v : values) {
            e.append(1, '\x1f').append(v);
        }
        exprs.push_back(std::move(e));
    }
    std::sort(exprs.begin(), exprs.end());
    for (const auto& e : exprs) {
        out.append(e).append(1, '\x1e');
    }
}

}  // namespace

std::optional<uint16_t> resolve(const config::pod& p, const named_port& n) {
    for (const auto& cp : p.container_ports) {
        if (cp.name == n.first && cp.protocol == n.second) {
            return cp.port;
        }
    }
    return std::nullopt;
}

compiled compiler::run() {
    sort_inputs();
    add_rules();
    assign_slots();
    assign_classes();
    build_allow();
    return std::move(out_);
}

void compiler::sort_inputs() {
    pod_order_.resize(pods_.size());
    for (uint32_t i = 0; i < pod_order_.size(); ++i) {
        pod_order_[i] = i;
    }
    std::stable_sort(pod_order_.begin(), pod_order_.end(), [&](uint32_t a, uint32_t b) {
        return std::tie(pods_[a].ns, pods_[a].name) < std::tie(pods_[b].ns, pods_[b].name);
    });
    for (uint32_t pos = 0; pos < pod_order_.size(); ++pos) {
        pods_by_ns_[pod(pos).ns].push_back(pos);
    }
    policy_order_.resize(policies_.size());
    for (uint32_t i = 0; i < policy_order_.size(); ++i) {
        policy_order_[i] = i;
    }
    std::stable_sort(policy_order_.begin(), policy_order_.end(), [&](uint32_t a, uint32_t b) {
        return std::tie(policies_[a].ns, policies_[a].name) <
               std::tie(policies_[b].ns, policies_[b].name);
    });
    // A policy that selects no local pod is enforced at other nodes: it changes no verdict
    // here, and leaving it out keeps its peers from splitting classes.
    std::erase_if(policy_order_, [&](uint32_t i) {
        const auto& pol = policies_[i];
        if (!pol.ingress && !pol.egress) {
            return true;
        }
        for (uint32_t pos : pods_in(pol.ns)) {
            if (!pod(pos).port.empty() && selects(pol.pod_selector, pod(pos).labels)) {
                return false;
            }
        }
        return true;
    });
}

const ids& compiler::pods_in(const std::string& ns) const {
    static const ids none;
    auto it = pods_by_ns_.find(ns);
    return it == pods_by_ns_.end() ? none : it->second;
}

// Rule ids in policy order (ns, name), ingress rules before egress rules.
void compiler::add_rules() {
    policy_rules_.resize(policies_.size());
    for (uint32_t pi = 0; pi < policy_order_.size(); ++pi) {
        const auto& pol = policies_[policy_order_[pi]];
        for (int dir : {ingress, egress}) {
            if (!(dir == ingress ? pol.ingress : pol.egress)) {
                continue;
            }
            const auto& list = dir == ingress ? pol.ingress_rules : pol.egress_rules;
            for (uint32_t i = 0; i < list.size(); ++i) {
                policy_rules_[pi][dir].push_back(uint32_t(out_.rules.size()));
                out_.rules.push_back({pol.ns, pol.name, dir == egress, i});
                rules_.push_back(make_rule(pol, list[i], dir));
            }
        }
    }
}

rule_info compiler::make_rule(const config::network_policy& pol, const config::policy_rule& r,
                              int dir) {
    const auto id = uint32_t(rules_.size());
    rule_info ri;
    ri.any_peer = r.peers.empty();
    for (const auto& peer : r.peers) {
        if (auto t = term_for(pol, peer)) {
            ri.terms.push_back(*t);
        }
    }
    std::sort(ri.terms.begin(), ri.terms.end());
    ri.terms.erase(std::unique(ri.terms.begin(), ri.terms.end()), ri.terms.end());
    if (r.ports.empty()) {
        ri.ranges.push_back({any_proto, 0, 65535, id});
    }
    for (const auto& p : r.ports) {
        if (!p.name.empty()) {
            auto [it, added] =
                names_[dir].try_emplace({p.name, p.protocol}, uint32_t(names_[dir].size()));
            if (added) {
                name_list_[dir].push_back(it->first);
            }
            ri.named.push_back(it->second);
        } else if (p.port) {
            ri.ranges.push_back({p.protocol, *p.port, p.end_port.value_or(*p.port), id});
        } else {
            ri.ranges.push_back({p.protocol, 0, 65535, id});
        }
    }
    return ri;
}

// The peer's term, made on first sight; none for a peer with no field (which the API
// server refuses), matching nothing.
std::optional<uint32_t> compiler::term_for(const config::network_policy& pol,
                                           const config::policy_peer& peer) {
    std::string key;
    if (peer.block) {
        key = "B" + std::to_string(peer.block->cidr.addr.value) + "/" +
              std::to_string(peer.block->cidr.len);
        auto except = peer.block->except;
        std::sort(except.begin(), except.end());
        for (const auto& e : except) {
            key += "," + std::to_string(e.addr.value) + "/" + std::to_string(e.len);
        }
    } else if (peer.namespace_selector) {
        key = "N";
        append_selector(key, *peer.namespace_selector);
        key += '\x1c';
        if (peer.pod_selector) {  // an empty podSelector is the same as none
            append_selector(key, *peer.pod_selector);
        }
    } else if (peer.pod_selector) {
        key = "P" + pol.ns + '\x1c';
        append_selector(key, *peer.pod_selector);
    } else {
        return std::nullopt;
    }
    auto [it, added] = term_ids_.try_emplace(std::move(key), uint32_t(terms_.size()));
    if (!added) {
        return it->second;
    }
    const uint32_t t = it->second;
    term tm;
    if (peer.block) {
        tm.block = peer.block;
        add_prefix(peer.block->cidr).cidr_of.push_back(t);
        for (const auto& e : peer.block->except) {
            add_prefix(e).except_of.push_back(t);
        }
    } else if (peer.namespace_selector) {
        for (const auto& [ns, labels] : ns_labels_) {
            if (!selects(*peer.namespace_selector, labels)) {
                continue;
            }
            for (uint32_t pos : pods_in(ns)) {
                if (!peer.pod_selector || selects(*peer.pod_selector, pod(pos).labels)) {
                    tm.pods.push_back(pos);
                }
            }
        }
    } else {
        for (uint32_t pos : pods_in(pol.ns)) {
            if (selects(*peer.pod_selector, pod(pos).labels)) {
                tm.pods.push_back(pos);
            }
        }
    }
    terms_.push_back(std::move(tm));
    return t;
}

void compiler::assign_slots() {
    std::vector<ids> isolating[2];
    isolating[ingress].resize(pod_order_.size());
    isolating[egress].resize(pod_order_.size());
    for (uint32_t pi = 0; pi < policy_order_.size(); ++pi) {
        const auto& pol = policies_[policy_order_[pi]];
        if (!pol.ingress && !pol.egress) {
            continue;
        }
        for (uint32_t pos : pods_in(pol.ns)) {
            if (pod(pos).port.empty() || !selects(pol.pod_selector, pod(pos).labels)) {
                continue;
            }
            if (pol.ingress) {
                isolating[ingress][pos].push_back(pi);
            }
            if (pol.egress) {
                isolating[egress][pos].push_back(pi);
            }
        }
    }
    out_.slots.resize(1);
    pod_slot_.assign(pod_order_.size(), {0, 0});
    for (uint32_t pos = 0; pos < pod_order_.size(); ++pos) {
        for (int dir : {ingress, egress}) {
            if (isolating[dir][pos].empty()) {
                continue;
            }
            pod_slot_[pos][dir] = uint32_t(out_.slots.size());
            slot_ref s{pod(pos).ns, pod(pos).name, dir == egress, {}};
            for (uint32_t pi : isolating[dir][pos]) {
                s.policies.push_back(policies_[policy_order_[pi]].name);
            }
            out_.slots.push_back(std::move(s));
            slot_pos_.push_back(pos);
            slot_policies_.push_back(std::move(isolating[dir][pos]));
        }
    }
}

}  // namespace detail

compiled compile(const std::vector<config::namespace_def>& namespaces,
                 const std::vector<config::pod>& pods,
                 const std::vector<config::network_policy>& policies) {
    return detail::compiler(namespaces, pods, policies).run();
}

}  // namespace twill::policy
