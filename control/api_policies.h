// `get policies`: each NetworkPolicy as compiled on this node: the pods it selects, its
// rules (peers and ports as written, with the packets each allowed), and the packets
// denied and connections cut at the local pods it isolates.
#pragma once

#include <nlohmann/json.hpp>

#include "control/node_state.h"

namespace twill {

nlohmann::json get_policies(const node_state& state);

}  // namespace twill
