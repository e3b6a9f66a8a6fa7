#include "control/node_state.h"

#include <algorithm>

#include <fmt/format.h>

#include "control/build_tables.h"

namespace twill {

uint32_t neighbour_slots::acquire(ip4_addr ip, learned_state& learned) {
    if (auto it = by_ip_.find(ip); it != by_ip_.end()) {
        return it->second;
    }
    uint32_t slot;
    if (!free_.empty()) {
        slot = free_.back();
        free_.pop_back();
    } else {
        slot = next_++;  // validation bounds the node count below the capacity
    }
    // Nothing reads a free slot (see retain_only), so it can be reset in place.
    learned.neighbours[slot].mac.clear();
    learned.neighbours[slot].last_request_tsc.store(0, std::memory_order_relaxed);
    by_ip_.emplace(ip, slot);
    return slot;
}

void neighbour_slots::retain_only(const std::set<ip4_addr>& keep) {
    for (auto it = by_ip_.begin(); it != by_ip_.end();) {
        if (keep.contains(it->first)) {
            ++it;
        } else {
            free_.push_back(it->second);
            it = by_ip_.erase(it);
        }
    }
}

std::unique_ptr<const slice_table> build_slice_table(const config::node_file& cfg,
                                                     const node_params& params,
                                                     neighbour_slots& slots,
                                                     learned_state& learned) {
    std::vector<remote_node_entry> nodes;
    std::vector<std::pair<ip4_prefix, uint32_t>> slices;
    uint8_t cell_len = cfg.cluster_cidr.len;
    for (const config::remote_node& n : cfg.nodes) {
        remote_node_entry e;
        e.ip = n.ip;
        e.vtep_mac = n.vtep_mac;
        e.neighbour = slots.acquire(n.ip, learned);
        make_vxlan_rewrite(params, e);
        slices.emplace_back(n.pod_cidr, uint32_t(nodes.size()));
        nodes.push_back(e);
        cell_len = std::max(cell_len, n.pod_cidr.len);
    }
    return std::make_unique<const slice_table>(cfg.cluster_cidr, cell_len, std::move(nodes), slices);
}

node_state::node_state(config::node_file cfg, const node_params& params,
                       std::map<std::string, uint16_t> pod_ports, rte_rcu_qsbr* qsbr)
    : cfg_(std::move(cfg)),
      params_(params),
      pod_ports_(std::move(pod_ports)),
      qsbr_(qsbr),
      learned_(std::make_unique<learned_state>()) {
    slices_ = build_slice_table(cfg_, params_, slots_, *learned_);
    pods_ = build_pod_table(cfg_, pod_ports_, *learned_);
    published_.slices.store(slices_.get(), std::memory_order_release);
    published_.pods.store(pods_.get(), std::memory_order_release);
}

node_state::~node_state() = default;

void node_state::wait_grace_period() {
    if (qsbr_ != nullptr) {
        rte_rcu_qsbr_synchronize(qsbr_, RTE_QSBR_THRID_INVALID);
    }
}

namespace {

// The local pods as the dataplane sees them: attached ports can't change without hot-plug.
std::vector<std::string> local_pods(const config::node_file& cfg) {
    std::vector<std::string> out;
    for (const config::pod& p : cfg.pods) {
        if (!p.port.empty()) {
            out.push_back(fmt::format("{}/{} {} {} {}", p.ns, p.name, config::format_ip4(p.ip),
                                      p.port, p.mac ? config::format_mac(*p.mac) : "learned"));
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace

std::vector<std::string> node_state::apply(const config::node_file& next) {
    std::vector<std::string> refused;
    auto same = [&](bool equal, const char* what) {
        if (!equal) {
            refused.push_back(fmt::format("{} changed: needs a restart in this version", what));
        }
    };
    same(next.node.name == cfg_.node.name && next.node.ip == cfg_.node.ip &&
             next.node.pod_cidr == cfg_.node.pod_cidr && next.node.vtep_mac == cfg_.node.vtep_mac,
         "node");
    same(next.cluster_cidr == cfg_.cluster_cidr && next.service_cidr == cfg_.service_cidr,
         "cluster");
    same(next.vxlan.vni == cfg_.vxlan.vni && next.vxlan.port == cfg_.vxlan.port &&
             next.vxlan.mtu == cfg_.vxlan.mtu,
         "cluster.vxlan");
    same(next.eal == cfg_.eal, "dpdk.eal");
    same(next.underlay_port == cfg_.underlay_port, "ports.underlay");
    same(local_pods(next) == local_pods(cfg_), "pods with a port (no port hot-plug yet)");
    if (!refused.empty()) {
        return refused;
    }

    std::unique_ptr<const slice_table> slices = build_slice_table(next, params_, slots_, *learned_);
    published_.slices.store(slices.get(), std::memory_order_release);
    wait_grace_period();
    slices_ = std::move(slices);  // frees the old table: no worker can still hold it
    std::set<ip4_addr> keep;
    for (const config::remote_node& n : next.nodes) {
        keep.insert(n.ip);
    }
    slots_.retain_only(keep);
    cfg_ = next;
    return {};
}

}  // namespace twill
