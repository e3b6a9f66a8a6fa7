// How each port's queues are shared among the workers. The control thread fills a port's
// entry when it attaches the port, before any table that names the port is published;
// workers only read it.
//
// Receive: queue q of port p is polled by worker (p + q) % workers. A port with as many
// receive queues as workers (the underlay, with RSS or af_packet's fanout spreading flows
// over them) gives every worker one queue; a port with a single queue (most pod ports)
// is polled by one worker, and the pod ports spread over the workers by their ids.
//
// Transmit: worker w sends on queue w % tx. Where a port has fewer transmit queues than
// there are workers, the workers sharing a queue take its lock around each burst (as
// Open vSwitch does when a port has fewer queues than PMD threads).
#pragma once

#include <array>
#include <cstdint>

#include <rte_ethdev.h>
#include <rte_spinlock.h>

namespace twill {

inline constexpr uint32_t max_queues = 16;  // per port and direction; config max_workers

struct port_queues {
    uint16_t rx = 1;
    uint16_t tx = 1;
    // The port computes the outer IPv4 header and UDP checksums of what it sends
    // (RTE_ETH_TX_OFFLOAD_IPV4_CKSUM and UDP_CKSUM): the underlay only.
    bool tx_cksum = false;
    mutable std::array<rte_spinlock_t, max_queues> tx_lock;

    port_queues() {
        for (rte_spinlock_t& l : tx_lock) {
            rte_spinlock_init(&l);
        }
    }
};

struct port_layout {
    uint32_t workers = 1;
    std::array<port_queues, RTE_MAX_ETHPORTS> ports;

    // Whether worker `w` polls receive queue `q` of `port`.
    bool polls(uint32_t w, uint16_t port, uint16_t q) const { return (port + q) % workers == w; }
};

}  // namespace twill
