#include "dataplane/tables/tables.h"

#include <algorithm>
#include <utility>

namespace twill {

slice_table::slice_table(ip4_prefix cluster, uint8_t cell_len, std::vector<remote_node_entry> nodes,
                         const std::vector<std::pair<ip4_prefix, uint32_t>>& slices)
    : cluster_(cluster),
      shift_(uint8_t(32 - cell_len)),
      cells_(size_t(1) << (cell_len - cluster.len), no_index),
      nodes_(std::move(nodes)) {
    // Slices never overlap (validated), so each cell belongs to at most one slice.
    for (const auto& [slice, index] : slices) {
        uint32_t first = (slice.addr.value - cluster_.addr.value) >> shift_;
        uint64_t count = slice.size() >> shift_;
        std::fill_n(cells_.begin() + first, std::max<uint64_t>(count, 1), index);
    }
    std::vector<std::pair<ip4_addr, uint32_t>> by_ip;
    for (uint32_t i = 0; i < nodes_.size(); ++i) {
        by_ip.emplace_back(nodes_[i].ip, i);
    }
    by_ip_ = ip4_map(by_ip);
}

namespace {

uint32_t sum_words(uint32_t v) { return (v >> 16) + (v & 0xffff); }
uint32_t sum_mac(const mac_addr& m) {
    return (uint32_t(m.bytes[0]) << 8 | m.bytes[1]) + (uint32_t(m.bytes[2]) << 8 | m.bytes[3]) +
           (uint32_t(m.bytes[4]) << 8 | m.bytes[5]);
}

}  // namespace

void make_vxlan_rewrite(const node_params& p, remote_node_entry& node) {
    vxlan_rewrite& r = node.rewrite;
    r.outer.eth.dst = mac_addr{};  // the next hop, per packet
    r.outer.eth.src = p.underlay_mac;
    r.outer.eth.type.set(net::ether_type_ipv4);
    r.outer.ip.version_ihl = 0x45;
    r.outer.ip.tos = 0;
    r.outer.ip.total_length.set(0);
    r.outer.ip.id.set(0);
    r.outer.ip.frag.set(0);  // Linux flannel.1 leaves DF clear (vxlan df unset)
    r.outer.ip.ttl = 64;
    r.outer.ip.proto = net::ip_proto_udp;
    r.outer.ip.checksum = 0;
    r.outer.ip.src.set(p.node_ip.value);
    r.outer.ip.dst.set(node.ip.value);
    r.outer.udp.src_port.set(0);
    r.outer.udp.dst_port.set(p.vxlan_port);
    r.outer.udp.length.set(0);
    r.outer.udp.checksum = 0;
    r.outer.vxlan.set(p.vni);
    r.inner_eth.dst = node.vtep_mac;
    r.inner_eth.src = p.vtep_mac;
    r.inner_eth.type.set(net::ether_type_ipv4);

    const uint32_t addrs = sum_words(p.node_ip.value) + sum_words(node.ip.value);
    r.ip_sum = 0x4500 + (64u << 8 | net::ip_proto_udp) + addrs;
    r.udp_sum = addrs + net::ip_proto_udp                         // pseudo-header
                + p.vxlan_port                                      // UDP
                + 0x0800 + sum_words(p.vni << 8)                    // VXLAN
                + sum_mac(node.vtep_mac) + sum_mac(p.vtep_mac) + net::ether_type_ipv4;
}

pod_table::pod_table(ip4_prefix slice, std::vector<local_pod_entry> pods)
    : slice_(slice), by_offset_(slice.size(), no_index), pods_(std::move(pods)) {
    by_port_.fill(no_index);
    for (uint32_t i = 0; i < pods_.size(); ++i) {
        by_offset_[pods_[i].ip.value - slice_.addr.value] = i;
        if (pods_[i].port_id < RTE_MAX_ETHPORTS) {
            by_port_[pods_[i].port_id] = i;
        }
    }
}

}  // namespace twill
