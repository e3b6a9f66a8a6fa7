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

}  // namespace twill
