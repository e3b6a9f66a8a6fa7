// The tables workers read. Each is immutable once published; the control thread builds a
// new one and swaps the pointer (see rcu.h). Worker-written state (learned MACs) lives in
// separate persistent arrays that survive swaps.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include <rte_config.h>

#include "dataplane/net/addr.h"
#include "dataplane/tables/ip4_map.h"

namespace twill {

inline constexpr uint32_t no_index = ~uint32_t(0);

// Set once at start-up; never changes while the process runs.
struct node_params {
    ip4_addr node_ip;
    ip4_prefix pod_cidr;
    ip4_prefix cluster_cidr;
    mac_addr vtep_mac;
    mac_addr gateway_mac = default_gateway_mac;
    mac_addr underlay_mac;
    uint16_t underlay_port = 0;
    uint32_t vni = 1;
    uint16_t vxlan_port = 8472;
    uint16_t mtu = 1450;  // overlay MTU: the largest inner IPv4 packet
    bool vxlan_known_sources_only = true;
    uint64_t tsc_hz = 1;
};

struct remote_node_entry {
    ip4_addr ip;  // VTEP address = next hop on the underlay
    mac_addr vtep_mac;
    uint32_t neighbour = no_index;  // slot in neighbour_state
};

// Pod slices of the remote nodes, looked up in O(1): the cluster CIDR is cut into
// fixed-size cells (the longest slice length) and each cell holds a node index. rte_lpm
// would cost a 64 MiB table per copy, twice that during a swap, which does not fit the
// embedded `-m 512` default.
class slice_table {
public:
    slice_table(ip4_prefix cluster, uint8_t cell_len, std::vector<remote_node_entry> nodes,
                const std::vector<std::pair<ip4_prefix, uint32_t>>& slices);

    uint32_t lookup(ip4_addr dst) const {
        uint32_t offset = dst.value - cluster_.addr.value;
        if (!cluster_.contains(dst)) [[unlikely]] {
            return no_index;
        }
        return cells_[offset >> shift_];
    }
    const remote_node_entry& node(uint32_t index) const { return nodes_[index]; }
    const std::vector<remote_node_entry>& nodes() const { return nodes_; }
    // Known node by underlay address (VXLAN source check, ARP learning).
    uint32_t node_by_ip(ip4_addr ip) const { return by_ip_.find(ip); }

private:
    ip4_prefix cluster_;
    uint8_t shift_;
    std::vector<uint32_t> cells_;
    std::vector<remote_node_entry> nodes_;
    ip4_map by_ip_;
};

struct local_pod_entry {
    ip4_addr ip;
    uint16_t port_id = 0;
    uint32_t state = no_index;  // slot in pod_state: the MAC in use
    bool mac_fixed = false;     // configured: enforce; otherwise learned
};

// Pods on this node, indexed directly by their offset in the node's slice.
class pod_table {
public:
    pod_table(ip4_prefix slice, std::vector<local_pod_entry> pods);

    uint32_t lookup(ip4_addr ip) const {
        if (!slice_.contains(ip)) {
            return no_index;
        }
        return by_offset_[ip.value - slice_.addr.value];
    }
    uint32_t by_port(uint16_t port) const {
        return port < RTE_MAX_ETHPORTS ? by_port_[port] : no_index;
    }
    const local_pod_entry& pod(uint32_t index) const { return pods_[index]; }
    const std::vector<local_pod_entry>& pods() const { return pods_; }

private:
    ip4_prefix slice_;
    std::vector<uint32_t> by_offset_;
    std::vector<local_pod_entry> pods_;
    std::array<uint32_t, RTE_MAX_ETHPORTS> by_port_;
};

// A MAC that workers learn and read concurrently: one atomic word, bit 63 = known.
class learned_mac {
public:
    static constexpr uint64_t known = uint64_t(1) << 63;

    bool get(mac_addr& out) const {
        uint64_t v = word_.load(std::memory_order_relaxed);
        out = mac_addr::from_u64(v);
        return v & known;
    }
    // Returns true when the value changed.
    bool set(const mac_addr& mac) {
        uint64_t v = mac.to_u64() | known;
        if (word_.load(std::memory_order_relaxed) == v) {
            return false;
        }
        word_.store(v, std::memory_order_relaxed);
        return true;
    }
    void clear() { word_.store(0, std::memory_order_relaxed); }

private:
    std::atomic<uint64_t> word_{0};
};

struct neighbour_slot {
    learned_mac mac;
    std::atomic<uint64_t> last_request_tsc{0};
};

// Worker-written state, allocated once with a fixed capacity; slots are handed out by
// the control thread and outlive table swaps.
struct learned_state {
    static constexpr uint32_t neighbour_capacity = 4096;
    static constexpr uint32_t pod_capacity = 1024;

    std::unique_ptr<neighbour_slot[]> neighbours{new neighbour_slot[neighbour_capacity]};
    std::unique_ptr<learned_mac[]> pod_macs{new learned_mac[pod_capacity]};
};

// The currently published tables.
struct table_set {
    std::atomic<const slice_table*> slices{nullptr};
    std::atomic<const pod_table*> pods{nullptr};
};

}  // namespace twill
