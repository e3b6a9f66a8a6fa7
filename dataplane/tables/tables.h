// The tables workers read, and how the control thread changes them under the workers: the
// slice table entry by entry, the (small) pod table by building a new one and swapping the
// pointer; either way what a worker may still hold is freed only after every worker has
// passed a quiescent state (rte_rcu_qsbr, see control/node_state.h). Worker-written state
// (learned MACs) lives in separate persistent arrays that survive changes.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include <rte_config.h>

#include "dataplane/net/addr.h"
#include "dataplane/net/headers.h"
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
    // The port into the node's own kernel (ports.host), no_port when there is none. Its
    // kernel interface carries the node's underlay address and the underlay port's MAC,
    // so frames pass between the two unchanged.
    static constexpr uint16_t no_port = 0xffff;
    uint16_t host_port = no_port;
    bool has_host() const { return host_port != no_port; }
    uint32_t vni = 1;
    uint16_t vxlan_port = 8472;
    uint16_t mtu = 1450;  // overlay MTU: the largest inner IPv4 packet
    bool vxlan_known_sources_only = true;
    // Hold packets for a next hop or pod whose MAC is being asked for, as the kernel's
    // neighbour queue does, instead of dropping them (pipeline_ctx::park).
    bool park_unresolved = true;
    // Connection timeouts in seconds (ipvsadm --set tcp tcpfin udp).
    uint32_t ct_tcp_timeout = 900;
    uint32_t ct_tcp_fin_timeout = 120;
    uint32_t ct_udp_timeout = 300;
    uint64_t tsc_hz = 1;
    uint32_t workers = 1;  // dpdk.workers
};

// The 64 bytes in front of an inner IPv4 packet to one node, as far as they are the same
// for every packet (VPP's "rewrite string"), and the checksum sums of those constants.
// Per packet only the next hop MAC, TOS, lengths, IP ID, UDP source port and the two
// checksums are patched in, and nothing just written is read back.
struct vxlan_rewrite {
    net::vxlan_encap_hdr outer;
    net::eth_hdr inner_eth;
    uint32_t ip_sum = 0;   // host-order sum of the constant outer IPv4 words
    uint32_t udp_sum = 0;  // ... of the pseudo-header, UDP, VXLAN and inner Ethernet
};
static_assert(sizeof(net::vxlan_encap_hdr) + sizeof(net::eth_hdr) == 64);

struct remote_node_entry {
    ip4_addr ip;  // VTEP address = next hop on the underlay
    mac_addr vtep_mac;
    uint32_t neighbour = no_index;  // slot in neighbour_state, and in slice_table
    vxlan_rewrite rewrite;
};

// What a writer replaced and a worker may still hold: freed after the grace period.
using retired_ptr = std::shared_ptr<const void>;

// The remote nodes and their pod slices, one table for the life of the process, changed
// in place entry by entry, so one change costs the same with 10 nodes or 100k.
//
// The cluster CIDR is cut into cells the size of the node's own slice (flannel gives
// every node a slice of one length); each cell holds an atomic pointer to the immutable
// entry of the node whose slice covers it, so a lookup is one load and one dependent
// load. Entries also sit in slots (keyed by the node's address, shared with the learned
// neighbour state) for the address map and for iteration. A changed node gets a new
// entry, written to its slot and then its cells; the old one is retired and freed after
// a grace period. rte_lpm would cost a 64 MiB table, which does not fit the embedded
// `-m 512` default.
class slice_table {
public:
    slice_table(ip4_prefix cluster, uint8_t cell_len, uint32_t node_capacity);
    ~slice_table();
    slice_table(const slice_table&) = delete;
    slice_table& operator=(const slice_table&) = delete;

    // Readers (workers). Null when no node has the address.
    const remote_node_entry* lookup(ip4_addr dst) const {
        if (!cluster_.contains(dst)) [[unlikely]] {
            return nullptr;
        }
        return cells_[(dst.value - cluster_.addr.value) >> shift_].load(std::memory_order_acquire);
    }
    // The node whose underlay address is `ip` (VXLAN source check, ARP learning).
    const remote_node_entry* node_by_ip(ip4_addr ip) const {
        uint32_t slot = by_ip_.load(std::memory_order_acquire)->find(ip);
        return slot == ip4_map::not_found ? nullptr : nodes_[slot].load(std::memory_order_acquire);
    }
    const remote_node_entry* node(uint32_t slot) const {
        return nodes_[slot].load(std::memory_order_acquire);
    }
    // Slots in use are below this.
    uint32_t slot_end() const { return slot_end_.load(std::memory_order_acquire); }

    // Writer (the control thread only). Each returns what workers may still read.
    [[nodiscard]] retired_ptr set_node(uint32_t slot, std::unique_ptr<const remote_node_entry> e);
    // Points every cell of `slice` at the entry in `slot` (no_index: at nothing), except
    // the cells inside `keep`.
    void set_cells(const ip4_prefix& slice, uint32_t slot, const ip4_prefix* keep = nullptr);
    [[nodiscard]] retired_ptr map_ip(ip4_addr ip, uint32_t slot);
    void unmap_ip(ip4_addr ip);

private:
    ip4_prefix cluster_;
    uint8_t shift_;
    uint32_t capacity_;
    std::unique_ptr<std::atomic<const remote_node_entry*>[]> cells_;
    std::unique_ptr<std::atomic<const remote_node_entry*>[]> nodes_;
    std::atomic<uint32_t> slot_end_{0};
    std::unique_ptr<ip4_map> map_;  // the writer's; workers read it through by_ip_
    std::atomic<const ip4_map*> by_ip_;
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

// A MAC that workers learn and read concurrently: one atomic word holding the six bytes
// in memory order, bit 63 = known.
class learned_mac {
public:
    static constexpr uint64_t known = uint64_t(1) << 63;

    bool get(mac_addr& out) const {
        uint64_t v = word_.load(std::memory_order_relaxed);
        // Same-sized stores as the comparisons' loads: no store-forwarding stall.
        uint32_t lo = uint32_t(v);
        uint16_t hi = uint16_t(v >> 32);
        std::memcpy(out.bytes.data(), &lo, 4);
        std::memcpy(out.bytes.data() + 4, &hi, 2);
        return v & known;
    }
    // Returns true when the value changed.
    bool set(const mac_addr& mac) {
        uint32_t lo;
        uint16_t hi;
        std::memcpy(&lo, mac.bytes.data(), 4);
        std::memcpy(&hi, mac.bytes.data() + 4, 2);
        uint64_t v = lo | uint64_t(hi) << 32 | known;
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
    std::atomic<uint64_t> confirmed_tsc{0};  // when the next hop last spoke ARP
};

// A next hop not heard from for this long is asked again (Linux: base_reachable_time,
// 30 s); until it answers, traffic keeps its last MAC, and an answer from a new MAC
// (a replaced host, a moved address) takes over at once.
inline constexpr uint64_t neighbour_reachable_seconds = 30;

// Worker-written state, allocated once with a fixed capacity; slots are handed out by
// the control thread and outlive table swaps.
struct learned_state {
    static constexpr uint32_t neighbour_capacity = 1 << 17;
    static constexpr uint32_t pod_capacity = 1024;

    std::unique_ptr<neighbour_slot[]> neighbours{new neighbour_slot[neighbour_capacity]};
    std::unique_ptr<learned_mac[]> pod_macs{new learned_mac[pod_capacity]};
    // When we last asked a pod for its MAC: at most once a second.
    std::unique_ptr<std::atomic<uint64_t>[]> pod_last_request{new std::atomic<uint64_t>[pod_capacity]{}};
    // Moves on every MAC learned, by any worker: a worker holding packets for a MAC
    // another worker learned retries them at once rather than after their second.
    std::atomic<uint32_t> learn_epoch{0};
};

// Fills node.rewrite for packets from this node (`p`) to `node`.
void make_vxlan_rewrite(const node_params& p, remote_node_entry& node);

// The currently published tables. The slice table is set once and changed in place.
// The service table and connection tracking are set once, before workers start.
class service_table;
class conntrack;
class policy_table;
struct table_set {
    std::atomic<const slice_table*> slices{nullptr};
    std::atomic<const pod_table*> pods{nullptr};
    std::atomic<const policy_table*> policy{nullptr};
    const service_table* services = nullptr;
    conntrack* ct = nullptr;
};

}  // namespace twill
