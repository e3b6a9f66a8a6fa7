// The node's running state on the control thread: the desired state it was built from,
// the published tables, and the change path: validate, build, publish with one release
// store, wait for the workers' grace period (rte_rcu_qsbr), free the old table.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <rte_rcu_qsbr.h>

#include "control/build_tables.h"
#include "control/config.h"
#include "control/ports.h"
#include "dataplane/tables/tables.h"

namespace twill {

// Attaching and detaching pod ports; twilld hot-plugs DPDK devices, tests pretend.
struct port_ops {
    std::function<port_result(const std::string& devargs)> attach;
    std::function<void(uint16_t port)> detach;
};

class node_state {
public:
    // `qsbr` may be null when no worker reads the tables (tests).
    node_state(config::node_file cfg, const node_params& params,
               std::map<std::string, uint16_t> pod_ports, rte_rcu_qsbr* qsbr, port_ops ops = {});
    ~node_state();
    node_state(const node_state&) = delete;
    node_state& operator=(const node_state&) = delete;

    const table_set& published() const { return published_; }
    learned_state& learned() { return *learned_; }
    const config::node_file& desired() const { return cfg_; }
    // Local pods' devargs -> attached port.
    const std::map<std::string, uint16_t>& pod_ports() const { return pod_ports_; }

    // Applies `next` as one change: remote nodes and pods change live (a new local pod's
    // port is attached first, a removed one's detached after the grace period); the node
    // itself, the cluster, EAL and the underlay need a restart and are refused. On any
    // refusal or failure nothing changes, and every reason is returned; empty = applied.
    [[nodiscard]] std::vector<std::string> apply(const config::node_file& next);

private:
    void wait_grace_period();

    config::node_file cfg_;
    node_params params_;
    std::map<std::string, uint16_t> pod_ports_;
    rte_rcu_qsbr* qsbr_;
    port_ops ops_;
    std::unique_ptr<learned_state> learned_;
    neighbour_slots slots_;
    pod_slots pod_slots_;
    std::unique_ptr<const slice_table> slices_;
    std::unique_ptr<const pod_table> pods_;
    table_set published_;
};

}  // namespace twill
