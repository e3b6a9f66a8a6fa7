// The NetworkPolicy compiler's working state, shared by its steps' files; compile()
// (policy_compile.h) is the interface. Steps, in order:
//  1. policy_compile.cc: inputs sorted, rules and their peer terms (distinct peers) with the
//     pods each pod term selects, slots from the policies' pod selectors;
//  2. policy_classes.cc: classes, by hash-consing what each address matches (terms, and its
//     egress named ports resolved); ipBlock prefixes and pod /32s get one each;
//  3. policy_allow.cc: allow lists per distinct (direction, policies, ingress named ports
//     resolved) of a slot, computed once and copied to each slot that shares them.
// Sets are sorted vectors of ids, so no step costs pods x rules x classes.
#pragma once

#include <array>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "control/policy_compile.h"

namespace twill::policy::detail {

using ids = std::vector<uint32_t>;
using named_port = std::pair<std::string, uint8_t>;  // (name, protocol)

inline constexpr uint32_t key_separator = 0xffffffffu;  // terms | (named port, value) pairs
inline constexpr int ingress = 0;
inline constexpr int egress = 1;

struct ids_hash {
    size_t operator()(const ids& v) const {
        uint64_t h = 0xcbf29ce484222325ull;
        for (uint32_t x : v) {
            h = (h ^ x) * 0x100000001b3ull;
            h ^= h >> 29;
        }
        return size_t(h);
    }
};

std::optional<uint16_t> resolve(const config::pod& p, const named_port& n);

// One distinct peer: pods it selects, or an ipBlock.
struct term {
    std::optional<config::ip_block> block;
    ids pods;  // positions in the sorted pod list
};

struct rule_info {
    bool any_peer = false;
    ids terms;                       // sorted, distinct
    std::vector<port_range> ranges;  // numeric ports; every port when the rule lists none
    ids named;                       // named ports: ids into names_[direction]
};

struct prefix_terms {
    ids cidr_of;    // ipBlock terms whose cidr this prefix is
    ids except_of;  // ipBlock terms that except it
};

// A slot's allow entries: (class or any_class, ranges), by class.
using entry_set = std::vector<std::pair<uint32_t, std::vector<port_range>>>;

class compiler {
  public:
    compiler(const std::vector<config::namespace_def>& namespaces,
             const std::vector<config::pod>& pods,
             const std::vector<config::network_policy>& policies)
        : pods_(pods),
          policies_(policies),
          ns_labels_(namespace_labels(namespaces, pods, policies)) {}

    compiled run();

  private:
    const config::pod& pod(uint32_t pos) const { return pods_[pod_order_[pos]]; }
    const ids& pods_in(const std::string& ns) const;

    // policy_compile.cc
    void sort_inputs();
    void add_rules();
    rule_info make_rule(const config::network_policy& pol, const config::policy_rule& r, int dir);
    std::optional<uint32_t> term_for(const config::network_policy& pol,
                                     const config::policy_peer& peer);
    void assign_slots();

    // policy_classes.cc
    prefix_terms& add_prefix(ip4_prefix p);
    ids block_terms(const ip4_prefix& p) const;
    uint32_t intern_class(ids key, const ids* ports);
    uint32_t intern_info(const address_info& a);
    void assign_classes();
    void emit_prefixes(const std::vector<std::pair<ip4_prefix, uint32_t>>& infos);

    // policy_allow.cc
    const ids& classes_of(uint32_t r);
    std::optional<uint16_t> class_port(uint32_t c, uint32_t name) const;
    entry_set allow_entries(int dir, const ids& pols, const ids& ports);
    void build_allow();

    const std::vector<config::pod>& pods_;
    const std::vector<config::network_policy>& policies_;
    const std::map<std::string, config::label_map> ns_labels_;
    compiled out_;

    ids pod_order_;     // sorted position -> index in pods_
    ids policy_order_;  // sorted position -> index in policies_
    std::map<std::string, ids> pods_by_ns_;

    std::vector<rule_info> rules_;                  // by rule id
    std::vector<std::array<ids, 2>> policy_rules_;  // by policy position, direction
    std::map<named_port, uint32_t> names_[2];
    std::vector<named_port> name_list_[2];

    std::unordered_map<std::string, uint32_t> term_ids_;
    std::vector<term> terms_;
    std::unordered_map<uint64_t, uint32_t> prefix_index_;
    std::vector<prefix_terms> prefix_terms_;
    std::vector<ip4_prefix> prefix_list_;

    std::vector<std::array<uint32_t, 2>> pod_slot_;  // by pod position, direction
    ids slot_pos_;                                   // slot - 1 -> pod position
    std::vector<ids> slot_policies_;                 // slot - 1 -> policy positions

    std::unordered_map<ids, uint32_t, ids_hash> class_ids_;
    std::vector<const ids*> class_keys_;  // class -> its key (in class_ids_)
    std::vector<ids> class_ports_;        // class -> egress named ports (name id, value)
    std::vector<std::vector<std::pair<uint32_t, uint32_t>>> classes_with_name_;
    std::vector<ids> term_classes_;
    std::map<std::tuple<uint32_t, uint32_t, uint32_t>, uint32_t> info_ids_;

    std::unordered_map<uint32_t, ids> rule_classes_;
    std::vector<std::vector<port_range>> by_class_;  // allow_entries' scratch
};

}  // namespace twill::policy::detail
