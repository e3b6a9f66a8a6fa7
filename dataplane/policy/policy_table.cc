#include "dataplane/policy/policy_table.h"

#include <bit>
#include <set>

#include <fmt/format.h>
#include <rte_errno.h>
#include <rte_lpm.h>

namespace twill {

std::unique_ptr<policy_table> policy_table::build(const policy_spec& spec, uint32_t gen,
                                                  std::string& error) {
    std::unique_ptr<policy_table> t(new policy_table());
    t->gen_ = gen;
    t->cut_ = spec.cut_established;
    t->rules_ = spec.rules;
    t->slots_ = spec.slots;
    t->infos_ = spec.infos;
    if (t->infos_.empty()) {
        t->infos_.emplace_back();
    }
    // Prefixes longer than /24 take a tbl8 group per /24 they fall in.
    std::set<uint32_t> groups;
    for (const auto& [p, info] : spec.prefixes) {
        if (p.len > 24) {
            groups.insert(p.addr.value >> 8);
        }
    }
    static std::atomic<uint32_t> serial{0};
    const std::string name = fmt::format("twill_policy_{}", serial.fetch_add(1));
    rte_lpm_config cfg{};
    cfg.max_rules = uint32_t(spec.prefixes.size() + 2);
    cfg.number_tbl8s = uint32_t(groups.size() + 1);
    t->lpm_ = rte_lpm_create(name.c_str(), SOCKET_ID_ANY, &cfg);
    if (t->lpm_ == nullptr) {
        error = fmt::format("policy: cannot make an LPM of {} prefixes: {}", spec.prefixes.size(),
                            rte_strerror(rte_errno));
        return nullptr;
    }
    for (const auto& [p, info] : spec.prefixes) {
        if (p.len == 0) {  // rte_lpm takes depths 1..32: two halves
            if (rte_lpm_add(t->lpm_, 0, 1, info) != 0 || rte_lpm_add(t->lpm_, 0x80000000u, 1, info) != 0) {
                error = "policy: cannot add 0.0.0.0/0 to the LPM";
                return nullptr;
            }
            continue;
        }
        if (rte_lpm_add(t->lpm_, p.addr.value, p.len, info) != 0) {
            error = fmt::format("policy: cannot add a /{} prefix to the LPM", p.len);
            return nullptr;
        }
    }
    size_t n = 0;
    for (const auto& [k, ranges] : spec.allow) {
        n += ranges.size();
    }
    t->ranges_.reserve(n);
    const uint32_t size = std::bit_ceil(std::max<uint32_t>(16, uint32_t(spec.allow.size() * 2)));
    t->mask_ = size - 1;
    t->buckets_.assign(size, bucket{0, 0, 0});
    for (const auto& [k, ranges] : spec.allow) {
        const uint64_t key = policy_table::key(k.first, k.second);
        uint32_t i = hash(key) & t->mask_;
        while (t->buckets_[i].key != 0 && t->buckets_[i].key != key) {
            i = (i + 1) & t->mask_;
        }
        bucket& b = t->buckets_[i];
        if (b.key == 0) {
            b = bucket{key, uint32_t(t->ranges_.size()), 0};
        } else if (b.first + b.count != t->ranges_.size()) {
            error = "policy: an allow list given twice";
            return nullptr;
        }
        for (const policy_range& r : ranges) {
            t->ranges_.push_back(r);
            ++b.count;
        }
    }
    t->rule_hits_.reset(new std::atomic<uint64_t>[std::max<uint32_t>(spec.rules, 1)]());
    t->slot_denied_.reset(new std::atomic<uint64_t>[spec.slots]());
    t->slot_cut_.reset(new std::atomic<uint64_t>[spec.slots]());
    return t;
}

policy_table::~policy_table() {
    if (lpm_ != nullptr) {
        rte_lpm_free(lpm_);
    }
}

const policy_address& policy_table::info(ip4_addr a) const {
    uint32_t i;
    if (rte_lpm_lookup(lpm_, a.value, &i) != 0 || i >= infos_.size()) {
        return infos_[0];
    }
    return infos_[i];
}

}  // namespace twill
