// The service stage (kube-proxy's job): a packet of a tracked connection is translated
// as its connection says, in either direction; the first packet to a frontend (cluster
// IP, node IP:nodePort, external IP) picks a backend by the service's scheduler, is
// tracked, and is translated; everything else passes untouched. See README.md.
#pragma once

#include <cstdint>
#include <cstring>

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
    return !ctx.services->empty() || !ctx.ct->empty();
}

// A couple of packets ahead of service_input: when the frame carries a TCP, UDP or SCTP
// tuple in an IPv4 header at `ip_off` that the service filter lets through (or any, when
// `tracked`: NetworkPolicy isolates pods, and their packets ask the connection table),
// the line of the connection index its lookup starts at, so the lookup does not wait for
// memory.
inline void service_lookahead(const pipeline_ctx& ctx, const rte_mbuf* m, uint32_t ip_off, bool tracked) {
    if (ctx.ct->empty() || m->data_len < ip_off + 24) {
        return;
    }
    const uint8_t* ip = rte_pktmbuf_mtod_offset(m, const uint8_t*, ip_off);
    const uint8_t proto = ip[9];
    const uint32_t hl = (ip[0] & 15u) * 4;
    if (ip[-2] != 0x08 || ip[-1] != 0x00 || m->data_len < ip_off + hl + 4 ||
        !net::has_ports(proto)) {
        return;
    }
    flow_key k;
    std::memcpy(&k.src, ip + 12, 4);
    std::memcpy(&k.dst, ip + 16, 4);
    std::memcpy(&k.sport, ip + hl, 2);
    std::memcpy(&k.dport, ip + hl + 2, 2);
    k.proto = proto;
    if (tracked || ctx.services->may_match(k.src, k.dst, proto, k.sport, k.dport) ||
        k.dst == net::bswap(ctx.params->pod_cidr.addr.value)) {
        ctx.ct->prefetch(hash_flow(k));
    }
}

// `ip` is an accepted IPv4 packet of `total_len` bytes behind the Ethernet header.
svc_verdict service_input(pipeline_ctx& ctx, rte_mbuf* m, net::ipv4_hdr* ip, uint32_t header_len,
                          uint32_t total_len, origin from);

// Whether connection `e` has timed out (the sweep may not have reached it yet).
inline bool conntrack_expired(const pipeline_ctx& ctx, const ct_entry& e) {
    return int32_t(e.expires.load(std::memory_order_relaxed) - ctx.now_s) <= 0;
}

// A packet of connection `e` (entry `index`) seen (`reply`: in the reply direction): TCP
// state, timeout, and whether another worker opened it.
void conntrack_seen(pipeline_ctx& ctx, uint32_t index, ct_entry& e, bool reply, uint8_t proto,
                    uint8_t tcp_flags);
// Ends connection `e` now (counted as expired).
void conntrack_forget(pipeline_ctx& ctx, uint32_t e);
uint32_t conntrack_timeout(const node_params& p, ct_state s);

// Expires up to `budget` connections whose time is up; the worker calls it every
// millisecond or so, which walks a million entries in about four seconds.
void conntrack_sweep(pipeline_ctx& ctx, uint32_t budget);

}  // namespace twill
