// One set of rules for services and EndpointSlices, shared by the file check
// (config_validate_services.cc) and the apply check (desired_services.cc), as
// pod_address_problem is for pods: what an object must obey on its own, and the values
// (frontends, node ports) it must not share with another.
#pragma once

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "control/config.h"

namespace twill::config {

// Limits of this version: virtual addresses and node ports together, and endpoints of one
// service (its own and its EndpointSlices').
inline constexpr size_t max_service_frontends = 1'000'000;
inline constexpr size_t max_service_endpoints = 65535;

// Where a field of a service was written. `field` is named as in the compact form:
// "name", "namespace", "scheduler", "clusterIP", "ports[1].nodePort", "endpoints[0].ip"...;
// a manifest has the first two under metadata, the scheduler as an annotation and the
// rest under spec.
std::string service_field(const object_origin& o, std::string_view field);
// The same for an EndpointSlice: "name", "namespace", "service" (its
// kubernetes.io/service-name label), or a path below the slice ("ports[0].name").
std::string slice_field(const object_origin& o, std::string_view field);

// "TCP", "UDP", "SCTP".
std::string_view protocol_name(uint8_t protocol);
// "TCP 10.96.0.10:80", as ipvsadm lists a virtual service.
std::string format_frontend(uint8_t protocol, ip4_addr ip, uint16_t port);

// A virtual address a service answers: its clusterIP and each external IP, with each port.
struct frontend {
    ip4_addr ip;
    uint8_t protocol;
    uint16_t port;
    std::string address_field;  // "clusterIP" or "externalIPs[k]"
    size_t port_index;
};
// Each once (a service repeating one is its own error); none for a headless service.
std::vector<frontend> frontends_of(const service& s);

struct node_port_use {
    uint8_t protocol;
    uint16_t port;
    size_t port_index;
};
// Each once; none unless the service is of type NodePort (a nodePort without it is the
// service's own error).
std::vector<node_port_use> node_ports_of(const service& s);

// The node's settings a service is checked against; a null pointer is not checked.
struct service_context {
    const ip4_addr* node_ip = nullptr;
    const ip4_prefix* cluster_cidr = nullptr;
    const ip4_prefix* service_cidr = nullptr;
};

// Why `ip` cannot be a virtual address, or "": unicast, outside clusterCIDR; a clusterIP
// (`cluster_ip`) also inside serviceCIDR and not the node's address, which an external IP
// may be (that is how a node is reached from outside).
std::string virtual_ip_problem(ip4_addr ip, bool cluster_ip, const service_context& ctx);

// Errors about the objects of one file: each at its path's position, or at the nearest
// enclosing one's when the key was not written. A value whose path, or an enclosing path,
// is in `unusable` was reported already and is not checked again.
class rule_errors {
  public:
    rule_errors(const node_file& file, const std::set<std::string>& unusable,
                std::vector<error>& out)
        : file_(file), unusable_(unusable), out_(out) {}

    bool usable(const std::string& path) const;
    // No path at or below `prefix` is unusable.
    bool clean(const std::string& prefix) const;
    void fail(const std::string& path, std::string message);

  private:
    const node_file& file_;
    const std::set<std::string>& unusable_;
    std::vector<error>& out_;
};

// What a service must obey on its own: addresses against the node's (clusterIP inside
// serviceCIDR, neither in clusterCIDR nor the node's address; unicast external IPs), port
// names (unique; required with several ports), node ports only with type NodePort and then
// on every port, headless services without node ports or external IPs, Local traffic
// policy only where traffic comes from outside, compact endpoints unicast and with a port
// only when the service has one.
void check_service(const service& s, const object_origin& o, const service_context& ctx,
                   rule_errors& r);
// What an EndpointSlice must obey on its own: unicast addresses, unique port names.
void check_slice(const endpoint_slice& s, const object_origin& o, rule_errors& r);
// Why a slice's port does not fit the service `svc` it belongs to, or "": the service has
// no port of that name and protocol.
std::string slice_port_problem(const slice_port& p, const service& svc);

}  // namespace twill::config
