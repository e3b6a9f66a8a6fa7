// The NetworkPolicy stage: after the service stage (it sees the backend pod), before a
// packet is delivered, encapsulated or handed to the kernel. Egress is checked for a
// source that is a local pod, ingress for a destination that is one; a pod and itself,
// and a pod and its own node, are always allowed. Connections are stateful: when a
// connection's reply would meet an isolated pod, the connection is tracked (in the same
// table as services' connections) and its replies pass. When a tightened policy no
// longer allows a tracked connection, its next packet ends it (policy.cutEstablished).
#pragma once

#include <cstdint>

#include <rte_mbuf.h>

#include "dataplane/net/headers.h"
#include "dataplane/policy/policy_table.h"
#include "dataplane/service/service.h"
#include "dataplane/worker/ctx.h"

namespace twill {

// Whether a policy table with isolated pods is in force (else the stage is skipped).
inline bool policy_active(const pipeline_ctx& ctx) {
    return ctx.policy != nullptr && ctx.policy->isolating();
}

// The rules alone, for one direction: whether a packet from `src` to `dst` on
// `proto`/`dport` (host order) is allowed by the egress policy of `src` and the ingress
// policy of `dst` (where they are isolated local pods). Counts the rules that allow.
bool policy_allows(const policy_table& t, ip4_addr src, ip4_addr dst, uint8_t proto, uint16_t dport);

// True: go on with `m`; false: `m` was dropped. `from` is origin::nat right after the
// service stage translated it (ctx.svc_entry names the connection, if tracked).
bool policy_input(pipeline_ctx& ctx, rte_mbuf* m, net::ipv4_hdr* ip, uint32_t header_len,
                  uint32_t total_len, origin from);

}  // namespace twill
