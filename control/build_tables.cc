#include "control/build_tables.h"

#include <algorithm>

#include <fmt/format.h>

namespace twill {

node_params make_params(const config::node_file& cfg, uint16_t underlay_port,
                        const mac_addr& underlay_mac, uint64_t tsc_hz) {
    node_params p;
    p.node_ip = cfg.node.ip;
    p.workers = cfg.workers;
    p.pod_cidr = cfg.node.pod_cidr;
    p.cluster_cidr = cfg.cluster_cidr;
    p.vtep_mac = cfg.node.vtep_mac;
    p.underlay_mac = underlay_mac;
    p.underlay_port = underlay_port;
    p.vni = cfg.vxlan.vni;
    p.vxlan_port = cfg.vxlan.port;
    p.mtu = cfg.vxlan.mtu;
    p.vxlan_known_sources_only = cfg.vxlan.known_sources_only;
    p.ct_tcp_timeout = cfg.conntrack.tcp_timeout;
    p.ct_tcp_fin_timeout = cfg.conntrack.tcp_fin_timeout;
    p.ct_udp_timeout = cfg.conntrack.udp_timeout;
    p.tsc_hz = tsc_hz;
    return p;
}

std::string pod_identity(const config::pod& p) {
    return fmt::format("{}/{} {} {} {}", p.ns, p.name, config::format_ip4(p.ip), p.port,
                       p.mac ? config::format_mac(*p.mac) : "learned");
}

std::unique_ptr<const remote_node_entry> make_node_entry(const config::remote_node& n,
                                                         const node_params& params, uint32_t slot) {
    auto e = std::make_unique<remote_node_entry>();
    e->ip = n.ip;
    e->vtep_mac = n.vtep_mac;
    e->neighbour = slot;
    make_vxlan_rewrite(params, *e);
    return e;
}

std::unique_ptr<const pod_table> build_pod_table(const ip4_prefix& slice,
                                                 const std::map<pod_key, config::pod>& local,
                                                 const std::map<std::string, uint16_t>& port_ids,
                                                 pod_slots& slots, learned_state& learned) {
    std::vector<local_pod_entry> pods;
    for (const auto& [key, p] : local) {
        local_pod_entry e;
        e.ip = p.ip;
        e.port_id = port_ids.at(p.port);
        bool fresh;
        e.state = slots.acquire(pod_identity(p), fresh);
        e.mac_fixed = p.mac.has_value();
        if (fresh) {  // nothing reads a released slot, so it is reset in place
            learned.pod_macs[e.state].clear();
            learned.pod_last_request[e.state].store(0, std::memory_order_relaxed);
            if (p.mac) {
                learned.pod_macs[e.state].set(*p.mac);
            }
        }
        pods.push_back(e);
    }
    return std::make_unique<const pod_table>(slice, std::move(pods));
}

}  // namespace twill
