#include "control/desired.h"

#include <iterator>
#include <set>

#include <fmt/format.h>

#include "dataplane/tables/tables.h"

namespace twill {

namespace {

std::string node_owner(const std::string& name) { return "node/" + name; }
std::string pod_owner(const std::string& ns, const std::string& name) {
    return "pod/" + ns + "/" + name;
}

constexpr const char* self = "self";
constexpr const char* underlay = "underlay";
constexpr const char* host = "host";
constexpr size_t max_local_pods = std::min<size_t>(RTE_MAX_ETHPORTS - 1, learned_state::pod_capacity);
constexpr size_t max_nodes = learned_state::neighbour_capacity;

// "node 'kernel-c'", "pod default/web", or for this node's own value the key that set it.
std::string describe(const std::string& owner, const char* own_key = "this node") {
    if (owner == self) {
        return own_key;
    }
    if (owner == underlay) {
        return "ports.underlay";
    }
    if (owner == host) {
        return "ports.host";
    }
    if (owner.starts_with("node/")) {
        return fmt::format("node '{}'", owner.substr(5));
    }
    return "pod " + owner.substr(4);
}

uint32_t last_address(const ip4_prefix& p) { return p.addr.value | ~p.mask(); }

// The first interval of `slices` overlapping [first, last] whose owner `skip` does not
// exclude; intervals in the map never overlap each other.
template <typename Skip>
const std::pair<const uint32_t, std::pair<uint32_t, std::string>>* find_overlap(
    const std::map<uint32_t, std::pair<uint32_t, std::string>>& slices, uint32_t first,
    uint32_t last, Skip skip) {
    auto it = slices.lower_bound(first);
    if (it != slices.begin()) {
        auto prev = std::prev(it);
        if (prev->second.first >= first && !skip(prev->second.second)) {
            return &*prev;
        }
    }
    for (; it != slices.end() && it->first <= last; ++it) {
        if (!skip(it->second.second)) {
            return &*it;
        }
    }
    return nullptr;
}

}  // namespace

desired_state::desired_state(const config::node_file& cfg) {
    settings_.node = cfg.node;
    settings_.cluster_cidr = cfg.cluster_cidr;
    settings_.service_cidr = cfg.service_cidr;
    settings_.vxlan = cfg.vxlan;
    settings_.eal = cfg.eal;
    settings_.underlay_port = cfg.underlay_port;
    settings_.host_port = cfg.host_port;
    settings_.conntrack = cfg.conntrack;
    settings_.cut_denied_connections = cfg.cut_denied_connections;
    const config::node_config& own = cfg.node;
    ips_.emplace(own.ip.value, self);
    slices_.emplace(own.pod_cidr.addr.value, std::pair(last_address(own.pod_cidr), self));
    macs_.emplace(own.vtep_mac, self);
    ports_.emplace(cfg.underlay_port, underlay);
    if (!cfg.host_port.empty()) {
        ports_.emplace(cfg.host_port, host);
    }
    for (const config::remote_node& n : cfg.nodes) {
        add_node(n);
    }
    for (const config::pod& p : cfg.pods) {
        add_pod(p);
    }
    for (const config::service& sv : cfg.services) {
        add_service(sv);
    }
    for (const config::endpoint_slice& sl : cfg.endpoint_slices) {
        add_slice(sl);
    }
    for (const config::namespace_def& ns : cfg.namespaces) {
        namespaces_.insert_or_assign(ns.name, ns);
    }
    for (const config::network_policy& np : cfg.network_policies) {
        policies_.insert_or_assign(pod_key(np.ns, np.name), np);
    }
}

void desired_state::add_node(const config::remote_node& n) {
    std::string owner = node_owner(n.name);
    ips_.emplace(n.ip.value, owner);
    slices_.emplace(n.pod_cidr.addr.value, std::pair(last_address(n.pod_cidr), owner));
    macs_.emplace(n.vtep_mac, owner);
    nodes_.emplace(n.name, n);
}

void desired_state::erase_node(const std::string& name) {
    auto it = nodes_.find(name);
    if (it == nodes_.end()) {
        return;
    }
    const config::remote_node& n = it->second;
    ips_.erase(n.ip.value);
    slices_.erase(n.pod_cidr.addr.value);
    macs_.erase(n.vtep_mac);
    nodes_.erase(it);
}

void desired_state::add_pod(const config::pod& p) {
    std::string owner = pod_owner(p.ns, p.name);
    pod_ips_.emplace(p.ip.value, owner);
    if (p.mac) {
        macs_.emplace(*p.mac, owner);
    }
    if (!p.port.empty()) {
        ports_.emplace(p.port, owner);
        local_.emplace(pod_key(p.ns, p.name), p);
    }
    pods_.emplace(pod_key(p.ns, p.name), p);
}

void desired_state::erase_pod(const pod_key& key) {
    auto it = pods_.find(key);
    if (it == pods_.end()) {
        return;
    }
    const config::pod& p = it->second;
    pod_ips_.erase(p.ip.value);
    if (p.mac) {
        macs_.erase(*p.mac);
    }
    if (!p.port.empty()) {
        ports_.erase(p.port);
        local_.erase(key);
    }
    pods_.erase(it);
}

void desired_state::record(const object_change& c) {
    // Everything that goes first, so that objects may trade unique values in one change.
    for (const std::string& name : c.delete_nodes) {
        erase_node(name);
    }
    for (const config::remote_node& n : c.nodes) {
        erase_node(n.name);
    }
    for (const pod_key& key : c.delete_pods) {
        erase_pod(key);
    }
    for (const config::pod& p : c.pods) {
        erase_pod(pod_key(p.ns, p.name));
    }
    for (const pod_key& key : c.delete_endpoint_slices) {
        erase_slice(key);
    }
    for (const config::endpoint_slice& sl : c.endpoint_slices) {
        erase_slice(pod_key(sl.ns, sl.name));
    }
    for (const pod_key& key : c.delete_services) {
        erase_service(key);
    }
    for (const config::service& sv : c.services) {
        erase_service(pod_key(sv.ns, sv.name));
    }
    for (const config::remote_node& n : c.nodes) {
        add_node(n);
    }
    for (const config::pod& p : c.pods) {
        add_pod(p);
    }
    for (const config::service& sv : c.services) {
        add_service(sv);
    }
    for (const config::endpoint_slice& sl : c.endpoint_slices) {
        add_slice(sl);
    }
    record_policies(c);
}

object_change desired_state::diff(const config::node_file& next) const {
    object_change c;
    std::set<std::string> names;
    for (const config::remote_node& n : next.nodes) {
        names.insert(n.name);
        auto it = nodes_.find(n.name);
        if (it == nodes_.end() || !(it->second == n)) {
            c.nodes.push_back(n);
        }
    }
    for (const auto& [name, n] : nodes_) {
        if (!names.contains(name)) {
            c.delete_nodes.push_back(name);
        }
    }
    std::set<pod_key> keys;
    for (const config::pod& p : next.pods) {
        pod_key key(p.ns, p.name);
        keys.insert(key);
        auto it = pods_.find(key);
        if (it == pods_.end() || !(it->second == p)) {
            c.pods.push_back(p);
        }
    }
    for (const auto& [key, p] : pods_) {
        if (!keys.contains(key)) {
            c.delete_pods.push_back(key);
        }
    }
    keys.clear();
    for (const config::service& sv : next.services) {
        pod_key key(sv.ns, sv.name);
        keys.insert(key);
        auto it = services_.find(key);
        if (it == services_.end() || !(it->second == sv)) {
            c.services.push_back(sv);
        }
    }
    for (const auto& [key, sv] : services_) {
        if (!keys.contains(key)) {
            c.delete_services.push_back(key);
        }
    }
    keys.clear();
    for (const config::endpoint_slice& sl : next.endpoint_slices) {
        pod_key key(sl.ns, sl.name);
        keys.insert(key);
        auto it = endpoint_slices_.find(key);
        if (it == endpoint_slices_.end() || !(it->second == sl)) {
            c.endpoint_slices.push_back(sl);
        }
    }
    for (const auto& [key, sl] : endpoint_slices_) {
        if (!keys.contains(key)) {
            c.delete_endpoint_slices.push_back(key);
        }
    }
    diff_policies(next, c);
    return c;
}

std::vector<config::error> desired_state::check(const config::node_file& objects,
                                                const std::set<std::string>& skip_objects) const {
    std::vector<config::error> errors;
    auto fail = [&](const std::string& path, std::string message) {
        auto it = objects.positions.find(path);
        errors.push_back({path, std::move(message),
                          it == objects.positions.end() ? config::source_pos{} : it->second});
    };
    // Owners the objects replace: their current values no longer count.
    std::set<std::string> replaced;
    for (const config::remote_node& n : objects.nodes) {
        if (nodes_.contains(n.name)) {
            replaced.insert(node_owner(n.name));
        }
    }
    for (const config::pod& p : objects.pods) {
        if (pods_.contains(pod_key(p.ns, p.name))) {
            replaced.insert(pod_owner(p.ns, p.name));
        }
    }
    auto is_replaced = [&](const std::string& owner) { return replaced.contains(owner); };
    // A value must be unique among what stays and among the objects; `seen` holds the
    // objects' values so far, by path.
    auto unique = [&]<typename K>(const std::map<K, std::string>& state, std::map<K, std::string>& seen,
                                  const K& key, const std::string& path, const std::string& what,
                                  const char* own_key = "this node") {
        if (auto it = state.find(key); it != state.end() && !is_replaced(it->second)) {
            fail(path, fmt::format("duplicate {} (also {})", what, describe(it->second, own_key)));
        } else if (auto [at, fresh] = seen.try_emplace(key, path); !fresh) {
            fail(path, fmt::format("duplicate {} (also {})", what, at->second));
        }
    };

    const config::node_config& own = settings_.node;
    const ip4_prefix& cluster = settings_.cluster_cidr;
    std::map<std::string, std::string> node_names;
    std::map<uint32_t, std::string> ips;
    std::map<mac_addr, std::string> macs;
    std::map<uint32_t, std::pair<uint32_t, std::string>> slices;  // the objects', owner = path
    size_t added_nodes = 0;
    for (size_t i = 0; i < objects.nodes.size(); ++i) {
        const config::remote_node& n = objects.nodes[i];
        const std::string base = fmt::format("nodes[{}]", i);
        if (skip_objects.contains(base)) {
            continue;
        }
        if (n.name == own.name) {
            fail(base + ".name", fmt::format("duplicate node name '{}' (also node.name)", n.name));
        } else if (auto [at, fresh] = node_names.try_emplace(n.name, base + ".name"); !fresh) {
            fail(base + ".name", fmt::format("duplicate node name '{}' (also {})", n.name, at->second));
        } else if (!nodes_.contains(n.name)) {
            ++added_nodes;
        }

        const std::string path = base + ".podCIDR";
        const std::string slice_s = config::format_prefix(n.pod_cidr);
        uint32_t first = n.pod_cidr.addr.value, last = last_address(n.pod_cidr);
        if (!cluster.contains(n.pod_cidr)) {
            fail(path, fmt::format("{} is outside cluster.clusterCIDR {}", slice_s,
                                   config::format_prefix(cluster)));
        } else if (const auto* o = find_overlap(slices_, first, last, is_replaced)) {
            const std::string& owner = o->second.second;
            const ip4_prefix& theirs =
                owner == self ? own.pod_cidr : nodes_.at(owner.substr(5)).pod_cidr;
            fail(path, fmt::format("{} overlaps {} {}", slice_s, describe(owner, "node.podCIDR"),
                                   config::format_prefix(theirs)));
        } else if (const auto* mine = find_overlap(slices, first, last,
                                                   [](const std::string&) { return false; })) {
            fail(path, fmt::format("{} overlaps {}", slice_s, mine->second.second));
        } else if (n.pod_cidr.len > own.pod_cidr.len) {
            fail(path, fmt::format("{} is smaller than this node's slice {}: every node's "
                                   "podCIDR is cut at one length (flannel's SubnetLen)",
                                   slice_s, config::format_prefix(own.pod_cidr)));
        } else {
            slices.emplace(first, std::pair(last, path));
        }
        unique(ips_, ips, n.ip.value, base + ".ip", fmt::format("node IP {}", config::format_ip4(n.ip)),
               "node.ip");
        unique(macs_, macs, n.vtep_mac, base + ".vtepMAC",
               fmt::format("MAC {}", config::format_mac(n.vtep_mac)), "node.vtepMAC");
    }
    if (nodes_.size() + added_nodes > max_nodes) {
        fail("nodes", fmt::format("{} nodes after this change; at most {} are supported",
                                  nodes_.size() + added_nodes, max_nodes));
    }

    const ip4_prefix& local = own.pod_cidr;
    std::map<pod_key, std::string> pod_names;
    std::map<uint32_t, std::string> pod_ips;
    std::map<std::string, std::string> ports;
    size_t local_after = local_.size();
    for (size_t i = 0; i < objects.pods.size(); ++i) {
        const config::pod& p = objects.pods[i];
        const std::string base = fmt::format("pods[{}]", i);
        if (skip_objects.contains(base)) {
            continue;
        }
        pod_key key(p.ns, p.name);
        if (auto [at, fresh] = pod_names.try_emplace(key, base + ".name"); !fresh) {
            fail(base + ".name", fmt::format("duplicate pod {}/{} (also {})", p.ns, p.name, at->second));
            continue;
        }
        local_after -= local_.contains(key) ? 1 : 0;
        local_after += p.port.empty() ? 0 : 1;

        const std::string ip_path = base + ".ip";
        const std::string ip_s = config::format_ip4(p.ip);
        if (std::string problem = config::pod_address_problem(p.ip, !p.port.empty(), &local, &cluster);
            !problem.empty()) {
            fail(ip_path, std::move(problem));
        }
        if (!p.port.empty()) {
            unique(ports_, ports, p.port, base + ".port", fmt::format("port '{}'", p.port));
        }
        unique(pod_ips_, pod_ips, p.ip.value, ip_path, fmt::format("pod IP {}", ip_s));
        if (p.mac) {
            unique(macs_, macs, *p.mac, base + ".mac", fmt::format("MAC {}", config::format_mac(*p.mac)),
                   "node.vtepMAC");
        }
    }
    if (local_after > max_local_pods) {
        fail("pods", fmt::format("{} pods with a port after this change; this build attaches at "
                                 "most {} (DPDK's RTE_MAX_ETHPORTS less the underlay)",
                                 local_after, max_local_pods));
    }
    check_services(objects, skip_objects, errors);
    check_policies(objects, skip_objects, errors);
    return errors;
}

}  // namespace twill
