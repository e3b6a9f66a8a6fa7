// Routing an IPv4 packet once it is inside the node: to a local pod, or into VXLAN.
#pragma once

#include <rte_mbuf.h>

#include "dataplane/net/headers.h"
#include "dataplane/worker/ctx.h"

namespace twill {

// A frame that came out of the overlay (decapsulated): must be IPv4 to a local pod.
void overlay_input(pipeline_ctx& ctx, rte_mbuf* m);

// Decrements the TTL, rewrites the Ethernet header and queues on the pod's port.
void deliver_local(pipeline_ctx& ctx, rte_mbuf* m, net::ipv4_hdr* ip, uint32_t pod);

}  // namespace twill
