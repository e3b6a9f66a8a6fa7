// Counters: plain per-worker fields, written by one worker, summed by the control thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

#include <rte_config.h>

namespace twill {

// Every reason a packet is dropped, declared once. Numbers are stable: never reuse one,
// only append. X(number, name, description)
#define TWILL_DROP_REASONS(X)                                                          \
    X(1, eth_truncated, "frame shorter than an Ethernet header")                       \
    X(2, ip_truncated, "IPv4 header or total length beyond the frame")                 \
    X(3, ip_bad_header, "IPv4 version is not 4 or header length below 20")             \
    X(4, ip_bad_checksum, "IPv4 header checksum wrong")                                \
    X(5, outer_fragment, "fragmented VXLAN packet (not reassembled)")                  \
    X(6, udp_truncated, "UDP header or length beyond the packet")                      \
    X(7, udp_bad_checksum, "outer UDP checksum wrong")                                 \
    X(8, underlay_not_for_dataplane, "underlay IPv4 that is not VXLAN to this node")   \
    X(9, vxlan_bad_flags, "VXLAN without the I flag")                                  \
    X(10, vxlan_bad_vni, "VXLAN with another VNI")                                     \
    X(11, vxlan_unknown_source, "VXLAN from an address that is not a known node")      \
    X(12, inner_truncated, "inner frame shorter than Ethernet + IPv4")                 \
    X(13, inner_bad_dst_mac, "inner destination MAC is not this node's VTEP MAC")      \
    X(14, inner_not_ipv4, "inner frame is not IPv4")                                   \
    X(15, no_local_pod, "destination in the local slice but no such pod")              \
    X(16, decap_not_local, "decapsulated packet for an address outside the local slice") \
    X(17, ttl_expired, "TTL would reach zero")                                         \
    X(18, pod_spoofed_ip, "pod sent with a source IP that is not its own")             \
    X(19, pod_spoofed_mac, "pod sent with a source MAC that is not its own")           \
    X(20, pod_bad_dst_mac, "pod frame not addressed to the gateway MAC")               \
    X(21, no_route, "destination outside the cluster (no host path yet)")              \
    X(22, neighbour_unresolved, "next hop MAC not resolved yet (ARP sent)")            \
    X(23, too_big, "packet larger than the overlay MTU")                               \
    X(24, arp_malformed, "ARP that is not Ethernet/IPv4 or truncated")                 \
    X(25, arp_not_for_us, "ARP request for another address")                           \
    X(26, underlay_other_ethertype, "underlay frame neither IPv4 nor ARP")             \
    X(27, pod_other_ethertype, "pod frame neither IPv4 nor ARP")                       \
    X(28, tx_failed, "port did not accept the packet for transmission")                \
    X(29, to_node_address, "packet for the node itself (no host path yet)")            \
    X(30, unknown_port, "packet from a port with no role")                             \
    X(31, no_remote_node, "destination in the cluster but in no known slice")          \
    X(32, arp_alloc_failed, "no mbuf to send an ARP request")                          \
    X(33, pod_unknown_mac, "pod's MAC not learned yet, cannot deliver")                \
    X(34, underlay_other_host, "underlay IPv4 frame for another MAC address")         \
    X(35, ecn_ce_not_ect, "outer CE mark on an inner packet that is not ECN-capable")        \
    X(36, pod_tunnel, "pod sent IP-in-IP or VXLAN of its own (Calico forbids both)")      \
    X(37, martian, "inner packet with a martian address (0/8, 127/8, multicast, broadcast)") \
    X(38, fragment_attack, "tiny first fragment or TCP fragment at offset 8 (RFC 1858)")   \
    X(39, service_no_endpoint, "service without a ready endpoint (TCP reset / ICMP sent)") \
    X(40, service_no_local_endpoint, "externalTrafficPolicy Local, no endpoint on this node") \
    X(41, service_backend_gone, "packet of a connection whose endpoint was removed")     \
    X(42, service_no_connection, "TCP segment other than SYN for a frontend, untracked")   \
    X(43, service_fragment, "fragment for a service frontend (not reassembled)")          \
    X(44, service_tuple_in_use, "no free source port to masquerade a new connection")     \
    X(45, service_full_masquerade, "connection table full; the flow needs a record (masquerade, node port)") \
    X(46, underlay_cluster_source, "non-VXLAN underlay packet from a cluster or martian address") \
    X(47, policy_denied, "NetworkPolicy: no rule of an isolating policy allows it")                \
    X(48, policy_cut, "NetworkPolicy: an established connection a tightened policy no longer allows") \
    X(49, policy_fragment, "NetworkPolicy: later fragment of a datagram whose first was not seen") \
    X(50, segment_split, "multi-segment frame whose first segment does not hold its headers")

enum class drop : uint8_t {
    none = 0,
#define TWILL_DROP_ENUM(num, name, desc) name = num,
    TWILL_DROP_REASONS(TWILL_DROP_ENUM)
#undef TWILL_DROP_ENUM
};

inline constexpr unsigned drop_reason_slots = 64;

struct drop_reason_info {
    unsigned number;
    std::string_view name;
    std::string_view description;
};

inline constexpr drop_reason_info drop_reasons[] = {
#define TWILL_DROP_INFO(num, name, desc) {num, #name, desc},
    TWILL_DROP_REASONS(TWILL_DROP_INFO)
#undef TWILL_DROP_INFO
};

// Written by exactly one worker, read by the control thread: relaxed atomics compile to
// plain loads and adds, and keep the concurrent read well-defined.
class counter {
public:
    void add(uint64_t n = 1) { value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
    uint64_t get() const { return value_.load(std::memory_order_relaxed); }
    // Only while no worker can add to it (see port_counters::reset).
    void reset() { value_.store(0, std::memory_order_relaxed); }

private:
    std::atomic<uint64_t> value_{0};
};

struct port_counters {
    counter rx_packets;
    counter rx_bytes;
    counter tx_packets;
    counter tx_bytes;
    counter tx_failed;

    // For a port id that is attached again: no worker has polled or sent on it since it
    // was detached after a grace period, and none will before the new pod is published.
    void reset() {
        for (counter* c : {&rx_packets, &rx_bytes, &tx_packets, &tx_bytes, &tx_failed}) {
            c->reset();
        }
    }
};

struct alignas(RTE_CACHE_LINE_SIZE) worker_counters {
    port_counters ports[RTE_MAX_ETHPORTS];
    counter drops[drop_reason_slots];
    counter arp_replies_sent;
    counter arp_requests_sent;
    counter neighbours_learned;
    counter encapsulated;
    counter decapsulated;
    counter delivered_local;
    counter icmp_errors_sent;
    counter fragmented;  // packets cut into fragments for the overlay MTU
    counter to_host;           // to the node's kernel through the host port
    counter from_host;         // routed from the node's kernel into the overlay or to pods
    counter host_to_underlay;  // the kernel's own underlay traffic, passed through
    counter icmp_errors_rate_limited;
    counter ct_created;    // connections tracked
    counter ct_hits;       // packets translated by a tracked connection
    counter ct_expired;    // connections timed out (or ended by their endpoint's removal)
    counter ct_full;       // new flows given a backend without tracking: table full
    counter ct_other_worker;  // packets of a connection another worker opened
    counter policy_tracked;  // connections tracked so that NetworkPolicy lets replies back
    counter policy_related;  // ICMP errors about a tracked connection, let through to or from an isolated pod
    counter service_resets;  // TCP resets sent for services without endpoints
    // TSC cycles of the loop iterations that received packets: over the packets received,
    // the worker's cost per packet (as VPP's clocks and Open vSwitch's processing cycles).
    counter busy_cycles;

    void drop(twill::drop reason, uint64_t n = 1) { drops[unsigned(reason)].add(n); }
};

}  // namespace twill
