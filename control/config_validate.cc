// Checks that relate several keys: address plan, uniqueness, where each pod may live. The
// dataplane trusts these (e.g. it indexes node.podCIDR directly), so they are not optional.
#include <algorithm>
#include <map>
#include <tuple>
#include <utility>

#include <fmt/format.h>

#include <rte_config.h>

#include "control/config_internal.h"
#include "dataplane/tables/tables.h"

namespace twill::config::detail {

namespace {

// The largest clusterCIDR the tables are sized for, and how many slices it may hold.
constexpr int min_cluster_len = 8;
constexpr int max_slice_bits = 20;
// The dataplane keeps one entry per address of the local slice.
constexpr int min_local_slice_len = 16;

// Fixed capacities of the running process: DPDK's port table (one port is the
// underlay) and the learned-MAC slots (dataplane/tables/tables.h).
constexpr size_t max_local_pods = std::min<size_t>(RTE_MAX_ETHPORTS - 1, learned_state::pod_capacity);
constexpr size_t max_nodes = learned_state::neighbour_capacity;

// Remembers the first path that used each value.
template <class Key>
class first_use {
  public:
    // The path that used `k` before, or nullptr if this is the first use.
    const std::string* add(const Key& k, const std::string& path) {
        auto [it, inserted] = seen_.try_emplace(k, path);
        return inserted ? nullptr : &it->second;
    }

  private:
    std::map<Key, std::string> seen_;
};

class validator {
  public:
    validator(const node_file& cfg, const std::set<std::string>& unusable,
              std::vector<error>& errors)
        : cfg_(cfg), unusable_(unusable), errors_(errors) {}

    void run() {
        check_slices();
        check_nodes();
        check_pods();
        check_capacity();
    }

  private:
    void check_capacity() {
        size_t local = 0;
        for (const pod& p : cfg_.pods) {
            local += p.port.empty() ? 0 : 1;
        }
        if (local > max_local_pods && cfg_.positions.contains("pods")) {
            fail("pods", fmt::format("{} pods with a port; this build attaches at most {} "
                                     "(DPDK's RTE_MAX_ETHPORTS less the underlay)",
                                     local, max_local_pods));
        }
        if (cfg_.nodes.size() > max_nodes && cfg_.positions.contains("nodes")) {
            fail("nodes", fmt::format("{} nodes; at most {} are supported", cfg_.nodes.size(),
                                      max_nodes));
        }
    }
    bool usable(const std::string& path) const {
        return cfg_.positions.contains(path) && !unusable_.contains(path);
    }
    void fail(const std::string& path, std::string message) {
        auto it = cfg_.positions.find(path);
        errors_.push_back(
            {path, std::move(message), it == cfg_.positions.end() ? source_pos{} : it->second});
    }
    template <class Key>
    void unique(first_use<Key>& seen, const Key& k, const std::string& path,
                const std::string& what) {
        if (const std::string* first = seen.add(k, path)) {
            fail(path, fmt::format("duplicate {} (also {})", what, *first));
        }
    }

    void check_slices();
    void check_nodes();
    void check_pods();

    const node_file& cfg_;
    const std::set<std::string>& unusable_;
    std::vector<error>& errors_;
};

void validator::check_slices() {
    const ip4_prefix& cluster = cfg_.cluster_cidr;
    const std::string cluster_s = format_prefix(cluster);
    bool have_cluster = usable("cluster.clusterCIDR");
    if (have_cluster && cluster.len < min_cluster_len) {
        fail("cluster.clusterCIDR",
             fmt::format("{} is too large: the prefix length must be at least {}", cluster_s,
                         min_cluster_len));
    }
    if (cfg_.service_cidr && usable("cluster.serviceCIDR") && have_cluster &&
        cfg_.service_cidr->overlaps(cluster)) {
        fail("cluster.serviceCIDR", fmt::format("{} overlaps cluster.clusterCIDR {}",
                                                format_prefix(*cfg_.service_cidr), cluster_s));
    }
    if (usable("node.podCIDR") && cfg_.node.pod_cidr.len < min_local_slice_len) {
        fail("node.podCIDR",
             fmt::format("{} is too large for this node: the prefix length must be at least {}",
                         format_prefix(cfg_.node.pod_cidr), min_local_slice_len));
    }

    // Each slice is checked against its neighbours in address order: O(n log n), so a
    // file with 100k nodes loads in reasonable time.
    const ip4_prefix& own = cfg_.node.pod_cidr;
    const bool own_ok = usable("node.podCIDR") && own.len >= min_local_slice_len;
    std::vector<std::pair<std::string, ip4_prefix>> slices;
    if (usable("node.podCIDR")) {
        slices.emplace_back("node.podCIDR", own);
    }
    for (size_t i = 0; i < cfg_.nodes.size(); ++i) {
        std::string path = fmt::format("nodes[{}].podCIDR", i);
        if (!usable(path)) {
            continue;
        }
        const ip4_prefix& slice = cfg_.nodes[i].pod_cidr;
        if (have_cluster && !cluster.contains(slice)) {
            fail(path, fmt::format("{} is outside cluster.clusterCIDR {}", format_prefix(slice),
                                   cluster_s));
        } else {
            slices.emplace_back(std::move(path), slice);
        }
    }
    if (have_cluster && usable("node.podCIDR")) {
        if (!cluster.contains(own)) {
            fail("node.podCIDR", fmt::format("{} is outside cluster.clusterCIDR {}",
                                             format_prefix(own), cluster_s));
        } else if (own.len - cluster.len > max_slice_bits) {
            fail("node.podCIDR", fmt::format("{} is too small: slices of cluster.clusterCIDR {} "
                                             "must be /{} or larger",
                                             format_prefix(own), cluster_s,
                                             cluster.len + max_slice_bits));
        }
    }
    // Sorted by first address, then the larger first; the order of the file breaks ties,
    // so the later of two overlapping slices is the one reported.
    std::vector<size_t> order(slices.size());
    for (size_t i = 0; i < order.size(); ++i) {
        order[i] = i;
    }
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        const ip4_prefix& x = slices[a].second;
        const ip4_prefix& y = slices[b].second;
        return std::tuple(x.addr.value, x.len, a) < std::tuple(y.addr.value, y.len, b);
    });
    std::vector<std::pair<size_t, size_t>> overlapping;  // (later in the file, earlier)
    size_t reach = slices.size();  // the slice reaching furthest so far
    for (size_t i : order) {
        if (reach != slices.size() && slices[reach].second.overlaps(slices[i].second)) {
            overlapping.emplace_back(std::max(i, reach), std::min(i, reach));
            if (slices[i].second.len < slices[reach].second.len) {
                reach = i;
            }
            continue;
        }
        reach = i;
    }
    std::sort(overlapping.begin(), overlapping.end());
    std::vector<bool> overlaps(slices.size());
    for (const auto& [later, earlier] : overlapping) {
        overlaps[later] = true;
    }
    for (size_t i = 0; i < slices.size(); ++i) {
        const auto& [path, slice] = slices[i];
        if (overlaps[i]) {
            auto it = std::lower_bound(overlapping.begin(), overlapping.end(), std::pair(i, size_t(0)));
            fail(path, fmt::format("{} overlaps {} {}", format_prefix(slice),
                                   slices[it->second].first, format_prefix(slices[it->second].second)));
        } else if (own_ok && path != "node.podCIDR" && slice.len > own.len) {
            fail(path, fmt::format("{} is smaller than this node's slice {}: every node's podCIDR "
                                   "is cut at one length (flannel's SubnetLen)",
                                   format_prefix(slice), format_prefix(own)));
        }
    }
}

void validator::check_nodes() {
    first_use<std::string> names;
    first_use<ip4_addr> ips;
    first_use<mac_addr> macs;
    if (usable("node.name")) {
        names.add(cfg_.node.name, "node.name");
    }
    if (usable("node.ip")) {
        ips.add(cfg_.node.ip, "node.ip");
    }
    if (usable("node.vtepMAC")) {
        macs.add(cfg_.node.vtep_mac, "node.vtepMAC");
    }
    for (size_t i = 0; i < cfg_.nodes.size(); ++i) {
        const remote_node& n = cfg_.nodes[i];
        std::string base = fmt::format("nodes[{}]", i);
        if (usable(base + ".name")) {
            unique(names, n.name, base + ".name", fmt::format("node name '{}'", n.name));
        }
        if (usable(base + ".ip")) {
            unique(ips, n.ip, base + ".ip", fmt::format("node IP {}", format_ip4(n.ip)));
        }
        if (usable(base + ".vtepMAC")) {
            unique(macs, n.vtep_mac, base + ".vtepMAC",
                   fmt::format("MAC {}", format_mac(n.vtep_mac)));
        }
    }
    // A generated node.vtepMAC colliding is a 2^-40 event; a written one is a copy-paste.
}

void validator::check_pods() {
    const ip4_prefix& local = cfg_.node.pod_cidr;
    bool have_local = usable("node.podCIDR");
    bool have_cluster = usable("cluster.clusterCIDR");

    first_use<ip4_addr> ips;
    first_use<std::pair<std::string, std::string>> names;
    first_use<mac_addr> macs;
    first_use<std::string> ports;
    if (usable("node.vtepMAC")) {
        macs.add(cfg_.node.vtep_mac, "node.vtepMAC");
    }
    for (size_t i = 0; i < cfg_.nodes.size(); ++i) {
        std::string path = fmt::format("nodes[{}].vtepMAC", i);
        if (usable(path)) {
            macs.add(cfg_.nodes[i].vtep_mac, path);
        }
    }
    if (usable("ports.underlay")) {
        ports.add(cfg_.underlay_port, "ports.underlay");
    }
    if (!cfg_.host_port.empty() && usable("ports.host")) {
        unique(ports, cfg_.host_port, "ports.host", fmt::format("port '{}'", cfg_.host_port));
    }

    for (size_t i = 0; i < cfg_.pods.size(); ++i) {
        const pod& p = cfg_.pods[i];
        std::string base = fmt::format("pods[{}]", i);
        std::string ip_path = base + ".ip";
        std::string port_path = base + ".port";
        // A port that was written but is broken leaves it unknown where the pod lives.
        bool placed = !cfg_.positions.contains(port_path) || usable(port_path);
        if (usable(ip_path)) {
            std::string ip_s = format_ip4(p.ip);
            if (placed) {
                std::string problem = pod_address_problem(p.ip, !p.port.empty(), have_local ? &local : nullptr,
                                                          have_cluster ? &cfg_.cluster_cidr : nullptr);
                if (!problem.empty()) {
                    fail(ip_path, std::move(problem));
                }
            }
            unique(ips, p.ip, ip_path, fmt::format("pod IP {}", ip_s));
        }
        bool ns_ok = !cfg_.positions.contains(base + ".namespace") || usable(base + ".namespace");
        if (usable(base + ".name") && ns_ok) {
            unique(names, std::pair(p.ns, p.name), base + ".name",
                   fmt::format("pod {}/{}", p.ns, p.name));
        }
        if (p.mac && usable(base + ".mac")) {
            unique(macs, *p.mac, base + ".mac", fmt::format("MAC {}", format_mac(*p.mac)));
        }
        if (!p.port.empty() && usable(port_path)) {
            unique(ports, p.port, port_path, fmt::format("port '{}'", p.port));
        }
    }
}

}  // namespace

}  // namespace twill::config::detail

namespace twill::config {

std::string pod_address_problem(ip4_addr ip, bool local, const ip4_prefix* slice,
                                const ip4_prefix* cluster) {
    const std::string ip_s = format_ip4(ip);
    if (local) {
        if (slice == nullptr) {
            return "";
        }
        const std::string slice_s = format_prefix(*slice);
        if (!slice->contains(ip)) {
            return fmt::format("{} is outside node.podCIDR {}", ip_s, slice_s);
        }
        if (ip == slice->addr && slice->len < 32) {
            return fmt::format("{} is the network address of node.podCIDR {}, which the node "
                               "itself uses",
                               ip_s, slice_s);
        }
        if (ip.value == (slice->addr.value | ~slice->mask()) && slice->len < 31) {
            return fmt::format("{} is the broadcast address of node.podCIDR {}", ip_s, slice_s);
        }
        return "";
    }
    if (cluster != nullptr && !cluster->contains(ip)) {
        return fmt::format("{} is outside cluster.clusterCIDR {}", ip_s, format_prefix(*cluster));
    }
    if (slice != nullptr && slice->contains(ip)) {
        return fmt::format("{} is inside node.podCIDR {}, so the pod runs on this node and needs "
                           "a 'port'",
                           ip_s, format_prefix(*slice));
    }
    return "";
}

}  // namespace twill::config

namespace twill::config::detail {

void validate(const node_file& cfg, const std::set<std::string>& unusable,
              std::vector<error>& errors) {
    validator(cfg, unusable, errors).run();
    validate_services(cfg, unusable, errors);
    validate_policies(cfg, unusable, errors);
}

}  // namespace twill::config::detail
