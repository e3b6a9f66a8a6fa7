// NetworkPolicy compiled for the datapath: a pure function from namespaces, pods and
// policies to address classes and allow lists, with no DPDK in it. The publisher turns
// the result into an LPM (address -> info) and a dense (profile, class) -> ranges matrix.
//
// Per packet the worker does, for a packet from S to D (after service DNAT):
//   egress at S's node:  info(S).egress_slot  != 0 -> allowed(egress_slot,  class(D), proto, dport)
//   ingress at D's node: info(D).ingress_slot != 0 -> allowed(ingress_slot, class(S), proto, dport)
// where allowed(slot, c, ...) looks up (slot, c), else (slot, any_class), else denies.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "control/config.h"

namespace twill::policy {

// Class 0 is every address that no peer of any rule names. any_class keys the ranges that
// hold whatever the peer is (rules with an empty peer list).
inline constexpr uint32_t any_class = 0xffffffffu;
inline constexpr uint8_t any_proto = 0;  // a rule without ports: every protocol, every port

struct port_range {
    uint8_t proto = any_proto;
    uint16_t lo = 0;
    uint16_t hi = 65535;
    uint32_t rule = 0;  // index into compiled::rules, for hit counters

    bool operator==(const port_range&) const = default;
};

// Which rule of which policy a range came from.
struct rule_ref {
    std::string ns;
    std::string policy;
    bool egress = false;
    uint32_t index = 0;  // within the policy's ingress or egress rules

    bool operator==(const rule_ref&) const = default;
};

// What the datapath knows about one address.
struct address_info {
    uint32_t peer_class = 0;    // the address's class as the other end of a packet
    uint32_t ingress_slot = 0;  // a local pod isolated for ingress: its slot; else 0
    uint32_t egress_slot = 0;   // a local pod isolated for egress: its slot; else 0

    bool operator==(const address_info&) const = default;
};

// A slot: one local pod in one direction, isolated by at least one policy.
struct slot_ref {
    std::string ns;
    std::string pod;
    bool egress = false;
    // The names of the policies that isolate it (in its namespace), in order.
    std::vector<std::string> policies;

    bool operator==(const slot_ref&) const = default;
};

struct compiled {
    // infos[0] is what an address that matches no prefix gets: class 0, no slots.
    std::vector<address_info> infos;
    // Longest prefix match over these gives an address's index into infos; addresses
    // outside every prefix get 0. Pods are /32s; ipBlock cidrs and excepts are prefixes. A
    // prefix whose info is its nearest enclosing prefix's (or 0) is left out: LPM agrees.
    // In (address, length) order.
    std::vector<std::pair<ip4_prefix, uint32_t>> prefixes;
    // (slot, class or any_class) -> ranges, sorted by (proto, lo, hi, rule). An entry for a
    // class also holds the slot's any_class ranges, so one lookup answers when it hits.
    std::map<std::pair<uint32_t, uint32_t>, std::vector<port_range>> allow;
    // Policies that select a local pod, in (namespace, name) order, each's ingress rules
    // then egress rules (of the directions it isolates). The others are enforced at their
    // pods' nodes and are not compiled here.
    std::vector<rule_ref> rules;
    // slots[0] unused (slot 0 = not isolated); then local pods in (namespace, name) order,
    // ingress before egress.
    std::vector<slot_ref> slots;
    uint32_t classes = 1;  // number of peer classes, class 0 included

    bool operator==(const compiled&) const = default;
};

// The label the API server gives every namespace: its name.
inline constexpr std::string_view namespace_name_label = "kubernetes.io/metadata.name";

// Every namespace's labels with kubernetes.io/metadata.name added; namespaces that pods or
// policies name without a namespace_def get that label only.
std::map<std::string, config::label_map> namespace_labels(
    const std::vector<config::namespace_def>& namespaces, const std::vector<config::pod>& pods,
    const std::vector<config::network_policy>& policies);

// One namespace's labels: as written (none when it is not listed) and its name label.
config::label_map namespace_labels(const std::string& ns, const config::label_map* written);

bool selects(const config::label_selector& s, const config::label_map& labels);

// Pods with a non-empty `port` are local (they get slots); all pods get classes.
compiled compile(const std::vector<config::namespace_def>& namespaces,
                 const std::vector<config::pod>& pods,
                 const std::vector<config::network_policy>& policies);

}  // namespace twill::policy
