// Turns a validated node file into the tables workers read.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "control/config.h"
#include "dataplane/tables/tables.h"

namespace twill {

// Start-up parameters; the port MAC and TSC rate come from the running EAL.
node_params make_params(const config::node_file& cfg, uint16_t underlay_port,
                        const mac_addr& underlay_mac, uint64_t tsc_hz);

// `port_ids` maps each local pod's devargs to its attached DPDK port. Hands out slots
// in `learned` and seeds configured pod MACs there.
std::unique_ptr<const pod_table> build_pod_table(const config::node_file& cfg,
                                                 const std::map<std::string, uint16_t>& port_ids,
                                                 learned_state& learned);

}  // namespace twill
