// What labels, named ports and the paths of namespaces and NetworkPolicies obey, shared by
// the parser (config_policy.cc), the file check (config_validate_policies.cc) and the
// apply check (desired_policies.cc), as service_rules.h is for services.
#pragma once

#include <string>
#include <string_view>

#include "control/config.h"

namespace twill::config {

// The label every namespace carries, set to its name (as the API server does).
inline constexpr std::string_view namespace_name_label = "kubernetes.io/metadata.name";

// Why `key` is not a label key, or "": an optional DNS-subdomain prefix and '/', then a
// name of at most 63 characters [A-Za-z0-9._-] that starts and ends with a letter or digit.
std::string label_key_problem(std::string_view key);
// Why `value` is not a label value, or "": empty, or as a key's name part.
std::string label_value_problem(std::string_view value);
// Why `name` is not a port name (IANA_SVC_NAME), or "": at most 15 characters, lowercase
// letters, digits and '-', at least one letter, no '-' at either end, no "--".
std::string port_name_problem(std::string_view name);

// Where a field of a namespace was written: "name" or "labels"; a Namespace manifest has
// them under metadata.
std::string namespace_field(const object_origin& o, std::string_view field);
// The same for a NetworkPolicy manifest: "name" and "namespace" under metadata, anything
// else ("podSelector", "ingress[0].ports[1].port") under spec.
std::string policy_field(const object_origin& o, std::string_view field);

}  // namespace twill::config
