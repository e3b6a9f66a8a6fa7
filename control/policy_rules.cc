#include "control/policy_rules.h"

#include <algorithm>

#include <fmt/format.h>

#include "control/config_internal.h"

namespace twill::config {

namespace {

bool alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// Kubernetes' qualified name part, and a label value when not empty:
// ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9], at most 63 characters.
bool is_label_name(std::string_view s) {
    if (s.empty() || s.size() > 63 || !alnum(s.front()) || !alnum(s.back())) {
        return false;
    }
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return alnum(c) || c == '-' || c == '_' || c == '.'; });
}

constexpr std::string_view name_rule =
    "at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit";

std::string join(const std::string& path, std::string_view field) {
    return path.empty() ? std::string(field) : fmt::format("{}.{}", path, field);
}

}  // namespace

std::string label_key_problem(std::string_view key) {
    const size_t slash = key.find('/');
    std::string_view name = slash == std::string_view::npos ? key : key.substr(slash + 1);
    if (slash != std::string_view::npos) {
        std::string_view prefix = key.substr(0, slash);
        if (!detail::is_dns_name(prefix, 253, true)) {
            return fmt::format(
                "'{}' is not a label key: its prefix '{}' must be a DNS subdomain (lowercase "
                "letters, digits, '-' and '.', at most 253 characters)",
                key, prefix);
        }
        if (name.find('/') != std::string_view::npos) {
            return fmt::format("'{}' is not a label key: at most one '/' (prefix/name)", key);
        }
    }
    if (!is_label_name(name)) {
        return fmt::format("'{}' is not a label key: the name{} must be {}", key,
                           slash == std::string_view::npos ? "" : " after the '/'", name_rule);
    }
    return "";
}

std::string label_value_problem(std::string_view value) {
    if (value.empty() || is_label_name(value)) {
        return "";
    }
    return fmt::format("'{}' is not a label value: empty, or {}", value, name_rule);
}

std::string port_name_problem(std::string_view name) {
    auto lower_alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    bool ok =
        !name.empty() && name.size() <= 15 && name.front() != '-' && name.back() != '-' &&
        name.find("--") == std::string_view::npos &&
        std::all_of(name.begin(), name.end(), [&](char c) { return lower_alnum(c) || c == '-'; }) &&
        std::any_of(name.begin(), name.end(), [](char c) { return c >= 'a' && c <= 'z'; });
    if (ok) {
        return "";
    }
    return fmt::format(
        "'{}' is not a port name: at most 15 lowercase letters, digits and '-', with at least "
        "one letter, no '-' at either end and no '--'",
        name);
}

std::string namespace_field(const object_origin& o, std::string_view field) {
    return join(o.path, o.manifest ? fmt::format("metadata.{}", field) : std::string(field));
}

std::string policy_field(const object_origin& o, std::string_view field) {
    if (field == "name" || field == "namespace") {
        return join(o.path, fmt::format("metadata.{}", field));
    }
    return join(o.path, fmt::format("spec.{}", field));
}

}  // namespace twill::config
