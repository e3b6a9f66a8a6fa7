// Shared between config*.cc: YAML -> structs, and the cross-field checks.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "control/config.h"

namespace twill::config::detail {

using key_list = std::initializer_list<std::string_view>;

// "unknown key 'podCidr'; did you mean 'podCIDR'?" when a key is close to an allowed one
// (keys are case-sensitive camelCase), else the list of allowed keys.
std::string unknown_key_message(std::string_view key, key_list allowed);

// Kubernetes object names: a DNS-1123 subdomain (max_len 253, dots) or label (63, none).
bool is_dns_name(std::string_view s, size_t max_len, bool dots);

// Decimal only: YAML 1.1 would also read 0x1f, 0o17 and 1_000, which nobody means here.
// Huge values saturate, so that the range check rejects them.
std::optional<int64_t> parse_int(std::string_view s);

// Appends the errors of checks that involve several keys. A path in `unusable` had a bad
// value that was already reported, and a path without a position was never written; checks
// involving either are skipped, so one mistake gives one error.
void validate(const node_file& cfg, const std::set<std::string>& unusable,
              std::vector<error>& errors);
// The part of validate about services and EndpointSlices (config_validate_services.cc).
void validate_services(const node_file& cfg, const std::set<std::string>& unusable,
                       std::vector<error>& errors);
// The part about namespaces and NetworkPolicies (config_validate_policies.cc).
void validate_policies(const node_file& cfg, const std::set<std::string>& unusable,
                       std::vector<error>& errors);

}  // namespace twill::config::detail
