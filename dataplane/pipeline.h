// The packet path. Each entry point takes one receive burst from one port and sorts the
// packets into transmit queues (ctx.tx) or counted drops; nothing here blocks, allocates
// from the heap, locks, logs or throws.
#pragma once

#include <cstdint>

#include <rte_mbuf.h>

#include "dataplane/worker/ctx.h"

namespace twill {

// A burst from the underlay port: ARP for the node, VXLAN from known nodes.
void underlay_input(pipeline_ctx& ctx, rte_mbuf** pkts, uint16_t n);

// A burst from a local pod's port: ARP answered as the gateway, IPv4 routed.
void pod_input(pipeline_ctx& ctx, uint16_t port, rte_mbuf** pkts, uint16_t n);

// A burst from the host port (the node's kernel): IPv4 to the gateway MAC routed to
// pods, ARP for pod addresses answered, everything else out of the underlay port as is.
void host_input(pipeline_ctx& ctx, rte_mbuf** pkts, uint16_t n);

// Sends the parked packets whose MAC is now known, drops those waiting for a second or
// whose destination went away. Cheap when nothing was learned and nothing expired.
void retry_parked(pipeline_ctx& ctx);

// Drops every parked packet (a worker's end), counted as unresolved.
void drop_parked(pipeline_ctx& ctx);

// Once a second or so: ARP for unresolved next hops and for pods whose MAC is unknown.
// Returns true when a transmit queue filled up before everything was asked: call again
// after draining the queues.
bool neighbour_maintenance(pipeline_ctx& ctx);

}  // namespace twill
