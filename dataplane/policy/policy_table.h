// NetworkPolicy as the workers read it: one immutable table per policy version, built by
// the control thread from the compiled policy (control/policy_compile.h) and published
// through RCU like the pod table. A check is two lookups whatever the number of
// policies: the address's info (an LPM over pod /32s and ipBlock prefixes: its peer
// class and, for a local pod, its isolation slots), then the allow list of (slot, peer
// class). Slots whose allow lists are all alike (pods that the same policies select, with
// the same named ports) share a profile, and a dense matrix (profile, class) -> list keeps
// the lookup one load in a table that stays small as rules grow.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/net/addr.h"

struct rte_lpm;

namespace twill {

struct policy_address {
    uint32_t peer_class = 0;  // as compiled; in the table's info(), the class's matrix column
    uint32_t ingress_slot = 0;  // 0: not isolated for ingress (or not a local pod)
    uint32_t egress_slot = 0;
    // Set by the table: where the slots' profiles start in its matrix (one load fewer per
    // check).
    uint32_t ingress_row = 0;
    uint32_t egress_row = 0;
};

inline constexpr uint32_t policy_any_class = 0xffffffffu;
inline constexpr uint8_t policy_any_proto = 0;

struct policy_range {
    uint8_t proto = policy_any_proto;
    uint16_t lo = 0;
    uint16_t hi = 65535;
    uint32_t rule = 0;
};

// What the table is built from (control/policy_publisher.cc fills it from the compiled form).
struct policy_spec {
    std::vector<policy_address> infos;  // [0]: addresses outside every prefix
    std::vector<std::pair<ip4_prefix, uint32_t>> prefixes;
    // (slot, class or policy_any_class) -> ranges; a class's list holds its slot's
    // any-class ranges too.
    std::vector<std::pair<std::pair<uint32_t, uint32_t>, std::vector<policy_range>>> allow;
    uint32_t rules = 0;
    uint32_t slots = 1;    // slot 0 included
    uint32_t classes = 1;  // peer classes, class 0 included
    bool cut_established = true;
    uint32_t workers = 1;  // counters are kept per worker
};

class policy_table {
public:
    static constexpr int32_t denied = -1;

    // Null and `error` set when DPDK cannot make the LPM (memory).
    static std::unique_ptr<policy_table> build(const policy_spec& spec, uint32_t gen,
                                               std::string& error);
    ~policy_table();
    policy_table(const policy_table&) = delete;
    policy_table& operator=(const policy_table&) = delete;

    // Whether any pod is isolated: otherwise the stage has nothing to check.
    bool isolating() const { return slots_ > 1; }
    uint32_t gen() const { return gen_; }
    bool cut_established() const { return cut_; }

    const policy_address& info(ip4_addr a) const;
    // The rule that lets `proto`/`port` (host order) through for `slot` and a peer whose
    // matrix column is `column` (info(peer).peer_class: classes that judge alike share a
    // column), or `denied`.
    int32_t allows(uint32_t slot, uint32_t column, uint8_t proto, uint16_t port) const {
        return allows_row(row(slot), column, proto, port);
    }
    // The same from the slot's row (policy_address::ingress_row, egress_row).
    int32_t allows_row(uint32_t row, uint32_t column, uint8_t proto, uint16_t port) const {
        const size_t cell = size_t(row) + column;
        const list& b = lists_[narrow_ ? matrix16_[cell] : matrix_[cell]];
        if (b.count == 0) {
            return denied;
        }
        if (b.head.covers(proto, port)) {
            return int32_t(b.head.proto_rule >> 8);
        }
        for (uint32_t i = b.first, end = b.first + b.count - 1; i < end; ++i) {
            if (ranges_[i].covers(proto, port)) {
                return int32_t(ranges_[i].proto_rule >> 8);
            }
        }
        return denied;
    }

    // Counters: one set per worker, each written by its worker alone (plain adds, no
    // shared cache line between workers), summed when the control thread reads them.
    void count_rule(uint32_t w, int32_t rule) const {
        bump(rule_hits_[w * rules_stride_ + uint32_t(rule)]);
    }
    void count_denied(uint32_t w, uint32_t slot) const { bump(slot_denied_[w * slots_stride_ + slot]); }
    void count_cut(uint32_t w, uint32_t slot) const { bump(slot_cut_[w * slots_stride_ + slot]); }
    uint64_t rule_hits(uint32_t rule) const { return sum(rule_hits_.get(), rules_stride_, rule); }
    uint64_t slot_denied(uint32_t slot) const { return sum(slot_denied_.get(), slots_stride_, slot); }
    uint64_t slot_cut(uint32_t slot) const { return sum(slot_cut_.get(), slots_stride_, slot); }
    uint32_t workers() const { return workers_; }
    uint32_t rules() const { return rules_; }
    uint32_t slots() const { return slots_; }

private:
    // A policy_range in 8 bytes: the rule (below 2^24) above the protocol.
    struct range {
        uint16_t lo, hi;
        uint32_t proto_rule;
        bool covers(uint8_t proto, uint16_t port) const {
            const auto p = uint8_t(proto_rule);
            return (p == policy_any_proto || p == proto) && lo <= port && port <= hi;
        }
    };
    // A list's first range is kept with it (most lists have one or two), the rest in
    // ranges_ from `first`.
    struct list {
        range head;
        uint32_t first;
        uint32_t count;
    };
    static constexpr uint32_t max_rules = 1u << 24;
    policy_table() = default;
    uint32_t row(uint32_t slot) const { return uint32_t(slot_profile_[slot] * stride_); }
    static void bump(std::atomic<uint64_t>& c) {
        c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    uint64_t sum(const std::atomic<uint64_t>* c, uint32_t stride, uint32_t i) const {
        uint64_t n = 0;
        for (uint32_t w = 0; w < workers_; ++w) {
            n += c[w * stride + i].load(std::memory_order_relaxed);
        }
        return n;
    }

    uint32_t gen_ = 0;
    bool cut_ = true;
    uint32_t workers_ = 1;
    // Each worker's set is a whole number of cache lines long: two workers share at most
    // the line where one set ends and the next begins.
    uint32_t rules_stride_ = 8;
    uint32_t slots_stride_ = 8;
    uint32_t rules_ = 0;
    uint32_t slots_ = 1;
    rte_lpm* lpm_ = nullptr;
    std::vector<policy_address> infos_;
    std::vector<uint32_t> slot_profile_;  // slot -> profile (0: no list at all)
    size_t stride_ = 1;                   // columns per profile row: classes alike share one
    std::vector<uint32_t> matrix_;        // profile * stride + class -> list (0: empty)
    // The same in 16 bits (half the cache footprint) when the lists fit, as they mostly do.
    bool narrow_ = false;
    std::vector<uint16_t> matrix16_;
    std::vector<list> lists_;             // distinct allow lists; [0] empty
    std::vector<range> ranges_;
public:
    uint32_t columns() const { return uint32_t(stride_); }
    bool wide_cells() const { return !narrow_; }  // 32-bit matrix cells (more than 65536 lists)
    uint32_t profiles() const { return uint32_t((narrow_ ? matrix16_.size() : matrix_.size()) / stride_); }
    uint32_t distinct_lists() const { return uint32_t(lists_.size() - 1); }
    size_t ranges() const { return ranges_.size() + lists_.size() - 1; }  // every list but [0] has a head
    std::unique_ptr<std::atomic<uint64_t>[]> rule_hits_;
    std::unique_ptr<std::atomic<uint64_t>[]> slot_denied_;
    std::unique_ptr<std::atomic<uint64_t>[]> slot_cut_;
};

}  // namespace twill
