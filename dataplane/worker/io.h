// Port I/O of a worker iteration, shared by the worker loop and the benchmarks so that
// both measure the same code.
#pragma once

#include <rte_ethdev.h>

#include "dataplane/worker/ctx.h"

namespace twill {

// One receive burst from queue `queue` of `port`, counted.
inline uint16_t receive(pipeline_ctx& ctx, uint16_t port, uint16_t queue, rte_mbuf** pkts) {
    uint16_t n = rte_eth_rx_burst(port, queue, pkts, burst_size);
    if (n == 0) {
        return 0;
    }
    uint64_t bytes = 0;
    for (uint16_t i = 0; i < n; ++i) {
        bytes += pkts[i]->pkt_len;
    }
    port_counters& c = ctx.counters->ports[port];
    c.rx_packets.add(n);
    c.rx_bytes.add(bytes);
    return n;
}

// Transmits the packets queued for every port that has at least `min` of them (1: all);
// what a port refuses is freed and counted.
inline void flush(pipeline_ctx& ctx, uint16_t min = 1) {
    uint64_t kept = 0;
    while (ctx.tx_dirty != 0) {
        uint16_t port = uint16_t(__builtin_ctzll(ctx.tx_dirty));
        ctx.tx_dirty &= ctx.tx_dirty - 1;
        tx_queue& q = ctx.tx[port];
        if (q.n < min) {
            kept |= uint64_t(1) << port;
            continue;
        }
        // Count bytes first: once handed over, the driver may free the mbufs.
        uint64_t bytes = 0;
        for (uint16_t i = 0; i < q.n; ++i) {
            bytes += q.pkts[i]->pkt_len;
        }
        uint16_t sent;
        if (ctx.layout == nullptr) {
            sent = rte_eth_tx_burst(port, 0, q.pkts.data(), q.n);
        } else {
            const port_queues& pq = ctx.layout->ports[port];
            const auto txq = uint16_t(ctx.worker % pq.tx);
            if (pq.tx >= ctx.layout->workers) [[likely]] {
                sent = rte_eth_tx_burst(port, txq, q.pkts.data(), q.n);
            } else {
                rte_spinlock_t& lock = pq.tx_lock[txq];
                rte_spinlock_lock(&lock);
                sent = rte_eth_tx_burst(port, txq, q.pkts.data(), q.n);
                rte_spinlock_unlock(&lock);
            }
        }
        for (uint16_t i = sent; i < q.n; ++i) {
            bytes -= q.pkts[i]->pkt_len;
            rte_pktmbuf_free(q.pkts[i]);
        }
        port_counters& c = ctx.counters->ports[port];
        c.tx_packets.add(sent);
        c.tx_bytes.add(bytes);
        if (sent < q.n) {
            c.tx_failed.add(q.n - sent);
            ctx.counters->drop(drop::tx_failed, q.n - sent);
        }
        q.n = 0;
    }
    ctx.tx_dirty = kept;
}

}  // namespace twill
