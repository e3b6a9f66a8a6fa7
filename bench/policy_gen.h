// The cluster of the NetworkPolicy benchmarks (compile time, and the datapath check):
// 1k pods in 10 namespaces with app/tier/version labels and named ports, and a baseline
// policy per namespace plus policies of four rules each mixing pod selectors, namespace selectors, both, expressions, ipBlocks
// with excepts, empty peers, ports, endPort ranges and named ports. Deterministic.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "control/config.h"

namespace twill::bench {

constexpr int pod_count = 1000;
constexpr int ns_count = 10;

struct lcg {
    uint64_t s = 0x9e3779b97f4a7c15ull;
    uint32_t below(uint32_t n) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        return uint32_t(s >> 33) % n;
    }
};

inline std::string ns_name(int i) {
    return fmt::format("ns-{}", i);
}

inline std::vector<config::namespace_def> namespaces() {
    std::vector<config::namespace_def> out;
    for (int i = 0; i < ns_count; ++i) {
        out.push_back({ns_name(i),
                       {{"team", fmt::format("team-{}", i % 5)}, {"env", i % 2 ? "prod" : "dev"}}});
    }
    return out;
}

inline std::vector<config::pod> pods(int local) {
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

inline config::label_selector labels(std::string key, std::string value) {
    return {{{std::move(key), std::move(value)}}, {}};
}

inline config::policy_port port(uint8_t proto, std::optional<uint16_t> number,
                         std::optional<uint16_t> end = {}, std::string name = "") {
    config::policy_port p;
    p.protocol = proto;
    p.port = number;
    p.end_port = end;
    p.name = std::move(name);
    return p;
}

inline config::policy_rule rule(lcg& r) {
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

// Rules in all: a baseline per namespace as clusters harden them (every pod isolated both
// ways; ingress from its own namespace, egress to it and to DNS anywhere: three rules),
// so that every local pod is isolated at every size and only the number of rules varies;
// then policies of four random rules, each selecting one app of one namespace.
inline std::vector<config::network_policy> policies(int rules) {
    std::vector<config::network_policy> out;
    if (rules <= 0) {
        return out;
    }
    for (int n = 0; n < ns_count; ++n) {
        config::network_policy p;
        p.name = "baseline";
        p.ns = ns_name(n);
        p.ingress = p.egress = true;
        config::policy_peer same_ns;
        same_ns.pod_selector = config::label_selector{};
        p.ingress_rules.push_back({{same_ns}, {}});
        p.egress_rules.push_back({{same_ns}, {}});
        p.egress_rules.push_back({{}, {port(config::proto_udp, 53)}});
        out.push_back(std::move(p));
    }
    lcg r;
    for (int j = 0; ns_count * 3 + j * 4 < rules; ++j) {
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

}  // namespace twill::bench
