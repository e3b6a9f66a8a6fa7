// VXLAN (RFC 7348) as Linux's vxlan driver does it for flannel: VNI 1, UDP 8472,
// nolearning, udpcsum.
#pragma once

#include <rte_mbuf.h>

#include "dataplane/net/headers.h"
#include "dataplane/worker/ctx.h"

namespace twill {

// `m` holds an IPv4 packet for a pod on `node`, behind an Ethernet header that is reused
// as the inner one; `ip` points at the packet's header. Encapsulates and queues it on
// the underlay port, or counts the drop.
void vxlan_encap(pipeline_ctx& ctx, rte_mbuf* m, const net::ipv4_hdr* ip, uint32_t header_len,
                 uint32_t total_len, const remote_node_entry& node);

// `m` is a UDP datagram to the VXLAN port of this node; `ip` and `header_len` describe its
// (validated) outer IPv4 header. Checks the VXLAN header, strips the outer headers and
// delivers the inner packet, or counts the drop.
void vxlan_decap(pipeline_ctx& ctx, rte_mbuf* m, const net::ipv4_hdr* ip, uint32_t header_len,
                 uint32_t total_len);

// ECN on encapsulation (RFC 6040 normal mode, Linux's INET_ECN_encapsulate with tos 0):
// the outer header copies ECT, and a CE inner becomes ECT(0).
constexpr uint8_t outer_tos(uint8_t inner_tos) {
    uint8_t ecn = inner_tos & 0x03;
    return ecn == 0x03 ? 0x02 : ecn;
}

// UDP source port from the inner flow's hash, in Linux's default ephemeral range
// 32768..60999, scaled the way udp_flow_src_port() does.
constexpr uint16_t vxlan_source_port(uint32_t hash) {
    constexpr uint32_t min = 32768;
    constexpr uint32_t max = 61000;
    return uint16_t(((uint64_t(hash) * (max - min)) >> 32) + min);
}

}  // namespace twill
