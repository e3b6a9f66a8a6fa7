// IPv4 fragmentation for the rare packet without DF that does not fit the overlay MTU
// (a pod whose MTU is larger than flannel.1's), as the kernel fragments before flannel.1
// encapsulates. Copies into fresh single-segment mbufs: simple, and the common path
// never comes here.
#pragma once

#include <cstdint>

#include <rte_mbuf.h>

#include "dataplane/net/headers.h"
#include "dataplane/worker/ctx.h"

namespace twill {

inline constexpr uint16_t max_fragments = 8;

// Cuts the IPv4 packet at `ip` (behind an Ethernet header, `total_len` bytes, DF clear)
// in `m` into fragments of at most `mtu` bytes (and of what one mbuf holds, for a jumbo
// MTU), each in a new mbuf with room for the Ethernet header in front; the options of the
// first fragment's header are copied into all (none are sent by pods in practice). Returns how many were made, 0 when the pool ran dry or
// more than `max_fragments` would be needed; `m` is left to the caller.
uint16_t ipv4_fragment(pipeline_ctx& ctx, const rte_mbuf* m, const net::ipv4_hdr* ip,
                       uint32_t header_len, uint32_t total_len, uint16_t mtu,
                       rte_mbuf* out[max_fragments]);

}  // namespace twill
