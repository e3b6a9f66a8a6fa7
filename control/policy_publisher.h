// NetworkPolicy on the control thread: compiles the desired namespaces, pods and policies
// (control/policy_compile.h) into a new policy_table and publishes it; after the grace
// period the replaced table's counters are added to running totals (by policy, rule and
// pod, which outlive table versions) and the table is freed.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "control/desired.h"
#include "control/policy_compile.h"
#include "dataplane/policy/policy_table.h"
#include "dataplane/tables/tables.h"

namespace twill {

// The table's input from the compiled form.
policy_spec make_policy_spec(const policy::compiled& c, bool cut_established);
// The policies a compiled form enforces (those that isolate a local pod), by (namespace, name).
std::set<pod_key> enforced_policies(const policy::compiled& c);

class policy_publisher {
public:
    // `workers`: the tables keep a set of counters for each.
    explicit policy_publisher(uint32_t workers = 1) : workers_(workers) {}

    // Compiles and builds the table for `d` as `change` (if any) would leave it, before
    // anything is published, so that a failure refuses the change whole; when it compiles
    // to what is in force, nothing is built and the version stays (connections are not
    // judged again). False and `error` when the table cannot be built (DPDK memory).
    bool prepare(const desired_state& d, const object_change* change, std::string& error);
    // Publishes what prepare() made.
    void publish(table_set& tables);
    bool pending() const { return retiring_ != nullptr; }
    // After the grace period: the replaced table's counters into the totals; freed.
    void after_grace();

    const policy::compiled& compiled() const { return compiled_; }
    // The policies the current table compiles: those that select a local pod.
    const std::set<pod_key>& enforced() const { return enforced_; }
    const policy_table* table() const { return current_.get(); }
    double compile_ms() const { return compile_ms_; }
    uint64_t compiles() const { return compiles_; }  // changes that needed a compile, and the first
    uint32_t gen() const { return gen_; }

    struct rule_key {
        std::string ns, policy;
        bool egress;
        uint32_t index;
        auto operator<=>(const rule_key&) const = default;
    };
    struct pod_dir_key {
        std::string ns, pod;
        bool egress;
        auto operator<=>(const pod_dir_key&) const = default;
    };
    struct pod_totals {
        uint64_t denied = 0;
        uint64_t cut = 0;
    };
    // Totals so far, the current table's counters included.
    std::map<rule_key, uint64_t> rule_hits() const;
    std::map<pod_dir_key, pod_totals> pod_counts() const;

private:
    uint32_t workers_ = 1;
    void fold(const policy_table& t, const policy::compiled& c, std::map<rule_key, uint64_t>& hits,
              std::map<pod_dir_key, pod_totals>& pods) const;

    uint32_t gen_ = 0;
    policy::compiled compiled_;
    std::unique_ptr<const policy_table> current_;
    std::set<pod_key> enforced_;
    policy::compiled next_compiled_;
    std::set<pod_key> next_enforced_;
    std::unique_ptr<const policy_table> next_;
    policy::compiled retiring_compiled_;
    std::unique_ptr<const policy_table> retiring_;
    double compile_ms_ = 0;
    uint64_t compiles_ = 0;
    std::map<rule_key, uint64_t> hits_;
    std::map<pod_dir_key, pod_totals> pods_;
};

}  // namespace twill
