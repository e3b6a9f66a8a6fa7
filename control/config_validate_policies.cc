// The node file's namespaces and NetworkPolicies checked against each other: unique names.
// A namespace that pods or policies name need not be listed (it then has only its
// kubernetes.io/metadata.name label); each object's own rules are checked by the parser.
#include <map>
#include <utility>

#include <fmt/format.h>

#include "control/config_internal.h"
#include "control/policy_rules.h"
#include "control/service_rules.h"

namespace twill::config::detail {

void validate_policies(const node_file& cfg, const std::set<std::string>& unusable,
                       std::vector<error>& errors) {
    rule_errors r(cfg, unusable, errors);
    std::map<std::string, std::string> namespaces;  // name -> path
    for (size_t i = 0; i < cfg.namespaces.size(); ++i) {
        const object_origin& o = cfg.namespace_origins[i];
        const std::string path = namespace_field(o, "name");
        if (!r.usable(o.path) || !r.usable(path)) {
            continue;
        }
        const std::string& name = cfg.namespaces[i].name;
        if (auto [first, fresh] = namespaces.try_emplace(name, path); !fresh) {
            r.fail(path, fmt::format("duplicate namespace '{}' (also {})", name, first->second));
        }
    }
    std::map<std::pair<std::string, std::string>, std::string> policies;
    for (size_t i = 0; i < cfg.network_policies.size(); ++i) {
        const object_origin& o = cfg.policy_origins[i];
        const std::string path = policy_field(o, "name");
        if (!r.usable(o.path) || !r.usable(path) || !r.usable(policy_field(o, "namespace"))) {
            continue;
        }
        const network_policy& p = cfg.network_policies[i];
        if (auto [first, fresh] = policies.try_emplace(std::pair(p.ns, p.name), path); !fresh) {
            r.fail(path, fmt::format("duplicate NetworkPolicy {}/{} (also {})", p.ns, p.name,
                                     first->second));
        }
    }
}

}  // namespace twill::config::detail
