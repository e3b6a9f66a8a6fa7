// The node's running state on the control thread: the desired state it was built from,
// the published tables, and the change path: validate, build, publish with one release
// store, wait for the workers' grace period (rte_rcu_qsbr), free the old table.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <rte_rcu_qsbr.h>

#include "control/config.h"
#include "dataplane/tables/tables.h"

namespace twill {

// Neighbour slots by next-hop address. Learned MACs live in the slots, so a node that
// stays keeps its resolved MAC across table swaps; a removed node's slot is reused only
// after the grace period, when no worker can still reach it through an old table.
class neighbour_slots {
public:
    uint32_t acquire(ip4_addr ip, learned_state& learned);
    void retain_only(const std::set<ip4_addr>& keep);
    size_t size() const { return by_ip_.size(); }

private:
    std::map<ip4_addr, uint32_t> by_ip_;
    std::vector<uint32_t> free_;
    uint32_t next_ = 0;
};

std::unique_ptr<const slice_table> build_slice_table(const config::node_file& cfg,
                                                     const node_params& params,
                                                     neighbour_slots& slots,
                                                     learned_state& learned);

class node_state {
public:
    // `qsbr` may be null when no worker reads the tables (tests).
    node_state(config::node_file cfg, const node_params& params,
               std::map<std::string, uint16_t> pod_ports, rte_rcu_qsbr* qsbr);
    ~node_state();
    node_state(const node_state&) = delete;
    node_state& operator=(const node_state&) = delete;

    const table_set& published() const { return published_; }
    learned_state& learned() { return *learned_; }
    const config::node_file& desired() const { return cfg_; }

    // Applies `next` as one change. Remote nodes (and pods on them) change live; anything
    // else needs a restart in this version and is refused whole, one message per
    // difference. An empty result means applied.
    [[nodiscard]] std::vector<std::string> apply(const config::node_file& next);

private:
    void wait_grace_period();

    config::node_file cfg_;
    node_params params_;
    std::map<std::string, uint16_t> pod_ports_;
    rte_rcu_qsbr* qsbr_;
    std::unique_ptr<learned_state> learned_;
    neighbour_slots slots_;
    std::unique_ptr<const slice_table> slices_;
    std::unique_ptr<const pod_table> pods_;
    table_set published_;
};

}  // namespace twill
