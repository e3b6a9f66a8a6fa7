// Maglev consistent hashing (Eisenbud et al., NSDI 2016), the `mh` scheduler of issue 4:
// a lookup table that maps a flow hash to a backend, computed on the control thread by a
// pure function. Every backend owns a share of the slots in proportion to its weight,
// and adding or removing one backend moves few slots between the others.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace twill {

struct maglev_backend {
    std::string key;      // identifies the backend across changes, e.g. "10.1.2.3:8080"
    uint32_t weight = 1;  // relative; 0 takes no new flows (a terminating endpoint)
};

inline constexpr uint32_t maglev_default_size = 65537;  // prime, as the paper requires
inline constexpr uint32_t maglev_no_backend = ~uint32_t(0);

// Slot -> index into `backends`; every slot maglev_no_backend when no backend has a
// weight. `size` must be prime. The result depends on the backends' keys and weights
// only, not on their order in the vector.
std::vector<uint32_t> maglev_table(const std::vector<maglev_backend>& backends,
                                   uint32_t size = maglev_default_size);

}  // namespace twill
