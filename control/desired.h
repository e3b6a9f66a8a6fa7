// The node's desired state on the control thread, indexed so that a change is checked
// and recorded in time proportional to its size, not to the state's: the node-wide
// settings, the remote nodes, the pods, the services and their EndpointSlices, with every
// value that must be unique (addresses, MACs, ports, pod slices, service frontends and
// node ports, endpoints of a service) mapped to its owner. desired.cc holds nodes and
// pods, desired_services.cc services and slices, desired_policies.cc namespaces and
// NetworkPolicies.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "control/config.h"

namespace twill {

using pod_key = std::pair<std::string, std::string>;  // namespace, name

// A change to the objects of a running node: what `twillctl apply` and `delete` ask for,
// and what a reload comes to once diffed against the running state.
struct object_change {
    std::vector<config::remote_node> nodes;  // add, or replace the node of that name
    std::vector<config::pod> pods;           // add, or replace the pod of that namespace/name
    std::vector<std::string> delete_nodes;
    std::vector<pod_key> delete_pods;
    std::vector<config::service> services;               // add, or replace by namespace/name
    std::vector<config::endpoint_slice> endpoint_slices;  // add, or replace by namespace/name
    std::vector<pod_key> delete_services;
    std::vector<pod_key> delete_endpoint_slices;
    std::vector<config::namespace_def> namespaces;         // add, or replace by name
    std::vector<config::network_policy> network_policies;  // add, or replace by namespace/name
    std::vector<std::string> delete_namespaces;
    std::vector<pod_key> delete_network_policies;
    std::optional<bool> cut_denied_connections;  // a reload changed policy.cutEstablished
    bool empty() const {
        return nodes.empty() && pods.empty() && delete_nodes.empty() && delete_pods.empty() &&
               services.empty() && endpoint_slices.empty() && delete_services.empty() &&
               delete_endpoint_slices.empty() && namespaces.empty() &&
               network_policies.empty() && delete_namespaces.empty() &&
               delete_network_policies.empty() && !cut_denied_connections;
    }
};

class desired_state {
public:
    // `cfg` must be valid (config::validate).
    explicit desired_state(const config::node_file& cfg);

    // The node-wide part: node, cluster, EAL, underlay. Its node and pod lists are empty.
    const config::node_file& settings() const { return settings_; }
    const std::map<std::string, config::remote_node>& nodes() const { return nodes_; }
    const std::map<pod_key, config::pod>& pods() const { return pods_; }
    // Pods with a port on this node, which the pod table holds.
    const std::map<pod_key, config::pod>& local_pods() const { return local_; }
    bool has_node_ip(ip4_addr ip) const { return ips_.contains(ip.value); }
    const std::map<pod_key, config::service>& services() const { return services_; }
    const std::map<pod_key, config::endpoint_slice>& endpoint_slices() const {
        return endpoint_slices_;
    }
    // A service's endpoints: its own (compact form) followed by those of every
    // EndpointSlice naming it, each with its backend port per service port resolved:
    // result[i][j] is endpoint i's port for service port j (0: that endpoint does not
    // serve port j, e.g. a slice without a port of that name).
    struct resolved_endpoint {
        config::endpoint ep;
        std::vector<uint16_t> ports;
    };
    std::vector<resolved_endpoint> endpoints_of(const pod_key& service) const;
    // The services a change touches: changed or deleted services, and the services named
    // by changed or deleted EndpointSlices (old and new name). Asked before record(c).
    std::set<pod_key> services_touched(const object_change& c) const;
    // The EndpointSlices naming a service (by their kubernetes.io/service-name label).
    std::vector<pod_key> slices_of(const pod_key& service) const;

    // Namespaces as listed (labels without the automatic kubernetes.io/metadata.name; a
    // namespace only pods or policies name is not here), and NetworkPolicies by
    // namespace/name.
    const std::map<std::string, config::namespace_def>& namespaces() const { return namespaces_; }
    const std::map<pod_key, config::network_policy>& network_policies() const {
        return policies_;
    }
    // The pods of a namespace.
    std::vector<pod_key> pods_in(const std::string& ns) const;
    // Asked before record(c). Whether `c` can change a NetworkPolicy verdict at this node. `enforced`: the policies
    // the current table compiles (those that select a local pod). A pod matters when a
    // policy selects it as a local pod, when an enforced (or changed) policy's peer selects
    // it or names one of its container ports; a pod that no policy names is seen by the
    // rules as its address only, which its /32 does not change.
    bool policy_touched(const object_change& c, const std::set<pod_key>& enforced) const;

    // The errors adding or replacing `objects`' nodes, pods, services, EndpointSlices,
    // namespaces and NetworkPolicies would cause, checked against the rest of the state as it would be afterwards; each
    // names a path and position in `objects`' file. The objects' own keys must have passed
    // config::parse_objects_yaml; objects named in `skip` ("nodes[2]", or a service's or
    // slice's object_origin path: "services[0]", "items[3]") had errors there and are
    // left out. A policy's or pod's namespace need not be listed.
    std::vector<config::error> check(const config::node_file& objects,
                                     const std::set<std::string>& skip = {}) const;

    // Records a change that is valid (checked, or the difference to a valid file). A
    // deleted service's EndpointSlices are deleted in the same change (`twillctl delete
    // service` does so; a valid file has no slice without its service).
    void record(const object_change& c);

    // What turns this state into `next` (a valid file with the same settings).
    object_change diff(const config::node_file& next) const;

private:
    void add_node(const config::remote_node& n);
    void erase_node(const std::string& name);
    void add_pod(const config::pod& p);
    void erase_pod(const pod_key& key);
    void add_service(const config::service& s);
    void erase_service(const pod_key& key);
    void add_slice(const config::endpoint_slice& s);
    void erase_slice(const pod_key& key);
    void check_services(const config::node_file& objects, const std::set<std::string>& skip,
                        std::vector<config::error>& errors) const;
    void check_policies(const config::node_file& objects, const std::set<std::string>& skip,
                        std::vector<config::error>& errors) const;
    void record_policies(const object_change& c);
    void diff_policies(const config::node_file& next, object_change& c) const;

    config::node_file settings_;
    std::map<std::string, config::remote_node> nodes_;
    std::map<pod_key, config::pod> pods_;
    std::map<pod_key, config::pod> local_;
    // Unique values -> owner: "node/NAME", "pod/NS/NAME", or "self" for this node's.
    std::map<uint32_t, std::string> ips_;            // node addresses
    std::map<uint32_t, std::pair<uint32_t, std::string>> slices_;  // first -> (last, owner)
    std::map<mac_addr, std::string> macs_;           // VTEP and pod MACs
    std::map<uint32_t, std::string> pod_ips_;
    std::map<std::string, std::string> ports_;       // devargs
    std::map<pod_key, config::service> services_;
    std::map<pod_key, config::endpoint_slice> endpoint_slices_;
    // Virtual addresses in use: (ip, protocol, port) -> "service/NS/NAME", and node ports
    // (protocol, port), which every node address answers.
    std::map<std::tuple<uint32_t, uint8_t, uint16_t>, std::string> frontends_;
    std::map<std::pair<uint8_t, uint16_t>, std::string> node_ports_;
    // Service -> the EndpointSlices naming it.
    std::map<pod_key, std::set<pod_key>> slices_of_;
    // (service, endpoint address) -> "service/NS/NAME" (compact form) or
    // "endpointslice/NS/NAME"; and each service's number of endpoints, both kinds.
    std::map<std::pair<pod_key, uint32_t>, std::string> endpoint_ips_;
    std::map<pod_key, size_t> endpoint_counts_;
    std::map<std::string, config::namespace_def> namespaces_;
    std::map<pod_key, config::network_policy> policies_;
};

}  // namespace twill
