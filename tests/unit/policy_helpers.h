// NetworkPolicy test helpers: builders for the parsed forms, and the datapath's lookups
// done plainly over a compiled policy (a linear longest-prefix match, then the allow map).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "control/config.h"
#include "control/policy_compile.h"

namespace twill::test::netpol {

inline ip4_addr ip(const char* s) {
    return config::parse_ip4(s).value();
}
inline ip4_prefix cidr(const char* s) {
    return config::parse_cidr(s).value();
}

inline config::label_selector match(config::label_map labels) {
    return {std::move(labels), {}};
}

inline config::pod pod(std::string name, std::string ns, const char* addr,
                       config::label_map labels = {}, bool local = true,
                       std::vector<config::container_port> ports = {}) {
    config::pod p;
    p.name = std::move(name);
    p.ns = std::move(ns);
    p.ip = ip(addr);
    p.port = local ? "net_null" + p.name : "";
    p.labels = std::move(labels);
    p.container_ports = std::move(ports);
    return p;
}

inline config::policy_peer pods_peer(config::label_map labels) {
    return {.pod_selector = match(std::move(labels))};
}
inline config::policy_peer ns_peer(config::label_map labels) {
    return {.namespace_selector = match(std::move(labels))};
}
inline config::policy_peer block_peer(const char* c, std::vector<const char*> except = {}) {
    config::ip_block b{cidr(c), {}};
    for (const char* e : except) {
        b.except.push_back(cidr(e));
    }
    return {.block = b};
}

inline config::policy_port tcp(uint16_t port, std::optional<uint16_t> end = {}) {
    return {.protocol = config::proto_tcp, .port = port, .end_port = end};
}
inline config::policy_port named(std::string name, uint8_t proto = config::proto_tcp) {
    return {.protocol = proto, .name = std::move(name)};
}

inline config::network_policy ingress_policy(std::string name, std::string ns,
                                             config::label_selector selects,
                                             std::vector<config::policy_rule> rules) {
    config::network_policy p;
    p.name = std::move(name);
    p.ns = std::move(ns);
    p.pod_selector = std::move(selects);
    p.ingress_rules = std::move(rules);
    return p;
}
inline config::network_policy egress_policy(std::string name, std::string ns,
                                            config::label_selector selects,
                                            std::vector<config::policy_rule> rules) {
    config::network_policy p = ingress_policy(std::move(name), std::move(ns), std::move(selects), {});
    p.ingress = false;
    p.egress = true;
    p.egress_rules = std::move(rules);
    return p;
}

// The index into infos that a longest-prefix match over `prefixes` gives.
inline uint32_t info_index(const policy::compiled& c, ip4_addr a) {
    int best = -1;
    uint32_t index = 0;
    for (const auto& [p, i] : c.prefixes) {
        if (p.contains(a) && int(p.len) > best) {
            best = p.len;
            index = i;
        }
    }
    return index;
}
inline const policy::address_info& info(const policy::compiled& c, ip4_addr a) {
    return c.infos.at(info_index(c, a));
}

inline bool ranges_allow(const std::vector<policy::port_range>& v, uint8_t proto, uint16_t port) {
    for (const auto& r : v) {
        if ((r.proto == policy::any_proto || r.proto == proto) && r.lo <= port && port <= r.hi) {
            return true;
        }
    }
    return false;
}

// (slot, class), else (slot, any_class), else deny.
inline bool slot_allows(const policy::compiled& c, uint32_t slot, uint32_t peer_class,
                        uint8_t proto, uint16_t port) {
    auto it = c.allow.find({slot, peer_class});
    if (it == c.allow.end()) {
        it = c.allow.find({slot, policy::any_class});
    }
    return it != c.allow.end() && ranges_allow(it->second, proto, port);
}

inline bool egress_ok(const policy::compiled& c, ip4_addr src, ip4_addr dst, uint8_t proto,
                      uint16_t port) {
    const uint32_t slot = info(c, src).egress_slot;
    return slot == 0 || slot_allows(c, slot, info(c, dst).peer_class, proto, port);
}
inline bool ingress_ok(const policy::compiled& c, ip4_addr src, ip4_addr dst, uint8_t proto,
                       uint16_t port) {
    const uint32_t slot = info(c, dst).ingress_slot;
    return slot == 0 || slot_allows(c, slot, info(c, src).peer_class, proto, port);
}

}  // namespace twill::test::netpol
