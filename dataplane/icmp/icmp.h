// ICMP errors the node sends back to a packet's source (RFC 792, RFC 1812 4.3.2), from
// its overlay address (node.podCIDR's network address, which flannel.1 carries), so that
// path MTU discovery and traceroute work across twill as across the kernel path.
#pragma once

#include <cstdint>

#include <rte_mbuf.h>

#include "dataplane/net/headers.h"
#include "dataplane/worker/ctx.h"

namespace twill {

namespace icmp {
inline constexpr uint8_t echo_reply = 0;
inline constexpr uint8_t dest_unreachable = 3;
inline constexpr uint8_t code_frag_needed = 4;
inline constexpr uint8_t code_port_unreachable = 3;
inline constexpr uint8_t time_exceeded = 11;
inline constexpr uint8_t code_ttl = 0;
// Linux's icmp_msgs_per_sec and icmp_msgs_burst.
inline constexpr uint32_t per_second = 1000;
inline constexpr uint32_t burst = 50;
}  // namespace icmp

// Drops `m` (an IPv4 packet at `ip` behind an Ethernet header, lengths already checked)
// for `reason`, and answers its source with ICMP `type`/`code` (`mtu`: the next-hop MTU
// of "fragmentation needed"), quoting as much of it as fits in 576 bytes. No answer to a
// later fragment, to an ICMP error, to a source that is not a unicast address in the
// cluster, or beyond the rate limit (counted).
void icmp_error(pipeline_ctx& ctx, rte_mbuf* m, const net::ipv4_hdr* ip, uint8_t type,
                uint8_t code, uint16_t mtu, drop reason);

}  // namespace twill
