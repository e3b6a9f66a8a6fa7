// Turns validated desired state into what workers read: pure functions of the config,
// except for the slots they take in learned_state.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "control/config.h"
#include "control/desired.h"
#include "control/slots.h"
#include "dataplane/tables/tables.h"

namespace twill {

// Start-up parameters; the port MAC and TSC rate come from the running EAL.
node_params make_params(const config::node_file& cfg, uint16_t underlay_port,
                        const mac_addr& underlay_mac, uint64_t tsc_hz);

// What identifies a local pod to the dataplane: a change to any of it is a new pod.
std::string pod_identity(const config::pod& p);

// The entry of one remote node, in `slot` of the slice table (and of the neighbours).
std::unique_ptr<const remote_node_entry> make_node_entry(const config::remote_node& n,
                                                         const node_params& params, uint32_t slot);

// The pod table for `local` (pods with a port); `port_ids` maps each one's devargs to its
// attached DPDK port.
std::unique_ptr<const pod_table> build_pod_table(const ip4_prefix& slice,
                                                 const std::map<pod_key, config::pod>& local,
                                                 const std::map<std::string, uint16_t>& port_ids,
                                                 pod_slots& slots, learned_state& learned);

}  // namespace twill
