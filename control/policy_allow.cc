// NetworkPolicy compiler, step 3: the allow lists, (slot, class) -> port ranges (see
// policy_compiler.h for the steps).
#include <algorithm>

#include "control/policy_compiler.h"

namespace twill::policy::detail {
namespace {

bool range_less(const port_range& a, const port_range& b) {
    return std::tie(a.proto, a.lo, a.hi, a.rule) < std::tie(b.proto, b.lo, b.hi, b.rule);
}

void sort_unique(std::vector<port_range>& v) {
    std::sort(v.begin(), v.end(), range_less);
    v.erase(std::unique(v.begin(), v.end()), v.end());
}

}  // namespace

const ids& compiler::classes_of(uint32_t r) {
    const auto& ri = rules_[r];
    if (ri.terms.size() == 1) {
        return term_classes_[ri.terms[0]];
    }
    auto [it, added] = rule_classes_.try_emplace(r);
    if (added) {
        for (uint32_t t : ri.terms) {
            it->second.insert(it->second.end(), term_classes_[t].begin(), term_classes_[t].end());
        }
        std::sort(it->second.begin(), it->second.end());
        it->second.erase(std::unique(it->second.begin(), it->second.end()), it->second.end());
    }
    return it->second;
}

std::optional<uint16_t> compiler::class_port(uint32_t c, uint32_t name) const {
    const ids& p = class_ports_[c];
    for (size_t i = 0; i < p.size(); i += 2) {
        if (p[i] == name) {
            return uint16_t(p[i + 1]);
        }
    }
    return std::nullopt;
}

// The entries of slots isolated in `dir` by `pols`; `ports` is the ingress pod's named
// ports resolved, as (name id, value) pairs.
entry_set compiler::allow_entries(int dir, const ids& pols, const ids& ports) {
    // Ranges per class gather in by_class_ (kept across calls with their capacity).
    by_class_.resize(out_.classes);
    ids touched;
    auto hit = [&](uint32_t c, const port_range& rg) {
        if (by_class_[c].empty()) {
            touched.push_back(c);
        }
        by_class_[c].push_back(rg);
    };
    std::vector<port_range> any;
    std::vector<port_range> ranges;
    for (uint32_t pi : pols) {
        for (uint32_t r : policy_rules_[pi][dir]) {
            const auto& ri = rules_[r];
            ranges = ri.ranges;
            if (dir == ingress) {
                for (uint32_t n : ri.named) {
                    for (size_t i = 0; i < ports.size(); i += 2) {
                        if (ports[i] == n) {
                            const auto v = uint16_t(ports[i + 1]);
                            ranges.push_back({name_list_[dir][n].second, v, v, r});
                        }
                    }
                }
            }
            if (ri.any_peer) {
                any.insert(any.end(), ranges.begin(), ranges.end());
                if (dir == egress) {  // every destination whose pod names the port
                    for (uint32_t n : ri.named) {
                        for (const auto& [c, v] : classes_with_name_[n]) {
                            const auto port = uint16_t(v);
                            hit(c, {name_list_[dir][n].second, port, port, r});
                        }
                    }
                }
                continue;
            }
            for (uint32_t c : classes_of(r)) {
                for (const auto& rg : ranges) {
                    hit(c, rg);
                }
                if (dir == egress) {
                    for (uint32_t n : ri.named) {
                        if (auto v = class_port(c, n)) {
                            hit(c, {name_list_[dir][n].second, *v, *v, r});
                        }
                    }
                }
            }
        }
    }
    sort_unique(any);
    std::sort(touched.begin(), touched.end());
    entry_set out;
    out.reserve(touched.size() + 1);
    for (uint32_t c : touched) {
        auto& v = by_class_[c];
        v.insert(v.end(), any.begin(), any.end());
        sort_unique(v);
        out.push_back({c, v});
        v.clear();
    }
    if (!any.empty()) {
        out.push_back({any_class, std::move(any)});
    }
    return out;
}

void compiler::build_allow() {
    std::unordered_map<ids, entry_set, ids_hash> memo;
    for (uint32_t s = 1; s < out_.slots.size(); ++s) {
        const int dir = out_.slots[s].egress ? egress : ingress;
        ids ports;
        if (dir == ingress) {
            for (uint32_t n = 0; n < name_list_[ingress].size(); ++n) {
                if (auto v = resolve(pod(slot_pos_[s - 1]), name_list_[ingress][n])) {
                    ports.push_back(n);
                    ports.push_back(*v);
                }
            }
        }
        ids sig{uint32_t(dir)};
        sig.insert(sig.end(), slot_policies_[s - 1].begin(), slot_policies_[s - 1].end());
        sig.push_back(key_separator);
        sig.insert(sig.end(), ports.begin(), ports.end());
        auto it = memo.find(sig);
        if (it == memo.end()) {
            it = memo.emplace(std::move(sig), allow_entries(dir, slot_policies_[s - 1], ports))
                     .first;
        }
        for (const auto& [c, v] : it->second) {
            out_.allow.emplace_hint(out_.allow.end(), std::pair(s, c), v);
        }
    }
}

}  // namespace twill::policy::detail
