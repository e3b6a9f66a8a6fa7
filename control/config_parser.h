// The YAML -> node_file parser, shared by config.cc (the node, the cluster, nodes and pods),
// config_services.cc (services, EndpointSlices, conntrack and Kubernetes manifests) and
// config_policy.cc (namespaces, labels and NetworkPolicies). Internal to the config files.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "control/config.h"
#include "control/config_internal.h"

namespace twill::config::detail {

std::string child(const std::string& path, std::string_view key);
const char* kind_name(const YAML::Node& n);
bool has_key(const YAML::Node& map, std::string_view key);
std::string empty_file_message(bool objects_only);

// A key's value, and the key itself for errors about the key (unknown, duplicate).
struct field {
    YAML::Node key;
    YAML::Node value;
    // Where errors about the value point: an empty value's mark is wherever the next
    // token happens to be, often the next line, so those point at the key.
    YAML::Node where;
};

struct map_view {
    std::string path;
    YAML::Node node;
    std::map<std::string, field, std::less<>> fields;
};

template <class T>
void set(T& dst, std::optional<T>&& v) {
    if (v) {
        dst = std::move(*v);
    }
}

class parser {
  public:
    parser(std::string file, parse_result& out, bool objects_only = false)
        : file_(std::move(file)), out_(out), objects_only_(objects_only) {}

    void parse_document(const YAML::Node& root);
    const std::set<std::string>& unusable() const { return unusable_; }

  private:
    source_pos pos_of(const YAML::Node& n) const {
        YAML::Mark m = n.Mark();
        return {file_, m.line + 1, m.column + 1};
    }
    void fail(const std::string& path, const YAML::Node& at, std::string message) {
        out_.errors.push_back({path, std::move(message), pos_of(at)});
        unusable_.insert(path);
    }

    // `open`: any key is accepted (a manifest's metadata, labels, annotations); `allowed`
    // is then unused.
    std::optional<map_view> read_map(const field& f, const std::string& path, key_list allowed,
                                     bool open = false);
    const field* find(const map_view& m, std::string_view key, bool required);
    // Where errors about the value of a present key point.
    static const YAML::Node& at(const map_view& m, std::string_view key) {
        return m.fields.find(key)->second.where;
    }
    std::optional<std::string> get_string(const map_view& m, std::string_view key, bool required);
    std::optional<std::string> get_name(const map_view& m, std::string_view key, bool required,
                                        bool dots);
    std::optional<std::string> get_devargs(const map_view& m, std::string_view key, bool required);
    std::optional<int64_t> get_int(const map_view& m, std::string_view key, int64_t min,
                                   int64_t max);
    // `true` or `false` only: YAML 1.1's yes/no/on/off are errors, not booleans.
    std::optional<bool> get_bool(const map_view& m, std::string_view key);
    std::optional<ip4_addr> get_ip4(const map_view& m, std::string_view key);
    std::optional<ip4_prefix> get_cidr(const map_view& m, std::string_view key, bool required);
    std::optional<mac_addr> get_mac(const map_view& m, std::string_view key, bool required);
    // The index in `choices` of the value, which is case-sensitive ("TCP", not "tcp").
    std::optional<size_t> get_choice(const map_view& m, std::string_view key, key_list choices);
    // A list item that must be an IPv4 address.
    std::optional<ip4_addr> item_ip4(const field& item, const std::string& path);
    // A list item that must be a CIDR without host bits set.
    std::optional<ip4_prefix> item_cidr(const field& item, const std::string& path);
    // Visits each element of a list; absent or null is an empty list.
    template <class Fn>
    void for_each_item(const map_view& m, std::string_view key, Fn fn);

    void parse_node(const field& f);
    void parse_cluster(const field& f);
    void parse_dpdk(const field& f);
    void parse_remote_node(const field& f, const std::string& path);
    void parse_pod(const field& f, const std::string& path);

    // config_services.cc
    void parse_conntrack(const field& f);
    // `services[i]`: the compact form, or a Service manifest (it has apiVersion or kind).
    void parse_service(const field& f, const std::string& path);
    void parse_service_compact(const field& f, const std::string& path, service& s);
    void parse_service_manifest(const field& f, const std::string& path, service& s);
    // What the compact form and a manifest's spec share: type, addresses, ports, affinity.
    void parse_service_spec(const map_view& m, service& s, bool manifest);
    void parse_service_port(const field& f, const std::string& path, service_port& p,
                            bool manifest);
    void parse_endpoint(const field& f, const std::string& path, endpoint& e);
    void parse_slice(const field& f, const std::string& path);
    void parse_slice_endpoint(const field& f, const std::string& path, endpoint& e);
    // apiVersion and kind of a manifest.
    void check_type(const map_view& m, std::string_view api_version, std::string_view kind);
    // metadata: name (a DNS subdomain with `dots`, else a label), namespace; returns the
    // map for the caller's labels or annotations.
    std::optional<map_view> parse_metadata(const map_view& m, std::string& name, std::string& ns,
                                           bool dots);
    // twillctl apply of a file that is one manifest, or a List of them.
    void parse_manifest_file(const field& root);
    void parse_manifest_item(const field& f, const std::string& path);
    // TCP (default), UDP or SCTP, as an IP protocol number.
    uint8_t get_protocol(const map_view& m);

    // config_policy.cc
    // `namespaces[i]`: {name, labels}, or a Namespace manifest.
    void parse_namespace(const field& f, const std::string& path);
    // `networkPolicies[i]`: a NetworkPolicy manifest.
    void parse_policy(const field& f, const std::string& path);
    void parse_policy_settings(const field& f);
    // A pod's labels and containerPorts.
    void parse_pod_policy_keys(const map_view& m, pod& p);
    // Labels as Kubernetes checks them: keys with an optional prefix, values.
    label_map parse_labels(const field& f, const std::string& path);
    label_selector parse_selector(const field& f, const std::string& path);
    void parse_rule(const field& f, const std::string& path, bool egress, policy_rule& r);
    void parse_peer(const field& f, const std::string& path, policy_peer& p);
    void parse_ip_block(const field& f, const std::string& path, ip_block& b);
    void parse_policy_port(const field& f, const std::string& path, policy_port& p);
    // A port's name: a DNS label, or empty (absent, or "" as kubectl prints it).
    std::string get_port_name(const map_view& m);

    std::string file_;
    parse_result& out_;
    bool objects_only_;  // twillctl apply: objects only, no node settings
    std::set<std::string> unusable_;
};

template <class Fn>
void parser::for_each_item(const map_view& m, std::string_view key, Fn fn) {
    const field* f = find(m, key, false);
    if (f == nullptr || f->value.IsNull()) {
        return;
    }
    const YAML::Node& v = f->value;
    std::string path = child(m.path, key);
    if (!v.IsSequence()) {
        fail(path, at(m, key), fmt::format("expected a list, got {}", kind_name(v)));
        return;
    }
    size_t i = 0;
    for (auto it = v.begin(); it != v.end(); ++it, ++i) {
        std::string item_path = fmt::format("{}[{}]", path, i);
        out_.cfg.positions[item_path] = pos_of(*it);
        fn(field{*it, *it, *it}, item_path);
    }
}

}  // namespace twill::config::detail
