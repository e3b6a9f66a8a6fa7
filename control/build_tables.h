// Turns a validated node file into the tables workers read: pure functions of the
// config, except for the slots they take in learned_state.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "control/config.h"
#include "control/slots.h"
#include "dataplane/tables/tables.h"

namespace twill {

// Start-up parameters; the port MAC and TSC rate come from the running EAL.
node_params make_params(const config::node_file& cfg, uint16_t underlay_port,
                        const mac_addr& underlay_mac, uint64_t tsc_hz);

// What identifies a local pod to the dataplane: a change to any of it is a new pod.
std::string pod_identity(const config::pod& p);

std::unique_ptr<const slice_table> build_slice_table(const config::node_file& cfg,
                                                     const node_params& params,
                                                     neighbour_slots& slots,
                                                     learned_state& learned);

// `port_ids` maps each local pod's devargs to its attached DPDK port.
std::unique_ptr<const pod_table> build_pod_table(const config::node_file& cfg,
                                                 const std::map<std::string, uint16_t>& port_ids,
                                                 pod_slots& slots, learned_state& learned);

}  // namespace twill
