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

#include "control/config.h"
#include "control/ports.h"
#include "dataplane/tables/tables.h"

namespace twill {

// Slots in learned_state handed out by key: a next-hop address for neighbours, a pod's
// identity for pods. A key that stays keeps its slot, and so what was learned in it
// across table swaps; a released slot is reused only after the grace period, when no
// worker can still reach it through an old table, and the new owner resets it.
template <typename Key>
class slot_allocator {
public:
    // The slot of `key`; `fresh` is set when it was not held before.
    uint32_t acquire(const Key& key, bool& fresh) {
        fresh = false;
        if (auto it = by_key_.find(key); it != by_key_.end()) {
            return it->second;
        }
        fresh = true;
        uint32_t slot = next_;
        if (!free_.empty()) {
            slot = free_.back();
            free_.pop_back();
        } else {
            ++next_;  // validation bounds the count below the capacity
        }
        by_key_.emplace(key, slot);
        return slot;
    }
    // Releases every slot whose key is not in `keep`. Call after the grace period.
    void retain_only(const std::set<Key>& keep) {
        for (auto it = by_key_.begin(); it != by_key_.end();) {
            if (keep.contains(it->first)) {
                ++it;
            } else {
                free_.push_back(it->second);
                it = by_key_.erase(it);
            }
        }
    }

private:
    std::map<Key, uint32_t> by_key_;
    std::vector<uint32_t> free_;
    uint32_t next_ = 0;
};

using neighbour_slots = slot_allocator<ip4_addr>;
using pod_slots = slot_allocator<std::string>;

// What identifies a local pod to the dataplane: a change to any of it is a new pod.
std::string pod_identity(const config::pod& p);

std::unique_ptr<const slice_table> build_slice_table(const config::node_file& cfg,
                                                     const node_params& params,
                                                     neighbour_slots& slots,
                                                     learned_state& learned);

// `port_ids` maps each local pod's devargs to its attached DPDK port.
std::unique_ptr<const pod_table> build_pod_table(const config::node_file& cfg,
                                                 const std::map<std::string, uint16_t>& port_ids,
                                                 pod_slots& slots, learned_state& learned);

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
