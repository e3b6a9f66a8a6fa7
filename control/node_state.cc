#include "control/node_state.h"

#include <stdexcept>

#include <fmt/format.h>

namespace twill {

node_state::node_state(const config::node_file& cfg, const node_params& params,
                       std::map<std::string, uint16_t> pod_ports, rte_rcu_qsbr* qsbr,
                       port_ops ops)
    : desired_(cfg),
      params_(params),
      pod_ports_(std::move(pod_ports)),
      qsbr_(qsbr),
      ops_(std::move(ops)),
      learned_(std::make_unique<learned_state>()),
      slices_(std::make_unique<slice_table>(cfg.cluster_cidr, cfg.node.pod_cidr.len,
                                            learned_state::neighbour_capacity)),
      services_(std::make_unique<service_table>(params.workers)),
      policy_(params.workers),
      conntrack_(std::make_unique<conntrack>(cfg.conntrack.capacity, params.workers)),
      publisher_(params_, *services_) {
    std::vector<retired_ptr> unused;  // nothing reads the table yet
    for (const auto& [name, n] : desired_.nodes()) {
        publish_node(n, unused);
    }
    for (const auto& [key, s] : desired_.services()) {
        publisher_.publish(key, desired_, unused);
    }
    publisher_.after_grace();
    published_.services = services_.get();
    published_.ct = conntrack_.get();
    pods_ = build_pod_table(cfg.node.pod_cidr, desired_.local_pods(), pod_ports_, pod_slots_,
                            *learned_);
    std::string error;
    if (!policy_.prepare(desired_, nullptr, error)) {
        throw std::runtime_error(error);
    }
    policy_.publish(published_);
    published_.slices.store(slices_.get(), std::memory_order_release);
    published_.pods.store(pods_.get(), std::memory_order_release);
}

node_state::~node_state() = default;

void node_state::publish_node(const config::remote_node& n, std::vector<retired_ptr>& retired) {
    bool fresh;
    uint32_t slot = slots_.acquire(n.ip, fresh);
    if (fresh) {  // nothing reads a released slot, so it is reset in place
        learned_->neighbours[slot].mac.clear();
        learned_->neighbours[slot].last_request_tsc.store(0, std::memory_order_relaxed);
        learned_->neighbours[slot].confirmed_tsc.store(0, std::memory_order_relaxed);
    }
    // The entry before the address and the cells that lead to it.
    for (retired_ptr old : {slices_->set_node(slot, make_node_entry(n, params_, slot)),
                            slices_->map_ip(n.ip, slot)}) {
        if (old != nullptr) {
            retired.push_back(std::move(old));
        }
    }
    slices_->set_cells(n.pod_cidr, slot);
}

void node_state::wait_grace_period() {
    if (qsbr_ != nullptr) {
        rte_rcu_qsbr_synchronize(qsbr_, RTE_QSBR_THRID_INVALID);
    }
}

std::vector<std::string> node_state::apply(const config::node_file& next) {
    const config::node_file& cur = settings();
    std::vector<std::string> refused;
    auto same = [&](bool equal, const char* what) {
        if (!equal) {
            refused.push_back(fmt::format("{} changed: needs a restart in this version", what));
        }
    };
    same(next.node.name == cur.node.name && next.node.ip == cur.node.ip &&
             next.node.pod_cidr == cur.node.pod_cidr && next.node.vtep_mac == cur.node.vtep_mac,
         "node");
    same(next.cluster_cidr == cur.cluster_cidr && next.service_cidr == cur.service_cidr,
         "cluster");
    same(next.vxlan.vni == cur.vxlan.vni && next.vxlan.port == cur.vxlan.port &&
             next.vxlan.mtu == cur.vxlan.mtu &&
             next.vxlan.known_sources_only == cur.vxlan.known_sources_only,
         "cluster.vxlan");
    same(next.eal == cur.eal, "dpdk.eal");
    same(next.underlay_port == cur.underlay_port, "ports.underlay");
    same(next.host_port == cur.host_port, "ports.host");
    same(next.conntrack == cur.conntrack, "conntrack");
    if (!refused.empty()) {
        return refused;
    }
    object_change change = desired_.diff(next);
    return change.empty() ? refused : apply(change);
}

std::vector<std::string> node_state::apply(const object_change& change) {
    // Ports: a devargs that stays keeps its port (even if the pod on it changed); new
    // ones are attached before anything is published, so a failure changes nothing.
    std::vector<std::string> refused;
    std::map<std::string, uint16_t> attached;
    for (const config::pod& p : change.pods) {
        if (p.port.empty() || pod_ports_.contains(p.port) || attached.contains(p.port)) {
            continue;
        }
        port_result r = ops_.attach ? ops_.attach(p.port) : port_result{};
        if (!r.ok) {
            refused.push_back(fmt::format("pod {}/{}: {}", p.ns, p.name,
                                          ops_.attach ? r.error : "ports cannot be attached here"));
            continue;
        }
        attached.emplace(p.port, r.port_id);
    }
    // Frontends and backends the change may take, counted high (as if nothing it
    // replaces were freed, which happens only after the grace period anyway).
    size_t new_frontends = 0, new_backends = 0;
    auto ports_of = [&](const pod_key& key) -> size_t {
        for (const config::service& s : change.services) {
            if (pod_key(s.ns, s.name) == key) {
                return s.ports.size();
            }
        }
        auto it = desired_.services().find(key);
        return it == desired_.services().end() ? 0 : it->second.ports.size();
    };
    for (const config::service& s : change.services) {
        for (const config::service_port& sp : s.ports) {
            new_frontends += (s.cluster_ip ? 1 : 0) + (s.node_port && sp.node_port != 0 ? 1 : 0) +
                             s.external_ips.size();
        }
        size_t endpoints = s.endpoints.size();
        for (const pod_key& slice : desired_.slices_of(pod_key(s.ns, s.name))) {
            endpoints += desired_.endpoint_slices().at(slice).endpoints.size();
        }
        new_backends += endpoints * s.ports.size();
    }
    for (const config::endpoint_slice& s : change.endpoint_slices) {
        new_backends += s.endpoints.size() * ports_of(pod_key(s.ns, s.service));
    }
    if (publisher_.frontends_used() + new_frontends > service_table::frontend_capacity ||
        publisher_.backends_used() + new_backends > service_table::backend_capacity) {
        refused.push_back(fmt::format(
            "services: the change may need {} more frontends and {} more endpoint slots; with "
            "{} and {} in use this exceeds the {} and {} this build supports",
            new_frontends, new_backends, publisher_.frontends_used(), publisher_.backends_used(),
            service_table::frontend_capacity, service_table::backend_capacity));
    }
    // NetworkPolicy: the next table, built before anything changes; without a policy
    // before or after the change, the table (which isolates nothing) stays.
    const bool policy_changed = refused.empty() && desired_.policy_touched(change, policy_.enforced()) &&
                                (!desired_.network_policies().empty() || !change.network_policies.empty());
    if (policy_changed) {
        std::string error;
        if (!policy_.prepare(desired_, &change, error)) {
            refused.push_back(error);
        }
    }
    if (!refused.empty()) {
        for (const auto& [devargs, port] : attached) {
            ops_.detach(port);
        }
        return refused;
    }

    // Remote nodes, entry by entry. First what leaves: cells, address and entry of a
    // node deleted or moved to another address, and cells its new slice no longer covers.
    std::vector<retired_ptr> retired;
    std::vector<ip4_addr> gone;
    auto withdraw = [&](const config::remote_node& old, const config::remote_node* next) {
        bool same_ip = next != nullptr && next->ip == old.ip;
        slices_->set_cells(old.pod_cidr, no_index, same_ip ? &next->pod_cidr : nullptr);
        if (!same_ip) {
            slices_->unmap_ip(old.ip);
            retired.push_back(slices_->set_node(slots_.find(old.ip), nullptr));  // never null
            gone.push_back(old.ip);
        }
    };
    const auto& nodes = desired_.nodes();
    for (const std::string& name : change.delete_nodes) {
        if (auto it = nodes.find(name); it != nodes.end()) {
            withdraw(it->second, nullptr);
        }
    }
    for (const config::remote_node& n : change.nodes) {
        if (auto it = nodes.find(n.name); it != nodes.end()) {
            withdraw(it->second, &n);
        }
    }
    bool pods_changed = false;
    for (const config::pod& p : change.pods) {
        pods_changed |= !p.port.empty() || desired_.local_pods().contains(pod_key(p.ns, p.name));
    }
    for (const pod_key& key : change.delete_pods) {
        pods_changed |= desired_.local_pods().contains(key);
    }
    const std::set<pod_key> services = desired_.services_touched(change);
    desired_.record(change);

    // Then what comes.
    for (const config::remote_node& n : change.nodes) {
        publish_node(n, retired);
    }
    for (const pod_key& key : services) {
        publisher_.publish(key, desired_, retired);
    }

    // NetworkPolicy before the pods: a worker's snapshot never has a new pod without the
    // policy that isolates it.
    if (policy_changed) {
        policy_.publish(published_);
    }

    // Local pods: few, so a new table.
    std::map<std::string, uint16_t> ports;
    std::unique_ptr<const pod_table> old_pods;
    if (pods_changed) {
        for (const auto& [key, p] : desired_.local_pods()) {
            auto it = pod_ports_.find(p.port);
            ports.emplace(p.port, it != pod_ports_.end() ? it->second : attached.at(p.port));
        }
        std::unique_ptr<const pod_table> pods = build_pod_table(
            settings().node.pod_cidr, desired_.local_pods(), ports, pod_slots_, *learned_);
        published_.pods.store(pods.get(), std::memory_order_release);
        old_pods = std::move(pods_);
        pods_ = std::move(pods);
    }
    std::erase(retired, nullptr);
    if (retired.empty() && gone.empty() && !pods_changed && !publisher_.pending() &&
        !policy_.pending()) {
        return refused;  // nothing a worker may hold was replaced: additions only, say
    }

    wait_grace_period();
    // No worker holds what was replaced now, nor polls or sends to a port only it had.
    retired.clear();
    old_pods.reset();
    publisher_.after_grace();
    policy_.after_grace();
    for (ip4_addr ip : gone) {
        if (!desired_.has_node_ip(ip)) {
            slots_.release(ip);
        }
    }
    if (pods_changed) {
        for (const auto& [devargs, port] : pod_ports_) {
            if (!ports.contains(devargs) && ops_.detach) {
                ops_.detach(port);
            }
        }
        pod_ports_ = std::move(ports);
        std::set<std::string> local;
        for (const auto& [key, p] : desired_.local_pods()) {
            local.insert(pod_identity(p));
        }
        pod_slots_.retain_only(local);
    }
    return refused;
}

}  // namespace twill
