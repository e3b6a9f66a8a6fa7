// Human-readable counter reports, printed on SIGUSR1 and at exit.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "dataplane/counters.h"

namespace twill {

struct named_port {
    uint16_t id;
    std::string role;  // "underlay", "pod default/web-1"
    std::string name;  // the ethdev name
};

// The same as JSON, for the control API.
nlohmann::json counters_json(const std::vector<named_port>& ports,
                             const worker_counters* const* workers, size_t nb_workers);

std::string counters_report(const std::string& node, const std::vector<named_port>& ports,
                            const worker_counters* const* workers, size_t nb_workers);

}  // namespace twill
