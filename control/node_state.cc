#include "control/node_state.h"

#include <algorithm>

#include <fmt/format.h>


namespace twill {

node_state::node_state(config::node_file cfg, const node_params& params,
                       std::map<std::string, uint16_t> pod_ports, rte_rcu_qsbr* qsbr,
                       port_ops ops)
    : cfg_(std::move(cfg)),
      params_(params),
      pod_ports_(std::move(pod_ports)),
      qsbr_(qsbr),
      ops_(std::move(ops)),
      learned_(std::make_unique<learned_state>()) {
    slices_ = build_slice_table(cfg_, params_, slots_, *learned_);
    pods_ = build_pod_table(cfg_, pod_ports_, pod_slots_, *learned_);
    published_.slices.store(slices_.get(), std::memory_order_release);
    published_.pods.store(pods_.get(), std::memory_order_release);
}

node_state::~node_state() = default;

void node_state::wait_grace_period() {
    if (qsbr_ != nullptr) {
        rte_rcu_qsbr_synchronize(qsbr_, RTE_QSBR_THRID_INVALID);
    }
}

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
    if (!refused.empty()) {
        return refused;
    }

    // Ports: a devargs that stays keeps its port (even if the pod on it changed); new
    // ones are attached before anything is published, so a failure changes nothing.
    std::map<std::string, uint16_t> ports;
    std::vector<uint16_t> attached;
    for (const config::pod& p : next.pods) {
        if (p.port.empty()) {
            continue;
        }
        if (auto it = pod_ports_.find(p.port); it != pod_ports_.end()) {
            ports.emplace(p.port, it->second);
            continue;
        }
        port_result r = ops_.attach ? ops_.attach(p.port) : port_result{};
        if (!r.ok) {
            refused.push_back(fmt::format("pod {}/{}: {}", p.ns, p.name,
                                          ops_.attach ? r.error : "ports cannot be attached here"));
            continue;
        }
        attached.push_back(r.port_id);
        ports.emplace(p.port, r.port_id);
    }
    if (!refused.empty()) {
        for (uint16_t port : attached) {
            ops_.detach(port);
        }
        return refused;
    }

    std::unique_ptr<const slice_table> slices = build_slice_table(next, params_, slots_, *learned_);
    std::unique_ptr<const pod_table> pods = build_pod_table(next, ports, pod_slots_, *learned_);
    published_.slices.store(slices.get(), std::memory_order_release);
    published_.pods.store(pods.get(), std::memory_order_release);
    wait_grace_period();
    // No worker holds the old tables now, nor polls or sends to a port they alone had.
    slices_ = std::move(slices);
    pods_ = std::move(pods);
    for (const auto& [devargs, port] : pod_ports_) {
        if (!ports.contains(devargs) && ops_.detach) {
            ops_.detach(port);
        }
    }
    pod_ports_ = std::move(ports);
    std::set<ip4_addr> nodes;
    for (const config::remote_node& n : next.nodes) {
        nodes.insert(n.ip);
    }
    slots_.retain_only(nodes);
    std::set<std::string> local;
    for (const config::pod& p : next.pods) {
        if (!p.port.empty()) {
            local.insert(pod_identity(p));
        }
    }
    pod_slots_.retain_only(local);
    cfg_ = next;
    return {};
}

}  // namespace twill
