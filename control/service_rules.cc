#include "control/service_rules.h"

#include <map>
#include <tuple>
#include <utility>

#include <fmt/format.h>

namespace twill::config {

namespace {

std::string join(const std::string& path, std::string_view field) {
    if (path.empty()) {
        return std::string(field);
    }
    return fmt::format("{}.{}", path, field);
}

std::string port_label(const std::string& name) {
    return name.empty() ? std::string("'' (unnamed)") : fmt::format("'{}'", name);
}

}  // namespace

std::string virtual_ip_problem(ip4_addr ip, bool cluster_ip, const service_context& ctx) {
    const std::string ip_s = format_ip4(ip);
    if (is_martian(ip)) {
        return fmt::format("{} is not a unicast address (0.0.0.0/8, 127.0.0.0/8 and 224.0.0.0/3 "
                           "are not)",
                           ip_s);
    }
    if (ctx.cluster_cidr != nullptr && ctx.cluster_cidr->contains(ip)) {
        return fmt::format("{} is inside cluster.clusterCIDR {}, the pods' addresses", ip_s,
                           format_prefix(*ctx.cluster_cidr));
    }
    if (!cluster_ip) {
        return "";
    }
    if (ctx.service_cidr != nullptr && !ctx.service_cidr->contains(ip)) {
        return fmt::format("{} is outside cluster.serviceCIDR {}", ip_s,
                           format_prefix(*ctx.service_cidr));
    }
    if (ctx.node_ip != nullptr && *ctx.node_ip == ip) {
        return fmt::format("{} is this node's address (node.ip)", ip_s);
    }
    return "";
}

std::string service_field(const object_origin& o, std::string_view field) {
    if (!o.manifest) {
        return join(o.path, field);
    }
    if (field == "name" || field == "namespace") {
        return join(o.path, fmt::format("metadata.{}", field));
    }
    if (field == "scheduler") {
        return join(o.path, "metadata.annotations.twill.dev/scheduler");
    }
    return join(o.path, fmt::format("spec.{}", field));
}

std::string slice_field(const object_origin& o, std::string_view field) {
    if (field == "name" || field == "namespace") {
        return join(o.path, fmt::format("metadata.{}", field));
    }
    if (field == "service") {
        return join(o.path, "metadata.labels.kubernetes.io/service-name");
    }
    return join(o.path, field);
}

std::string_view protocol_name(uint8_t protocol) {
    switch (protocol) {
        case proto_tcp:
            return "TCP";
        case proto_udp:
            return "UDP";
        case proto_sctp:
            return "SCTP";
        default:
            return "?";
    }
}

std::string format_frontend(uint8_t protocol, ip4_addr ip, uint16_t port) {
    return fmt::format("{} {}:{}", protocol_name(protocol), format_ip4(ip), port);
}

std::vector<frontend> frontends_of(const service& s) {
    std::vector<frontend> out;
    if (!s.cluster_ip) {
        return out;
    }
    std::set<std::tuple<uint32_t, uint8_t, uint16_t>> seen;
    auto add = [&](ip4_addr ip, const std::string& field) {
        for (size_t j = 0; j < s.ports.size(); ++j) {
            const service_port& p = s.ports[j];
            if (seen.emplace(ip.value, p.protocol, p.port).second) {
                out.push_back({ip, p.protocol, p.port, field, j});
            }
        }
    };
    add(*s.cluster_ip, "clusterIP");
    for (size_t k = 0; k < s.external_ips.size(); ++k) {
        add(s.external_ips[k], fmt::format("externalIPs[{}]", k));
    }
    return out;
}

std::vector<node_port_use> node_ports_of(const service& s) {
    std::vector<node_port_use> out;
    if (!s.node_port) {
        return out;
    }
    std::set<std::pair<uint8_t, uint16_t>> seen;
    for (size_t j = 0; j < s.ports.size(); ++j) {
        const service_port& p = s.ports[j];
        if (p.node_port != 0 && seen.emplace(p.protocol, p.node_port).second) {
            out.push_back({p.protocol, p.node_port, j});
        }
    }
    return out;
}

bool rule_errors::usable(const std::string& path) const {
    if (unusable_.empty()) {
        return true;
    }
    // The path and each enclosing one: "a.b[1].c" -> "a", "a.b", "a.b[1]", "a.b[1].c".
    for (size_t i = 0; i <= path.size(); ++i) {
        if ((i == path.size() || path[i] == '.' || path[i] == '[') &&
            unusable_.contains(path.substr(0, i))) {
            return false;
        }
    }
    return true;
}

bool rule_errors::clean(const std::string& prefix) const {
    auto it = unusable_.lower_bound(prefix);
    return usable(prefix) && (it == unusable_.end() || !it->starts_with(prefix));
}

void rule_errors::fail(const std::string& path, std::string message) {
    std::string at = path;
    auto it = file_.positions.find(at);
    while (it == file_.positions.end() && !at.empty()) {
        size_t cut = at.find_last_of(".[");
        at.resize(cut == std::string::npos ? 0 : cut);
        it = file_.positions.find(at);
    }
    out_.push_back({path, std::move(message), it == file_.positions.end() ? source_pos{} : it->second});
}

void check_service(const service& s, const object_origin& o, const service_context& ctx,
                   rule_errors& r) {
    auto f = [&](std::string_view field) { return service_field(o, field); };
    auto port_f = [&](size_t j, std::string_view key) {
        return f(fmt::format("ports[{}].{}", j, key));
    };
    const bool ip_ok = r.usable(f("clusterIP"));
    const bool type_ok = r.usable(f("type"));
    const bool headless = ip_ok && !s.cluster_ip;

    if (headless && s.node_port && type_ok) {
        r.fail(f("type"), "a headless service (clusterIP None) cannot be of type NodePort: it "
                          "has no virtual address");
    }
    if (headless && !s.external_ips.empty() && r.usable(f("externalIPs"))) {
        r.fail(f("externalIPs"), "a headless service (clusterIP None) has no virtual address, so "
                                 "no external IPs either");
    }
    if (ip_ok && s.cluster_ip) {
        if (std::string problem = virtual_ip_problem(*s.cluster_ip, true, ctx); !problem.empty()) {
            r.fail(f("clusterIP"), std::move(problem));
        }
        if (s.ports.empty() && r.usable(f("ports"))) {
            r.fail(f("ports"), "a service with a cluster IP needs at least one port");
        }
    }
    std::map<uint32_t, std::string> external;
    for (size_t k = 0; k < s.external_ips.size(); ++k) {
        const std::string path = f(fmt::format("externalIPs[{}]", k));
        ip4_addr ip = s.external_ips[k];
        if (!r.usable(path)) {
            continue;
        }
        if (std::string problem = virtual_ip_problem(ip, false, ctx); !problem.empty()) {
            r.fail(path, std::move(problem));
        } else if (ip_ok && s.cluster_ip == ip) {
            r.fail(path, fmt::format("{} is the service's clusterIP already", format_ip4(ip)));
        } else if (auto [at, fresh] = external.try_emplace(ip.value, path); !fresh) {
            r.fail(path, fmt::format("duplicate external IP {} (also {})", format_ip4(ip), at->second));
        }
    }

    std::map<std::string, std::string> names;
    std::map<std::pair<uint8_t, uint16_t>, std::string> ports, node_ports;
    for (size_t j = 0; j < s.ports.size(); ++j) {
        const service_port& p = s.ports[j];
        if (!r.usable(f(fmt::format("ports[{}]", j)))) {
            continue;
        }
        const std::string name_path = port_f(j, "name");
        if (r.usable(name_path)) {
            if (p.name.empty() && s.ports.size() > 1) {
                r.fail(name_path, "required when a service has more than one port: "
                                  "EndpointSlices match ports by name");
            } else if (!p.name.empty()) {
                if (auto [at, fresh] = names.try_emplace(p.name, name_path); !fresh) {
                    r.fail(name_path, fmt::format("duplicate port name '{}' (also {})", p.name, at->second));
                }
            }
        }
        const bool protocol_ok = r.usable(port_f(j, "protocol"));
        const std::string port_path = port_f(j, "port");
        if (protocol_ok && r.usable(port_path)) {
            if (auto [at, fresh] = ports.try_emplace(std::pair(p.protocol, p.port), port_path); !fresh) {
                r.fail(port_path, fmt::format("duplicate port {} {} (also {})", protocol_name(p.protocol),
                                              p.port, at->second));
            }
        }
        const std::string node_path = port_f(j, "nodePort");
        if (!r.usable(node_path) || !type_ok) {
            continue;
        }
        if (p.node_port != 0 && !s.node_port) {
            r.fail(node_path, "only a service of type NodePort has node ports");
        } else if (p.node_port == 0 && s.node_port && ip_ok && !headless) {
            r.fail(node_path, "required with type NodePort, on every port: twill does not "
                              "allocate node ports");
        } else if (p.node_port != 0 && protocol_ok) {
            if (auto [at, fresh] = node_ports.try_emplace(std::pair(p.protocol, p.node_port), node_path);
                !fresh) {
                r.fail(node_path, fmt::format("duplicate nodePort {} {} (also {})",
                                              protocol_name(p.protocol), p.node_port, at->second));
            }
        }
    }

    if (s.local_traffic && type_ok && !s.node_port && s.external_ips.empty() &&
        r.usable(f("externalTrafficPolicy")) && r.usable(f("externalIPs"))) {
        r.fail(f("externalTrafficPolicy"),
               "Local only concerns traffic from outside the cluster: it needs type NodePort or "
               "externalIPs");
    }

    for (size_t k = 0; k < s.endpoints.size(); ++k) {
        const endpoint& e = s.endpoints[k];
        const std::string ip_path = f(fmt::format("endpoints[{}].ip", k));
        if (r.usable(ip_path) && is_martian(e.ip)) {
            r.fail(ip_path, fmt::format("{} is not a unicast address (0.0.0.0/8, 127.0.0.0/8 and "
                                        "224.0.0.0/3 are not)",
                                        format_ip4(e.ip)));
        }
        const std::string port_path = f(fmt::format("endpoints[{}].port", k));
        if (e.port != 0 && s.ports.size() > 1 && r.usable(port_path) && r.usable(f("ports"))) {
            r.fail(port_path, fmt::format("the service has {} ports, which one port cannot serve "
                                          "all of: give targetPort per port instead",
                                          s.ports.size()));
        }
    }
}

void check_slice(const endpoint_slice& s, const object_origin& o, rule_errors& r) {
    std::map<std::string, std::string> names;
    for (size_t j = 0; j < s.ports.size(); ++j) {
        const std::string path = slice_field(o, fmt::format("ports[{}].name", j));
        if (!r.usable(path)) {
            continue;
        }
        const std::string& name = s.ports[j].name;
        if (auto [at, fresh] = names.try_emplace(name, path); !fresh) {
            r.fail(path, fmt::format("duplicate port name {} (also {})", port_label(name), at->second));
        }
    }
    for (size_t k = 0; k < s.endpoints.size(); ++k) {
        const std::string path = slice_field(o, fmt::format("endpoints[{}].addresses[0]", k));
        if (r.usable(path) && is_martian(s.endpoints[k].ip)) {
            r.fail(path, fmt::format("{} is not a unicast address (0.0.0.0/8, 127.0.0.0/8 and "
                                     "224.0.0.0/3 are not)",
                                     format_ip4(s.endpoints[k].ip)));
        }
    }
}

std::string slice_port_problem(const slice_port& p, const service& svc) {
    std::string theirs;
    for (const service_port& sp : svc.ports) {
        if (sp.name == p.name) {
            if (sp.protocol == p.protocol) {
                return "";
            }
            return fmt::format("port {} is {} here but {} in service {}/{}", port_label(p.name),
                               protocol_name(p.protocol), protocol_name(sp.protocol), svc.ns,
                               svc.name);
        }
        theirs += fmt::format("{}{} {}", theirs.empty() ? "" : ", ", port_label(sp.name),
                              protocol_name(sp.protocol));
    }
    return fmt::format("port {} matches no port of service {}/{} (its ports: {})",
                       port_label(p.name), svc.ns, svc.name, theirs.empty() ? "none" : theirs);
}

}  // namespace twill::config
