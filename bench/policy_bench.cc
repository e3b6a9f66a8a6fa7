// The NetworkPolicy check's own cost: 1k pods (200 of them local) in 10 namespaces and
// 0, 100, 1k and 10k rules (bench/policy_gen.h), compiled and built into the table the
// workers read; then the stateless check of one direction (egress of the source, ingress
// of the destination: two LPM lookups and up to two allow-list lookups) over 64k random
// pod-to-pod tuples, timed with the TSC. Median and spread of 7 trials of 4M checks.
// Also the compile and build time.
//
//   twill-policy-bench [--trials N] [--checks N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <unistd.h>

#include <fmt/format.h>
#include <rte_cycles.h>
#include <rte_eal.h>

#include "bench/policy_gen.h"
#include "control/policy_compile.h"
#include "control/eal.h"
#include "control/policy_publisher.h"
#include "dataplane/policy/policy.h"

using namespace twill;
using namespace twill::bench;

namespace {

struct probe {
    ip4_addr src, dst;
    uint8_t proto;
    uint16_t port;
};

struct stats {
    double median, lo, hi;
};
stats summarize(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return {v[v.size() / 2], v.front(), v.back()};
}

}  // namespace

int main(int argc, char** argv) {
    int trials = 7;
    uint64_t checks = 4'000'000;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        if (a == "--trials") {
            trials = std::max(1, std::atoi(argv[i + 1]));
        } else if (a == "--checks") {
            checks = std::max<uint64_t>(100'000, std::strtoull(argv[i + 1], nullptr, 10));
        }
    }
    std::vector<std::string> eal = {"twill-policy-bench", "--no-huge", "-m", "512", "--no-pci",
                                    "--lcores=0@1", "--log-level=error",
                                    "--file-prefix=twill-policy-bench-" + std::to_string(getpid())};
    std::vector<char*> eal_argv;
    for (std::string& s : eal) {
        eal_argv.push_back(s.data());
    }
    if (rte_eal_init(int(eal_argv.size()), eal_argv.data()) < 0) {
        fmt::print(stderr, "cannot start EAL\n");
        return 1;
    }
    const std::string runtime_dir = eal_runtime_dir();  // removed at exit
    const double hz = double(rte_get_tsc_hz());
    fmt::print("NetworkPolicy check: {} pods ({} local) in {} namespaces, {} trials x {} checks over "
               "65536 random pod-to-pod tuples, TSC {:.2f} GHz\n\n",
               pod_count, 200, ns_count, trials, checks, hz / 1e9);
    fmt::print("| rules | compile + build ms | classes | isolated pod-directions | profiles | distinct lists | "
               "allowed | cycles/check median (min-max) | ns/check |\n|---|---|---|---|---|---|---|---|---|\n");
    const auto ns = namespaces();
    const auto ps = pods(200);
    lcg r;
    std::vector<probe> probes(65536);
    const uint16_t ports[] = {80, 443, 8080, 5432, 53, 30050, 9090, 12345};
    for (probe& p : probes) {
        p.src = ps[r.below(pod_count)].ip;
        p.dst = ps[r.below(pod_count)].ip;
        p.proto = r.below(4) == 0 ? config::proto_udp : config::proto_tcp;
        p.port = ports[r.below(8)];
    }
    for (int rules : {0, 100, 1000, 10000}) {
        const auto pols = policies(rules);
        const auto t0 = std::chrono::steady_clock::now();
        const policy::compiled c = policy::compile(ns, ps, pols);
        std::string error;
        std::unique_ptr<policy_table> t = policy_table::build(make_policy_spec(c, true), 1, error);
        const double build_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        if (t == nullptr) {
            fmt::print(stderr, "{}\n", error);
            return 1;
        }
        std::vector<double> cycles;
        uint64_t allowed = 0;
        for (int trial = 0; trial < trials; ++trial) {
            uint64_t ok = 0;
            const uint64_t start = rte_rdtsc_precise();
            for (uint64_t i = 0; i < checks; ++i) {
                const probe& p = probes[i & 65535];
                ok += policy_allows(*t, p.src, p.dst, p.proto, p.port);
            }
            const uint64_t end = rte_rdtsc_precise();
            cycles.push_back(double(end - start) / double(checks));
            allowed = ok;
        }
        const stats s = summarize(cycles);
        fmt::print("| {} | {:.1f} | {} | {} | {} | {} | {:.1f}% | **{:.1f}** ({:.1f}-{:.1f}) | {:.1f} |\n", rules,
                   build_ms, c.classes, c.slots.empty() ? 0 : c.slots.size() - 1, t->profiles() - 1,
                   fmt::format("{} ({:.1f} ranges each)", t->distinct_lists(),
                               t->distinct_lists() ? double(t->ranges()) / t->distinct_lists() : 0.0),
                   100.0 * double(allowed) / double(checks), s.median, s.lo, s.hi, s.median / hz * 1e9);
    }
    rte_eal_cleanup();
    remove_eal_runtime_dir(runtime_dir);
    return 0;
}
