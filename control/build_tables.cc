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

}  // namespace twill
