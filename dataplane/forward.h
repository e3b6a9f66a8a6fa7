// Routing an IPv4 packet once it is inside the node: to a local pod, or into VXLAN.
#pragma once

#include <rte_mbuf.h>

#include "dataplane/net/headers.h"
#include "dataplane/service/service.h"
#include "dataplane/worker/ctx.h"

namespace twill {

// A frame that came out of the overlay (decapsulated): must be IPv4 to a local pod.
// `outer_tos` is the outer header's, for ECN (RFC 6040).
void overlay_input(pipeline_ctx& ctx, rte_mbuf* m, uint8_t outer_tos);

// Routes an accepted IPv4 packet: through the service stage (unless `from` is
// origin::nat), then to a local pod, through VXLAN to a remote one, or up to the kernel
// (the node's own addresses and everything outside the cluster, which the kernel routes
// or masquerades; never back to the kernel a packet came from).
void route_ipv4(pipeline_ctx& ctx, rte_mbuf* m, net::ipv4_hdr* ip, uint32_t header_len,
                uint32_t total_len, origin from);

// The service stage for a packet that is not routed from here on otherwise: true when it
// took the packet (sent or dropped it, or translated it and routed it on), false when the
// packet is not a service's and the caller goes on with it.
bool service_took(pipeline_ctx& ctx, rte_mbuf* m, net::ipv4_hdr* ip, uint32_t header_len,
                  uint32_t total_len, origin from);

// A configured pod MAC is enforced; an unconfigured one is learned from `src`.
inline bool pod_mac_ok(pipeline_ctx& ctx, const local_pod_entry& pod, const mac_addr& src) {
    learned_mac& mac = ctx.learned->pod_macs[pod.state];
    if (!pod.mac_fixed) {
        if (mac.set(src)) [[unlikely]] {
            ctx.mac_learned();
        }
        return true;
    }
    mac_addr fixed;
    mac.get(fixed);
    return src == fixed;
}

// Decrements the TTL (expired: ICMP time exceeded to the source) and sends to the pod.
void deliver_local(pipeline_ctx& ctx, rte_mbuf* m, net::ipv4_hdr* ip, uint32_t pod);

// Passes a frame addressed to the node up to its kernel unchanged (the kernel's
// interface has the underlay port's MAC).
inline void pass_to_host(pipeline_ctx& ctx, rte_mbuf* m) {
    ctx.counters->to_host.add();
    ctx.send(ctx.params->host_port, m);
}

// Hands a routed packet to the node's kernel through the host port, addressed to the
// kernel interface's MAC (the underlay port's) from the gateway MAC. No TTL decrement:
// the kernel is the host these packets are for or route through, as with Calico's veths.
void send_to_host(pipeline_ctx& ctx, rte_mbuf* m);

// Rewrites the Ethernet header for local pod `pod` and queues on its port; if its MAC is
// not known yet, asks for it and drops.
void send_to_pod(pipeline_ctx& ctx, rte_mbuf* m, uint32_t pod);

}  // namespace twill
