#include "control/build_tables.h"

#include <algorithm>

namespace twill {

node_params make_params(const config::node_file& cfg, uint16_t underlay_port,
                        const mac_addr& underlay_mac, uint64_t tsc_hz) {
    node_params p;
    p.node_ip = cfg.node.ip;
    p.pod_cidr = cfg.node.pod_cidr;
    p.cluster_cidr = cfg.cluster_cidr;
    p.vtep_mac = cfg.node.vtep_mac;
    p.underlay_mac = underlay_mac;
    p.underlay_port = underlay_port;
    p.vni = cfg.vxlan.vni;
    p.vxlan_port = cfg.vxlan.port;
    p.mtu = cfg.vxlan.mtu;
    p.tsc_hz = tsc_hz;
    return p;
}

std::unique_ptr<const pod_table> build_pod_table(const config::node_file& cfg,
                                                 const std::map<std::string, uint16_t>& port_ids,
                                                 learned_state& learned) {
    std::vector<local_pod_entry> pods;
    for (const config::pod& p : cfg.pods) {
        if (p.port.empty()) {
            continue;  // a pod on another node: known for its labels only
        }
        uint32_t slot = uint32_t(pods.size());
        local_pod_entry e;
        e.ip = p.ip;
        e.port_id = port_ids.at(p.port);
        e.state = slot;
        e.mac_fixed = p.mac.has_value();
        if (p.mac) {
            learned.pod_macs[slot].set(*p.mac);
        }
        pods.push_back(e);
    }

    return std::make_unique<const pod_table>(cfg.node.pod_cidr, std::move(pods));
}

}  // namespace twill
