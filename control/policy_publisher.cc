#include "control/policy_publisher.h"

namespace twill {

bool policy_publisher::prepare(const desired_state& d, const object_change* change,
                               std::string& error) {
    std::map<std::string, config::namespace_def> ns_after = d.namespaces();
    std::map<pod_key, config::pod> pods_after = d.pods();
    std::map<pod_key, config::network_policy> pols_after = d.network_policies();
    bool cut = d.settings().cut_denied_connections;
    if (change != nullptr) {
        for (const std::string& n : change->delete_namespaces) {
            ns_after.erase(n);
        }
        for (const config::namespace_def& n : change->namespaces) {
            ns_after[n.name] = n;
        }
        for (const pod_key& k : change->delete_pods) {
            pods_after.erase(k);
        }
        for (const config::pod& p : change->pods) {
            pods_after[pod_key(p.ns, p.name)] = p;
        }
        for (const pod_key& k : change->delete_network_policies) {
            pols_after.erase(k);
        }
        for (const config::network_policy& p : change->network_policies) {
            pols_after[pod_key(p.ns, p.name)] = p;
        }
        if (change->cut_denied_connections) {
            cut = *change->cut_denied_connections;
        }
    }
    std::vector<config::namespace_def> namespaces;
    for (auto& [name, n] : ns_after) {
        namespaces.push_back(std::move(n));
    }
    std::vector<config::pod> pods;
    for (auto& [key, p] : pods_after) {
        pods.push_back(std::move(p));
    }
    std::vector<config::network_policy> policies;
    for (auto& [key, p] : pols_after) {
        policies.push_back(std::move(p));
    }
    const auto start = std::chrono::steady_clock::now();
    policy::compiled c = policy::compile(namespaces, pods, policies);
    compile_ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    ++compiles_;

    next_.reset();
    if (current_ != nullptr && c == compiled_ && cut == current_->cut_established()) {
        return true;  // the same tables (and policies, named in the slots)
    }
    std::set<pod_key> enforced = enforced_policies(c);
    policy_spec spec = make_policy_spec(c, cut);
    spec.workers = workers_;
    std::unique_ptr<policy_table> t = policy_table::build(spec, gen_ + 1, error);
    if (t == nullptr) {
        return false;
    }
    ++gen_;
    next_ = std::move(t);
    next_compiled_ = std::move(c);
    next_enforced_ = std::move(enforced);
    return true;
}

std::set<pod_key> enforced_policies(const policy::compiled& c) {
    std::set<pod_key> out;
    for (size_t s = 1; s < c.slots.size(); ++s) {
        for (const std::string& name : c.slots[s].policies) {
            out.emplace(c.slots[s].ns, name);
        }
    }
    return out;
}

policy_spec make_policy_spec(const policy::compiled& c, bool cut_established) {
    policy_spec spec;
    spec.cut_established = cut_established;
    spec.infos.reserve(c.infos.size());
    for (const policy::address_info& i : c.infos) {
        spec.infos.push_back({i.peer_class, i.ingress_slot, i.egress_slot});
    }
    spec.prefixes = c.prefixes;
    spec.allow.reserve(c.allow.size());
    for (const auto& [k, ranges] : c.allow) {
        std::vector<policy_range> out;
        out.reserve(ranges.size());
        for (const policy::port_range& r : ranges) {
            out.push_back({r.proto, r.lo, r.hi, r.rule});
        }
        spec.allow.emplace_back(k, std::move(out));
    }
    spec.rules = uint32_t(c.rules.size());
    spec.slots = uint32_t(std::max<size_t>(c.slots.size(), 1));
    spec.classes = c.classes;
    return spec;
}

void policy_publisher::publish(table_set& tables) {
    if (next_ == nullptr) {
        return;
    }
    tables.policy.store(next_.get(), std::memory_order_release);
    if (current_ != nullptr) {
        // Two changes within one grace period cannot happen: node_state waits after each.
        retiring_ = std::move(current_);
        retiring_compiled_ = std::move(compiled_);
    }
    current_ = std::move(next_);
    compiled_ = std::move(next_compiled_);
    enforced_ = std::move(next_enforced_);
}

void policy_publisher::after_grace() {
    if (retiring_ != nullptr) {
        fold(*retiring_, retiring_compiled_, hits_, pods_);
        retiring_.reset();
        retiring_compiled_ = {};
    }
}

void policy_publisher::fold(const policy_table& t, const policy::compiled& c,
                            std::map<rule_key, uint64_t>& hits,
                            std::map<pod_dir_key, pod_totals>& pods) const {
    for (uint32_t r = 0; r < c.rules.size() && r < t.rules(); ++r) {
        if (const uint64_t n = t.rule_hits(r)) {
            const policy::rule_ref& ref = c.rules[r];
            hits[{ref.ns, ref.policy, ref.egress, ref.index}] += n;
        }
    }
    for (uint32_t s = 1; s < c.slots.size() && s < t.slots(); ++s) {
        const uint64_t denied = t.slot_denied(s), cut = t.slot_cut(s);
        if (denied != 0 || cut != 0) {
            pod_totals& p = pods[{c.slots[s].ns, c.slots[s].pod, c.slots[s].egress}];
            p.denied += denied;
            p.cut += cut;
        }
    }
}

std::map<policy_publisher::rule_key, uint64_t> policy_publisher::rule_hits() const {
    std::map<rule_key, uint64_t> hits = hits_;
    std::map<pod_dir_key, pod_totals> unused;
    if (current_ != nullptr) {
        fold(*current_, compiled_, hits, unused);
    }
    return hits;
}

std::map<policy_publisher::pod_dir_key, policy_publisher::pod_totals> policy_publisher::pod_counts() const {
    std::map<rule_key, uint64_t> unused;
    std::map<pod_dir_key, pod_totals> pods = pods_;
    if (current_ != nullptr) {
        fold(*current_, compiled_, unused, pods);
    }
    return pods;
}

}  // namespace twill
