// The desired state's services and EndpointSlices: their indexes (frontends, node ports,
// endpoints of each service, slices of each service), the apply check against them, and
// each service's endpoints with their backend ports resolved.
#include <fmt/format.h>

#include "control/desired.h"
#include "control/service_rules.h"

namespace twill {

namespace {

std::string service_owner(const pod_key& k) {
    return fmt::format("service/{}/{}", k.first, k.second);
}
std::string slice_owner(const pod_key& k) {
    return fmt::format("endpointslice/{}/{}", k.first, k.second);
}

// "service default/web", "EndpointSlice default/web-x7k2p".
std::string describe_owner(const std::string& owner) {
    if (owner.starts_with("service/")) {
        return "service " + owner.substr(8);
    }
    return "EndpointSlice " + owner.substr(14);
}

using frontend_key = std::tuple<uint32_t, uint8_t, uint16_t>;
using node_port_key = std::pair<uint8_t, uint16_t>;

template <class K>
void erase_owned(std::map<K, std::string>& m, const K& k, const std::string& owner) {
    if (auto it = m.find(k); it != m.end() && it->second == owner) {
        m.erase(it);
    }
}

}  // namespace

void desired_state::add_service(const config::service& s) {
    const pod_key key(s.ns, s.name);
    const std::string owner = service_owner(key);
    for (const config::frontend& f : config::frontends_of(s)) {
        frontends_.emplace(frontend_key(f.ip.value, f.protocol, f.port), owner);
    }
    for (const config::node_port_use& n : config::node_ports_of(s)) {
        node_ports_.emplace(node_port_key(n.protocol, n.port), owner);
    }
    for (const config::endpoint& e : s.endpoints) {
        endpoint_ips_.emplace(std::pair(key, e.ip.value), owner);
    }
    endpoint_counts_[key] += s.endpoints.size();
    services_.insert_or_assign(key, s);
}

void desired_state::erase_service(const pod_key& key) {
    auto it = services_.find(key);
    if (it == services_.end()) {
        return;
    }
    const config::service& s = it->second;
    const std::string owner = service_owner(key);
    for (const config::frontend& f : config::frontends_of(s)) {
        erase_owned(frontends_, frontend_key(f.ip.value, f.protocol, f.port), owner);
    }
    for (const config::node_port_use& n : config::node_ports_of(s)) {
        erase_owned(node_ports_, node_port_key(n.protocol, n.port), owner);
    }
    for (const config::endpoint& e : s.endpoints) {
        erase_owned(endpoint_ips_, std::pair(key, e.ip.value), owner);
    }
    if (auto c = endpoint_counts_.find(key); c != endpoint_counts_.end()) {
        c->second -= s.endpoints.size();
        if (c->second == 0) {
            endpoint_counts_.erase(c);
        }
    }
    services_.erase(it);
}

void desired_state::add_slice(const config::endpoint_slice& sl) {
    const pod_key key(sl.ns, sl.name), svc(sl.ns, sl.service);
    const std::string owner = slice_owner(key);
    slices_of_[svc].insert(key);
    for (const config::endpoint& e : sl.endpoints) {
        endpoint_ips_.emplace(std::pair(svc, e.ip.value), owner);
    }
    endpoint_counts_[svc] += sl.endpoints.size();
    endpoint_slices_.insert_or_assign(key, sl);
}

void desired_state::erase_slice(const pod_key& key) {
    auto it = endpoint_slices_.find(key);
    if (it == endpoint_slices_.end()) {
        return;
    }
    const config::endpoint_slice& sl = it->second;
    const pod_key svc(sl.ns, sl.service);
    const std::string owner = slice_owner(key);
    if (auto s = slices_of_.find(svc); s != slices_of_.end()) {
        s->second.erase(key);
        if (s->second.empty()) {
            slices_of_.erase(s);
        }
    }
    for (const config::endpoint& e : sl.endpoints) {
        erase_owned(endpoint_ips_, std::pair(svc, e.ip.value), owner);
    }
    if (auto c = endpoint_counts_.find(svc); c != endpoint_counts_.end()) {
        c->second -= sl.endpoints.size();
        if (c->second == 0) {
            endpoint_counts_.erase(c);
        }
    }
    endpoint_slices_.erase(it);
}

std::vector<pod_key> desired_state::slices_of(const pod_key& service) const {
    auto it = slices_of_.find(service);
    return it == slices_of_.end() ? std::vector<pod_key>{}
                                  : std::vector<pod_key>(it->second.begin(), it->second.end());
}

std::vector<desired_state::resolved_endpoint> desired_state::endpoints_of(
    const pod_key& service) const {
    std::vector<resolved_endpoint> out;
    auto it = services_.find(service);
    if (it == services_.end()) {
        return out;
    }
    const config::service& s = it->second;
    if (auto c = endpoint_counts_.find(service); c != endpoint_counts_.end()) {
        out.reserve(c->second);
    }
    // Compact form: the endpoint's port (a one-port service), else the targetPort, else
    // the port itself.
    for (const config::endpoint& e : s.endpoints) {
        resolved_endpoint r{e, {}};
        for (const config::service_port& p : s.ports) {
            r.ports.push_back(e.port != 0 ? e.port : p.target_port != 0 ? p.target_port : p.port);
        }
        out.push_back(std::move(r));
    }
    // A slice: its port of the same name and protocol, as kube-proxy matches them.
    auto slices = slices_of_.find(service);
    if (slices == slices_of_.end()) {
        return out;
    }
    for (const pod_key& key : slices->second) {
        const config::endpoint_slice& sl = endpoint_slices_.at(key);
        std::vector<uint16_t> ports(s.ports.size(), 0);
        for (size_t j = 0; j < s.ports.size(); ++j) {
            for (const config::slice_port& p : sl.ports) {
                if (p.name == s.ports[j].name && p.protocol == s.ports[j].protocol) {
                    ports[j] = p.port;
                    break;
                }
            }
        }
        for (const config::endpoint& e : sl.endpoints) {
            out.push_back({e, ports});
        }
    }
    return out;
}

std::set<pod_key> desired_state::services_touched(const object_change& c) const {
    std::set<pod_key> out;
    for (const config::service& s : c.services) {
        out.emplace(s.ns, s.name);
    }
    out.insert(c.delete_services.begin(), c.delete_services.end());
    auto old_service = [&](const pod_key& slice) {
        if (auto it = endpoint_slices_.find(slice); it != endpoint_slices_.end()) {
            out.emplace(it->second.ns, it->second.service);
        }
    };
    for (const config::endpoint_slice& sl : c.endpoint_slices) {
        out.emplace(sl.ns, sl.service);
        old_service(pod_key(sl.ns, sl.name));
    }
    for (const pod_key& key : c.delete_endpoint_slices) {
        old_service(key);
    }
    return out;
}

void desired_state::check_services(const config::node_file& objects,
                                   const std::set<std::string>& skip,
                                   std::vector<config::error>& errors) const {
    const std::set<std::string> none;  // objects with errors of their own are skipped whole
    config::rule_errors r(objects, none, errors);
    const ip4_addr own_ip = settings_.node.ip;
    const config::service_context ctx{
        &settings_.node.ip, &settings_.cluster_cidr,
        settings_.service_cidr ? &*settings_.service_cidr : nullptr};

    // The request's objects, the first of each name in file order, and the owners they
    // replace: the values those hold now no longer count, so objects may trade them.
    std::map<pod_key, size_t> services, slices;
    std::vector<size_t> service_order, slice_order;
    std::set<std::string> replaced;
    std::set<pod_key> skipped;  // as far as their names parsed
    for (size_t i = 0; i < objects.services.size(); ++i) {
        const config::service& sv = objects.services[i];
        const config::object_origin& o = objects.service_origins[i];
        const pod_key key(sv.ns, sv.name);
        if (skip.contains(o.path)) {
            skipped.insert(key);
            skipped.insert(pod_key(sv.ns, ""));
        } else if (auto [at, fresh] = services.try_emplace(key, i); !fresh) {
            r.fail(config::service_field(o, "name"),
                   fmt::format("duplicate service {}/{} (also {})", sv.ns, sv.name,
                               config::service_field(objects.service_origins[at->second], "name")));
        } else {
            service_order.push_back(i);
            if (services_.contains(key)) {
                replaced.insert(service_owner(key));
            }
        }
    }
    for (size_t k = 0; k < objects.endpoint_slices.size(); ++k) {
        const config::endpoint_slice& sl = objects.endpoint_slices[k];
        const config::object_origin& o = objects.slice_origins[k];
        const pod_key key(sl.ns, sl.name);
        if (skip.contains(o.path)) {
            continue;
        }
        if (auto [at, fresh] = slices.try_emplace(key, k); !fresh) {
            r.fail(config::slice_field(o, "name"),
                   fmt::format("duplicate EndpointSlice {}/{} (also {})", sl.ns, sl.name,
                               config::slice_field(objects.slice_origins[at->second], "name")));
        } else {
            slice_order.push_back(k);
            if (endpoint_slices_.contains(key)) {
                replaced.insert(slice_owner(key));
            }
        }
    }
    auto taken = [&](const auto& index, const auto& key) -> const std::string* {
        auto it = index.find(key);
        return it != index.end() && !replaced.contains(it->second) ? &it->second : nullptr;
    };

    // The request's own values: key -> (service NS/NAME, path).
    std::map<frontend_key, std::pair<std::string, std::string>> seen_frontends;
    std::map<node_port_key, std::pair<std::string, std::string>> seen_node_ports;
    std::map<std::pair<pod_key, uint32_t>, std::string> seen_endpoints;
    auto endpoint_unique = [&](const pod_key& svc, ip4_addr ip, const std::string& path) {
        const auto key = std::pair(svc, ip.value);
        const std::string what = fmt::format("duplicate endpoint {} of service {}/{}",
                                             config::format_ip4(ip), svc.first, svc.second);
        if (const std::string* owner = taken(endpoint_ips_, key)) {
            r.fail(path, fmt::format("{} (also {})", what, describe_owner(*owner)));
        } else if (auto [at, fresh] = seen_endpoints.try_emplace(key, path); !fresh) {
            r.fail(path, fmt::format("{} (also {})", what, at->second));
        }
    };
    size_t added = 0, removed = 0;
    std::map<pod_key, int64_t> endpoint_delta;
    std::map<pod_key, std::string> delta_path;  // where a service's endpoint count is reported

    for (size_t i : service_order) {
        const config::service& sv = objects.services[i];
        const config::object_origin& o = objects.service_origins[i];
        auto f = [&](std::string_view field) { return config::service_field(o, field); };
        const pod_key key(sv.ns, sv.name);
        const std::string name = fmt::format("{}/{}", sv.ns, sv.name);
        config::check_service(sv, o, ctx, r);

        for (const config::frontend& fe : config::frontends_of(sv)) {
            ++added;
            if (!config::virtual_ip_problem(fe.ip, fe.address_field == "clusterIP", ctx).empty()) {
                continue;  // reported by check_service
            }
            const std::string path = f(fe.address_field);
            const std::string what = config::format_frontend(fe.protocol, fe.ip, fe.port);
            const frontend_key k(fe.ip.value, fe.protocol, fe.port);
            const node_port_key np(fe.protocol, fe.port);
            auto seen_np = seen_node_ports.find(np);
            if (const std::string* owner = taken(frontends_, k)) {
                r.fail(path, fmt::format("{} is already used by {}", what, describe_owner(*owner)));
            } else if (auto [at, fresh] = seen_frontends.try_emplace(k, name, path); !fresh) {
                r.fail(path, fmt::format("{} is already used by service {} ({})", what,
                                         at->second.first, at->second.second));
            } else if (fe.ip == own_ip) {  // an external IP may be the node's
                if (const std::string* np_owner = taken(node_ports_, np)) {
                    r.fail(path, fmt::format("{} is already used by {}, a node port", what,
                                             describe_owner(*np_owner)));
                } else if (seen_np != seen_node_ports.end()) {
                    r.fail(path, fmt::format("{} is already used by service {} ({}), a node port",
                                             what, seen_np->second.first, seen_np->second.second));
                }
            }
        }
        for (const config::node_port_use& n : config::node_ports_of(sv)) {
            ++added;
            const std::string path = f(fmt::format("ports[{}].nodePort", n.port_index));
            const std::string what =
                fmt::format("nodePort {} {}", config::protocol_name(n.protocol), n.port);
            const node_port_key k(n.protocol, n.port);
            const frontend_key on_node(own_ip.value, n.protocol, n.port);
            auto seen_fe = seen_frontends.find(on_node);
            if (const std::string* owner = taken(node_ports_, k)) {
                r.fail(path, fmt::format("{} is already used by {}", what, describe_owner(*owner)));
            } else if (auto [at, fresh] = seen_node_ports.try_emplace(k, name, path); !fresh) {
                r.fail(path, fmt::format("{} is already used by service {} ({})", what,
                                         at->second.first, at->second.second));
            } else if (const std::string* fe_owner = taken(frontends_, on_node)) {
                r.fail(path, fmt::format("{} on node.ip is already used by {}", what,
                                         describe_owner(*fe_owner)));
            } else if (seen_fe != seen_frontends.end()) {
                r.fail(path, fmt::format("{} on node.ip is already used by service {} ({})", what,
                                         seen_fe->second.first, seen_fe->second.second));
            }
        }
        for (size_t k = 0; k < sv.endpoints.size(); ++k) {
            endpoint_unique(key, sv.endpoints[k].ip, f(fmt::format("endpoints[{}].ip", k)));
        }
        endpoint_delta[key] += int64_t(sv.endpoints.size());
        delta_path.try_emplace(key, o.path);

        auto old = services_.find(key);
        if (old == services_.end()) {
            continue;
        }
        removed += config::frontends_of(old->second).size() + config::node_ports_of(old->second).size();
        endpoint_delta[key] -= int64_t(old->second.endpoints.size());
        // The slices that stay must still find their ports in the new version.
        auto its = slices_of_.find(key);
        for (const pod_key& sk : its == slices_of_.end() ? std::set<pod_key>{} : its->second) {
            if (replaced.contains(slice_owner(sk))) {
                continue;
            }
            for (const config::slice_port& p : endpoint_slices_.at(sk).ports) {
                if (std::string problem = config::slice_port_problem(p, sv); !problem.empty()) {
                    r.fail(f("ports"),
                           fmt::format("EndpointSlice {}/{}: {}", sk.first, sk.second, problem));
                }
            }
        }
    }

    for (size_t k : slice_order) {
        const config::endpoint_slice& sl = objects.endpoint_slices[k];
        const config::object_origin& o = objects.slice_origins[k];
        const pod_key svc_key(sl.ns, sl.service);
        config::check_slice(sl, o, r);
        const config::service* svc = nullptr;
        if (auto it = services.find(svc_key); it != services.end()) {
            svc = &objects.services[it->second];
        } else if (auto cur = services_.find(svc_key); cur != services_.end()) {
            svc = &cur->second;
        }
        if (svc == nullptr) {
            if (!skipped.contains(svc_key) && !skipped.contains(pod_key(sl.ns, ""))) {
                r.fail(config::slice_field(o, "service"),
                       fmt::format("service {}/{} does not exist: apply it before its "
                                   "EndpointSlices, or with them",
                                   sl.ns, sl.service));
            }
        } else {
            for (size_t j = 0; j < sl.ports.size(); ++j) {
                if (std::string problem = config::slice_port_problem(sl.ports[j], *svc);
                    !problem.empty()) {
                    r.fail(config::slice_field(o, fmt::format("ports[{}].name", j)), std::move(problem));
                }
            }
        }
        for (size_t e = 0; e < sl.endpoints.size(); ++e) {
            endpoint_unique(svc_key, sl.endpoints[e].ip,
                            config::slice_field(o, fmt::format("endpoints[{}].addresses[0]", e)));
        }
        endpoint_delta[svc_key] += int64_t(sl.endpoints.size());
        delta_path.try_emplace(svc_key, o.path);
        if (auto old = endpoint_slices_.find(pod_key(sl.ns, sl.name)); old != endpoint_slices_.end()) {
            const config::endpoint_slice& was = old->second;
            endpoint_delta[pod_key(was.ns, was.service)] -= int64_t(was.endpoints.size());
        }
    }

    for (const auto& [key, delta] : endpoint_delta) {
        auto c = endpoint_counts_.find(key);
        int64_t after = (c == endpoint_counts_.end() ? 0 : int64_t(c->second)) + delta;
        auto at = delta_path.find(key);
        if (after > int64_t(config::max_service_endpoints) && at != delta_path.end()) {
            r.fail(at->second, fmt::format("service {}/{} would have {} endpoints, its own and its "
                                           "EndpointSlices'; at most {} are supported",
                                           key.first, key.second, after,
                                           config::max_service_endpoints));
        }
    }
    const size_t after = frontends_.size() + node_ports_.size() + added - removed;
    if (after > config::max_service_frontends) {
        r.fail("services", fmt::format("{} service frontends (addresses and node ports, each with a "
                                       "port) after this change; at most {} are supported",
                                       after, config::max_service_frontends));
    }
}

}  // namespace twill
