// NetworkPolicy compile time: 1k pods in 10 namespaces, 100 / 1k / 10k rules mixing pod
// selectors, namespace selectors, both, expressions, ipBlocks with excepts, empty peers,
// ports, endPort ranges and named ports; median and spread of 5 compiles each.
//
//   twill-policy-compile-bench [LOCAL_PODS...]   (default: 100 and 1000 of the 1k local)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "control/policy_compile.h"

using namespace twill;

namespace {

constexpr int pod_count = 1000;
constexpr int ns_count = 10;

struct lcg {
    uint64_t s = 0x9e3779b97f4a7c15ull;
    uint32_t below(uint32_t n) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        return uint32_t(s >> 33) % n;
    }
};

std::string ns_name(int i) {
    return fmt::format("ns-{}", i);
}

std::vector<config::namespace_def> namespaces() {
    std::vector<config::namespace_def> out;
    for (int i = 0; i < ns_count; ++i) {
        out.push_back({ns_name(i),
                       {{"team", fmt::format("team-{}", i % 5)}, {"env", i % 2 ? "prod" : "dev"}}});
    }
    return out;
}

std::vector<config::pod> pods(int local) {
    const char* tiers[] = {"web", "api", "db"};
    std::vector<config::pod> out;
    for (int i = 0; i < pod_count; ++i) {
        config::pod p;
        p.name = fmt::format("pod-{}", i);
        p.ns = ns_name(i % ns_count);
        p.ip = ip4_addr::from_octets(10, 244, uint8_t(i / 200), uint8_t(2 + i % 200));
        p.port = i < local ? fmt::format("net_null{}", i) : "";
        p.labels = {{"app", fmt::format("app-{}", (i / ns_count) % 20)},
                    {"tier", tiers[i % 3]},
                    {"version", fmt::format("v{}", i % 4)}};
        p.container_ports = {{"http", config::proto_tcp, uint16_t(i % 2 ? 80 : 8080)},
                             {"metrics", config::proto_tcp, 9090}};
        out.push_back(std::move(p));
    }
    return out;
}

config::label_selector labels(std::string key, std::string value) {
    return {{{std::move(key), std::move(value)}}, {}};
}

config::policy_port port(uint8_t proto, std::optional<uint16_t> number,
                         std::optional<uint16_t> end = {}, std::string name = "") {
    config::policy_port p;
    p.protocol = proto;
    p.port = number;
    p.end_port = end;
    p.name = std::move(name);
    return p;
}

config::policy_rule rule(lcg& r) {
    config::policy_rule out;
    config::policy_peer peer;
    switch (r.below(6)) {
        case 0:
            peer.pod_selector = labels("app", fmt::format("app-{}", r.below(20)));
            break;
        case 1:
            peer.namespace_selector = labels("team", fmt::format("team-{}", r.below(5)));
            break;
        case 2:
            peer.namespace_selector = labels("team", fmt::format("team-{}", r.below(5)));
            peer.pod_selector = labels("tier", r.below(2) ? "web" : "api");
            break;
        case 3: {
            const uint8_t x = uint8_t(r.below(256));
            peer.block = config::ip_block{{ip4_addr::from_octets(172, 16, x, 0), 24},
                                          {{ip4_addr::from_octets(172, 16, x, 128), 28}}};
            break;
        }
        case 4: {
            config::label_selector s;
            s.match_expressions.push_back(
                {"tier", config::label_requirement::op::in, {"web", "api"}});
            s.match_expressions.push_back({"version",
                                           config::label_requirement::op::not_in,
                                           {fmt::format("v{}", r.below(4))}});
            peer.pod_selector = s;
            break;
        }
        default:
            break;  // every address
    }
    if (peer.pod_selector || peer.namespace_selector || peer.block) {
        out.peers.push_back(peer);
    }
    const uint16_t common[] = {80, 443, 8080, 5432, 6379};
    switch (r.below(5)) {
        case 0:
            out.ports.push_back(port(config::proto_tcp, common[r.below(5)]));
            break;
        case 1: {
            const auto lo = uint16_t(30000 + r.below(2000));
            out.ports.push_back(port(config::proto_tcp, lo, uint16_t(lo + r.below(100))));
            break;
        }
        case 2:
            out.ports.push_back(port(config::proto_tcp, {}, {}, "http"));
            break;
        case 3:
            out.ports.push_back(port(config::proto_udp, 53));
            break;
        default:
            break;  // every port
    }
    return out;
}

std::vector<config::network_policy> policies(int rules) {
    lcg r;
    std::vector<config::network_policy> out;
    for (int j = 0; j * 4 < rules; ++j) {
        config::network_policy p;
        p.name = fmt::format("pol-{}", j);
        p.ns = ns_name(j % ns_count);
        p.pod_selector = labels("app", fmt::format("app-{}", (j / ns_count) % 20));
        p.ingress = j % 3 != 2;
        p.egress = j % 3 != 1;
        for (int k = 0; k < 4; ++k) {
            const bool egress = p.egress && (!p.ingress || k % 2);
            (egress ? p.egress_rules : p.ingress_rules).push_back(rule(r));
        }
        out.push_back(std::move(p));
    }
    return out;
}

// The thread's CPU time: on a shared machine, the wall time also counts waiting for a core.
double thread_cpu_ms() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) / 1e6;
}

std::string cpu_model() {
    std::ifstream f("/proc/cpuinfo");
    for (std::string line; std::getline(f, line);) {
        if (line.rfind("model name", 0) == 0) {
            return line.substr(line.find(':') + 2);
        }
    }
    return "unknown CPU";
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<int> locals;
    for (int i = 1; i < argc; ++i) {
        locals.push_back(std::atoi(argv[i]));
    }
    if (locals.empty()) {
        locals = {100, 1000};
    }
    fmt::print(
        "policy compile, {} pods in {} namespaces, {}; median of 5 (min..max), and median thread "
        "CPU time\n",
        pod_count, ns_count, cpu_model());
    fmt::print("{:>6} {:>6} {:>10} {:>18} {:>10} {:>8} {:>6} {:>9} {:>9}\n", "rules", "local",
               "median", "spread", "cpu", "classes", "slots", "entries", "prefixes");
    const auto ns = namespaces();
    for (int local : locals) {
        if (local < 1 || local > pod_count) {
            fmt::print(stderr, "LOCAL_PODS must be 1..{}\n", pod_count);
            return 2;
        }
        const auto ps = pods(local);
        for (int rules : {100, 1000, 10000}) {
            const auto pols = policies(rules);
            std::vector<double> ms, cpu;
            policy::compiled c;
            for (int run = 0; run < 5; ++run) {
                const auto t0 = std::chrono::steady_clock::now();
                const double c0 = thread_cpu_ms();
                policy::compiled fresh = policy::compile(ns, ps, pols);
                cpu.push_back(thread_cpu_ms() - c0);
                const auto t1 = std::chrono::steady_clock::now();
                ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
                c = std::move(fresh);  // the previous result is freed outside the timing
            }
            std::sort(ms.begin(), ms.end());
            std::sort(cpu.begin(), cpu.end());
            fmt::print(
                "{:>6} {:>6} {:>8.1f}ms {:>7.1f}..{:>6.1f}ms {:>8.1f}ms {:>8} {:>6} {:>9} {:>9}\n",
                rules, local, ms[2], ms[0], ms[4], cpu[2], c.classes, c.slots.size() - 1,
                c.allow.size(), c.prefixes.size());
        }
    }
    return 0;
}
