// `get services` (what `ipvsadm -Ln` shows: frontends, scheduler, backends with weight and
// active/inactive connections) and `get conntrack` (tracked connections, filtered).
#pragma once

#include <nlohmann/json.hpp>

#include "control/node_state.h"

namespace twill {

nlohmann::json get_services(const node_state& state);

// Filters, each optional: "service" (VIP or VIP:port), "backend" (IP or IP:port),
// "client" (IP or IP:port), "protocol" (TCP, UDP, SCTP), "limit" (items listed, default
// 1000; "total" counts every match).
nlohmann::json get_conntrack(const node_state& state, const nlohmann::json& filters,
                             std::string& error);

}  // namespace twill
