#include "bench/service_report.h"

#include <algorithm>

#include <fmt/format.h>

#include "bench/stats.h"

namespace twill::bench {
namespace {

// "median (min-max)", the median in bold when it is the row's figure.
std::string fmt_stats(const std::vector<double>& v, int digits = 1, bool bold = false) {
    const stats s = summarize(v);
    const char* b = bold ? "**" : "";
    return fmt::format("{}{:.{}f}{} ({:.{}f}-{:.{}f})", b, s.median, digits, b, s.min, digits,
                       s.max, digits);
}

std::string json_list(const std::vector<double>& v) {
    return fmt::format("[{:.2f}]", fmt::join(v, ", "));
}

std::string json_series(const series& s) {
    return fmt::format(
        "{{\"io_cycles\": {}, \"twill_cycles\": {}, \"twill_mpps\": {}, \"cost_cycles\": {}, "
        "\"own_cycles\": {}}}",
        json_list(s.io), json_list(s.twill), json_list(s.mpps), json_list(s.cost),
        json_list(s.own));
}

}  // namespace

void print_tables(const std::vector<size_result>& results, unsigned trials, uint64_t packets,
                  double tsc_ghz) {
    fmt::print(
        "\n| services | scenario | io fwd cycles/pkt | twill cycles/pkt | twill Mpps | twill cost "
        "over io (cycles/pkt) | service's own cost (cycles/pkt) |\n"
        "|---|---|---|---|---|---|---|\n");
    for (const size_result& r : results) {
        auto row = [&](const char* name, const series& s) {
            fmt::print("| {} | {} | {} | {} | {} | {} | {} |\n", r.n, name, fmt_stats(s.io),
                       fmt_stats(s.twill), fmt_stats(s.mpps, 2),
                       fmt_stats(s.cost, 1, s.own.empty()),
                       s.own.empty() ? "-" : fmt_stats(s.own, 1, true));
        };
        row(r.n == 0 ? "plain encap (node without services)" : "plain encap", r.plain);
        if (r.n > 0) {
            row("service, conntrack hit", r.hit);
            row("service, new flow", r.fresh);
        }
    }
    fmt::print(
        "\n| services | new flow: cycles over io | ns | new flows/s per core | service's own: "
        "cycles | ns |\n|---|---|---|---|---|---|\n");
    uint64_t new_flows = 0;
    for (const size_result& r : results) {
        if (r.n == 0) {
            continue;
        }
        new_flows = r.new_flows;
        std::vector<double> ns, rate, own_ns;
        for (size_t t = 0; t < r.fresh.cost.size(); ++t) {
            ns.push_back(r.fresh.cost[t] / tsc_ghz);
            rate.push_back(1e3 / ns.back());  // millions per second
            own_ns.push_back(r.fresh.own[t] / tsc_ghz);
        }
        fmt::print("| {} | {} | {} | {} M | {} | {} |\n", r.n, fmt_stats(r.fresh.cost),
                   fmt_stats(ns, 1, true), fmt_stats(rate, 2), fmt_stats(r.fresh.own),
                   fmt_stats(own_ns, 1, true));
    }
    fmt::print(
        "\nmedian (min-max) over {} trials of {} packets ({} per new-flow trial); cost = twill - "
        "io and own = cost - plain encap's, paired per trial; ns at the TSC's {:.2f} GHz\n",
        trials, packets, new_flows, tsc_ghz);
}

std::string results_json(const std::vector<size_result>& results, const std::string& header) {
    std::string json = "{" + header + ", \"sizes\": [";
    for (size_t i = 0; i < results.size(); ++i) {
        const size_result& r = results[i];
        json += fmt::format(
            "{}{{\"services\": {}, \"parse_s\": {:.3f}, \"install_s\": {:.3f}, \"plain\": {}",
            i ? ", " : "", r.n, r.parse_s, r.install_s, json_series(r.plain));
        if (r.n > 0) {
            json +=
                fmt::format(", \"hit\": {}, \"new\": {}", json_series(r.hit), json_series(r.fresh));
        }
        json += "}";
    }
    return json + "]}\n";
}

}  // namespace twill::bench
