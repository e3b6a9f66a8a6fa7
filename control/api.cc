#include "control/api.h"

#include "control/api_policies.h"
#include "control/api_services.h"

#include <set>

#include <fmt/format.h>
#include <rte_cycles.h>

namespace twill {
namespace {

using nlohmann::json;

json error_reply(const std::string& code, const std::string& message, json details = json::array()) {
    return {{"ok", false}, {"error", {{"code", code}, {"message", message}, {"details", details}}}};
}

json get_nodes(api_context& ctx) {
    json items = json::array();
    const config::node_file& cfg = ctx.state.settings();
    items.push_back({{"name", cfg.node.name},
                     {"ip", config::format_ip4(cfg.node.ip)},
                     {"podCIDR", config::format_prefix(cfg.node.pod_cidr)},
                     {"vtepMAC", config::format_mac(cfg.node.vtep_mac)},
                     {"self", true}});
    for (const auto& [name, n] : ctx.state.desired().nodes()) {
        items.push_back({{"name", n.name},
                         {"ip", config::format_ip4(n.ip)},
                         {"podCIDR", config::format_prefix(n.pod_cidr)},
                         {"vtepMAC", config::format_mac(n.vtep_mac)},
                         {"self", false}});
    }
    return items;
}

json get_pods(api_context& ctx) {
    json items = json::array();
    const pod_table* pods = ctx.state.published().pods.load(std::memory_order_acquire);
    for (const auto& [key, p] : ctx.state.desired().pods()) {
        json item = {{"name", p.name},
                     {"namespace", p.ns},
                     {"ip", config::format_ip4(p.ip)},
                     {"local", !p.port.empty()}};
        if (!p.port.empty()) {
            item["port"] = p.port;
            item["portId"] = ctx.state.pod_ports().at(p.port);
            uint32_t i = pods->lookup(p.ip);
            mac_addr mac;
            bool known = i != no_index && ctx.state.learned().pod_macs[pods->pod(i).state].get(mac);
            item["mac"] = known ? config::format_mac(mac) : "";
            item["macSource"] = p.mac ? "configured" : known ? "learned" : "unknown";
        }
        items.push_back(item);
    }
    return items;
}

json get_neighbours(api_context& ctx) {
    json items = json::array();
    const slice_table* slices = ctx.state.published().slices.load(std::memory_order_acquire);
    // As `ip neigh` says it: reachable when heard from within 30 s, stale (still used,
    // being asked again) after that, incomplete before the first answer.
    const uint64_t now = rte_rdtsc(), stale_after = neighbour_reachable_seconds * rte_get_tsc_hz();
    for (const auto& [name, n] : ctx.state.desired().nodes()) {
        const remote_node_entry* e = slices->node_by_ip(n.ip);
        mac_addr mac;
        bool known = e != nullptr && ctx.state.learned().neighbours[e->neighbour].mac.get(mac);
        bool fresh = known && now - ctx.state.learned().neighbours[e->neighbour].confirmed_tsc.load(
                                        std::memory_order_relaxed) < stale_after;
        items.push_back({{"ip", config::format_ip4(n.ip)},
                         {"node", n.name},
                         {"mac", known ? config::format_mac(mac) : ""},
                         {"state", !known ? "incomplete" : fresh ? "reachable" : "stale"}});
    }
    return items;
}

json remove_object(api_context& ctx, const std::string& kind, const std::string& name,
                   const std::string& ns) {
    const desired_state& desired = ctx.state.desired();
    object_change change;
    json also = json::array();
    if (kind == "node") {
        if (!desired.nodes().contains(name)) {
            return error_reply("not_found", fmt::format("no node '{}'", name));
        }
        change.delete_nodes.push_back(name);
    } else if (kind == "pod") {
        if (!desired.pods().contains(pod_key(ns, name))) {
            return error_reply("not_found", fmt::format("no pod '{}/{}'", ns, name));
        }
        change.delete_pods.emplace_back(ns, name);
    } else if (kind == "service") {
        if (!desired.services().contains(pod_key(ns, name))) {
            return error_reply("not_found", fmt::format("no service '{}/{}'", ns, name));
        }
        change.delete_services.emplace_back(ns, name);
        // Its EndpointSlices go with it, as Kubernetes' garbage collector removes them
        // with the service that owns them.
        change.delete_endpoint_slices = desired.slices_of(pod_key(ns, name));
        for (const pod_key& key : change.delete_endpoint_slices) {
            also.push_back(
                {{"kind", "endpointslice"}, {"namespace", key.first}, {"name", key.second}});
        }
    } else if (kind == "networkpolicy") {
        if (!desired.network_policies().contains(pod_key(ns, name))) {
            return error_reply("not_found", fmt::format("no networkpolicy '{}/{}'", ns, name));
        }
        change.delete_network_policies.emplace_back(ns, name);
    } else if (kind == "namespace") {
        if (!desired.namespaces().contains(name)) {
            return error_reply("not_found", fmt::format("no namespace '{}'", name));
        }
        // Kubernetes deletes a namespace's pods with it; twill does not delete pods on its
        // own, so they go first.
        if (std::vector<pod_key> pods = desired.pods_in(name); !pods.empty()) {
            json details = json::array();
            for (const pod_key& key : pods) {
                details.push_back(fmt::format("pod {}/{}", key.first, key.second));
            }
            return error_reply("refused",
                               fmt::format("namespace '{}' still has {} pods: delete them first; "
                                           "nothing changed",
                                           name, pods.size()),
                               details);
        }
        change.delete_namespaces.push_back(name);
    } else {
        if (!desired.endpoint_slices().contains(pod_key(ns, name))) {
            return error_reply("not_found", fmt::format("no endpointslice '{}/{}'", ns, name));
        }
        change.delete_endpoint_slices.emplace_back(ns, name);
    }
    std::vector<std::string> refused = ctx.state.apply(change);
    if (!refused.empty()) {
        return error_reply("refused", "the change was refused; nothing changed", refused);
    }
    json deleted = {{"kind", kind}, {"name", name}};
    if (kind != "node" && kind != "namespace") {
        deleted["namespace"] = ns;
    }
    json reply = {{"ok", true}, {"deleted", deleted}};
    if (!also.empty()) {
        reply["alsoDeleted"] = also;
    }
    return reply;
}

json errors_json(const std::vector<config::error>& errors) {
    json out = json::array();
    for (const config::error& e : errors) {
        out.push_back(config::to_string(e));
    }
    return out;
}

// twillctl apply: objects parsed on their own, checked against the rest of the desired
// state as it would be afterwards, then applied as one change. Any error: nothing changes.
json apply_objects(api_context& ctx, const std::string& text, const std::string& source) {
    config::parse_result objects = config::parse_objects_yaml(text, source);
    // Objects with errors of their own are left out of the checks against the state, so
    // that one reply lists every error; an error outside any object stops there.
    std::set<std::string> broken;
    bool stop = false;
    for (const config::error& e : objects.errors) {
        size_t end = e.path.find(']');
        bool in_object = false;
        for (const char* list : {"nodes[", "pods[", "services[", "endpointSlices[", "namespaces[",
                                 "networkPolicies[", "items["}) {
            in_object |= e.path.starts_with(list);
        }
        if (in_object && end != std::string::npos) {
            broken.insert(e.path.substr(0, end + 1));
        } else {
            stop = true;
        }
    }
    std::vector<config::error> errors = objects.errors;
    if (!stop) {
        for (config::error& e : ctx.state.desired().check(objects.cfg, broken)) {
            errors.push_back(std::move(e));
        }
    }
    if (!errors.empty()) {
        return error_reply("invalid", "the result would be invalid; nothing changed",
                           errors_json(errors));
    }
    object_change change;
    change.nodes = std::move(objects.cfg.nodes);
    change.pods = std::move(objects.cfg.pods);
    change.services = std::move(objects.cfg.services);
    change.endpoint_slices = std::move(objects.cfg.endpoint_slices);
    change.namespaces = std::move(objects.cfg.namespaces);
    change.network_policies = std::move(objects.cfg.network_policies);
    json applied = {{"nodes", change.nodes.size()},
                    {"pods", change.pods.size()},
                    {"services", change.services.size()},
                    {"endpointSlices", change.endpoint_slices.size()},
                    {"namespaces", change.namespaces.size()},
                    {"networkPolicies", change.network_policies.size()}};
    std::vector<std::string> refused = ctx.state.apply(change);
    if (!refused.empty()) {
        return error_reply("refused", "the change was refused; nothing changed", refused);
    }
    return {{"ok", true}, {"applied", applied}};
}

json handle(const json& req, api_context& ctx) {
    if (!req.is_object() || !req.contains("verb") || !req["verb"].is_string()) {
        return error_reply("bad_request", "a request is a JSON object with a string 'verb'");
    }
    const std::string verb = req["verb"];
    auto str = [&](const char* key, const std::string& fallback = "") -> std::string {
        return req.contains(key) && req[key].is_string() ? req[key].get<std::string>() : fallback;
    };
    if (verb == "version") {
        return {{"ok", true}, {"version", ctx.version}};
    }
    if (verb == "status") {
        return {{"ok", true},
                {"node", ctx.state.settings().node.name},
                {"version", ctx.version},
                {"remoteNodes", ctx.state.desired().nodes().size()},
                {"localPods", ctx.state.pod_ports().size()}};
    }
    if (verb == "get") {
        const std::string kind = str("kind");
        if (kind == "nodes") {
            return {{"ok", true}, {"items", get_nodes(ctx)}};
        }
        if (kind == "pods") {
            return {{"ok", true}, {"items", get_pods(ctx)}};
        }
        if (kind == "neighbours") {
            return {{"ok", true}, {"items", get_neighbours(ctx)}};
        }
        if (kind == "services") {
            return {{"ok", true}, {"items", get_services(ctx.state)}};
        }
        if (kind == "policies" || kind == "networkpolicies" || kind == "netpol") {
            json out = get_policies(ctx.state);
            out["ok"] = true;
            return out;
        }
        if (kind == "conntrack") {
            std::string error;
            json out = get_conntrack(ctx.state, req.value("filters", json::object()), error);
            if (!error.empty()) {
                return error_reply("bad_request", error);
            }
            out["ok"] = true;
            return out;
        }
        if (kind == "stats") {
            return {{"ok", true}, {"stats", ctx.stats ? ctx.stats() : json::object()}};
        }
        return error_reply("bad_request",
                           fmt::format("unknown kind '{}' for get; expected nodes, pods, "
                                       "neighbours, services, policies, conntrack or stats", kind));
    }
    if (verb == "apply") {
        if (!req.contains("yaml") || !req["yaml"].is_string()) {
            return error_reply("bad_request", "apply needs the file's text in 'yaml'");
        }
        return apply_objects(ctx, req["yaml"], str("source", "request"));
    }
    if (verb == "delete") {
        const std::string kind = str("kind");
        const std::string name = str("name");
        if (kind != "node" && kind != "pod" && kind != "service" && kind != "endpointslice" &&
            kind != "networkpolicy" && kind != "namespace") {
            return error_reply("bad_request",
                               fmt::format("unknown kind '{}' for delete; expected node, pod, "
                                           "service, endpointslice, networkpolicy or namespace",
                                           kind));
        }
        if (name.empty()) {
            return error_reply("bad_request", "delete needs a 'name'");
        }
        return remove_object(ctx, kind, name, str("namespace", "default"));
    }
    return error_reply("bad_request",
                       fmt::format("unknown verb '{}'; expected apply, get, delete, version or status",
                                   verb));
}

}  // namespace

std::string handle_request(const std::string& line, api_context& ctx) {
    json req = json::parse(line, nullptr, /*allow_exceptions=*/false);
    json reply = req.is_discarded() ? error_reply("bad_request", "the request is not valid JSON")
                                    : handle(req, ctx);
    return reply.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace twill
