// The figures of twill-service-bench: trials per scenario and size, printed as Markdown
// tables and kept as JSON (bench/services.sh reads it).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace twill::bench {

// One scenario's trials, in cycles per packet: io forwarding, twill, and twill's Mpps;
// cost = twill - io; own = cost - plain encap's cost, paired per trial.
struct series {
    std::vector<double> io, twill, mpps, cost, own;

    void add(double io_cycles, double twill_cycles, double twill_mpps) {
        io.push_back(io_cycles);
        twill.push_back(twill_cycles);
        mpps.push_back(twill_mpps);
        cost.push_back(twill_cycles - io_cycles);
    }
    void own_over(const series& plain) {
        for (size_t t = 0; t < cost.size(); ++t) {
            own.push_back(cost[t] - plain.cost[t]);
        }
    }
};

struct size_result {
    uint32_t n;                 // services; 0 = a node without any
    double parse_s, install_s;  // node file parsed and validated; node_state built
    uint64_t new_flows;         // per new-flow trial
    series plain, hit, fresh;   // hit and fresh are empty for n = 0
};

void print_tables(const std::vector<size_result>& results, unsigned trials, uint64_t packets,
                  double tsc_ghz);

// `header` is the members before "sizes" (machine, DPDK, options), without braces.
std::string results_json(const std::vector<size_result>& results, const std::string& header);

}  // namespace twill::bench
