#include "dataplane/tables/tables.h"

#include <algorithm>
#include <utility>

namespace twill {

slice_table::slice_table(ip4_prefix cluster, uint8_t cell_len, uint32_t node_capacity)
    : cluster_(cluster),
      shift_(uint8_t(32 - cell_len)),
      capacity_(node_capacity),
      cells_(new std::atomic<const remote_node_entry*>[size_t(1) << (cell_len - cluster.len)]),
      nodes_(new std::atomic<const remote_node_entry*>[node_capacity]),
      map_(std::make_unique<ip4_map>(64)),
      by_ip_(map_.get()) {
    for (size_t i = 0; i < size_t(1) << (cell_len - cluster.len); ++i) {
        cells_[i].store(nullptr, std::memory_order_relaxed);
    }
    for (uint32_t i = 0; i < node_capacity; ++i) {
        nodes_[i].store(nullptr, std::memory_order_relaxed);
    }
}

slice_table::~slice_table() {
    for (uint32_t i = 0; i < capacity_; ++i) {
        delete nodes_[i].load(std::memory_order_relaxed);
    }
}

retired_ptr slice_table::set_node(uint32_t slot, std::unique_ptr<const remote_node_entry> e) {
    std::unique_ptr<const remote_node_entry> old(nodes_[slot].exchange(e.release(), std::memory_order_acq_rel));
    if (slot >= slot_end_.load(std::memory_order_relaxed)) {
        slot_end_.store(slot + 1, std::memory_order_release);
    }
    return retired_ptr(std::move(old));
}

void slice_table::set_cells(const ip4_prefix& slice, uint32_t slot, const ip4_prefix* keep) {
    // Slices are validated to lie in the cluster and to be no smaller than a cell.
    uint32_t first = (slice.addr.value - cluster_.addr.value) >> shift_;
    uint64_t count = std::max<uint64_t>(slice.size() >> shift_, 1);
    const remote_node_entry* e = slot == no_index ? nullptr : nodes_[slot].load(std::memory_order_relaxed);
    for (uint64_t i = 0; i < count; ++i) {
        ip4_addr cell{uint32_t(cluster_.addr.value + ((first + i) << shift_))};
        if (keep == nullptr || !keep->contains(cell)) {
            cells_[first + i].store(e, std::memory_order_release);
        }
    }
}

retired_ptr slice_table::map_ip(ip4_addr ip, uint32_t slot) {
    if (map_->room()) {
        map_->insert(ip, slot);
        return nullptr;
    }
    // Full of tombstones or live keys: a fresh map sized for what is live, swapped in.
    auto fresh = std::make_unique<ip4_map>(4 * (map_->size() + 1));
    map_->for_each([&](ip4_addr k, uint32_t v) { fresh->insert(k, v); });
    fresh->insert(ip, slot);
    by_ip_.store(fresh.get(), std::memory_order_release);
    std::swap(map_, fresh);
    return retired_ptr(std::move(fresh));
}

void slice_table::unmap_ip(ip4_addr ip) { map_->erase(ip); }

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
