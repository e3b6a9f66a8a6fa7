#include "dataplane/policy/policy_table.h"

#include <algorithm>
#include <bit>
#include <map>
#include <set>
#include <unordered_map>

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
    // Distinct range lists, then distinct rows (a slot's list per class, the any-class
    // list filling classes it does not name): profiles.
    std::map<std::vector<uint64_t>, uint32_t> list_ids;
    t->lists_.push_back({{}, 0, 0});
    auto list_id = [&](const std::vector<policy_range>& all) {
        // A range inside an earlier one never answers first (the scan stops at the first
        // match): left out, lists are shorter and more of them alike.
        std::vector<policy_range> ranges;
        for (const policy_range& r : all) {
            const bool shadowed = std::any_of(ranges.begin(), ranges.end(), [&](const policy_range& q) {
                return (q.proto == policy_any_proto || q.proto == r.proto) && q.lo <= r.lo && r.hi <= q.hi;
            });
            if (!shadowed) {
                ranges.push_back(r);
            }
        }
        std::vector<uint64_t> key;
        key.reserve(ranges.size());
        for (const policy_range& r : ranges) {
            key.push_back(uint64_t(r.proto) << 32 | uint64_t(r.lo) << 16 | r.hi);
            key.push_back(r.rule);
        }
        auto [it, fresh] = list_ids.emplace(std::move(key), uint32_t(t->lists_.size()));
        if (fresh) {
            list l{{}, uint32_t(t->ranges_.size()), uint32_t(ranges.size())};
            for (size_t i = 0; i < ranges.size(); ++i) {
                const range r{ranges[i].lo, ranges[i].hi, ranges[i].rule << 8 | ranges[i].proto};
                if (i == 0) {
                    l.head = r;
                } else {
                    t->ranges_.push_back(r);
                }
            }
            t->lists_.push_back(l);
        }
        return it->second;
    };
    const uint32_t classes = std::max<uint32_t>(spec.classes, 1);
    // What the workers index by must stay inside the tables.
    if (t->infos_.size() >= (1u << 24)) {
        error = "policy: more address infos than the LPM's next hops hold";
        return nullptr;
    }
    for (const policy_address& i : t->infos_) {
        if (i.peer_class >= classes || i.ingress_slot >= spec.slots || i.egress_slot >= spec.slots) {
            error = "policy: an address info outside the compiled classes or slots";
            return nullptr;
        }
    }
    if (spec.rules > max_rules) {
        error = fmt::format("policy: {} rules is more than this build's tables take ({})", spec.rules,
                            max_rules);
        return nullptr;
    }
    for (const auto& [k, ranges] : spec.allow) {
        for (const policy_range& r : ranges) {
            if (r.rule >= spec.rules) {
                error = "policy: a range of a rule that is not compiled";
                return nullptr;
            }
        }
    }
    if (uint64_t(spec.slots) * classes > (uint64_t(1) << 26)) {
        error = fmt::format("policy: {} isolated pod directions x {} address classes is more than "
                            "this build's matrix takes", spec.slots - 1, classes);
        return nullptr;
    }
    t->stride_ = classes;
    std::vector<std::vector<uint32_t>> rows(spec.slots);  // slot -> list per class
    for (const auto& [k, ranges] : spec.allow) {
        const auto [slot, cls] = k;
        if (slot == 0 || slot >= spec.slots || (cls != policy_any_class && cls >= classes)) {
            error = "policy: an allow list outside the compiled slots or classes";
            return nullptr;
        }
        std::vector<uint32_t>& row = rows[slot];
        if (row.empty()) {
            row.assign(size_t(classes) + 1, ~uint32_t(0));  // last: any class
        }
        row[cls == policy_any_class ? classes : cls] = list_id(ranges);
    }
    std::map<std::vector<uint32_t>, uint32_t> profile_ids;
    t->slot_profile_.assign(spec.slots, 0);
    t->matrix_.assign(classes, 0);  // profile 0: every list empty
    for (uint32_t slot = 1; slot < spec.slots; ++slot) {
        std::vector<uint32_t>& row = rows[slot];
        if (row.empty()) {
            continue;  // isolated, nothing allowed: profile 0
        }
        const uint32_t any = row[classes] == ~uint32_t(0) ? 0 : row[classes];
        row.pop_back();
        for (uint32_t& cell : row) {
            cell = cell == ~uint32_t(0) ? any : cell;
        }
        auto [it, fresh] = profile_ids.emplace(row, uint32_t(t->matrix_.size() / classes));
        if (fresh) {
            t->matrix_.insert(t->matrix_.end(), row.begin(), row.end());
        }
        t->slot_profile_[slot] = it->second;
    }
    // Classes whose columns are alike in every profile (their differences do not change
    // a verdict here, shadowed ranges left out) share one column. Columns are numbered in
    // order of first sight, so a cell only ever moves down: compacted in place.
    const size_t profiles = t->matrix_.size() / classes;
    auto cell = [&](size_t p, uint32_t c) { return t->matrix_[p * classes + c]; };
    std::unordered_map<uint64_t, std::vector<uint32_t>> by_hash;  // -> first class of each column
    std::vector<uint32_t> column_of(classes);
    size_t columns = 0;
    for (uint32_t c = 0; c < classes; ++c) {
        uint64_t h = 0xcbf29ce484222325ull;
        for (size_t p = 0; p < profiles; ++p) {
            h = (h ^ cell(p, c)) * 0x100000001b3ull;
        }
        std::vector<uint32_t>& seen = by_hash[h];
        auto same = std::find_if(seen.begin(), seen.end(), [&](uint32_t o) {
            for (size_t p = 0; p < profiles; ++p) {
                if (cell(p, o) != cell(p, c)) {
                    return false;
                }
            }
            return true;
        });
        if (same != seen.end()) {
            column_of[c] = column_of[*same];
        } else {
            seen.push_back(c);
            column_of[c] = uint32_t(columns++);
        }
    }
    for (size_t p = 0; p < profiles; ++p) {
        for (uint32_t c = 0; c < classes; ++c) {
            t->matrix_[p * columns + column_of[c]] = t->matrix_[p * classes + c];
        }
    }
    t->matrix_.resize(profiles * columns);
    t->matrix_.shrink_to_fit();
    t->stride_ = columns;
    for (policy_address& i : t->infos_) {
        i.peer_class = column_of[i.peer_class];
    }
    for (policy_address& i : t->infos_) {
        i.ingress_row = t->row(i.ingress_slot);
        i.egress_row = t->row(i.egress_slot);
    }
    if (t->lists_.size() <= 0x10000) {
        t->narrow_ = true;
        t->matrix16_.assign(t->matrix_.begin(), t->matrix_.end());
        t->matrix_.clear();
        t->matrix_.shrink_to_fit();
    }
    t->workers_ = std::max<uint32_t>(spec.workers, 1);
    auto stride = [](uint32_t n) { return (std::max<uint32_t>(n, 1) + 7) & ~7u; };
    t->rules_stride_ = stride(spec.rules);
    t->slots_stride_ = stride(spec.slots);
    t->rule_hits_.reset(new std::atomic<uint64_t>[size_t(t->workers_) * t->rules_stride_]());
    t->slot_denied_.reset(new std::atomic<uint64_t>[size_t(t->workers_) * t->slots_stride_]());
    t->slot_cut_.reset(new std::atomic<uint64_t>[size_t(t->workers_) * t->slots_stride_]());
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
