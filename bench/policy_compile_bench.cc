// NetworkPolicy compile time: 1k pods in 10 namespaces, 100 / 1k / 10k rules mixing pod
// selectors, namespace selectors, both, expressions, ipBlocks with excepts, empty peers,
// ports, endPort ranges and named ports; median and spread of 5 compiles each.
//
// "compiled": the rules of the policies that select a local pod, which are all this node
// compiles. "no-op pod": what deciding that a change needs no compile costs (a remote pod
// gains a label that no selector reads).
//
//   twill-policy-compile-bench [LOCAL_PODS...]   (default: 100 and 1000 of the 1k local)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "bench/policy_gen.h"
#include "control/desired.h"
#include "control/policy_publisher.h"
#include "control/policy_compile.h"

using namespace twill;
using namespace twill::bench;

namespace {

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
    fmt::print("{:>6} {:>8} {:>6} {:>10} {:>18} {:>10} {:>8} {:>6} {:>9} {:>9} {:>10}\n", "rules", "compiled",
               "local", "median", "spread", "cpu", "classes", "slots", "entries", "prefixes", "no-op pod");
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

            // A change that needs no compile: a remote pod gains a label no selector reads.
            // What deciding that costs (desired_state::policy_touched).
            config::node_file nf;
            nf.namespaces = ns;
            nf.pods = ps;
            nf.network_policies = pols;
            const desired_state d(nf);
            const std::set<pod_key> enforced = enforced_policies(c);
            object_change change;
            change.pods = {ps.back()};  // the first `local` pods are the local ones
            change.pods[0].labels["build"] = "2";
            constexpr int asks = 200;
            bool touched = false;
            const auto a0 = std::chrono::steady_clock::now();
            for (int i = 0; i < asks; ++i) {
                touched |= d.policy_touched(change, enforced);
            }
            const double ask_us =
                std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - a0).count() / asks;
            fmt::print(
                "{:>6} {:>8} {:>6} {:>8.1f}ms {:>7.1f}..{:>6.1f}ms {:>8.1f}ms {:>8} {:>6} {:>9} {:>9} {:>8.1f}us{}\n",
                rules, c.rules.size(), local, ms[2], ms[0], ms[4], cpu[2], c.classes, c.slots.size() - 1,
                c.allow.size(), c.prefixes.size(), ask_us, touched ? " (touched!)" : "");
        }
    }
    return 0;
}
