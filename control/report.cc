#include "control/report.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace twill {
namespace {

struct port_totals {
    uint64_t rx_packets = 0, rx_bytes = 0, tx_packets = 0, tx_bytes = 0, tx_failed = 0;
};

// Every counter summed over the workers once; both reports render from this.
struct totals {
    std::vector<port_totals> ports;  // in the order of the named ports
    uint64_t drops[drop_reason_slots] = {};
    uint64_t encapsulated = 0, decapsulated = 0, delivered_local = 0;
    uint64_t arp_replies = 0, arp_requests = 0, neighbours_learned = 0;
    uint64_t icmp_sent = 0, icmp_rate_limited = 0, fragmented = 0;
    uint64_t to_host = 0, from_host = 0, host_to_underlay = 0;
    uint64_t ct_created = 0, ct_hits = 0, ct_expired = 0, ct_full = 0, service_resets = 0;
    uint64_t ct_other_worker = 0;
    std::vector<uint64_t> worker_rx;    // packets each worker received
    std::vector<uint64_t> worker_busy;  // and the cycles of its iterations that did
    uint64_t policy_tracked = 0, policy_related = 0;
};

totals sum_counters(const std::vector<named_port>& ports, const worker_counters* const* workers,
                    size_t nb_workers) {
    totals t;
    t.ports.resize(ports.size());
    t.worker_rx.resize(nb_workers);
    t.worker_busy.resize(nb_workers);
    for (size_t w = 0; w < nb_workers; ++w) {
        const worker_counters& c = *workers[w];
        t.worker_busy[w] = c.busy_cycles.get();
        for (size_t i = 0; i < ports.size(); ++i) {
            const port_counters& p = c.ports[ports[i].id];
            t.worker_rx[w] += p.rx_packets.get();
            t.ports[i].rx_packets += p.rx_packets.get();
            t.ports[i].rx_bytes += p.rx_bytes.get();
            t.ports[i].tx_packets += p.tx_packets.get();
            t.ports[i].tx_bytes += p.tx_bytes.get();
            t.ports[i].tx_failed += p.tx_failed.get();
        }
        for (unsigned d = 0; d < drop_reason_slots; ++d) {
            t.drops[d] += c.drops[d].get();
        }
        t.encapsulated += c.encapsulated.get();
        t.decapsulated += c.decapsulated.get();
        t.delivered_local += c.delivered_local.get();
        t.arp_replies += c.arp_replies_sent.get();
        t.arp_requests += c.arp_requests_sent.get();
        t.neighbours_learned += c.neighbours_learned.get();
        t.icmp_sent += c.icmp_errors_sent.get();
        t.icmp_rate_limited += c.icmp_errors_rate_limited.get();
        t.fragmented += c.fragmented.get();
        t.to_host += c.to_host.get();
        t.from_host += c.from_host.get();
        t.host_to_underlay += c.host_to_underlay.get();
        t.ct_created += c.ct_created.get();
        t.ct_hits += c.ct_hits.get();
        t.ct_expired += c.ct_expired.get();
        t.ct_full += c.ct_full.get();
        t.ct_other_worker += c.ct_other_worker.get();
        t.service_resets += c.service_resets.get();
        t.policy_tracked += c.policy_tracked.get();
        t.policy_related += c.policy_related.get();
    }
    return t;
}

}  // namespace

nlohmann::json counters_json(const std::vector<named_port>& ports,
                             const worker_counters* const* workers, size_t nb_workers) {
    const totals t = sum_counters(ports, workers, nb_workers);
    nlohmann::json out = {{"ports", nlohmann::json::array()}, {"drops", nlohmann::json::object()}};
    for (size_t i = 0; i < ports.size(); ++i) {
        const port_totals& p = t.ports[i];
        out["ports"].push_back({{"id", ports[i].id},
                                {"role", ports[i].role},
                                {"device", ports[i].name},
                                {"rxPackets", p.rx_packets},
                                {"rxBytes", p.rx_bytes},
                                {"txPackets", p.tx_packets},
                                {"txBytes", p.tx_bytes},
                                {"txFailed", p.tx_failed}});
    }
    for (const drop_reason_info& r : drop_reasons) {
        out["drops"][std::string(r.name)] = t.drops[r.number];
    }
    out["encapsulated"] = t.encapsulated;
    out["decapsulated"] = t.decapsulated;
    out["deliveredLocal"] = t.delivered_local;
    out["icmpErrorsSent"] = t.icmp_sent;
    out["icmpErrorsRateLimited"] = t.icmp_rate_limited;
    out["fragmented"] = t.fragmented;
    out["toHost"] = t.to_host;
    out["fromHost"] = t.from_host;
    out["hostToUnderlay"] = t.host_to_underlay;
    out["conntrack"] = {{"created", t.ct_created},
                        {"hits", t.ct_hits},
                        {"expired", t.ct_expired},
                        {"untrackedFull", t.ct_full},
                        {"otherWorker", t.ct_other_worker},
                        {"resetsSent", t.service_resets}};
    out["policy"] = {{"tracked", t.policy_tracked}, {"relatedIcmp", t.policy_related}};
    out["workers"] = nlohmann::json::array();
    for (size_t w = 0; w < t.worker_rx.size(); ++w) {
        out["workers"].push_back({{"rxPackets", t.worker_rx[w]}, {"busyCycles", t.worker_busy[w]}});
    }
    return out;
}

std::string counters_report(const std::string& node, const std::vector<named_port>& ports,
                            const worker_counters* const* workers, size_t nb_workers) {
    const totals t = sum_counters(ports, workers, nb_workers);
    std::string out = fmt::format("== twill counters (node {}) ==\n", node);
    out += fmt::format("{:<4} {:<24} {:<22} {:>10} {:>12} {:>10} {:>12} {:>8}\n", "port",
                       "role", "device", "rx_pkts", "rx_bytes", "tx_pkts", "tx_bytes",
                       "tx_fail");
    for (size_t i = 0; i < ports.size(); ++i) {
        const port_totals& p = t.ports[i];
        out += fmt::format("{:<4} {:<24} {:<22} {:>10} {:>12} {:>10} {:>12} {:>8}\n", ports[i].id,
                           ports[i].role, ports[i].name, p.rx_packets, p.rx_bytes, p.tx_packets,
                           p.tx_bytes, p.tx_failed);
    }
    out += fmt::format(
        "events: encapsulated {} decapsulated {} delivered_local {} arp_replies {} "
        "arp_requests {} neighbours_learned {} icmp_errors_sent {} icmp_errors_rate_limited {} "
        "to_host {} from_host {} host_to_underlay {} fragmented {}\n",
        t.encapsulated, t.decapsulated, t.delivered_local, t.arp_replies, t.arp_requests,
        t.neighbours_learned, t.icmp_sent, t.icmp_rate_limited, t.to_host, t.from_host,
        t.host_to_underlay, t.fragmented);
    out += fmt::format("conntrack: ct_created {} ct_hits {} ct_expired {} ct_full {} service_resets {} "
                       "ct_other_worker {}\n",
                       t.ct_created, t.ct_hits, t.ct_expired, t.ct_full, t.service_resets,
                       t.ct_other_worker);
    out += fmt::format("policy: tracked {} related_icmp {}\n", t.policy_tracked, t.policy_related);
    out += fmt::format("workers: {} rx_pkts {} busy_cycles {}\n", nb_workers, fmt::join(t.worker_rx, " "),
                       fmt::join(t.worker_busy, " "));
    bool any = false;
    for (const drop_reason_info& r : drop_reasons) {
        if (uint64_t n = t.drops[r.number]; n != 0) {
            out += any ? "" : "drops:\n";
            any = true;
            out += fmt::format("  {:>3} {:<28} {:>10}  {}\n", r.number, r.name, n, r.description);
        }
    }
    out += any ? "" : "drops: none\n";
    out += "== end\n";
    return out;
}

}  // namespace twill
