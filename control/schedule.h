// The schedulers' tables, computed on the control thread by pure functions of the
// backends' weights (and, for Maglev, their identities), one per service frontend:
//   rr   every backend with a weight, in order, one turn each (IPVS rr);
//   wrr  turns in proportion to weight, spread out (smooth weighted round-robin);
//   lc   the candidates; the worker picks the least loaded (IPVS lc: active x 256 +
//        inactive connections);
//   sh   256 buckets by source address, filled in turn by weight (IPVS sh);
//   mh   a 65537-slot Maglev table by source address and port (control/maglev.h).
// Entries are indexes into the backend list; no_backend marks an empty bucket.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/service/service_table.h"

namespace twill {

inline constexpr uint16_t schedule_no_backend = 0xffff;
inline constexpr uint32_t sh_buckets = 256;
// wrr turns are capped: larger weight sums are scaled down in proportion.
inline constexpr uint32_t wrr_max_turns = 65536;

struct schedule_backend {
    std::string key;  // "ip:port", what Maglev hashes
    uint32_t weight = 0;
};

std::vector<uint16_t> build_schedule(sched_kind kind, const std::vector<schedule_backend>& backends);

}  // namespace twill
