#include "control/api_policies.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace twill {

namespace {

using nlohmann::json;

std::string selector_text(const config::label_selector& s) {
    std::vector<std::string> parts;
    for (const auto& [k, v] : s.match_labels) {
        parts.push_back(fmt::format("{}={}", k, v));
    }
    for (const config::label_requirement& r : s.match_expressions) {
        switch (r.oper) {
            case config::label_requirement::op::in:
                parts.push_back(fmt::format("{} in ({})", r.key, fmt::join(r.values, ",")));
                break;
            case config::label_requirement::op::not_in:
                parts.push_back(fmt::format("{} notin ({})", r.key, fmt::join(r.values, ",")));
                break;
            case config::label_requirement::op::exists:
                parts.push_back(r.key);
                break;
            case config::label_requirement::op::does_not_exist:
                parts.push_back("!" + r.key);
                break;
        }
    }
    return parts.empty() ? "(all)" : fmt::format("{}", fmt::join(parts, ","));
}

const char* proto_name(uint8_t p) {
    return p == config::proto_udp ? "UDP" : p == config::proto_sctp ? "SCTP" : "TCP";
}

json peers_json(const std::vector<config::policy_peer>& peers, const std::string& ns) {
    json out = json::array();
    if (peers.empty()) {
        out.push_back("(any address)");
    }
    for (const config::policy_peer& p : peers) {
        if (p.block) {
            std::vector<std::string> except;
            for (const ip4_prefix& e : p.block->except) {
                except.push_back(config::format_prefix(e));
            }
            out.push_back(except.empty() ? config::format_prefix(p.block->cidr)
                                         : fmt::format("{} except {}", config::format_prefix(p.block->cidr),
                                                       fmt::join(except, ",")));
            continue;
        }
        const std::string pods = p.pod_selector ? selector_text(*p.pod_selector) : "(all)";
        const std::string nss =
            p.namespace_selector ? "namespaces " + selector_text(*p.namespace_selector) : "namespace " + ns;
        out.push_back(fmt::format("pods {} in {}", pods, nss));
    }
    return out;
}

json ports_json(const std::vector<config::policy_port>& ports) {
    json out = json::array();
    if (ports.empty()) {
        out.push_back("(all)");
    }
    for (const config::policy_port& p : ports) {
        if (!p.name.empty()) {
            out.push_back(fmt::format("{}/{}", proto_name(p.protocol), p.name));
        } else if (!p.port) {
            out.push_back(fmt::format("{}/(all)", proto_name(p.protocol)));
        } else if (p.end_port) {
            out.push_back(fmt::format("{}/{}-{}", proto_name(p.protocol), *p.port, *p.end_port));
        } else {
            out.push_back(fmt::format("{}/{}", proto_name(p.protocol), *p.port));
        }
    }
    return out;
}

}  // namespace

json get_policies(const node_state& state) {
    const desired_state& d = state.desired();
    const policy_publisher& pub = state.policies();
    const std::map<policy_publisher::rule_key, uint64_t> hits = pub.rule_hits();
    const std::map<policy_publisher::pod_dir_key, policy_publisher::pod_totals> counts = pub.pod_counts();
    json items = json::array();
    for (const auto& [key, pol] : d.network_policies()) {
        json selects = json::array();
        uint64_t denied = 0, cut = 0;
        for (const auto& [pk, pod] : d.pods()) {
            if (pod.ns != pol.ns || !policy::selects(pol.pod_selector, pod.labels)) {
                continue;
            }
            selects.push_back({{"pod", pod.ns + "/" + pod.name}, {"local", !pod.port.empty()}});
            for (bool egress : {false, true}) {
                if ((egress ? pol.egress : pol.ingress)) {
                    if (auto it = counts.find({pod.ns, pod.name, egress}); it != counts.end()) {
                        denied += it->second.denied;
                        cut += it->second.cut;
                    }
                }
            }
        }
        auto rules = [&](const std::vector<config::policy_rule>& rs, bool egress) {
            json out = json::array();
            for (uint32_t i = 0; i < rs.size(); ++i) {
                auto it = hits.find({pol.ns, pol.name, egress, i});
                out.push_back({{egress ? "to" : "from", peers_json(rs[i].peers, pol.ns)},
                               {"ports", ports_json(rs[i].ports)},
                               {"allowed", it == hits.end() ? 0 : it->second}});
            }
            return out;
        };
        json types = json::array();
        if (pol.ingress) {
            types.push_back("Ingress");
        }
        if (pol.egress) {
            types.push_back("Egress");
        }
        items.push_back({{"namespace", pol.ns},
                         {"name", pol.name},
                         {"podSelector", selector_text(pol.pod_selector)},
                         {"policyTypes", types},
                         {"selects", selects},
                         {"enforcedHere", pub.enforced().contains(key)},
                         {"ingress", rules(pol.ingress_rules, false)},
                         {"egress", rules(pol.egress_rules, true)},
                         {"deniedAtSelectedPods", denied},
                         {"connectionsCut", cut}});
    }
    const policy::compiled& c = pub.compiled();
    json compiled = {{"generation", pub.gen()},
                     {"compileMs", pub.compile_ms()},
                     {"compiles", pub.compiles()},
                     {"addressClasses", c.classes},
                     {"isolatedPodDirections", c.slots.empty() ? 0 : c.slots.size() - 1},
                     {"rules", c.rules.size()},
                     {"prefixes", c.prefixes.size()},
                     {"allowLists", c.allow.size()},
                     {"cutEstablished", d.settings().cut_denied_connections}};
    return {{"items", items}, {"compiled", compiled}};
}

}  // namespace twill
