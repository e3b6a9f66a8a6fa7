// What one worker carries through a loop iteration: the tables it snapshotted, its
// counters and its transmit queues.
#pragma once

#include <array>
#include <cstdint>

#include <rte_mbuf.h>

#include "dataplane/counters.h"
#include "dataplane/ipv4/frag_ports.h"
#include "dataplane/tables/tables.h"
#include "dataplane/worker/queues.h"

namespace twill {
class service_table;
class conntrack;
class policy_table;
}  // namespace twill

namespace twill {

inline constexpr uint16_t burst_size = 32;
// Every received packet yields at most one packet out plus one ARP request. A worker
// sends a port's queue once it holds a full burst, checked after every receive burst,
// and every queue at the end of its loop iteration: a queue holds at most 31 + 2 x 32
// packets, or 31 + the 64 parked ones retried; only neighbour maintenance fills one, and
// it stops there and resumes after the drain.
inline constexpr uint16_t tx_queue_capacity = 4 * burst_size;

struct tx_queue {
    uint16_t n = 0;
    std::array<rte_mbuf*, tx_queue_capacity> pkts;
};

static_assert(RTE_MAX_ETHPORTS <= 64, "tx_dirty is one 64-bit mask");

struct pipeline_ctx {
    uint32_t worker = 0;  // this worker's number, 0..workers-1 (its range of connections)
    const node_params* params = nullptr;
    learned_state* learned = nullptr;
    worker_counters* counters = nullptr;
    rte_mempool* pool = nullptr;  // for packets the worker originates (ARP requests)
    // Every port's queues (dataplane/worker/queues.h); null: one worker, queue 0 of each.
    const port_layout* layout = nullptr;

    // Snapshot of the published tables, taken once per loop iteration.
    const slice_table* slices = nullptr;
    const pod_table* pods = nullptr;
    // Services live for the process and change in place; connection tracking is this
    // worker's to write.
    const service_table* services = nullptr;
    conntrack* ct = nullptr;
    // NetworkPolicy: one immutable table per version, in the snapshot like the pods.
    const policy_table* policy = nullptr;
    // The connection the service stage last translated a packet by (no index: none):
    // the policy stage judges the connection, not the rewrite.
    uint32_t svc_entry = ~uint32_t(0);
    bool svc_new = false;  // svc_entry was made for this packet
    uint64_t now_tsc = 0;
    uint32_t now_s = 0;  // now_tsc in seconds, for connection timeouts

    // Packets waiting for an ARP answer (their next hop's or pod's MAC), oldest first; a
    // learned MAC marks them for a retry, and after a second unanswered they are dropped.
    struct parked_packet {
        rte_mbuf* m;
        uint64_t tsc;
        bool to_pod;  // waiting for a local pod's MAC; else for a next hop's
    };
    static constexpr uint16_t park_capacity = 64;
    std::array<parked_packet, park_capacity> parked;
    uint16_t nparked = 0;
    // A MAC was learned since the parked packets were last looked at: by this worker
    // (parked_dirty), or by any (learned_state::learn_epoch moved past parked_epoch).
    bool parked_dirty = false;
    uint32_t parked_epoch = 0;

    // A neighbour's or pod's MAC became known or changed.
    void mac_learned() {
        parked_dirty = true;
        learned->learn_epoch.fetch_add(1, std::memory_order_release);
    }

    // Holds `m` (an IPv4 packet behind its Ethernet header, ready to send but for the
    // MAC); false when parking is off or full, and the caller drops it.
    bool park(rte_mbuf* m, bool to_pod) {
        if (!params->park_unresolved || nparked == park_capacity) {
            return false;
        }
        parked[nparked++] = {m, now_tsc, to_pod};
        return true;
    }

    // First fragments' ports, for the later fragments of their datagrams.
    frag_ports frags;

    uint16_t ip_id = 0;
    // ICMP error token bucket (dataplane/icmp/icmp.h): tokens left, when last refilled.
    uint32_t icmp_tokens = 50;
    uint64_t icmp_refill_tsc = 0;
    uint64_t tx_dirty = 0;
    std::array<tx_queue, RTE_MAX_ETHPORTS> tx;

    bool tx_room(uint16_t port) const { return tx[port].n < tx_queue_capacity; }

    void send(uint16_t port, rte_mbuf* m) {
        tx_queue& q = tx[port];
        if (q.n == tx_queue_capacity) [[unlikely]] {
            drop_packet(m, drop::tx_failed);
            return;
        }
        q.pkts[q.n++] = m;
        tx_dirty |= uint64_t(1) << port;
    }

    void drop_packet(rte_mbuf* m, drop reason) {
        counters->drop(reason);
        rte_pktmbuf_free(m);
    }
};

}  // namespace twill
