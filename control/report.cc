#include "control/report.h"

#include <fmt/format.h>

namespace twill {

nlohmann::json counters_json(const std::vector<named_port>& ports,
                             const worker_counters* const* workers, size_t nb_workers) {
    auto sum = [&](auto field) {
        uint64_t total = 0;
        for (size_t w = 0; w < nb_workers; ++w) {
            total += field(*workers[w]).get();
        }
        return total;
    };
    nlohmann::json out = {{"ports", nlohmann::json::array()}, {"drops", nlohmann::json::object()}};
    for (const named_port& p : ports) {
        const uint16_t id = p.id;
        out["ports"].push_back({
            {"id", id}, {"role", p.role}, {"device", p.name},
            {"rxPackets", sum([id](const worker_counters& c) -> const counter& { return c.ports[id].rx_packets; })},
            {"rxBytes", sum([id](const worker_counters& c) -> const counter& { return c.ports[id].rx_bytes; })},
            {"txPackets", sum([id](const worker_counters& c) -> const counter& { return c.ports[id].tx_packets; })},
            {"txBytes", sum([id](const worker_counters& c) -> const counter& { return c.ports[id].tx_bytes; })},
            {"txFailed", sum([id](const worker_counters& c) -> const counter& { return c.ports[id].tx_failed; })},
        });
    }
    for (const drop_reason_info& r : drop_reasons) {
        const unsigned num = r.number;
        out["drops"][std::string(r.name)] =
            sum([num](const worker_counters& c) -> const counter& { return c.drops[num]; });
    }
    out["encapsulated"] = sum([](const worker_counters& c) -> const counter& { return c.encapsulated; });
    out["decapsulated"] = sum([](const worker_counters& c) -> const counter& { return c.decapsulated; });
    out["deliveredLocal"] = sum([](const worker_counters& c) -> const counter& { return c.delivered_local; });
    return out;
}

std::string counters_report(const std::string& node, const std::vector<named_port>& ports,
                            const worker_counters* const* workers, size_t nb_workers) {
    auto sum = [&](auto field) {
        uint64_t total = 0;
        for (size_t w = 0; w < nb_workers; ++w) {
            total += field(*workers[w]).get();
        }
        return total;
    };
    std::string out = fmt::format("== twill counters (node {}) ==\n", node);
    out += fmt::format("{:<4} {:<24} {:<22} {:>10} {:>12} {:>10} {:>12} {:>8}\n", "port",
                       "role", "device", "rx_pkts", "rx_bytes", "tx_pkts", "tx_bytes",
                       "tx_fail");
    for (const named_port& p : ports) {
        const uint16_t id = p.id;
        out += fmt::format(
            "{:<4} {:<24} {:<22} {:>10} {:>12} {:>10} {:>12} {:>8}\n", id, p.role, p.name,
            sum([id](const worker_counters& c) -> const counter& { return c.ports[id].rx_packets; }),
            sum([id](const worker_counters& c) -> const counter& { return c.ports[id].rx_bytes; }),
            sum([id](const worker_counters& c) -> const counter& { return c.ports[id].tx_packets; }),
            sum([id](const worker_counters& c) -> const counter& { return c.ports[id].tx_bytes; }),
            sum([id](const worker_counters& c) -> const counter& { return c.ports[id].tx_failed; }));
    }
    out += fmt::format(
        "events: encapsulated {} decapsulated {} delivered_local {} arp_replies {} "
        "arp_requests {} neighbours_learned {}\n",
        sum([](const worker_counters& c) -> const counter& { return c.encapsulated; }),
        sum([](const worker_counters& c) -> const counter& { return c.decapsulated; }),
        sum([](const worker_counters& c) -> const counter& { return c.delivered_local; }),
        sum([](const worker_counters& c) -> const counter& { return c.arp_replies_sent; }),
        sum([](const worker_counters& c) -> const counter& { return c.arp_requests_sent; }),
        sum([](const worker_counters& c) -> const counter& { return c.neighbours_learned; }));
    bool any = false;
    for (const drop_reason_info& r : drop_reasons) {
        const unsigned num = r.number;
        uint64_t n = sum([num](const worker_counters& c) -> const counter& { return c.drops[num]; });
        if (n != 0) {
            if (!any) {
                out += "drops:\n";
                any = true;
            }
            out += fmt::format("  {:>3} {:<28} {:>10}  {}\n", r.number, r.name, n, r.description);
        }
    }
    if (!any) {
        out += "drops: none\n";
    }
    out += "== end\n";
    return out;
}

}  // namespace twill
