#include "dataplane/worker/worker.h"

#include <memory>
#include <vector>

#include <rte_cycles.h>
#include <rte_ethdev.h>

#include "dataplane/pipeline.h"
#include "dataplane/service/service.h"
#include "dataplane/worker/io.h"

namespace twill {

// Connections looked at per sweep, once a millisecond: a million in about four seconds;
// up to 16 times more as the worker's range of the table fills (conntrack::sweep_budget).
constexpr uint32_t sweep_budget = 256;

int worker_main(void* arg) {
    const worker_args& a = *static_cast<const worker_args*>(arg);
    // The context is large (transmit queues for every port): keep it off the lcore stack.
    auto ctx = std::make_unique<pipeline_ctx>();
    ctx->worker = a.worker;
    ctx->layout = a.layout;
    ctx->params = a.params;
    ctx->learned = a.learned;
    ctx->counters = a.counters;
    ctx->pool = a.pool;
    ctx->services = a.tables->services;
    ctx->ct = a.tables->ct;

    rte_rcu_qsbr_thread_register(a.qsbr, a.thread_id);
    rte_rcu_qsbr_thread_online(a.qsbr, a.thread_id);

    // The underlay's and host port's queues this worker polls; a pod port's are looked up
    // as pods come and go.
    const port_layout& layout = *a.layout;
    const uint16_t underlay = a.params->underlay_port;
    const uint16_t host = a.params->host_port;
    std::vector<uint16_t> underlay_queues, host_queues;
    for (uint16_t q = 0; q < layout.ports[underlay].rx; ++q) {
        if (layout.polls(a.worker, underlay, q)) {
            underlay_queues.push_back(q);
        }
    }
    for (uint16_t q = 0; a.params->has_host() && q < layout.ports[host].rx; ++q) {
        if (layout.polls(a.worker, host, q)) {
            host_queues.push_back(q);
        }
    }
    // Worker 0 alone asks for the MACs of next hops and pods.
    const bool maintains = a.worker == 0;

    const uint64_t maintenance_period = a.params->tsc_hz;
    uint64_t next_maintenance = 0;
    const uint64_t sweep_period = a.params->tsc_hz / 1000;
    uint64_t next_sweep = 0;
    rte_mbuf* pkts[burst_size];
    while (!a.stop->load(std::memory_order_relaxed)) {
        // Tables are read through this snapshot until the quiescent report below.
        ctx->slices = a.tables->slices.load(std::memory_order_acquire);
        ctx->pods = a.tables->pods.load(std::memory_order_acquire);
        ctx->policy = a.tables->policy.load(std::memory_order_acquire);
        ctx->now_tsc = rte_rdtsc();
        ctx->now_s = uint32_t(ctx->now_tsc / a.params->tsc_hz);

        bool busy = false;
        for (uint16_t q : underlay_queues) {
            if (uint16_t n = receive(*ctx, underlay, q, pkts)) {
                busy = true;
                underlay_input(*ctx, pkts, n);
                flush(*ctx, burst_size);
            }
        }
        for (uint16_t q : host_queues) {
            if (uint16_t n = receive(*ctx, host, q, pkts)) {
                busy = true;
                host_input(*ctx, pkts, n);
                flush(*ctx, burst_size);
            }
        }
        for (const local_pod_entry& pod : ctx->pods->pods()) {
            for (uint16_t q = 0, end = layout.ports[pod.port_id].rx; q < end; ++q) {
                if (!layout.polls(a.worker, pod.port_id, q)) {
                    continue;
                }
                if (uint16_t n = receive(*ctx, pod.port_id, q, pkts)) {
                    busy = true;
                    pod_input(*ctx, pod.port_id, pkts, n);
                    flush(*ctx, burst_size);
                }
            }
        }
        if (ctx->nparked != 0) [[unlikely]] {
            retry_parked(*ctx);
        }
        if (ctx->now_tsc >= next_sweep) [[unlikely]] {
            conntrack_sweep(*ctx, sweep_budget);
            next_sweep = ctx->now_tsc + sweep_period;
        }
        if (maintains && ctx->now_tsc >= next_maintenance) [[unlikely]] {
            bool more = neighbour_maintenance(*ctx);
            flush(*ctx);
            next_maintenance = more ? ctx->now_tsc : ctx->now_tsc + maintenance_period;
        }
        // Every port's packets of this iteration go out in one burst per port (a full one
        // went as soon as it filled). Nothing is held past the quiescent report: a port
        // the control thread removes after the grace period has nothing left queued.
        flush(*ctx);
        rte_rcu_qsbr_quiescent(a.qsbr, a.thread_id);
        if (busy) {
            ctx->counters->busy_cycles.add(rte_rdtsc() - ctx->now_tsc);
        }
    }
    drop_parked(*ctx);  // nothing waits past the end
    rte_rcu_qsbr_thread_offline(a.qsbr, a.thread_id);
    rte_rcu_qsbr_thread_unregister(a.qsbr, a.thread_id);
    return 0;
}

}  // namespace twill
