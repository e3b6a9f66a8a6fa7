// The service stage (kube-proxy's job): a packet of a tracked connection is translated
// as its connection says, in either direction; the first packet to a frontend (cluster
// IP, node IP:nodePort, external IP) picks a backend by the service's scheduler, is
// tracked, and is translated; everything else passes untouched. See README.md.
#pragma once

#include <cstdint>

#include <rte_mbuf.h>

#include "dataplane/net/headers.h"
#include "dataplane/service/conntrack.h"
#include "dataplane/service/service_table.h"
#include "dataplane/worker/ctx.h"

namespace twill {

// Where a packet entered the node, which decides where a reply to it goes and whether
// its source is masqueraded.
enum class origin : uint8_t {
    pod,       // a local pod's port
    overlay,   // decapsulated from a remote node
    host,      // the node's kernel (hostNetwork pods, the node's own sockets)
    underlay,  // the underlay, not VXLAN (node ports, external IPs)
    nat,       // already translated here: route only
};

enum class svc_verdict : uint8_t {
    pass,       // not a service packet: unchanged, route it
    rewritten,  // translated (or turned into a reset to its sender): route it anew
    consumed,   // sent or dropped here
};

// Whether the stage has anything to do: a frontend, or a connection to translate.
inline bool services_active(const pipeline_ctx& ctx) {
    return !ctx.services->empty() || ctx.ct->size() != 0;
}

// `ip` is an accepted IPv4 packet of `total_len` bytes behind the Ethernet header.
svc_verdict service_input(pipeline_ctx& ctx, rte_mbuf* m, net::ipv4_hdr* ip, uint32_t header_len,
                          uint32_t total_len, origin from);

// Expires up to `budget` connections whose time is up; the worker calls it every
// millisecond or so, which walks a million entries in about four seconds.
void conntrack_sweep(pipeline_ctx& ctx, uint32_t budget);

}  // namespace twill
