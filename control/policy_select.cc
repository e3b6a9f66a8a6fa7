// Label selectors and namespace labels: what NetworkPolicy selectors are evaluated on.
#include "control/policy_compile.h"

#include <algorithm>

namespace twill::policy {

std::map<std::string, config::label_map> namespace_labels(
    const std::vector<config::namespace_def>& namespaces, const std::vector<config::pod>& pods,
    const std::vector<config::network_policy>& policies) {
    std::map<std::string, config::label_map> out;
    for (const auto& n : namespaces) {
        out[n.name].insert(n.labels.begin(), n.labels.end());
    }
    for (const auto& p : pods) {
        out[p.ns];
    }
    for (const auto& p : policies) {
        out[p.ns];
    }
    for (auto& [name, labels] : out) {
        labels = namespace_labels(name, &labels);
    }
    return out;
}

config::label_map namespace_labels(const std::string& ns, const config::label_map* written) {
    config::label_map labels = written != nullptr ? *written : config::label_map{};
    // The API server sets this label and refuses another value for it.
    labels[std::string(namespace_name_label)] = ns;
    return labels;
}

bool selects(const config::label_selector& s, const config::label_map& labels) {
    for (const auto& [key, value] : s.match_labels) {
        auto it = labels.find(key);
        if (it == labels.end() || it->second != value) {
            return false;
        }
    }
    using op = config::label_requirement::op;
    for (const auto& r : s.match_expressions) {
        auto it = labels.find(r.key);
        const bool has = it != labels.end();
        const bool listed =
            has && std::find(r.values.begin(), r.values.end(), it->second) != r.values.end();
        switch (r.oper) {
            case op::in:
                if (!listed) {
                    return false;
                }
                break;
            case op::not_in:  // a pod without the key is not in the list
                if (listed) {
                    return false;
                }
                break;
            case op::exists:
                if (!has) {
                    return false;
                }
                break;
            case op::does_not_exist:
                if (has) {
                    return false;
                }
                break;
        }
    }
    return true;
}

}  // namespace twill::policy
