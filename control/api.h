// The control API: one JSON request in, one JSON reply out. Served on the control
// socket (control_socket.h); the protocol is documented in control/README.md.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "control/node_state.h"

namespace twill {

struct api_context {
    node_state& state;
    // Counters as JSON (summed over workers), from whoever owns them.
    std::function<nlohmann::json()> stats;
    std::string version;
};

// Handles one request line; never throws, whatever the input.
std::string handle_request(const std::string& line, api_context& ctx);

}  // namespace twill
