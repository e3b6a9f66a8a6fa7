// ARP: answered for the node on the underlay and as the gateway on pod ports; next hops
// and pod MACs learned from what arrives.
#pragma once

#include <rte_mbuf.h>

#include "dataplane/worker/ctx.h"

namespace twill {

// An ARP frame from the underlay port.
void arp_underlay_input(pipeline_ctx& ctx, rte_mbuf* m);

// An ARP frame from the host port (the node's kernel): requests for cluster addresses
// are answered with the gateway MAC and true returned; false: not for twill, pass it on.
bool arp_host_input(pipeline_ctx& ctx, rte_mbuf* m);

// An ARP frame from the port of local pod `pod`.
void arp_pod_input(pipeline_ctx& ctx, uint32_t pod, rte_mbuf* m);

// Sends a broadcast who-has `target` from (`src_mac`, `src_ip`) out of `port`.
void arp_send_request(pipeline_ctx& ctx, uint16_t port, const mac_addr& src_mac, ip4_addr src_ip,
                      ip4_addr target);

// Sends an ARP request for `node` unless one went out less than a second ago or the
// underlay's transmit queue is full (then the next try goes out).
void neighbour_solicit(pipeline_ctx& ctx, const remote_node_entry& node);

// Asks local pod `pod` for its MAC, at most once a second.
void pod_solicit(pipeline_ctx& ctx, const local_pod_entry& pod);

// The next hop of `node`: its MAC when resolved; otherwise asks (at most once a second).
inline bool neighbour_resolve(pipeline_ctx& ctx, const remote_node_entry& node, mac_addr& mac) {
    if (ctx.learned->neighbours[node.neighbour].mac.get(mac)) [[likely]] {
        return true;
    }
    neighbour_solicit(ctx, node);
    return false;
}

// The address twill's gateway uses as ARP sender towards pods (Calico's link-local gateway).
inline constexpr ip4_addr pod_gateway_ip = ip4_addr::from_octets(169, 254, 1, 1);

}  // namespace twill
