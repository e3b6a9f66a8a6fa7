// DPDK ports from devargs: attach (hot-plug a vdev or probe a PCI device), configure one
// RX and one TX queue, start; and the reverse.
#pragma once

#include <cstdint>
#include <string>

#include <rte_mempool.h>

#include "dataplane/net/addr.h"

namespace twill {

// Descriptors asked for per queue (a driver may adjust them).
inline constexpr uint16_t rx_descriptors = 1024;
inline constexpr uint16_t tx_descriptors = 1024;

struct port_result {
    bool ok = false;
    uint16_t port_id = 0;
    std::string error;  // what failed and what to check, when !ok
};

[[nodiscard]] port_result attach_port(const std::string& devargs, rte_mempool* pool,
                                      bool promiscuous);
void detach_port(uint16_t port_id);
mac_addr port_mac(uint16_t port_id);
std::string port_name(uint16_t port_id);

}  // namespace twill
