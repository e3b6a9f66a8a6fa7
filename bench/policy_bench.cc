// The NetworkPolicy stage's own cost: 1k pods (200 of them local, or --local N) in 10
// namespaces and 0, 100, 1k and 10k rules (bench/policy_gen.h), compiled and built into
// the table the workers read, over 64k random tuples with a local pod at one end, timed
// with the TSC; median and spread of 7 trials of 4M each. Two figures per size:
//  - the rule check, what a connection's first packet pays: two LPM lookups and up to two
//    allow-list lookups (egress of the source, ingress of the destination);
//  - a packet of an allowed connection already judged: the whole policy_input (LPM
//    lookups, then the connection table, which answers without the rules).
// Also the compile and build time.
//
//   twill-policy-bench [--trials N] [--checks N] [--local N]
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
#include "dataplane/service/conntrack.h"

using namespace twill;
using namespace twill::bench;

namespace {

struct probe {
    ip4_addr src, dst;
    uint8_t proto;
    uint16_t port;
};

// An IPv4 header and the first 14 bytes of TCP (or 8 of UDP): what policy_input reads.
struct [[gnu::packed]] wire {
    net::ipv4_hdr ip;
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t offset, flags;
    uint8_t rest[6];
};

wire make_wire(const probe& p, uint16_t sport, uint8_t flags) {
    wire w{};
    w.ip.version_ihl = 0x45;
    w.ip.total_length.set(sizeof(wire));
    w.ip.ttl = 64;
    w.ip.proto = p.proto;
    w.ip.src.set(p.src.value);
    w.ip.dst.set(p.dst.value);
    w.sport = net::bswap(sport);
    w.dport = net::bswap(p.port);
    w.offset = 0x50;
    w.flags = flags;
    return w;
}

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
    int local = 200;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        if (a == "--trials") {
            trials = std::max(1, std::atoi(argv[i + 1]));
        } else if (a == "--checks") {
            checks = std::max<uint64_t>(100'000, std::strtoull(argv[i + 1], nullptr, 10));
        } else if (a == "--local") {
            local = std::clamp(std::atoi(argv[i + 1]), 1, pod_count);
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
               "65536 random pod-to-pod tuples with a local end, TSC {:.2f} GHz\n\n",
               pod_count, local, ns_count, trials, checks, hz / 1e9);
    fmt::print("| rules (compiled here) | compile + build ms | classes (matrix columns) | isolated pod-directions | profiles | "
               "distinct lists | allowed | rule check, cycles median (min-max) | judged connection's packet, "
               "cycles median (min-max) |\n|---|---|---|---|---|---|---|---|---|\n");
    const auto ns = namespaces();
    const auto ps = pods(local);
    lcg r;
    std::vector<probe> probes(65536);
    const uint16_t ports[] = {80, 443, 8080, 5432, 53, 30050, 9090, 12345};
    // Every tuple has a local pod at one end (the first `local` pods are): with the
    // baseline policies it is isolated, so every probe reads the rules.
    for (probe& p : probes) {
        const bool from_local = r.below(2) == 0;
        p.src = ps[from_local ? r.below(local) : r.below(pod_count)].ip;
        p.dst = ps[from_local ? r.below(pod_count) : r.below(local)].ip;
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

        // The first allowed tuples as connections (as many at every size): opened once (a
        // SYN, or a first datagram), then their later packets through the stage as the
        // pipeline calls it.
        constexpr size_t judged_connections = 4096;
        auto ctx = std::make_unique<pipeline_ctx>();
        auto counters = std::make_unique<worker_counters>();
        node_params params;
        params.node_ip = ip4_addr::from_octets(198, 18, 0, 2);
        params.pod_cidr = {ip4_addr::from_octets(10, 245, 0, 0), 24};
        conntrack ct(1u << 17);
        ctx->params = &params;
        ctx->counters = counters.get();
        ctx->ct = &ct;
        ctx->policy = t.get();
        ctx->now_s = 1000;
        std::vector<wire> later;
        for (uint32_t i = 0; i < probes.size(); ++i) {
            const probe& p = probes[i];
            const uint16_t sport = uint16_t(20000 + i % 40000);
            if (p.src == p.dst || !policy_allows(*t, p.src, p.dst, p.proto, p.port)) {
                continue;
            }
            wire open = make_wire(p, sport, 0x02);
            if (policy_active(*ctx) &&
                !policy_input(*ctx, nullptr, &open.ip, sizeof(net::ipv4_hdr), sizeof(wire), origin::pod)) {
                continue;
            }
            later.push_back(make_wire(p, sport, 0x10));
            if (later.size() == judged_connections) {
                break;
            }
        }
        std::vector<double> judged;
        for (int trial = 0; trial < trials && !later.empty(); ++trial) {
            uint64_t passed = 0;
            const uint64_t start = rte_rdtsc_precise();
            for (uint64_t i = 0; i < checks; ++i) {
                // As the pipeline does two packets ahead (service_lookahead).
                if (policy_active(*ctx)) {
                    const wire& next = later[(i + 2) % later.size()];
                    flow_key k;
                    k.src = next.ip.src.raw;
                    k.dst = next.ip.dst.raw;
                    k.sport = next.sport;
                    k.dport = next.dport;
                    k.proto = next.ip.proto;
                    ct.prefetch(hash_flow(k));
                }
                wire& w = later[i % later.size()];
                passed += !policy_active(*ctx) ||
                          policy_input(*ctx, nullptr, &w.ip, sizeof(net::ipv4_hdr), sizeof(wire), origin::pod);
            }
            const uint64_t end = rte_rdtsc_precise();
            judged.push_back(double(end - start) / double(checks));
            if (passed != checks) {
                fmt::print(stderr, "{} of {} packets of allowed connections dropped\n", checks - passed, checks);
                return 1;
            }
        }
        const stats j = summarize(judged);
        fmt::print("| {} ({}) | {:.1f} | {} | {} | {} | {} | {:.1f}% | **{:.1f}** ({:.1f}-{:.1f}) | **{:.1f}** "
                   "({:.1f}-{:.1f}) over {} connections |\n",
                   rules, c.rules.size(), build_ms, fmt::format("{} ({})", c.classes, t->columns()),
                   c.slots.empty() ? 0 : c.slots.size() - 1,
                   t->profiles() - 1,
                   fmt::format("{} ({:.1f} ranges each)", t->distinct_lists(),
                               t->distinct_lists() ? double(t->ranges()) / t->distinct_lists() : 0.0),
                   100.0 * double(allowed) / double(checks), s.median, s.lo, s.hi, j.median, j.lo, j.hi, later.size());
    }
    rte_eal_cleanup();
    remove_eal_runtime_dir(runtime_dir);
    return 0;
}
