// NetworkPolicy compiler, step 2: address classes, and the prefixes that give each address
// its class and slots (see policy_compiler.h for the steps).
#include <algorithm>
#include <iterator>

#include "control/policy_compiler.h"

namespace twill::policy::detail {
namespace {

uint64_t prefix_key(ip4_addr a, uint8_t len) {
    const ip4_prefix p{a, len};
    return uint64_t(a.value & p.mask()) << 8 | len;
}

}  // namespace

prefix_terms& compiler::add_prefix(ip4_prefix p) {
    p.addr.value &= p.mask();
    auto [it, added] = prefix_index_.try_emplace(prefix_key(p.addr, p.len), 0);
    if (added) {
        it->second = uint32_t(prefix_terms_.size());
        prefix_terms_.emplace_back();
        prefix_list_.push_back(p);
    }
    return prefix_terms_[it->second];
}

// The ipBlock terms an address block lies in: its collected ancestors' cidr terms less
// their except terms.
ids compiler::block_terms(const ip4_prefix& p) const {
    ids in, out;
    for (int len = 0; len <= p.len; ++len) {
        auto it = prefix_index_.find(prefix_key(p.addr, uint8_t(len)));
        if (it != prefix_index_.end()) {
            const auto& pt = prefix_terms_[it->second];
            in.insert(in.end(), pt.cidr_of.begin(), pt.cidr_of.end());
            out.insert(out.end(), pt.except_of.begin(), pt.except_of.end());
        }
    }
    std::sort(in.begin(), in.end());
    std::sort(out.begin(), out.end());
    ids result;
    std::set_difference(in.begin(), in.end(), out.begin(), out.end(), std::back_inserter(result));
    return result;
}

uint32_t compiler::intern_class(ids key, const ids* ports) {
    if (key.empty()) {
        return 0;
    }
    auto [it, added] = class_ids_.try_emplace(std::move(key), out_.classes);
    if (!added) {
        return it->second;
    }
    const uint32_t c = out_.classes++;
    class_keys_.push_back(&it->first);
    class_ports_.emplace_back();
    if (ports) {
        class_ports_.back() = *ports;
        for (size_t i = 0; i < ports->size(); i += 2) {
            classes_with_name_[(*ports)[i]].push_back({c, (*ports)[i + 1]});
        }
    }
    return c;
}

uint32_t compiler::intern_info(const address_info& a) {
    auto [it, added] = info_ids_.try_emplace(
        std::tuple(a.peer_class, a.ingress_slot, a.egress_slot), uint32_t(out_.infos.size()));
    if (added) {
        out_.infos.push_back(a);
    }
    return it->second;
}

void compiler::assign_classes() {
    std::vector<ids> pod_terms(pod_order_.size());
    for (uint32_t t = 0; t < terms_.size(); ++t) {
        for (uint32_t pos : terms_[t].pods) {
            pod_terms[pos].push_back(t);
        }
    }
    classes_with_name_.resize(name_list_[egress].size());
    class_keys_.push_back(nullptr);  // class 0: the empty key
    class_ports_.emplace_back();
    intern_info({0, 0, 0});

    // Address blocks in (address, length) order, a pod's /32 replacing an equal prefix.
    std::map<ip4_prefix, int64_t> blocks;  // -> pod position, or -1
    for (const auto& p : prefix_list_) {
        blocks.emplace(p, -1);
    }
    for (uint32_t pos = 0; pos < pod_order_.size(); ++pos) {
        auto [it, added] = blocks.try_emplace(ip4_prefix{pod(pos).ip, 32}, pos);
        if (!added && it->second < 0) {
            it->second = pos;
        }
    }
    std::vector<std::pair<ip4_prefix, uint32_t>> infos;
    infos.reserve(blocks.size());
    for (const auto& [prefix, who] : blocks) {
        ids key = block_terms(prefix);
        address_info info;
        if (who >= 0) {
            const auto pos = uint32_t(who);
            ids merged;
            std::merge(key.begin(), key.end(), pod_terms[pos].begin(), pod_terms[pos].end(),
                       std::back_inserter(merged));
            ids ports;
            for (uint32_t n = 0; n < name_list_[egress].size(); ++n) {
                if (auto v = resolve(pod(pos), name_list_[egress][n])) {
                    ports.push_back(n);
                    ports.push_back(*v);
                }
            }
            if (!ports.empty()) {
                merged.push_back(key_separator);
                merged.insert(merged.end(), ports.begin(), ports.end());
            }
            info = {intern_class(std::move(merged), &ports), pod_slot_[pos][ingress],
                    pod_slot_[pos][egress]};
        } else {
            info.peer_class = intern_class(std::move(key), nullptr);
        }
        infos.push_back({prefix, intern_info(info)});
    }

    term_classes_.resize(terms_.size());
    for (uint32_t c = 1; c < out_.classes; ++c) {
        for (uint32_t t : *class_keys_[c]) {
            if (t == key_separator) {
                break;
            }
            term_classes_[t].push_back(c);
        }
    }
    emit_prefixes(infos);
}

// infos is in (address, length) order, a pre-order walk of the prefix tree: a prefix
// that says what its nearest listed ancestor says is left out, as LPM answers the same.
void compiler::emit_prefixes(const std::vector<std::pair<ip4_prefix, uint32_t>>& infos) {
    std::vector<std::pair<ip4_prefix, uint32_t>> stack;
    for (const auto& [p, info] : infos) {
        while (!stack.empty() && !stack.back().first.contains(p)) {
            stack.pop_back();
        }
        const uint32_t inherited = stack.empty() ? 0 : stack.back().second;
        if (info != inherited) {
            out_.prefixes.push_back({p, info});
        }
        stack.push_back({p, info});
    }
}

}  // namespace twill::policy::detail
