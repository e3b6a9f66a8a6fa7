// The node file's services and EndpointSlices checked against each other and the node:
// names, frontends and node ports unique, each slice's service present with the slice's
// ports, endpoints unique per service, and the limits. Each object's own rules are in
// service_rules.cc, which desired_state::check applies to `twillctl apply` too.
#include <map>
#include <tuple>
#include <utility>

#include <fmt/format.h>

#include "control/config_internal.h"
#include "control/service_rules.h"

namespace twill::config::detail {

namespace {

using service_key = std::pair<std::string, std::string>;  // namespace, name

// Who first used a value, for "... is already used by service default/web (services[0]...)".
struct use {
    std::string owner;  // "default/web"
    std::string path;
};

class service_validator {
  public:
    service_validator(const node_file& cfg, const std::set<std::string>& unusable,
                      std::vector<error>& errors)
        : cfg_(cfg), r_(cfg, unusable, errors) {
        if (r_.usable("node.ip")) {
            ctx_.node_ip = &cfg.node.ip;
        }
        if (r_.usable("cluster.clusterCIDR")) {
            ctx_.cluster_cidr = &cfg.cluster_cidr;
        }
        if (cfg.service_cidr && r_.usable("cluster.serviceCIDR")) {
            ctx_.service_cidr = &*cfg.service_cidr;
        }
    }

    void run() {
        check_services();
        check_frontends();
        check_slices();
        check_endpoints();
    }

  private:
    bool named(const object_origin& o, bool slice) const {
        auto f = [&](std::string_view field) {
            return slice ? slice_field(o, field) : service_field(o, field);
        };
        return r_.usable(o.path) && r_.usable(f("name")) && r_.usable(f("namespace"));
    }

    void check_services();
    void check_frontends();
    void check_slices();
    void check_endpoints();

    const node_file& cfg_;
    rule_errors r_;
    service_context ctx_;
    std::map<service_key, size_t> services_;  // the first of each name
    bool some_unnamed_ = false;              // then a slice's missing service may be that one
};

void service_validator::check_services() {
    for (size_t i = 0; i < cfg_.services.size(); ++i) {
        const service& s = cfg_.services[i];
        const object_origin& o = cfg_.service_origins[i];
        if (!r_.usable(o.path)) {
            some_unnamed_ = true;
            continue;
        }
        check_service(s, o, ctx_, r_);
        if (!named(o, false)) {
            some_unnamed_ = true;
        } else if (auto [at, fresh] = services_.try_emplace(service_key(s.ns, s.name), i); !fresh) {
            r_.fail(service_field(o, "name"),
                    fmt::format("duplicate service {}/{} (also {})", s.ns, s.name,
                                service_field(cfg_.service_origins[at->second], "name")));
        }
    }
}

void service_validator::check_frontends() {
    std::map<std::tuple<uint32_t, uint8_t, uint16_t>, use> frontends;
    std::map<std::pair<uint8_t, uint16_t>, use> node_ports;
    size_t total = 0;
    for (size_t i = 0; i < cfg_.services.size(); ++i) {
        const service& s = cfg_.services[i];
        const object_origin& o = cfg_.service_origins[i];
        if (!r_.usable(o.path)) {
            continue;
        }
        auto f = [&](std::string_view field) { return service_field(o, field); };
        auto port_ok = [&](size_t j, std::string_view key) {
            return r_.usable(f(fmt::format("ports[{}].{}", j, key))) &&
                   r_.usable(f(fmt::format("ports[{}].protocol", j)));
        };
        const std::string owner = fmt::format("{}/{}", s.ns, s.name);
        if (r_.usable(f("clusterIP"))) {
            for (const frontend& fe : frontends_of(s)) {
                const std::string path = f(fe.address_field);
                if (!r_.usable(path) || !port_ok(fe.port_index, "port") ||
                    !virtual_ip_problem(fe.ip, fe.address_field == "clusterIP", ctx_).empty()) {
                    continue;
                }
                ++total;
                const std::string what = format_frontend(fe.protocol, fe.ip, fe.port);
                auto key = std::tuple(fe.ip.value, fe.protocol, fe.port);
                auto np = ctx_.node_ip != nullptr && fe.ip == *ctx_.node_ip
                              ? node_ports.find(std::pair(fe.protocol, fe.port))
                              : node_ports.end();
                if (auto it = frontends.find(key); it != frontends.end()) {
                    r_.fail(path, fmt::format("{} is already used by service {} ({})", what,
                                              it->second.owner, it->second.path));
                } else if (np != node_ports.end()) {
                    r_.fail(path, fmt::format("{} is already used by service {} ({}), a node port",
                                              what, np->second.owner, np->second.path));
                } else {
                    frontends.emplace(key, use{owner, path});
                }
            }
        }
        for (const node_port_use& n : node_ports_of(s)) {
            const std::string path = f(fmt::format("ports[{}].nodePort", n.port_index));
            if (!port_ok(n.port_index, "nodePort") || !r_.usable(f("type"))) {
                continue;
            }
            ++total;
            auto fe = ctx_.node_ip != nullptr
                          ? frontends.find(std::tuple(ctx_.node_ip->value, n.protocol, n.port))
                          : frontends.end();
            if (auto it = node_ports.find(std::pair(n.protocol, n.port)); it != node_ports.end()) {
                r_.fail(path, fmt::format("nodePort {} {} is already used by service {} ({})",
                                          protocol_name(n.protocol), n.port, it->second.owner,
                                          it->second.path));
            } else if (fe != frontends.end()) {
                r_.fail(path, fmt::format("nodePort {} {} on node.ip is already used by service {} "
                                          "({})",
                                          protocol_name(n.protocol), n.port, fe->second.owner,
                                          fe->second.path));
            } else {
                node_ports.emplace(std::pair(n.protocol, n.port), use{owner, path});
            }
        }
    }
    if (total > max_service_frontends) {
        r_.fail("services", fmt::format("{} service frontends (addresses and node ports, each "
                                        "with a port); at most {} are supported",
                                        total, max_service_frontends));
    }
}

void service_validator::check_slices() {
    std::map<service_key, std::string> names;
    for (size_t k = 0; k < cfg_.endpoint_slices.size(); ++k) {
        const endpoint_slice& sl = cfg_.endpoint_slices[k];
        const object_origin& o = cfg_.slice_origins[k];
        if (!r_.usable(o.path)) {
            continue;
        }
        check_slice(sl, o, r_);
        if (named(o, true)) {
            const std::string path = slice_field(o, "name");
            if (auto [at, fresh] = names.try_emplace(service_key(sl.ns, sl.name), path); !fresh) {
                r_.fail(path, fmt::format("duplicate EndpointSlice {}/{} (also {})", sl.ns, sl.name,
                                          at->second));
            }
        }
        const std::string service_path = slice_field(o, "service");
        if (!r_.usable(service_path) || !r_.usable(slice_field(o, "namespace"))) {
            continue;
        }
        auto it = services_.find(service_key(sl.ns, sl.service));
        if (it == services_.end()) {
            if (!some_unnamed_) {
                r_.fail(service_path, fmt::format("service {}/{} does not exist: a slice's service "
                                                  "must be in services, in the slice's namespace",
                                                  sl.ns, sl.service));
            }
            continue;
        }
        const service& svc = cfg_.services[it->second];
        if (!r_.clean(service_field(cfg_.service_origins[it->second], "ports"))) {
            continue;
        }
        for (size_t j = 0; j < sl.ports.size(); ++j) {
            const std::string path = slice_field(o, fmt::format("ports[{}]", j));
            if (!r_.clean(path)) {
                continue;
            }
            if (std::string problem = slice_port_problem(sl.ports[j], svc); !problem.empty()) {
                r_.fail(path + ".name", std::move(problem));
            }
        }
    }
}

void service_validator::check_endpoints() {
    std::map<std::pair<service_key, uint32_t>, std::string> seen;
    std::map<service_key, size_t> counts;
    auto add = [&](const service_key& key, ip4_addr ip, const std::string& path) {
        if (!r_.usable(path)) {
            return;
        }
        if (auto [at, fresh] = seen.try_emplace(std::pair(key, ip.value), path); !fresh) {
            r_.fail(path, fmt::format("duplicate endpoint {} of service {}/{} (also {})",
                                      format_ip4(ip), key.first, key.second, at->second));
        }
    };
    for (const auto& [key, i] : services_) {
        const service& s = cfg_.services[i];
        for (size_t k = 0; k < s.endpoints.size(); ++k) {
            add(key, s.endpoints[k].ip,
                service_field(cfg_.service_origins[i], fmt::format("endpoints[{}].ip", k)));
        }
        counts[key] += s.endpoints.size();
    }
    for (size_t k = 0; k < cfg_.endpoint_slices.size(); ++k) {
        const endpoint_slice& sl = cfg_.endpoint_slices[k];
        const object_origin& o = cfg_.slice_origins[k];
        service_key key(sl.ns, sl.service);
        if (!r_.usable(o.path) || !r_.usable(slice_field(o, "service")) ||
            !r_.usable(slice_field(o, "namespace")) || !services_.contains(key)) {
            continue;
        }
        for (size_t e = 0; e < sl.endpoints.size(); ++e) {
            add(key, sl.endpoints[e].ip, slice_field(o, fmt::format("endpoints[{}].addresses[0]", e)));
        }
        counts[key] += sl.endpoints.size();
    }
    for (const auto& [key, n] : counts) {
        if (n > max_service_endpoints) {
            r_.fail(cfg_.service_origins[services_.at(key)].path,
                    fmt::format("service {}/{} has {} endpoints, its own and its EndpointSlices'; "
                                "at most {} are supported",
                                key.first, key.second, n, max_service_endpoints));
        }
    }
}

}  // namespace

void validate_services(const node_file& cfg, const std::set<std::string>& unusable,
                       std::vector<error>& errors) {
    service_validator(cfg, unusable, errors).run();
}

}  // namespace twill::config::detail
