// DPDK ports from devargs: attach (hot-plug a vdev or probe a PCI device), configure a
// receive and a transmit queue per worker where the port has them (RSS spreading flows
// over the receive queues) and the offloads twill uses, start; and the reverse.
#pragma once

#include <cstdint>
#include <string>

#include <rte_mempool.h>

#include "dataplane/net/addr.h"
#include "dataplane/worker/queues.h"

namespace twill {

// Descriptors asked for per queue (a driver may adjust them).
inline constexpr uint16_t rx_descriptors = 1024;
inline constexpr uint16_t tx_descriptors = 1024;

struct port_wants {
    uint16_t queues = 1;    // receive and transmit queues: one per worker
    bool promiscuous = false;
    bool checksums = false;  // offload the outer IPv4 and UDP checksums (the underlay)
    // The largest IPv4 packet the port must carry (0: the port's default, 1500). Frames
    // larger than one mbuf ask for receive scatter and multi-segment transmit; a port
    // that cannot scatter receives into `jumbo_pool`'s mbufs (one frame each) if given.
    uint16_t mtu = 0;
    rte_mempool* jumbo_pool = nullptr;
};

struct port_result {
    bool ok = false;
    uint16_t port_id = 0;
    // What the port gave: at most the queues asked for, and whether it offloads checksums
    // (workers then read it from their port_layout).
    port_queues queues;
    std::string error;    // what failed and what to check, when !ok
    std::string warning;  // what the port could not give (e.g. the MTU), when ok
};

[[nodiscard]] port_result attach_port(const std::string& devargs, rte_mempool* pool,
                                      const port_wants& wants);
void detach_port(uint16_t port_id);
mac_addr port_mac(uint16_t port_id);
std::string port_name(uint16_t port_id);

}  // namespace twill
