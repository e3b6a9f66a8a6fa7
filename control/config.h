// The node's desired state as read from YAML: plain structs, parsed and validated
// before anything is built or published.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/net/addr.h"

namespace twill::config {

struct source_pos {
    std::string file;
    int line = 0;    // 1-based; 0 = unknown
    int column = 0;  // 1-based
};

struct error {
    std::string path;  // key path, e.g. "pods[1].ip"
    std::string message;
    source_pos pos;
};

// "pods[1].ip: 172.25.9.4 is outside node.podCIDR 172.25.2.0/24 (lab.yaml:31:9)"
std::string to_string(const error& e);

struct vxlan_config {
    uint32_t vni = 1;
    uint16_t port = 8472;
    uint16_t mtu = 1450;
    // VXLAN only from the underlay addresses of known nodes (Linux's flannel.1 takes it
    // from anyone who knows the VNI and port).
    bool known_sources_only = true;
};

struct node_config {
    std::string name;
    ip4_addr ip;
    ip4_prefix pod_cidr;
    mac_addr vtep_mac;  // generated from the name when absent
};

struct remote_node {
    std::string name;
    ip4_addr ip;
    ip4_prefix pod_cidr;
    mac_addr vtep_mac;

    bool operator==(const remote_node&) const = default;
};

// A named port of one of the pod's containers (`containerPorts`), which NetworkPolicy
// ports may name.
struct container_port {
    std::string name;
    uint8_t protocol = 6;  // TCP
    uint16_t port = 0;

    bool operator==(const container_port&) const = default;
};

using label_map = std::map<std::string, std::string>;

struct pod {
    std::string name;
    std::string ns = "default";
    ip4_addr ip;
    std::string port;             // DPDK devargs; empty = a pod on another node
    std::optional<mac_addr> mac;  // learned from the pod's traffic when absent
    label_map labels;             // policy selectors' input
    std::vector<container_port> container_ports;

    bool operator==(const pod&) const = default;
};

// A namespace and its labels (policy namespaceSelectors' input). Every namespace also
// carries `kubernetes.io/metadata.name: <name>`, as the API server sets it; a namespace a
// pod or policy names without listing it has that label only.
struct namespace_def {
    std::string name;
    label_map labels;  // as written, without the automatic label

    bool operator==(const namespace_def&) const = default;
};

// NetworkPolicy (networking.k8s.io/v1), parsed from verbatim manifests.
struct label_requirement {
    enum class op : uint8_t { in, not_in, exists, does_not_exist };
    std::string key;
    op oper = op::in;
    std::vector<std::string> values;  // empty for exists / does_not_exist

    bool operator==(const label_requirement&) const = default;
};

// matchLabels AND matchExpressions; an empty selector selects everything.
struct label_selector {
    label_map match_labels;
    std::vector<label_requirement> match_expressions;

    bool operator==(const label_selector&) const = default;
};

struct ip_block {
    ip4_prefix cidr;  // host bits clear
    std::vector<ip4_prefix> except;  // each strictly inside cidr

    bool operator==(const ip_block&) const = default;
};

// One entry of from/to: podSelector and/or namespaceSelector (both = AND), or ipBlock.
struct policy_peer {
    std::optional<label_selector> pod_selector;
    std::optional<label_selector> namespace_selector;
    std::optional<ip_block> block;

    bool operator==(const policy_peer&) const = default;
};

struct policy_port {
    uint8_t protocol = 6;              // TCP when absent
    std::optional<uint16_t> port;      // numeric; none and no name = every port
    std::string name;                  // a named port, resolved per pod
    std::optional<uint16_t> end_port;  // port..end_port, numeric port only

    bool operator==(const policy_port&) const = default;
};

// A rule allows traffic from/to any of its peers on any of its ports; an empty peer list
// is every address, an empty port list every port.
struct policy_rule {
    std::vector<policy_peer> peers;
    std::vector<policy_port> ports;

    bool operator==(const policy_rule&) const = default;
};

struct network_policy {
    std::string name;
    std::string ns = "default";
    label_selector pod_selector;  // in ns; empty = every pod of ns
    // policyTypes; when absent: Ingress, plus Egress when egress rules are given.
    bool ingress = true;
    bool egress = false;
    std::vector<policy_rule> ingress_rules;  // empty with ingress = deny all ingress
    std::vector<policy_rule> egress_rules;

    bool operator==(const network_policy&) const = default;
};

// Services (kube-proxy's job). The compact form of the design's Configuration section
// and verbatim Kubernetes Service / EndpointSlice manifests both parse into these.
enum class scheduler : uint8_t { rr, wrr, lc, sh, mh };

inline constexpr uint8_t proto_tcp = 6;
inline constexpr uint8_t proto_udp = 17;
inline constexpr uint8_t proto_sctp = 132;

struct service_port {
    std::string name;             // may be empty when the service has one port
    uint8_t protocol = proto_tcp;  // IP protocol number: TCP, UDP or SCTP
    uint16_t port = 0;
    uint16_t target_port = 0;     // 0 = same as port
    uint16_t node_port = 0;       // 0 = none (type ClusterIP)

    bool operator==(const service_port&) const = default;
};

struct endpoint {
    ip4_addr ip;
    // Compact form: the backend port for the service's (single) port; 0 = its targetPort.
    uint16_t port = 0;
    uint16_t weight = 1;  // 0 = no new connections (like terminating)
    bool ready = true;
    bool terminating = false;

    bool operator==(const endpoint&) const = default;
};

// A port of an EndpointSlice: the backend port for the service's port of the same name
// and protocol.
struct slice_port {
    std::string name;  // may be empty, as the service's port of a one-port service
    uint8_t protocol = proto_tcp;
    uint16_t port = 0;

    bool operator==(const slice_port&) const = default;
};

// A discovery.k8s.io/v1 EndpointSlice: endpoints of the service named by its
// kubernetes.io/service-name label, ports matched to the service's by name and protocol.
struct endpoint_slice {
    std::string name;
    std::string ns = "default";
    std::string service;  // kubernetes.io/service-name
    std::vector<slice_port> ports;
    std::vector<endpoint> endpoints;  // port 0: taken from `ports`

    bool operator==(const endpoint_slice&) const = default;
};

struct service {
    std::string name;
    std::string ns = "default";
    bool node_port = false;               // type NodePort (else ClusterIP)
    std::optional<ip4_addr> cluster_ip;   // none: headless ("None"), no virtual address
    std::vector<ip4_addr> external_ips;
    std::vector<service_port> ports;
    scheduler sched = scheduler::rr;
    bool affinity_client_ip = false;      // sessionAffinity: ClientIP
    uint32_t affinity_timeout = 10800;    // sessionAffinityConfig.clientIP.timeoutSeconds
    bool local_traffic = false;           // externalTrafficPolicy: Local
    std::vector<endpoint> endpoints;      // compact form; slices add theirs

    bool operator==(const service&) const = default;
};

// Connection tracking, like `ipvsadm --set tcp tcpfin udp`; the capacity is fixed at start.
struct conntrack_config {
    uint32_t capacity = 1u << 20;  // connections
    uint32_t tcp_timeout = 900;
    uint32_t tcp_fin_timeout = 120;
    uint32_t udp_timeout = 300;

    bool operator==(const conntrack_config&) const = default;
};

// Where a service, EndpointSlice, namespace or NetworkPolicy was written, for messages: the
// path of its map ("services[2]", "items[0]" of a List, "" for a file that is one
// manifest), and whether it is a Kubernetes manifest, whose fields sit under metadata and
// spec.
struct object_origin {
    std::string path;
    bool manifest = false;

    bool operator==(const object_origin&) const = default;
};

struct node_file {
    node_config node;
    ip4_prefix cluster_cidr;
    std::optional<ip4_prefix> service_cidr;
    vxlan_config vxlan;
    std::vector<std::string> eal;  // empty = embedded default
    // dpdk.workers: worker lcores running the packet path; dpdk.workerLcores names them
    // (EAL lcore ids), else they are the first `workers` lcores after the main one.
    uint32_t workers = 1;
    std::vector<uint32_t> worker_lcores;
    std::string underlay_port;     // DPDK devargs
    std::string host_port;         // DPDK devargs of the port into the node's kernel; optional
    std::vector<remote_node> nodes;
    std::vector<pod> pods;
    conntrack_config conntrack;
    std::vector<service> services;
    std::vector<endpoint_slice> endpoint_slices;
    // Parallel to services and endpoint_slices.
    std::vector<object_origin> service_origins;
    std::vector<object_origin> slice_origins;
    std::vector<namespace_def> namespaces;
    std::vector<network_policy> network_policies;
    // Parallel to namespaces ("namespaces[1]", compact or a Namespace manifest) and
    // network_policies (always manifests).
    std::vector<object_origin> namespace_origins;
    std::vector<object_origin> policy_origins;
    bool cut_denied_connections = true;  // policy.cutEstablished: re-check on tightening

    // Where each key path was written, for error messages of later checks.
    std::map<std::string, source_pos> positions;
};

struct parse_result {
    node_file cfg;
    std::vector<error> errors;  // every error found; empty = valid
    bool ok() const { return errors.empty(); }
};

// Parses and validates. `name` is what messages call the source (a file name).
parse_result parse_yaml(const std::string& text, const std::string& name);
parse_result load_file(const std::string& path);

// Objects to add or replace in a running node (twillctl apply): a map with `nodes`, `pods`,
// `services`, `endpointSlices`, `namespaces` and `networkPolicies` only, or a file that is
// one Service, EndpointSlice, NetworkPolicy or Namespace manifest, or a List of them
// (`kubectl get -o yaml`). Each object is checked on its own; desired_state::check relates
// them to the rest.
parse_result parse_objects_yaml(const std::string& text, const std::string& name);

// The cross-key checks of parse_yaml on a whole node file, e.g. after a merge.
std::vector<error> validate(const node_file& cfg);

// Why a pod's address does not fit where the pod runs, or "" when it does: a pod with a
// port (`local`) lies inside node.podCIDR (`slice`) and is neither its network nor its
// broadcast address; any other pod lies inside clusterCIDR but outside node.podCIDR.
// A null prefix is not checked.
std::string pod_address_problem(ip4_addr ip, bool local, const ip4_prefix* slice,
                                const ip4_prefix* cluster);

// The most worker lcores a node runs (dpdk.workers).
inline constexpr uint32_t max_workers = 16;

// The embedded EAL default: no NIC, no hugepages.
std::vector<std::string> default_eal();

// The text forms the YAML uses, strict so that a typo is an error rather than another
// address: "10.0.0.1" (no leading zeros, signs or spaces), "0e:00:00:00:02:00".
std::optional<ip4_addr> parse_ip4(std::string_view s);
// "a.b.c.d/len" as written: host bits may be set, so callers can say what was meant.
std::optional<ip4_prefix> parse_cidr(std::string_view s);
std::optional<mac_addr> parse_mac(std::string_view s);
std::string format_ip4(ip4_addr a);
std::string format_prefix(const ip4_prefix& p);
std::string format_mac(const mac_addr& m);

// The vtepMAC used when node.vtepMAC is absent: 02 (locally administered, unicast) and
// five bytes of the FNV-1a hash of the name, so a restart keeps the MAC peers learned.
mac_addr generated_vtep_mac(std::string_view node_name);

}  // namespace twill::config
