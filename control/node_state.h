// The node's running state on the control thread: the desired state, the tables workers
// read, and the one path every change takes (a reload, `twillctl apply` or `delete`):
// checked whole, then published entry by entry (remote nodes) or as one new table (the
// few local pods), then, after the workers' grace period (rte_rcu_qsbr), what they may
// still have held is freed. The cost of a change follows its size, not the state's.
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
#include "control/desired.h"
#include "control/policy_publisher.h"
#include "control/ports.h"
#include "control/service_publisher.h"
#include "dataplane/service/conntrack.h"
#include "dataplane/service/service_table.h"
#include "dataplane/tables/tables.h"

namespace twill {

// Attaching and detaching pod ports; twilld hot-plugs DPDK devices, tests pretend.
struct port_ops {
    std::function<port_result(const std::string& devargs)> attach;
    std::function<void(uint16_t port)> detach;
};

class node_state {
public:
    // `cfg` must be valid; `qsbr` may be null when no worker reads the tables (tests).
    node_state(const config::node_file& cfg, const node_params& params,
               std::map<std::string, uint16_t> pod_ports, rte_rcu_qsbr* qsbr, port_ops ops = {});
    ~node_state();
    node_state(const node_state&) = delete;
    node_state& operator=(const node_state&) = delete;

    const table_set& published() const { return published_; }
    learned_state& learned() { return *learned_; }
    const desired_state& desired() const { return desired_; }
    const config::node_file& settings() const { return desired_.settings(); }
    // Local pods' devargs -> attached port.
    const std::map<std::string, uint16_t>& pod_ports() const { return pod_ports_; }
    const service_table& services() const { return *services_; }
    const service_publisher& service_frontends() const { return publisher_; }
    // The worker's connection table; other threads may only read it (for_each).
    const conntrack& connections() const { return *conntrack_; }
    const policy_publisher& policies() const { return policy_; }

    // A reload: `next` (a valid file) replaces the desired state, as the one change that
    // is the difference. The node itself, the cluster, EAL and the underlay need a restart
    // and are refused. On any refusal or failure nothing changes and every reason is
    // returned; empty = applied.
    [[nodiscard]] std::vector<std::string> apply(const config::node_file& next);

    // A change already checked (desired().check) or derived from a valid file. New local
    // pods' ports are attached first; if one cannot be, nothing changes.
    [[nodiscard]] std::vector<std::string> apply(const object_change& change);

private:
    void wait_grace_period();
    // Gives node `n` its slot (reset when new), entry, address and cells; what it
    // replaced goes to `retired`.
    void publish_node(const config::remote_node& n, std::vector<retired_ptr>& retired);

    desired_state desired_;
    node_params params_;
    std::map<std::string, uint16_t> pod_ports_;
    rte_rcu_qsbr* qsbr_;
    port_ops ops_;
    std::unique_ptr<learned_state> learned_;
    neighbour_slots slots_;
    pod_slots pod_slots_;
    std::unique_ptr<slice_table> slices_;
    std::unique_ptr<const pod_table> pods_;
    std::unique_ptr<service_table> services_;
    policy_publisher policy_;
    std::unique_ptr<conntrack> conntrack_;
    service_publisher publisher_;
    table_set published_;
};

}  // namespace twill
